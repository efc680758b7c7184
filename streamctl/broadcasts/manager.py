"""The broadcast manager: per destination with `broadcast`, the platform's broadcast made ready, taken live, watched.

For each such destination it creates (or finds again, from the event database) the broadcast, points the
destination at the ingest address the platform hands out (`dataclasses.replace` on its config), starts it,
tells the audience source of the same name which chat to read, and while the destination is live polls
what the platform says it receives. Every failure is an alert that says what to do.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ..accounts.facebook import EXPIRY_WARN_S
from ..accounts.files import CredentialFileError
from ..accounts.registry import Accounts
from ..config import DestinationConfig, EventFile
from ..events import Alert, BroadcastReady, Bus, PlatformHealthChanged, now
from ..redact import redact
from ..store import Store, iso
from .client import CREDENTIAL, REFUSED, BroadcastError, PageSigner
from .facebook import FacebookBroadcast
from .records import BroadcastRecords
from .youtube import YouTubeBroadcast

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BroadcastTiming:
    """How often the platforms are asked; tests shorten these, the defaults fit the 10,000-unit YouTube day."""

    health_every_s: float = 15.0  # platform health while the destination is live (YouTube: 1 unit a look)
    health_alert_s: float = 30.0  # the platform says noData/bad this long while we send: `platform.health`
    retry_s: float = 15.0  # a broadcast that could not be made ready is tried again after this (doubling)
    retry_cap_s: float = 300.0
    go_live_wait_s: float = 60.0  # go_live / end wait this long at most for an active stream or a transition
    step_s: float = 2.0  # between looks while waiting
    expiry_every_s: float = 3600.0  # how often credential expiry is checked while running


class NotReady(Exception):
    """The destination's broadcast is not made yet (or it has no broadcast)."""


class Entry:
    """One destination's broadcast and what we know of it."""

    def __init__(self, config: DestinationConfig):
        self.config = config
        self.name = config.name
        self.platform = config.platform
        self.broadcast: YouTubeBroadcast | FacebookBroadcast | None = None
        self.ready = asyncio.Event()
        self.error: str | None = None
        self.health: dict | None = None
        self.bad_since: float | None = None
        self.alerted = False
        self.sync: dict = {"state": "none"}
        self.expiring_told = False
        self.open_alerts: set[str] = set()  # codes raised and not yet resolved

    def describe(self) -> tuple[dict | None, dict | None]:
        """(`broadcast`, `platform_health`) as /api/destinations shows them."""
        b = self.broadcast
        if b is None or b.id is None or not self.ready.is_set():
            return ({"id": None, "status": "preparing" if self.error is None else "failed", "watch_url": None,
                     "error": self.error} if self.config.broadcast else None), None
        broadcast = {"id": b.id, "status": b.status, "watch_url": b.watch_url, "error": self.error,
                     "title": b.title, "sync": dict(self.sync)}
        return broadcast, (dict(self.health) if self.health else None)


