"""The controller: owns every long-lived task of a running event, and stops them all cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import UTC, datetime

from aiohttp import web

from . import assets
from .alerts import AlertDesk
from .config import EventFile
from .console.limits import ConnectionGuard, GuardedSite, Limits
from .events import Bus, now
from .questions import QuestionDesk
from .recorder import Recorder
from .store import Store

log = logging.getLogger(__name__)


class Controller:
    """One running event: recorder, restreamer, audience, question desk and console under one TaskGroup."""

    def __init__(self, event: EventFile, store: Store | None = None, bus: Bus | None = None):
        from .accounts.registry import Accounts
        from .audience.service import AudienceService
        from .broadcasts.manager import BroadcastManager
        from .broadcasts.sources import with_broadcast_sources
        from .restream.restreamer import Restreamer

        event = with_broadcast_sources(event)
        self.event = event
        self.store = store or Store(event.event.database)
        self.bus = bus or Bus()
        self.accounts = Accounts()
        self.recorder = Recorder(self.store, self.bus)
        self.alerts = AlertDesk(self.store, self.bus)
        self.restreamer = Restreamer(event, self.bus)
        self.audience = AudienceService(event, self.bus, self.store, accounts=self.accounts)
        self.broadcasts = BroadcastManager(event, self.bus, self.store, self.restreamer, self.accounts,
                                           audience=self.audience)
        self.questions = QuestionDesk(self.store, self.bus)
        self.console_url: str | None = None
        self.started = asyncio.Event()
        self.extra_tasks: list = []  # (name, coroutine factory) run beside the components, e.g. the demo's
        self.console_limits = Limits()  # what any one client may hold (console/limits.py)

    def _mark_started(self) -> None:
        stamp = datetime.fromtimestamp(now(), UTC).isoformat()
        self.store.set_meta("event_name", self.event.event.name)
        self.store.set_meta("timezone", self.event.event.timezone)
        self.store.set_meta("started_at", stamp, only_if_missing=True)
        self.store.set_meta("ended_at", "")

    async def _console(self) -> None:
        from .console.app import make_app
        from .console.https import ssl_context

        app = make_app(self)
        # keepalive_timeout also closes a connection that never completes its first request (slowloris).
        runner = web.AppRunner(app, handle_signals=False, access_log=None, keepalive_timeout=self.console_limits.idle_s)
        await runner.setup()
        try:
            site = GuardedSite(runner, self.event.console.host, self.event.console.port,
                               ConnectionGuard(self.console_limits.connections,
                                               self.console_limits.connections_per_address,
                                               exempt=self.event.console.trusted_proxy),
                               ssl_context=ssl_context(self.event.console))
            await site.start()
            self.console_site = site
            port = site.port
            host = self.event.console.host
            host = f"[{host}]" if ":" in host else host
            self.console_url = f"{'https' if self.event.console.tls else 'http'}://{host}:{port}"
            log.info("console at %s", self.console_url)
            self.started.set()
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until `stop` is set (or the task is cancelled); every component is stopped on the way out."""
        stop = stop or asyncio.Event()
        assets.require()  # before anything starts: a broken install says what it lacks, not a task group's traceback
        self._mark_started()
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self.recorder.run(), name="recorder"),
                    tg.create_task(self.alerts.run(), name="alerts"),
                    tg.create_task(self.restreamer.run(), name="restreamer"),
                    tg.create_task(self.audience.run(), name="audience"),
                    tg.create_task(self.broadcasts.run(), name="broadcasts"),
                    tg.create_task(self.questions.run(), name="questions"),
                    tg.create_task(self._console(), name="console"),
                ]
                tasks += [tg.create_task(factory(), name=name) for name, factory in self.extra_tasks]
                if self.event.event.snapshot_every_s:
                    from .backup import Snapshots

                    snapshots = Snapshots(self.event.event.database, self.event.event.snapshot_every_s,
                                          self.event.event.snapshot_dir, self.bus)
                    tasks.append(tg.create_task(snapshots.run(), name="snapshots"))
                await stop.wait()
                log.info("stopping")
                # The audience first, so what it fetched is stored; the restreamer stops its processes.
                keepers, others = tasks[:2], tasks[2:]
                for task in reversed(others):
                    task.cancel()
                # The recorder and the alert desk last, so the final states and alerts reach the database.
                await asyncio.wait(others)
                for task in keepers:
                    task.cancel()
        finally:
            await self.accounts.close()
            with contextlib.suppress(Exception):
                await self.recorder.drain()
            with contextlib.suppress(Exception):
                await self.alerts.drain()
            self.store.set_meta("ended_at", datetime.fromtimestamp(now(), UTC).isoformat())


def os_error_in(error: BaseException) -> OSError | None:
    """The OSError (say, a port in use) inside what the controller's task group raised, or None."""
    if isinstance(error, OSError):
        return error
    if isinstance(error, BaseExceptionGroup):
        return next((found for inner in error.exceptions if (found := os_error_in(inner)) is not None), None)
    return None


async def run_until_signalled(controller: Controller) -> None:
    """Run the controller until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await controller.run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
