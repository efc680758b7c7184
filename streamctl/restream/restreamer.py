"""The restreamer: owns the supervisor, the program, the ingest, every destination and the archive of one event."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from ..config import DestinationConfig, EventFile
from ..events import Alert, Bus, DestinationRemoved, IngestStateChanged
from ..redact import register_secret
from ..states import DestinationState
from .archive import Archive
from .destinations import BackupOutput, Destination, Timing
from .ffmpeg import encoder_for
from .hardware import find_hardware_encoder
from .ingest import Ingest
from .monitor import Monitor
from .platforms import StreamFacts, facts_from_dict
from .program import Program
from .supervisor import Supervisor

log = logging.getLogger(__name__)


class UnknownDestination(KeyError):
    """No destination has that name."""


class DuplicateDestination(ValueError):
    """A destination with that name exists already."""


class NotRemovable(ValueError):
    """A backup output goes with its destination: remove the destination instead."""


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
        self.monitor = Monitor(event.monitor, self.program, bus, self.supervisor,
                               covered=lambda: self.ingest.on_air == "slate") \
            if event.monitor.enabled and event.ingest is not None else None
        self.hardware: str | None = None  # the hardware H.264 encoder transcodes use, once found
        self._hardware_probed = False
        self._destinations: dict[str, Destination] = {}
        for config in event.destinations:
            self._destinations[config.name] = self._make(config)
        self._facts: StreamFacts | None = None
        self.running = False

    def _make(self, config: DestinationConfig) -> Destination:
        return Destination(config, self.program, self.bus, self.supervisor, self.timing, self.hardware)

    def outputs(self) -> list[Destination]:
        """Every destination output, each followed by its backup output when it has one."""
        return [o for d in self._destinations.values() for o in d.with_backup()]

    async def _find_hardware(self) -> None:
        """Once a transcode is configured: look for a working hardware encoder and give it to every transcode."""
        if self._hardware_probed or all(d.profile.copy for d in self._destinations.values()):
            return
        self._hardware_probed = True
        self.hardware = (await find_hardware_encoder(self.supervisor)).encoder
        for output in self.outputs():
            output.encoder = encoder_for(output.profile, self.hardware)

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
                if self.monitor is not None:
                    self.monitor.start()
                await self._find_hardware()
                # They start now and simply wait for the program's first keyframe.
                for output in self.outputs():
                    if output.config.autostart and not output.config.waits_for_broadcast:  # else the manager does
                        output.start()
        finally:
            self.running = False
            probes.close()
            await self._stop_everything()

    async def _stop_everything(self) -> None:
        outputs = [*self.outputs(), *(o for o in (self.archive, self.monitor) if o is not None)]
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
                await self.bus.publish(Alert("warning", dest.name, f"{dest.name} ({dest.platform}): {problem}",
                                             code="destination.rules",
                                             params={"platform": dest.platform, "problem": problem}))

    # ---- what the API does --------------------------------------------------------------------------

    def destinations(self) -> list[dict]:
        """Every destination as `GET /api/destinations` shows it."""
        return [o.describe() for o in self.outputs()]

    def get(self, name: str) -> Destination:
        """A destination, or a destination's backup output (`NAME (backup)`)."""
        found = self._destinations.get(name) or next((o for o in self.outputs() if o.name == name), None)
        if found is None:
            raise UnknownDestination(name)
        return found

    async def add(self, config: DestinationConfig) -> dict:
        """Add a destination mid-event; it starts now if `autostart` (the others are not touched)."""
        if config.name in self._destinations:
            raise DuplicateDestination(config.name)
        dest = self._destinations[config.name] = self._make(config)
        await self._find_hardware()
        await self._warn(dest)
        if config.autostart and self.running and not config.waits_for_broadcast:
            dest.start()
            if dest.backup:
                dest.backup.start()
        log.info("destination %s added (%s)", config.name, config.display_url)
        return dest.describe()

    async def remove(self, name: str) -> None:
        """Stop one destination (and its backup output), wait for its ffmpeg, and forget it."""
        dest = self.get(name)
        if isinstance(dest, BackupOutput):
            raise NotRemovable(name)
        await self.stop(name)
        self._destinations.pop(name, None)
        if dest.backup:
            await self.bus.publish(DestinationRemoved(dest.backup.name))
        await self.bus.publish(DestinationRemoved(name))
        log.info("destination %s removed", name)

    async def replace_key(self, name: str, key: str) -> dict:
        """Give one destination a new stream key (kept in memory); a running or failed one restarts with it.

        Only that destination's ffmpeg (and its backup output's) restarts; the others and the program never notice.
        """
        named = self.get(name)
        dest = self._destinations[named.config.name]  # a backup output shares its destination's key
        config = replace(dest.config, key=key, key_env=None)
        register_secret(key)
        await self._retarget(dest, config)
        log.info("destination %s has a new key (%s)", dest.name, config.display_url)
        return named.describe()

    async def reconfigure(self, name: str, config: DestinationConfig, start: bool = False) -> None:
        """Point a destination (and its backup output) at its broadcast's ingest: a running one restarts on it."""
        dest = self._destinations[self.get(name).config.name]
        if not await self._retarget(dest, config) and start and self.running:
            for output in dest.with_backup():
                output.start()
        log.info("destination %s publishes to its broadcast (%s)", dest.name, config.display_url)

    async def _retarget(self, dest: Destination, config: DestinationConfig) -> bool:
        """Give a destination and its backup output `config`; restart those not stopped. Were any running?"""
        for url in (config.publish_url, config.backup_publish_url):
            register_secret(url)
        outputs = dest.with_backup()
        running = [o for o in outputs if o.state != DestinationState.STOPPED]
        for output in outputs:
            output.config = config
        await asyncio.gather(*(o.restart() for o in running))
        return bool(running)

    async def start(self, name: str) -> dict:
        """Start a destination and its backup output (or only the backup output named)."""
        dest = self.get(name)
        await asyncio.gather(*(o.start_now() for o in dest.with_backup()))
        return dest.describe()

    async def stop(self, name: str) -> dict:
        """Stop a destination and its backup output (or only the backup output named)."""
        dest = self.get(name)
        await asyncio.gather(*(o.stop() for o in dest.with_backup()))
        return dest.describe()

    async def restart(self, name: str) -> dict:
        dest = self.get(name)
        await dest.restart()
        return dest.describe()

    def ingest_status(self) -> dict:
        """The ingest as `GET /api/ingest` shows it (with the archive, when there is one)."""
        status = self.ingest.status()
        status["archive"] = self.archive.describe() if self.archive else None
        status["monitor"] = self.monitor.describe() if self.monitor else None
        status["audio"] = self.monitor.levels() if self.monitor else {"peak_db": [], "rms_db": []}
        return status

    @property
    def processes(self) -> int:
        """Child processes alive right now (for /metrics and the no-orphans checks)."""
        return len(self.supervisor.children)
