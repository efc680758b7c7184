"""The program: one feed in, many readers out, each with its own bounded buffer and keyframe join.

A reader that falls behind (a stalled destination) loses its own backlog and rejoins at the next
keyframe; it never slows the ingest or any other reader.

Decoder headers: a reader's stream begins with the program's current ones, and every first or changed header
that comes later goes to every reader already streaming, inline. A destination's ffmpeg fixes its streams when
it starts, though, so a reader does not start before the audio configuration is known: at a keyframe with no
AAC header yet (a relay may send it after the first keyframe) it holds the stream from that keyframe until
the header comes, or until `JOIN_WAIT_MS` of media without any audio says the program has none.
"""

from __future__ import annotations

import asyncio
from collections import deque

from .flv import AUDIO, FILE_HEADER, VIDEO, Tag

JOIN_WAIT_MS = 1000  # of media from the keyframe: no audio at all by then, and the program has none
JOIN_WAIT_AAC_MS = 3000  # AAC frames came but not yet their configuration: wait this long for it


class ProgramReader:
    """One destination's view of the program: FLV bytes from a keyframe on, bounded in size."""

    def __init__(self, program: Program, name: str, max_bytes: int):
        self.program = program
        self.name = name
        self.max_bytes = max_bytes
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._ready = asyncio.Event()
        self._joined = False  # False until the next keyframe: only then do frames flow
        self._held: list[bytes] | None = None  # from a keyframe, while the audio configuration is awaited
        self._held_from = 0
        self._held_bytes = 0  # the size of what is held, kept as it grows (this runs for every tag)
        self._closed = False
        self.dropped_bytes = 0
        self.overflows = 0
        self.bytes_out = 0

    def _start(self) -> None:
        """Begin a fresh FLV stream: file header and the current decoder headers."""
        self._chunks.clear()
        self._size = 0
        self._push(FILE_HEADER)
        for tag in self.program.header_tags():
            self._push(tag.encode())
        self._joined = True

    def _push(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        self._ready.set()

    def offer(self, tag: Tag, encoded: bytes, ts: int) -> None:
        if self._closed:
            return
        if not self._joined:
            self._join(tag, encoded, ts)
            return
        if self._size + len(encoded) > self.max_bytes:
            # The destination is not keeping up: drop its backlog, wait for the next keyframe.
            self.dropped_bytes += self._size
            self.overflows += 1
            self._chunks.clear()
            self._size = 0
            self._joined = False
            self._join(tag, encoded, ts)
            return
        self._push(encoded)

    def _join(self, tag: Tag, encoded: bytes, ts: int) -> None:
        """Start at a keyframe once the decoder headers a destination needs are known (held till then)."""
        if self._held is None:
            if not tag.is_keyframe:
                return
            if self.program.can_join(0):
                self._start()
                self._push(encoded)
                return
            self._held, self._held_from, self._held_bytes = [], ts, 0
        self._held.append(encoded)
        self._held_bytes += len(encoded)
        too_big = self._held_bytes > self.max_bytes // 2
        if self.program.can_join(ts - self._held_from) or too_big:
            held, self._held = self._held, None
            self._start()
            for chunk in held:
                self._push(chunk)

    def send_headers_again(self, encoded: bytes) -> None:
        """A decoder header came or changed mid-stream: pass it inline (FLV bytes, on the program's timeline)."""
        if self._joined and not self._closed:
            self._push(encoded)

    async def read(self) -> bytes:
        """Everything buffered so far (waits while empty); b"" once closed."""
        while not self._chunks:
            if self._closed:
                return b""
            self._ready.clear()
            await self._ready.wait()
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        self.bytes_out += len(data)
        return data

    @property
    def buffered_bytes(self) -> int:
        return self._size

    def close(self) -> None:
        self._closed = True
        self._ready.set()
        self.program._readers.discard(self)


class Program:
    """The current program feed, shared by every destination, the archive and the probe."""

    def __init__(self) -> None:
        self._readers: set[ProgramReader] = set()
        self._metadata: Tag | None = None
        self._video_header: Tag | None = None
        self._audio_header: Tag | None = None
        # Timestamps stay monotonic across ingest reconnects: each new feed continues the old timeline.
        self._offset = 0
        self._last_out = -1
        self._feed_start: int | None = None
        self.tags_in = 0
        self.last_tag_at: float | None = None
        # The program since its last keyframe, so a reader can start at once instead of at the next one.
        self._gop: list[bytes] = []
        self._gop_bytes = 0
        self._aac_without_header = False  # this feed sent AAC frames before any AAC configuration
        self._audio_seen = False  # this feed sent audio frames

    def can_join(self, waited_ms: int) -> bool:
        """Whether a reader may start now, `waited_ms` of media after the keyframe it would start at."""
        if self._audio_header is not None or (self._audio_seen and not self._aac_without_header):
            return True
        return waited_ms >= (JOIN_WAIT_AAC_MS if self._aac_without_header else JOIN_WAIT_MS)

    def header_tags(self) -> list[Tag]:
        tags = [self._metadata, self._video_header, self._audio_header]
        return [Tag(t.kind, 0, t.data) for t in tags if t is not None]

    def reader(self, name: str, max_bytes: int = 8 * 1024 * 1024, from_last_keyframe: bool = False) -> ProgramReader:
        """A new reader; it starts at the next keyframe, or (`from_last_keyframe`) with the current GOP."""
        reader = ProgramReader(self, name, max_bytes)
        # Only a GOP of a feed still flowing: after an ingest loss it is old news.
        fresh = self.last_tag_at is not None and asyncio.get_running_loop().time() - self.last_tag_at < 2.0
        if from_last_keyframe and fresh and self._gop and self._gop_bytes <= max_bytes // 2:
            reader._start()
            for chunk in self._gop:
                reader._push(chunk)
        self._readers.add(reader)
        return reader

    @property
    def timeline_ms(self) -> int:
        """The program's own clock: the timestamp of the latest tag handed out (ms; -1 before the first)."""
        return self._last_out

    @property
    def readers(self) -> int:
        return len(self._readers)

    def new_feed(self) -> None:
        """A new publisher or a restarted pull: its timestamps start again at its own zero."""
        self._feed_start = None
        self._gop, self._gop_bytes = [], 0
        self._audio_seen = self._aac_without_header = False
        self._offset = self._last_out + 40 if self._last_out >= 0 else 0

    def publish(self, tag: Tag) -> None:
        """Hand one tag of the feed to every reader."""
        self.tags_in += 1
        self.last_tag_at = asyncio.get_running_loop().time()
        if tag.is_metadata:
            self._metadata = tag
            return
        if tag.is_sequence_header:
            before = self._video_header if tag.kind == VIDEO else self._audio_header
            if tag.kind == VIDEO:
                self._video_header = tag
            else:
                self._audio_header = tag
            if before is None or before.data != tag.data:
                # A first or changed decoder configuration, whenever it comes (a relay may send the AAC one after
                # the first video keyframe): every reader already streaming gets it inline, the others at their
                # start (`header_tags`).
                encoded = tag.encode(max(self._last_out, 0))
                for r in list(self._readers):
                    r.send_headers_again(encoded)
            return
        if tag.kind == AUDIO:
            self._audio_seen = True
            if self._audio_header is None and tag.data[:1] and tag.data[0] >> 4 == 10:
                self._aac_without_header = True
        if self._feed_start is None:
            self._feed_start = tag.timestamp
        ts = max(0, tag.timestamp - self._feed_start) + self._offset
        self._last_out = max(self._last_out, ts)
        encoded = tag.encode(ts)
        if tag.is_keyframe:
            self._gop, self._gop_bytes = [encoded], len(encoded)
        elif self._gop:
            self._gop.append(encoded)
            self._gop_bytes += len(encoded)
            if self._gop_bytes > 8 * 1024 * 1024:  # a very long GOP: not worth holding
                self._gop, self._gop_bytes = [], 0
        # Readers see the encoded bytes (re-timed); the tag itself only says whether it is a keyframe.
        for r in self._readers:  # offer() never adds or removes a reader
            r.offer(tag, encoded, ts)

    def close(self) -> None:
        for r in list(self._readers):
            r.close()
