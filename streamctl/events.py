"""The typed event bus: components publish dataclass events; each subscriber has its own bounded queue."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


def now() -> float:
    """Wall-clock seconds since the epoch; one place so tests can see where time comes from."""
    return time.time()


# ---- events -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Base of every event on the bus."""


@dataclass(frozen=True)
class CommentsFetched(Event):
    """An audience source fetched comments; the store writer persists them (with the cursor) first."""

    source: str
    platform: str
    comments: tuple  # tuple[audience.models.Comment, ...]
    cursor: str | None = None
    # Ids (platform message ids) the platform says were deleted or retracted: hide the originals.
    deleted_ids: tuple[str, ...] = ()
    cleared_before: float | None = None  # the chat was cleared: hide the source's messages published up to then
    # For a sender that may acknowledge only what is on disk (the webhook): the recorder sets a Stored result
    # once the batch is committed, or one saying why it could not be.
    receipt: asyncio.Future | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Stored:
    """What the recorder says on a receipt: committed (and how many comments were new), or why not."""

    ok: bool
    new: int = 0
    error: str | None = None


@dataclass(frozen=True)
class CommentsStored(Event):
    """Comments durably stored, each a dict shaped like `/api/comments` items; none seen before."""

    comments: tuple[dict, ...]


@dataclass(frozen=True)
class CommentsHidden(Event):
    """Comments hidden by the platform (deleted) or by a moderator."""

    ids: tuple[int, ...]
    hidden: bool = True
    by: str | None = None


@dataclass(frozen=True)
class ViewersSampled(Event):
    """A concurrent-viewer sample from one source (also stored before it is published onward)."""

    sample: Any  # audience.models.ViewerSample
    receipt: asyncio.Future | None = field(default=None, compare=False, repr=False)  # as CommentsFetched's


@dataclass(frozen=True)
class ViewersStored(Event):
    """The latest viewers per source after a sample was stored; shaped like `/api/viewers`."""

    sources: tuple[dict, ...]
    total: int


@dataclass(frozen=True)
class SourceStateChanged(Event):
    """An audience source changed state (polling, backoff, failed, ended...)."""

    name: str
    platform: str
    state: str
    error: str | None = None
    status: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DestinationStateChanged(Event):
    """A destination went from one of stopped/starting/live/backoff/failed to another."""

    name: str
    platform: str
    old: str
    new: str
    error: str | None = None
    at: float = field(default_factory=now)


@dataclass(frozen=True)
class DestinationHealth(Event):
    """Progress figures of one destination's output (bitrate_kbps, fps, speed, uptime_s...)."""

    name: str
    health: dict
    at: float = field(default_factory=now)


@dataclass(frozen=True)
class DestinationRemoved(Event):
    name: str


@dataclass(frozen=True)
class IngestStateChanged(Event):
    """The program feed went waiting/live/lost; `probe` is what was seen of it; `slate`: the holding card is on air.

    `on_air` says whose tags the program carries (primary, backup, slate; None before the first feed) and
    `inputs` each input's role, state and error.
    """

    state: str
    probe: dict = field(default_factory=dict)
    error: str | None = None
    at: float = field(default_factory=now)
    slate: bool = False
    on_air: str | None = None
    inputs: tuple[dict, ...] = ()


@dataclass(frozen=True)
class IngestSwitched(Event):
    """The switcher changed state (idle, primary, backup, slate, handback): who is on air, who takes over next."""

    old: str
    new: str
    on_air: str | None
    target: str | None = None  # handback: the input whose next keyframe takes the air
    reason: str = ""
    at: float = field(default_factory=now)


@dataclass(frozen=True)
class ProgramLevels(Event):
    """The program's audio levels per channel (dBFS) since the last reading, from the confidence monitor."""

    peak_db: tuple[float, ...]
    rms_db: tuple[float, ...]
    at: float = field(default_factory=now)