class BroadcastManager:
    """Every broadcast of the event; `run()` until cancelled."""

    def __init__(self, event: EventFile, bus: Bus, store: Store, restreamer, accounts: Accounts,
                 audience=None, timing: BroadcastTiming | None = None):
        self.event = event
        self.bus = bus
        self.store = store
        self.restreamer = restreamer
        self.accounts = accounts
        self.audience = audience
        self.timing = timing or BroadcastTiming()
        self.records = BroadcastRecords(store)
        self.title = store.get_meta("event_title") or event.event.name
        self.description = store.get_meta("event_description") or ""
        self.entries: dict[str, Entry] = {d.name: Entry(d) for d in event.destinations if d.broadcast}

    # ---- running ------------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                for entry in self.entries.values():
                    tg.create_task(self._keep(entry), name=f"broadcast:{entry.name}")
                await asyncio.Event().wait()  # destinations added mid-event get their task here too
        finally:
            self._tg = None

    _tg: asyncio.TaskGroup | None = None

    def add(self, config: DestinationConfig) -> None:
        """A broadcast destination added while running (POST /api/destinations): made like the others."""
        if not config.broadcast or config.name in self.entries:
            return
        entry = self.entries[config.name] = Entry(config)
        if self._tg is not None:
            self._tg.create_task(self._keep(entry), name=f"broadcast:{entry.name}")

    def _make(self, entry: Entry) -> YouTubeBroadcast | FacebookBroadcast:
        config = entry.config
        if config.platform == "youtube":
            signer = self.accounts.google(config.credentials_file)  # type: ignore[arg-type]
            return YouTubeBroadcast(config, signer, self.accounts.session,
                                    spend=lambda units: self._spend(entry, units),
                                    title=self.title, description=self.description)
        page = self.accounts.facebook(config.credentials_file)  # type: ignore[arg-type]
        return FacebookBroadcast(config, PageSigner(page.access_token), self.accounts.session,
                                 page_id=config.page_id or page.page_id, title=self.title,
                                 description=self.description, api_base=page.api_base or None)

    def _spend(self, entry: Entry, units: int) -> None:
        planner = self._planner(entry.name)
        if planner is not None:
            planner.spend(units, now())

    def _planner(self, name: str):
        finder = getattr(self.audience, "quota_planner", None)
        return finder(name) if callable(finder) else None

    async def _keep(self, entry: Entry) -> None:
        """Make the broadcast ready (retrying with backoff), then watch it while the destination runs."""
        delay = self.timing.retry_s
        while not entry.ready.is_set():
            try:
                await self._prepare(entry)
            except (BroadcastError, CredentialFileError) as e:
                await self._failed(entry, e, "prepare")
                await asyncio.sleep(delay if getattr(e, "kind", REFUSED) != CREDENTIAL else self.timing.retry_cap_s)
                delay = min(self.timing.retry_cap_s, delay * 2)
        planner = self._planner(entry.name)
        if planner is not None and hasattr(planner, "reserve") and entry.broadcast.cost_per_health:
            planner.reserve(f"health:{entry.name}", entry.broadcast.cost_per_health / self.timing.health_every_s)
        checked = now()
        while True:
            await asyncio.sleep(self.timing.health_every_s)
            if now() - checked >= self.timing.expiry_every_s:
                checked = now()
                await self._check_expiry(entry)
            try:
                await self._watch(entry)
            except BroadcastError as e:
                await self._failed(entry, e, "health")

    async def _prepare(self, entry: Entry) -> None:
        entry.broadcast = entry.broadcast or self._make(entry)
        b = entry.broadcast
        known = self.records.known(entry.name, entry.platform)
        url, backup = await b.prepare(known)
        self.records.remember(entry.name, entry.platform, b.ids(), b.status, b.watch_url)
        if known and known.get("broadcast_id") == b.id:
            log.info("%s: reusing %s broadcast %s", entry.name, entry.platform, b.id)
        else:
            log.info("%s: %s broadcast %s ready (%s)", entry.name, entry.platform, b.id, b.watch_url)
        dest = self.restreamer.get(entry.name)
        config = replace(dest.config, url=url, key=None, key_env=None, backup_url=backup, broadcast_ready=True)
        await self.restreamer.reconfigure(entry.name, config, start=entry.config.autostart)
        entry.error = None
        entry.ready.set()
        await self.bus.publish(BroadcastReady(entry.name, entry.platform, b.id, b.chat_id))
        await self._resolve(entry, "broadcast.failed")
        await self._resolve(entry, "credential.revoked")
        await self._check_expiry(entry)
        if entry.sync.get("state") == "pending":
            await self._sync(entry)  # the title was changed before the broadcast was made
        await self._announce(entry)

    async def _watch(self, entry: Entry) -> None:
        """One look at the platform's health while we are live; `platform.health` after health_alert_s bad."""
        b = entry.broadcast
        try:
            dest = self.restreamer.get(entry.name)
        except KeyError:
            return
        we_live = dest.state == "live"
        if not we_live and entry.health is None:
            return
        if not we_live:
            entry.bad_since = None
            if entry.alerted:
                await self._health_alert(entry, resolved=True)
            return
        health = await b.health()
        at = now()
        health["at"] = iso(at)
        changed = entry.health is None or (entry.health.get("status"), entry.health.get("issues")) != \
            (health.get("status"), health.get("issues"))
        entry.health = health
        self.records.log_health(entry.name, entry.platform, health, we_live, at)
        if b.bad(health):
            entry.bad_since = entry.bad_since or at
            if not entry.alerted and at - entry.bad_since >= self.timing.health_alert_s:
                await self._health_alert(entry, resolved=False)
        else:
            entry.bad_since = None
            if entry.alerted:
                await self._health_alert(entry, resolved=True)
            if health.get("stream_status") == "active":
                await b.preview()  # YouTube: ready → testing, so Go live is one step
        if changed:
            await self._announce(entry)

    async def _health_alert(self, entry: Entry, resolved: bool) -> None:
        entry.alerted = not resolved
        health = entry.health or {}
        issues = ", ".join(str(i.get("type")) for i in health.get("issues") or []) or "none"
        params = {"destination": entry.name, "platform": entry.platform, "status": str(health.get("status")),
                  "issues": issues, "seconds": round(self.timing.health_alert_s)}
        if resolved:
            message = f"{entry.name}: {entry.platform} receives our stream again ({health.get('status')})"
        else:
            message = (f"{entry.name}: we are sending but {entry.platform} says {health.get('status')} "
                       f"(issues: {issues}) for over {self.timing.health_alert_s:g} s: check the destination's "
                       f"output and the platform's live dashboard")
        await self.bus.publish(Alert("info" if resolved else "error", entry.name, message, code="platform.health",
                                     params=params, resolved=resolved))

    async def _announce(self, entry: Entry) -> None:
        broadcast, health = entry.describe()
        await self.bus.publish(PlatformHealthChanged(entry.name, entry.platform, health or {}, broadcast or {}))

    async def _failed(self, entry: Entry, error: Exception, during: str) -> None:
        text = redact(str(error))
        first = entry.error != text
        entry.error = text
        if not first:
            return
        log.warning("%s: broadcast %s failed: %s", entry.name, during, text)
        credential = isinstance(error, CredentialFileError) or getattr(error, "kind", None) == CREDENTIAL
        code = "credential.revoked" if credential else "broadcast.failed"
        entry.open_alerts.add(code)
        await self.bus.publish(Alert("error", entry.name, f"{entry.name}: {text}", code=code,
                                     params={"destination": entry.name, "platform": entry.platform, "error": text}))

    async def _resolve(self, entry: Entry, code: str) -> None:
        if code not in entry.open_alerts:
            return
        entry.open_alerts.discard(code)
        await self.bus.publish(Alert("info", entry.name, f"{entry.name}: the {entry.platform} broadcast is ready",
                                     code=code, params={"destination": entry.name, "platform": entry.platform},
                                     resolved=True))

    async def _check_expiry(self, entry: Entry) -> None:
        if entry.platform != "facebook" or entry.config.credentials_file is None:
            return
        try:
            page = self.accounts.facebook(entry.config.credentials_file)
        except CredentialFileError:
            return
        problem = page.expiring(within_s=EXPIRY_WARN_S)
        if problem and not entry.expiring_told:
            entry.expiring_told = True
            await self.bus.publish(Alert(
                "warning", entry.name, f"{entry.name}: {problem}: run `streamctl auth facebook` again before then",
                code="credential.expiring", params={"destination": entry.name, "platform": "facebook",
                                                    "what": problem}))

    # ---- what the API does --------------------------------------------------------------------------

    def _ready(self, name: str) -> Entry:
        entry = self.entries.get(name)
        if entry is None:
            raise NotReady(f"destination {name!r} has no broadcast (set broadcast = \"create\" or an id)")
        if not entry.ready.is_set():
            raise NotReady(f"the {entry.platform} broadcast of {name!r} is not ready yet"
                           + (f": {entry.error}" if entry.error else ""))
        return entry

    async def go_live(self, name: str) -> dict:
        """Make the broadcast public: YouTube testing → live once the stream is active; Facebook LIVE_NOW."""
        return await self._act(name, "go_live")

    async def end(self, name: str) -> dict:
        """Complete the broadcast (YouTube) / end the live video (Facebook)."""
        return await self._act(name, "end")

    async def _act(self, name: str, action: str) -> dict:
        entry = self._ready(name)
        b = entry.broadcast
        try:
            await getattr(b, action)(wait_s=self.timing.go_live_wait_s, step_s=self.timing.step_s)
        except BroadcastError as e:
            await self._failed(entry, e, action)
            raise
        entry.error = None
        self.records.remember(entry.name, entry.platform, b.ids(), b.status, b.watch_url)
        await self._announce(entry)
        return self.describe(name)

    def describe(self, name: str) -> dict:
        """`broadcast` and `platform_health` of one destination (both None without a broadcast)."""
        entry = self.entries.get(name)
        broadcast, health = entry.describe() if entry else (None, None)
        return {"broadcast": broadcast, "platform_health": health}

    def decorate(self, destinations: list[dict]) -> list[dict]:
        """Add `broadcast` and `platform_health` to each /api/destinations item."""
        for item in destinations:
            item.update(self.describe(item["name"]))
        return destinations

    def event_info(self) -> dict:
        platforms = []
        for entry in self.entries.values():
            b = entry.broadcast
            platforms.append({"destination": entry.name, "platform": entry.platform,
                              "broadcast_id": b.id if b else None, **entry.sync})
        return {"title": self.title, "description": self.description, "platforms": platforms}

    async def set_event(self, title: str | None, description: str | None) -> dict:
        """Apply a new title/description to every ready broadcast and read each back."""
        if title is not None:
            self.title = title
            self.store.set_meta("event_title", title)
        if description is not None:
            self.description = description
            self.store.set_meta("event_description", description)
        await asyncio.gather(*(self._sync(e) for e in self.entries.values()))
        return self.event_info()

    async def _sync(self, entry: Entry) -> None:
        at = datetime.fromtimestamp(now(), UTC).isoformat()
        if not entry.ready.is_set():
            entry.sync = {"state": "pending", "error": "the broadcast is not ready yet; applied when it is made",
                          "at": at}
            return
        try:
            back: dict[str, Any] = await entry.broadcast.apply(self.title, self.description)
        except BroadcastError as e:
            entry.sync = {"state": "failed", "error": redact(str(e)), "at": at}
            await self._failed(entry, e, "update")
            return
        took = back.get("title") == self.title[:len(back.get("title") or "")] and bool(back.get("title"))
        took = took and (back.get("description") or "") == self.description[:len(back.get("description") or "")]
        entry.sync = {"state": "ok" if took else "differs", "title": back.get("title"),
                      "description": back.get("description"), "at": at, "error": None}
        await self._announce(entry)
