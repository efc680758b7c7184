"""The recorder: the one component that writes what happens to the event database, then tells the rest."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .events import (
    Bus,
    CommentsFetched,
    CommentsHidden,
    CommentsStored,
    DestinationHealth,
    DestinationStateChanged,
    IngestStateChanged,
    SourceStateChanged,
    ViewersSampled,
    ViewersStored,
)
from .store import Store

log = logging.getLogger(__name__)

HEALTH_EVERY_S = 5.0


class Recorder:
    """Stores comments (exactly once, with their cursor) before publishing them, and the stream's history."""

    def __init__(self, store: Store, bus: Bus):
        self.store = store
        self.bus = bus
        # Audience data must never be dropped: the pollers wait when the recorder is behind.
        self._audience = bus.subscribe(CommentsFetched, ViewersSampled, maxsize=256, lossless=True,
                                       name="recorder.audience")
        self._history = bus.subscribe(DestinationStateChanged, DestinationHealth, IngestStateChanged,
                                      SourceStateChanged, maxsize=10000, name="recorder.history")
        self._last_health: dict[str, float] = {}

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
            await self._store_audience(self._audience.get_nowait())
        while not self._history.queue.empty():
            with contextlib.suppress(Exception):
                self._store_history(self._history.get_nowait())

    async def _record_audience(self) -> None:
        async for event in self._audience:
            await self._store_audience(event)

    async def _store_audience(self, event) -> None:
        if isinstance(event, CommentsFetched):
            new, hidden = self.store.add_comments(event.source, event.comments, event.cursor, event.deleted_ids,
                                                  cleared_before=event.cleared_before)
            if new:
                await self.bus.publish(CommentsStored(tuple(new)))
            if hidden:
                await self.bus.publish(CommentsHidden(tuple(hidden), True, "platform"))
        elif isinstance(event, ViewersSampled):
            self.store.add_viewers(event.sample)
            sources, total = self.store.latest_viewers()
            await self.bus.publish(ViewersStored(tuple(sources), total))

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
        elif isinstance(event, SourceStateChanged):
            self.store.log_source_event(event.name, event.platform, event.state, event.error)