@dataclass(frozen=True)
class QuestionChanged(Event):
    """A question was created or moved through its workflow; `question` is its API shape."""

    question: dict
    action: str
    by: str | None = None


@dataclass(frozen=True)
class Alert(Event):
    """Something the operator must see (token expired, quota running out, platform rules broken)."""

    level: str  # info | warning | error
    source: str  # who it is about: a destination, source or input name, "ingest", "program", "disk"
    message: str  # English, for the log; pages render the code and params in the reader's language
    at: float = field(default_factory=now)
    code: str = "general"  # one of the codes in DESIGN.md (ingest.refused, destination.backoff, ...)
    params: dict = field(default_factory=dict)  # what the sentence for `code` needs (never a secret)
    resolved: bool = False  # a recovery: closes the open alert of the same code and source


@dataclass(frozen=True)
class AlertStored(Event):
    """The alert desk stored, counted, closed or acknowledged an alert; `alert` is its API shape, texts by language."""

    alert: dict
    unacknowledged: int  # open problems nobody has acknowledged yet (the top bar's count)


@dataclass(frozen=True)
class ProgramStatus(Event):
    """The program at a glance changed: on air from what, destinations live, sources reading, viewers."""

    status: dict


@dataclass(frozen=True)
class AuthorNoted(Event):
    """A moderator noted an audience member (an empty note clears it); shown beside their comments."""

    platform: str
    author_id: str
    note: str
    by: str | None = None
    at: float = field(default_factory=now)


@dataclass(frozen=True)
class BroadcastReady(Event):
    """A destination's platform broadcast exists: its audience source of the same name reads this id's chat."""

    name: str
    platform: str
    broadcast_id: str
    chat_id: str | None = None


@dataclass(frozen=True)
class PlatformHealthChanged(Event):
    """What a platform says it receives from one destination changed (`platform_health` of /api/destinations)."""

    name: str
    platform: str
    health: dict
    broadcast: dict = field(default_factory=dict)
    at: float = field(default_factory=now)


# ---- the bus ----------------------------------------------------------------------------------------


class Subscription:
    """One subscriber's bounded queue of the event types it asked for."""

    def __init__(self, bus: Bus, types: tuple[type, ...], maxsize: int, lossless: bool, name: str):
        self.bus = bus
        self.types = types
        self.lossless = lossless
        self.name = name
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0

    def wants(self, event: Event) -> bool:
        return not self.types or isinstance(event, self.types)

    async def get(self) -> Event:
        return await self.queue.get()

    def get_nowait(self) -> Event:
        return self.queue.get_nowait()

    def close(self) -> None:
        self.bus.unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Bus:
    """Fan-out of events to subscribers; a slow lossy subscriber loses its oldest events, never blocks."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []

    def subscribe(self, *types: type, maxsize: int = 1000, lossless: bool = False,
                  name: str = "") -> Subscription:
        """A new subscription; `lossless` ones make `publish` wait for room instead of dropping."""
        sub = Subscription(self, types, maxsize, lossless, name)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    async def publish(self, event: Event) -> None:
        """Deliver `event`; waits only for lossless subscribers that are full."""
        for sub in list(self._subs):
            if not sub.wants(event):
                continue
            if sub.lossless:
                await sub.queue.put(event)
            else:
                self._put_dropping(sub, event)

    def publish_nowait(self, event: Event) -> None:
        """Deliver `event` from synchronous code; a full lossless subscriber raises QueueFull."""
        for sub in list(self._subs):
            if not sub.wants(event):
                continue
            if sub.lossless:
                sub.queue.put_nowait(event)
            else:
                self._put_dropping(sub, event)

    @staticmethod
    def _put_dropping(sub: Subscription, event: Event) -> None:
        while True:
            try:
                sub.queue.put_nowait(event)
                return
            except asyncio.QueueFull:
                sub.queue.get_nowait()
                sub.dropped += 1
                if sub.dropped in (1, 100, 10000):
                    log.warning("subscriber %s is slow: %d events dropped", sub.name or "?", sub.dropped)
