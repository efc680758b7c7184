"""The audience service: one poller per configured source, their status, changes while running, the push way in."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field, replace

from ..accounts.registry import Accounts
from ..config import AudienceConfig, ConfigError, EventFile, audience_from_api
from ..events import BroadcastReady, Bus, SourceStateChanged, now
from ..redact import register_secret
from ..store import Store
from .manual import ManualSource, reading
from .poller import DISABLED, Poller, Timing
from .registry import Context, adapter
from .simulated import Simulation
from .source import Batch, Http
from .tiktok import ClientFactory
from .webhook import WebhookSource

log = logging.getLogger(__name__)

CREDENTIAL_MAX = 8192  # characters; OAuth access tokens are about 2 KB


class ChangeError(Exception):
    """A change the service refuses: `status` is 400 (bad input), 404 (no such source) or 409.

    `key` names the catalogue sentence the console answers with (None: the one for the status).
    """

    def __init__(self, status: int, issues: list[str], key: str | None = None):
        super().__init__("\n".join(issues))
        self.status = status
        self.issues = issues
        self.key = key


@dataclass
class Unit:
    """One configured source as it runs: its poller(s) and, for a simulated one, the fakes and typist."""

    config: AudienceConfig
    pollers: list[Poller]
    simulation: Simulation | None = None
    task: asyncio.Task | None = field(default=None, repr=False)


class AudienceService:
    """Runs every enabled audience source of the event until cancelled; one can change without the others."""

    def __init__(self, event: EventFile, bus: Bus, store: Store, timing: Timing | None = None,
                 tiktok_factory: ClientFactory | None = None, accounts: Accounts | None = None):
        self.event = event
        self._own_accounts = accounts is None
        self.accounts = accounts or Accounts()
        self.bus = bus
        self.store = store
        self.timing = timing
        self.context = Context(http=Http(), tiktok_client=tiktok_factory, accounts=self.accounts)
        self.http = self.context.http
        self.started_at = now()
        self.configs: dict[str, AudienceConfig] = {config.name: config for config in event.audience}
        self.units: dict[str, Unit] = {}
        self.pollers: dict[str, Poller] = {}  # by source name (a simulated source has two)
        self._group: asyncio.TaskGroup | None = None
        self._changing = asyncio.Lock()
        for config in event.audience:
            if config.enabled:
                self._prepare(config)

    def _timing(self, config: AudienceConfig) -> Timing:
        base = self.timing or Timing()
        interval = config.interval or (base.interval if self.timing else adapter(config.platform).interval)
        return replace(base, interval=interval)

    def _prepare(self, config: AudienceConfig) -> Unit:
        """Build the adapter and its poller(s) of one source (not started yet)."""
        timing = self._timing(config)
        entry = adapter(config.platform)
        built = entry.build(config, self.context)
        if isinstance(built, Simulation):
            unit = Unit(config, [Poller(s, self.bus, timing) for s in built.sources], simulation=built)
        else:
            planner = entry.planner(config, self.started_at, timing.interval)
            unit = Unit(config, [Poller(built, self.bus, timing, planner=planner,
                                        credential_env=config.credential_env)])
        self.units[config.name] = unit
        for poller in unit.pollers:
            self.pollers[poller.name] = poller
        return unit

    async def run(self) -> None:
        """Run every prepared source (resumed from its stored cursor) until cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                for unit in self.units.values():
                    for poller in unit.pollers:
                        poller.resume(self.store.get_cursor(poller.name))
                    self._start(unit)
                group.create_task(self._follow_broadcasts(), name="audience.broadcasts")
                await asyncio.Event().wait()  # sources come and go while running; the controller cancels us
        finally:
            self._group = None
            await self.http.close()
            if self._own_accounts:
                await self.accounts.close()

    async def _follow_broadcasts(self) -> None:
        """A destination's broadcast was made: its audience source of the same name reads that chat."""
        with self.bus.subscribe(BroadcastReady, maxsize=100, name="audience.broadcasts") as ready:
            async for event in ready:
                poller = self.pollers.get(event.name)
                bind = getattr(poller.source, "bind_broadcast", None) if poller else None
                if bind is not None and poller.source.platform == event.platform:
                    bind(event.broadcast_id, event.chat_id)
                    log.info("%s: reading the chat of broadcast %s", event.name, event.broadcast_id)

    def quota_planner(self, name: str):
        """The quota ledger of a YouTube source: broadcast calls of the same channel are booked there too."""
        poller = self.pollers.get(name)
        return poller.planner if poller is not None else None

    def _start(self, unit: Unit) -> None:
        assert self._group is not None
        unit.task = self._group.create_task(self._run_unit(unit), name=f"audience.{unit.config.name}")

    async def _run_unit(self, unit: Unit) -> None:
        sim = unit.simulation
        try:
            if sim is not None:
                await sim.start()
            async with asyncio.TaskGroup() as group:
                for poller in unit.pollers:
                    group.create_task(poller.run(), name=f"audience.{poller.name}")
                if sim is not None:
                    group.create_task(sim.run(), name=f"audience.{sim.name}.generator")
        finally:
            if sim is not None:
                await sim.stop()

    async def _stop_unit(self, name: str) -> Unit | None:
        """Stop one source and wait until it has closed; the others are not touched."""
        unit = self.units.pop(name, None)
        if unit is None:
            return None
        if unit.task is not None:
            unit.task.cancel()
            await asyncio.gather(unit.task, return_exceptions=True)
        for poller in unit.pollers:
            self.pollers.pop(poller.name, None)
        return unit

    # ---- changes while running ----------------------------------------------------------------------

    def config(self, name: str) -> AudienceConfig:
        """The current configuration of a source; ChangeError(404) when there is none of that name."""
        config = self.configs.get(name)
        if config is None:
            raise ChangeError(404, [f"no audience source named {name[:64]!r} in the event file"])
        return config

    async def change(self, name: str, body: object) -> dict:
        """Apply `{"video_id": …, "enabled": false, …}` to one source and restart it alone; its new status."""
        current = self.config(name)
        try:
            config = audience_from_api(current, body)  # type: ignore[arg-type]
        except ConfigError as e:
            raise ChangeError(400, e.issues) from None
        position = config.options == current.options  # another video's chat starts from its own beginning
        await self._restart(config, keep_position=position)
        return self.status_of(name)

    async def replace_credential(self, name: str, body: object) -> dict:
        """Replace one source's token or secret (never echoed) and restart it alone; its new status."""
        current = self.config(name)
        if current.credential_env is None:
            raise ChangeError(409, [f"{name}: a {current.platform} source takes no credential"])
        value = body.get("credential") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise ChangeError(400, ["credential: missing, expected {\"credential\": \"the new token or secret\"}"],
                              "error.source_credential")
        if len(value) > CREDENTIAL_MAX or any(ch.isspace() or ord(ch) < 32 for ch in value.strip()):
            raise ChangeError(400, [f"credential: has spaces or control characters or is over {CREDENTIAL_MAX} "
                                    "characters, expected the token exactly as the platform issued it"],
                              "error.source_credential")
        value = value.strip()
        register_secret(value)  # masked in every log line, answer and page from now on
        await self._restart(replace(current, credential=value), keep_position=True)
        return self.status_of(name)

    async def _restart(self, config: AudienceConfig, keep_position: bool) -> None:
        async with self._changing:
            old = await self._stop_unit(config.name)
            self.configs[config.name] = config
            if not config.enabled:
                if old is not None:
                    for poller in old.pollers:
                        await poller.close_alerts("disabled by the operator")
                log.info("%s: disabled", config.name)
                await self._announce(config.name)
                return
            unit = self._prepare(config)
            for new in unit.pollers:
                previous = next((p for p in old.pollers if p.name == new.name), None) if old else None
                if previous is not None:
                    new.take_over(previous, keep_position)
                else:
                    new.resume(self.store.get_cursor(new.name))
            if self._group is not None:
                self._start(unit)
            log.info("%s: restarted with its new settings", config.name)
            await self._announce(config.name)

    async def _announce(self, name: str) -> None:
        """Tell the pages a changed source's new state at once (a restarted one starts, a disabled one is off)."""
        for item in self.sources_status():
            if item["name"] == name or item["name"].startswith(name + "."):
                await self.bus.publish(SourceStateChanged(item["name"], item["platform"], item["state"],
                                                          item["error"], item))

    # ---- for the console ----------------------------------------------------------------------------

    def status_of(self, name: str) -> dict:
        """One configured source's status (a disabled source is listed with state `disabled`)."""
        return next(item for item in self.sources_status() if item["name"] == name
                    or item["name"].startswith(name + "."))

    def sources_status(self) -> list[dict]:
        """Every source's health, as /api/audience lists them, with its stored comment count."""
        counts = {r["source"]: r["n"] for r in self.store.query(
            "SELECT source, COUNT(*) AS n FROM comments GROUP BY source")}
        out = []
        for name, config in self.configs.items():
            unit = self.units.get(name)
            items = [p.status() for p in unit.pollers] if unit else [_disabled(config)]
            for item in items:
                item["comments"] = counts.get(item["name"], 0)
                item["enabled"] = unit is not None
                item["settings"] = settings(config)
                item["config"] = {"name": name, "platform": config.platform}  # what PATCH/PUT /api/audience/… take
                out.append(item)
        return out

    def webhook(self, name: str) -> WebhookSource | None:
        """The webhook source of that name, or None."""
        poller = self.pollers.get(name)
        return poller.source if poller and isinstance(poller.source, WebhookSource) else None

    def takes_readings(self, name: str) -> bool:
        """Whether the operator may type viewer counts for this source (manual and webhook sources)."""
        poller = self.pollers.get(name)
        return poller is not None and isinstance(poller.source, ManualSource | WebhookSource)

    def reading(self, name: str, body: object) -> Batch:
        """A manual viewer reading for `name` (raises manual.ReadingError for bad input)."""
        source = self.pollers[name].source
        label = getattr(source, "label", None) or source.platform
        return reading(name, label, body)

    async def deliver(self, name: str, batch: Batch, receipts: list | None = None) -> int:
        """Hand a pushed batch to the source's poller; returns how many comments were new (see Poller.deliver
        for `receipts`)."""
        return await self.pollers[name].deliver(batch, receipts=receipts)


def settings(config: AudienceConfig) -> dict:
    """A source's options as the operator may see them: ids and choices, names of variables, never a secret."""
    values = {k: v for k, v in asdict(config.options).items() if v is not None}
    return {**values, "interval": config.interval}


def _disabled(config: AudienceConfig) -> dict:
    return {"name": config.name, "platform": config.platform, "state": DISABLED, "since": None, "last_ok": None,
            "last_message_at": None, "error": None, "quota": None, "fetched": 0, "ignored": {}, "viewers": None,
            "interval_s": None}
