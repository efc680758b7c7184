"""The audience service: one poller per configured source, their status, and the push routes' way in."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from ..accounts.registry import Accounts
from ..config import AudienceConfig, EventFile
from ..events import BroadcastReady, Bus, now
from ..store import Store
from .facebook import FacebookSource
from .manual import ManualSource, reading
from .poller import Poller, Timing
from .quota import QuotaPlanner
from .simulated import Simulation
from .source import Batch, Http
from .tiktok import ClientFactory, TikTokSource
from .twitch import TwitchSource
from .webhook import WebhookSource
from .youtube import YouTubeSource

log = logging.getLogger(__name__)

# Poll interval when the event file sets none (YouTube's is planned from its quota, never below this).
DEFAULT_INTERVAL = {"youtube": 1.0, "facebook": 3.0, "twitch": 10.0, "tiktok": 5.0, "simulated": 1.0}
DEFAULT_PLANNED_HOURS = 4.0


class AudienceService:
    """Runs every enabled audience source of the event until cancelled; cleans up sessions and fakes."""

    def __init__(self, event: EventFile, bus: Bus, store: Store, timing: Timing | None = None,
                 tiktok_factory: ClientFactory | None = None, accounts: Accounts | None = None):
        self.event = event
        self._own_accounts = accounts is None
        self.accounts = accounts or Accounts()
        self.bus = bus
        self.store = store
        self.timing = timing
        self.tiktok_factory = tiktok_factory
        self.http = Http()
        self.pollers: dict[str, Poller] = {}
        self.simulations: list[Simulation] = []
        self.planners: dict[str, QuotaPlanner] = {}
        self.started_at = now()
        for config in event.audience:
            if config.enabled:
                self._add(config)

    def _timing(self, config: AudienceConfig) -> Timing:
        base = self.timing or Timing()
        interval = config.interval or (base.interval if self.timing else DEFAULT_INTERVAL.get(config.platform, 5.0))
        return replace(base, interval=interval)

    def _add(self, config: AudienceConfig) -> None:
        timing = self._timing(config)
        env = config.get("credential_env") or config.get("secret_env")
        if config.platform == "simulated":
            sim = Simulation(config, self.http)
            self.simulations.append(sim)
            for source in (sim.youtube, sim.facebook):
                self.pollers[source.name] = Poller(source, self.bus, timing)
            return
        planner = None
        if config.platform == "youtube":
            path = config.get("credentials_file")
            signer = self.accounts.google(path) if path else None
            source = YouTubeSource(config, self.http, signer=signer)
            planner = QuotaPlanner(daily=int(config.get("daily_quota", 10_000)),
                                   planned_s=float(config.get("planned_hours", DEFAULT_PLANNED_HOURS)) * 3600,
                                   started_at=self.started_at, min_interval_s=timing.interval)
            self.planners[config.name] = planner
        elif config.platform == "facebook":
            source = FacebookSource(config, self.http)
        elif config.platform == "twitch":
            source = TwitchSource(config, self.http)
        elif config.platform == "tiktok":
            source = TikTokSource(config, client_factory=self.tiktok_factory)
        elif config.platform == "webhook":
            source = WebhookSource(config)
        else:
            source = ManualSource(config)
        self.pollers[config.name] = Poller(source, self.bus, timing, planner=planner, credential_env=env)

    async def run(self) -> None:
        """Start the fakes of simulated sources, then every poller (resumed from its stored cursor)."""
        try:
            for sim in self.simulations:
                await sim.start()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._follow_broadcasts(), name="audience.broadcasts")
                for name, poller in self.pollers.items():
                    poller.resume(self.store.get_cursor(name))
                    tg.create_task(poller.run(), name=f"audience.{name}")
                for sim in self.simulations:
                    tg.create_task(sim.run(), name=f"audience.{sim.name}.generator")
                if not self.pollers:
                    await asyncio.Event().wait()  # nothing configured: idle until the controller stops us
        finally:
            for sim in self.simulations:
                await sim.stop()
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

    def quota_planner(self, name: str) -> QuotaPlanner | None:
        """The quota ledger of a YouTube source: broadcast calls of the same channel are booked there too."""
        return self.planners.get(name)

    # ---- for the console ----------------------------------------------------------------------------

    def sources_status(self) -> list[dict]:
        """Every source's health, as /api/audience lists them, with its stored comment count."""
        counts = {r["source"]: r["n"] for r in self.store.query(
            "SELECT source, COUNT(*) AS n FROM comments GROUP BY source")}
        out = []
        for name, poller in self.pollers.items():
            item = poller.status()
            item["comments"] = counts.get(name, 0)
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

    async def deliver(self, name: str, batch: Batch) -> int:
        """Hand a pushed batch to the source's poller; returns how many comments were new."""
        return await self.pollers[name].deliver(batch)
