"""The restreamer: owns the supervisor, the program, the ingest, every destination and the archive of one event."""

from __future__ import annotations

import asyncio
import logging

from ..config import DestinationConfig, EventFile
from ..events import Alert, Bus, DestinationRemoved, IngestStateChanged
from .archive import Archive
from .destinations import Destination, Timing
from .ingest import Ingest
from .platforms import StreamFacts
from .probe import facts_from_dict
from .program import Program
from .supervisor import Supervisor

log = logging.getLogger(__name__)


class UnknownDestination(KeyError):
    """No destination has that name."""


class DuplicateDestination(ValueError):
    """A destination with that name exists already."""


class Restreamer:
    """Program in, every destination out; `run()` until cancelled, then every child process has exited."""

    def __init__(self, event: EventFile, bus: Bus, *, timing: Timing | None = None,
                 supervisor: Supervisor | None = None):
        self.event = event
        self.bus = bus
        self.timing = timing or Timing()
        self.supervisor = supervisor or Supervisor(grace_s=self.timing.stop_grace_s)
        self.program = Program()
        self.ingest = Ingest(event.ingest, self.program, bus, self.supervisor, event.event.name)
        self.archive = Archive(event.archive, self.program, bus, self.supervisor, self.timing) \
            if event.archive else None
        self._destinations: dict[str, Destination] = {}
        for config in event.destinations:
            self._destinations[config.name] = self._make(config)
        self._facts: StreamFacts | None = None
        self.running = False

    def _make(self, config: DestinationConfig) -> Destination:
        return Destination(config, self.program, self.bus, self.supervisor, self.timing)

    # ---- running ------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Ingest, autostart destinations, archive; on cancel stop them all and wait for every child."""
        probes = self.bus.subscribe(IngestStateChanged, maxsize=100, name="restreamer.rules")
        self.running = True
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.ingest.run(), name="ingest")
                tg.create_task(self._check_rules(probes), name="restreamer.rules")
                if self.archive is not None:
                    self.archive.start()
                # They start now and simply wait for the program's first keyframe.
                for dest in self._destinations.values():
                    if dest.config.autostart and not dest.config.waits_for_broadcast:  # else the manager starts it
                        dest.start()
        finally:
            self.running = False
            probes.close()
            await self._stop_everything()

    async def _stop_everything(self) -> None:
        outputs = [*self._destinations.values(), *([self.archive] if self.archive else [])]
        await asyncio.gather(*(o.stop() for o in outputs), return_exceptions=True)
        # Anything still alive (the ingest's child, an output caught mid-start) goes the same way.
        await self.supervisor.stop_all()
        self.program.close()
        log.info("restreaming stopped; %d child process(es) left", len(self.supervisor.children))

    async def _check_rules(self, probes) -> None:
        """Each time the ingest is probed, check every destination's platform rules and warn (never refuse)."""
        async for event in probes:
            if not event.probe.get("ready"):
                continue
            self._facts = facts_from_dict(event.probe)
            for dest in list(self._destinations.values()):
                await self._warn(dest)

    async def _warn(self, dest: Destination) -> None:
        before = list(dest.rule_warnings)
        for problem in dest.check_rules(self._facts):
            if problem not in before:
                await self.bus.publish(Alert("warning", f"destination:{dest.name}",
                                             f"{dest.name} ({dest.platform}): {problem}"))

    # ---- what the API does --------------------------------------------------------------------------

    def destinations(self) -> list[dict]:
        """Every destination as `GET /api/destinations` shows it."""
        return [d.describe() for d in self._destinations.values()]

    def get(self, name: str) -> Destination:
        try:
            return self._destinations[name]
        except KeyError:
            raise UnknownDestination(name) from None

    async def add(self, config: DestinationConfig) -> dict:
        """Add a destination mid-event; it starts now if `autostart` (the others are not touched)."""
        if config.name in self._destinations:
            raise DuplicateDestination(config.name)
        dest = self._destinations[config.name] = self._make(config)
        await self._warn(dest)
        if config.autostart and self.running and not config.waits_for_broadcast:
            dest.start()
        log.info("destination %s added (%s)", config.name, config.display_url)
        return dest.describe()

    async def reconfigure(self, name: str, config: DestinationConfig, start: bool = False) -> None:
        """Give a destination a new config (its broadcast's ingest address); a running one restarts on it."""
        dest = self.get(name)
        running = dest.running
        if running:
            await dest.stop()
        dest.reconfigure(config)
        if (running or start) and self.running:
            dest.start()

    async def remove(self, name: str) -> None:
        """Stop one destination, wait for its ffmpeg, and forget it."""
        dest = self.get(name)
        await dest.stop()
        self._destinations.pop(name, None)
        await self.bus.publish(DestinationRemoved(name))
        log.info("destination %s removed", name)

    async def start(self, name: str) -> dict:
        dest = self.get(name)
        await dest.start_now()
        return dest.describe()

    async def stop(self, name: str) -> dict:
        dest = self.get(name)
        await dest.stop()
        return dest.describe()

    async def restart(self, name: str) -> dict:
        dest = self.get(name)
        await dest.restart()
        return dest.describe()

    def ingest_status(self) -> dict:
        """The ingest as `GET /api/ingest` shows it (with the archive, when there is one)."""
        status = self.ingest.status()
        status["archive"] = self.archive.describe() if self.archive else None
        return status

    @property
    def processes(self) -> int:
        """Child processes alive right now (for /metrics and the no-orphans checks)."""
        return len(self.supervisor.children)
