"""One program input (the primary or the backup encoder): what its source sends, as the switcher needs it.

An input keeps its own state (`waiting → live → lost`, `stopped` at the end), its probe, its latest decoder
headers and its latest GOP (so a cut to it need not wait for its next keyframe), and when it last sent
anything. It hands every tag to the switcher, which alone decides what goes on air.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..config import IngestConfig
from ..events import now
from ..redact import redact
from ..states import INGEST_NEXT, IngestState, may_change
from .flv import DecoderHeaders, Tag
from .probe import StreamProbe

if TYPE_CHECKING:
    from .sources import Source
    from .switcher import Switcher

log = logging.getLogger(__name__)

PRIMARY, BACKUP = "primary", "backup"
GOP_CACHE_BYTES = 4 * 1024 * 1024  # a longer GOP is not kept: a cut to this input then waits for a keyframe


def iso(at: float | None) -> str | None:
    return datetime.fromtimestamp(at, UTC).isoformat() if at else None


class Input:
    """One role's feed: the `FeedSink` its source talks to."""

    def __init__(self, role: str, config: IngestConfig, switcher: Switcher):
        self.role = role
        self.config = config
        self.switcher = switcher
        self.source: Source | None = None
        self.state = IngestState.STOPPED
        self.since = now()
        self.error: str | None = None
        self.publisher: str | None = None
        self.feeds = 0
        self.probe = StreamProbe()
        self.facts: dict[str, Any] = {}  # the last complete probe (of this feed or an earlier one)
        self.headers = DecoderHeaders()
        self.gop: list[Tag] = []  # since the latest keyframe (with the audio in between)
        self._gop_bytes = 0
        self.last_in: float | None = None  # loop time of the latest tag; None until the first of a feed
        self.flowing_since: float | None = None  # loop time since when tags arrive without a gap
        self.refusal: dict[str, Any] | None = None  # the latest publisher turned away: address, at, reason
        self._announced = False  # this feed's probe was announced once complete

    # ---- what the switcher asks ---------------------------------------------------------------------

    def flowing(self, at: float, gap_s: float) -> bool:
        """Live and sent something within the last `gap_s` seconds."""
        return self.state == IngestState.LIVE and self.last_in is not None and at - self.last_in < gap_s

    def stable_for(self, at: float) -> float:
        """Seconds this input has been sending without a gap."""
        return at - self.flowing_since if self.flowing_since is not None else 0.0

    def set_state(self, state: str, error: str | None = None) -> bool:
        """Change state (or error); whether anything changed."""
        error = redact(error) if error else None
        if state == self.state and error == self.error:
            return False
        if state != self.state:
            if not may_change(INGEST_NEXT, self.state, state):
                log.warning("ingest %s: unexpected change %s -> %s", self.role, self.state, state)
            self.since = now()
            log.log(logging.WARNING if error else logging.INFO, "ingest %s %s%s", self.role, state,
                    f": {error}" if error else "")
        elif error:
            log.warning("ingest %s %s: %s", self.role, state, error)  # same state, new trouble: said once
        self.state, self.error = state, error
        return True

    def stalled(self, gap_s: float) -> None:
        """Nothing for `gap_s` while live: lost until it sends again (its feed has not ended, it may resume)."""
        if self.state == IngestState.LIVE:
            self.set_state(IngestState.LOST, f"no data for {gap_s:g} s")
        self.flowing_since = None
        self._clear_gop()

    def describe(self) -> dict[str, Any]:
        """This input in `GET /api/ingest`'s `inputs[]`."""
        return {"role": self.role, "url": self.config.display_url, "kind": self.config.kind, "state": self.state,
                "since": iso(self.since), "error": self.error, "publisher": self.publisher, "feeds": self.feeds,
                "restarts": self.source.restarts if self.source else 0, "probe": self.probe.facts(),
                "refused": self.refusal}

    # ---- FeedSink: what the source says -------------------------------------------------------------

    async def feed_started(self, publisher: str | None) -> None:
        self.probe = StreamProbe()
        self.headers.clear()
        self._clear_gop()
        self._announced = False
        self.publisher = publisher
        self.feeds += 1
        self.last_in = asyncio.get_running_loop().time()  # a start counts as news: silence is measured from here
        self.flowing_since = None
        self.set_state(IngestState.LIVE)
        await self.switcher.input_started(self)

    async def feed_tag(self, tag: Tag) -> None:
        at = asyncio.get_running_loop().time()
        if self.flowing_since is None:
            self.flowing_since = at
        self.last_in = at
        self.probe.feed(tag)
        if not self.headers.keep(tag):
            self._keep(tag)
            if self.state == IngestState.LOST and tag.is_keyframe:
                self.set_state(IngestState.LIVE)  # a stalled feed resumed: live again from a place a decoder can start
        await self.switcher.input_tag(self, tag)
        if not self._announced and self.probe.ready:
            self._announced = True
            self.facts = self.probe.facts()
            log.info("ingest %s probed: %s", self.role, self.facts)
            await self.switcher.input_probed(self)

    async def feed_ended(self, reason: str) -> None:
        self.publisher = None
        self.flowing_since = None
        self._clear_gop()
        self.set_state(IngestState.LOST, reason)
        await self.switcher.input_ended(self)

    async def trouble(self, error: str | None) -> None:
        if self.state == IngestState.STOPPED:
            self.set_state(IngestState.WAITING)
        if self.set_state(self.state, error):
            await self.switcher.input_changed(self)

    async def refused(self, address: str, reason: str) -> None:
        self.refusal = {"address": address, "at": iso(now()), "reason": redact(reason)}
        await self.switcher.input_refused(self)

    # ---- the latest GOP -----------------------------------------------------------------------------

    def _keep(self, tag: Tag) -> None:
        if tag.is_keyframe:
            self.gop, self._gop_bytes = [tag], len(tag.data)
        elif self.gop:
            self.gop.append(tag)
            self._gop_bytes += len(tag.data)
            if self._gop_bytes > GOP_CACHE_BYTES:
                self._clear_gop()

    def _clear_gop(self) -> None:
        self.gop, self._gop_bytes = [], 0
