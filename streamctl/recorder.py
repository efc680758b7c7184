"""The recorder: the one component that writes what happens to the event database, then tells the rest."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import shutil
import sqlite3

from .events import (
    Alert,
    Bus,
    CommentsFetched,
    CommentsHidden,
    CommentsStored,
    DestinationHealth,
    DestinationStateChanged,
    IngestStateChanged,
    IngestSwitched,
    SourceStateChanged,
    Stored,
    ViewersSampled,
    ViewersStored,
)
from .store import Store, disk_trouble

log = logging.getLogger(__name__)

HEALTH_EVERY_S = 5.0
DISK_RETRY_S = 1.0  # how often a write refused by a full disk is tried again


def _answer(event, outcome: Stored) -> None:
    """Tell whoever waits on the event's receipt how it went (once; a sender that gave up is not told)."""
    receipt = getattr(event, "receipt", None)
    if receipt is not None and not receipt.done():
        receipt.set_result(outcome)


def _origin(event) -> str:
    return getattr(event, "source", None) or getattr(getattr(event, "sample", None), "source", "?")


class Recorder:
    """Stores comments (exactly once, with their cursor) before publishing them, and the stream's history."""

    def __init__(self, store: Store, bus: Bus):
        self.store = store
        self.bus = bus
        # Audience data must never be dropped: the pollers wait when the recorder is behind.
        self._audience = bus.subscribe(CommentsFetched, ViewersSampled, maxsize=256, lossless=True,
                                       name="recorder.audience")
        self._history = bus.subscribe(DestinationStateChanged, DestinationHealth, IngestStateChanged,
                                      IngestSwitched, SourceStateChanged, maxsize=10000, name="recorder.history")
        self._last_health: dict[str, float] = {}
        self._disk_error: str | None = None  # why the database cannot be written right now, or None

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._record_audience(), name="recorder.audience")
                tg.create_task(self._record_history(), name="recorder.history")
        finally:
            self._audience.close()
            self._history.close()

    async def drain(self) -> None:
        """Store whatever audience events (and stream history) are still queued (on shutdown)."""
        while not self._audience.queue.empty():
            await self._store_audience(self._audience.get_nowait(), retry=False)
        while not self._history.queue.empty():
            with contextlib.suppress(Exception):
                self._store_history(self._history.get_nowait())

    @property
    def writable(self) -> bool:
        """False while the database cannot be written (disk full or failing): senders are refused, not lost."""
        return self._disk_error is None

    async def _record_audience(self) -> None:
        async for event in self._audience:
            await self._store_audience(event)

    async def _store_audience(self, event, retry: bool = True) -> None:
        """Store one audience event; on a full or failing disk, refuse its receipt and retry it until it fits.

        Retrying the same event holds the lossless queue, so pollers wait (nothing fetched is dropped) while
        the console keeps serving what is stored; the webhook sees `writable` and refuses with 503.
        """
        for attempt in itertools.count():  # until stored (or once, when not retrying); DISK_RETRY_S apart
            try:
                new = await self._write_audience(event)
            except sqlite3.Error as e:
                if not disk_trouble(e):
                    log.exception("could not store %s from %s", type(event).__name__, _origin(event))
                    _answer(event, Stored(False, error=f"the event database refused it: {e}"))
                    return
                if attempt == 0:
                    _answer(event, Stored(False, error=f"the event database cannot be written ({e}): nothing was "
                                                       "stored, send it again later"))
                await self._disk_failed(e)
                if not retry:
                    log.error("not stored (shutting down): %s from %s", type(event).__name__, _origin(event))
                    return
                await asyncio.sleep(DISK_RETRY_S)
                continue
            await self._disk_recovered()
            _answer(event, Stored(True, new=new))
            return

    async def _write_audience(self, event) -> int:
        if isinstance(event, CommentsFetched):
            new, hidden = self.store.add_comments(event.source, event.comments, event.cursor, event.deleted_ids,
                                                  cleared_before=event.cleared_before)
            if new:
                await self.bus.publish(CommentsStored(tuple(new)))
            if hidden:
                await self.bus.publish(CommentsHidden(tuple(hidden), True, "platform"))
            return len(new)
        if isinstance(event, ViewersSampled):
            self.store.add_viewers(event.sample)
            sources, total = self.store.latest_viewers()
            await self.bus.publish(ViewersStored(tuple(sources), total))
        return 0

    def _disk_params(self) -> dict:
        folder = self.store.path.parent
        try:
            free_mb = round(shutil.disk_usage(folder).free / 1e6, 1)
        except OSError:
            free_mb = "?"
        return {"path": str(folder), "free_mb": free_mb}

    async def _disk_failed(self, error: sqlite3.Error) -> None:
        if self._disk_error is None:
            self._disk_error = str(error)
            log.error("the event database cannot be written (%s); audience data waits until it can", error)
            await self.bus.publish(Alert("error", "disk", f"the event database cannot be written: {error}",
                                         code="disk.low", params=self._disk_params()))

    async def _disk_recovered(self) -> None:
        if self._disk_error is not None:
            self._disk_error = None
            log.info("the event database can be written again")
            await self.bus.publish(Alert("info", "disk", "the event database can be written again",
                                         code="disk.low", params=self._disk_params(), resolved=True))

    async def _record_history(self) -> None:
        async for event in self._history:
            try:
                self._store_history(event)
            except Exception:
                log.exception("could not record %s", type(event).__name__)

    def _store_history(self, event) -> None:
        if isinstance(event, DestinationStateChanged):
            self.store.log_destination_event(event.at, event.name, event.platform, event.old, event.new, event.error)
        elif isinstance(event, DestinationHealth):
            last = self._last_health.get(event.name, 0.0)
            if event.at - last >= HEALTH_EVERY_S:
                self._last_health[event.name] = event.at
                self.store.log_destination_health(event.at, event.name, event.health)
        elif isinstance(event, IngestStateChanged):
            self.store.log_ingest_event(event.at, event.state, event.error, event.probe)
        elif isinstance(event, IngestSwitched):
            self.store.log_ingest_switch(event.at, event.new, event.on_air, event.target, event.reason)
        elif isinstance(event, SourceStateChanged):
            self.store.log_source_event(event.name, event.platform, event.state, event.error)
