"""FLV tags: the unit the program is carried in, from ingest to every destination."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

AUDIO, VIDEO, SCRIPT = 8, 9, 18
FILE_HEADER = b"FLV\x01\x05\x00\x00\x00\x09" + b"\x00\x00\x00\x00"  # audio+video, then PreviousTagSize0


@dataclass(frozen=True, slots=True)
class Tag:
    """One FLV tag: type (8 audio, 9 video, 18 script data), timestamp in ms, and its body."""

    kind: int
    timestamp: int
    data: bytes

    @property
    def is_keyframe(self) -> bool:
        return self.kind == VIDEO and len(self.data) > 0 and (self.data[0] >> 4) == 1

    @property
    def is_sequence_header(self) -> bool:
        """AVC/HEVC decoder configuration or AAC AudioSpecificConfig: needed before any frame."""
        if self.kind == VIDEO:
            return len(self.data) > 1 and (self.data[0] & 0x0F) in (7, 12) and self.data[1] == 0
        if self.kind == AUDIO:
            return len(self.data) > 1 and (self.data[0] >> 4) == 10 and self.data[1] == 0
        return False

    @property
    def is_metadata(self) -> bool:
        return self.kind == SCRIPT and b"onMetaData" in self.data[:32]

    def encode(self, timestamp: int | None = None) -> bytes:
        """The tag as FLV bytes, followed by its PreviousTagSize."""
        ts = self.timestamp if timestamp is None else timestamp
        ts &= 0xFFFFFFFF
        size = len(self.data)
        header = bytes([self.kind]) + size.to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big") + \
            bytes([ts >> 24]) + b"\x00\x00\x00"
        return header + self.data + struct.pack(">I", size + 11)


class FlvParseError(ValueError):
    """The bytes are not an FLV stream."""


class FlvReader:
    """Incremental FLV parser: feed bytes as they come, take whole tags out."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._header_done = False

    def feed(self, data: bytes) -> list[Tag]:
        self._buf += data
        tags: list[Tag] = []
        buf = self._buf
        pos = 0
        if not self._header_done:
            if len(buf) < 13:
                return tags
            if buf[:3] != b"FLV":
                raise FlvParseError("stream does not start with an FLV header")
            offset = int.from_bytes(buf[5:9], "big")
            if len(buf) < offset + 4:
                return tags
            pos = offset + 4
            self._header_done = True
        while len(buf) - pos >= 11:
            kind = buf[pos] & 0x1F
            size = int.from_bytes(buf[pos + 1:pos + 4], "big")
            if len(buf) - pos < 11 + size + 4:
                break
            ts = int.from_bytes(buf[pos + 4:pos + 7], "big") | (buf[pos + 7] << 24)
            tags.append(Tag(kind, ts, bytes(buf[pos + 11:pos + 11 + size])))
            pos += 11 + size + 4
        del buf[:pos]
        return tags


class DecoderHeaders:
    """The latest onMetaData and decoder configurations of one feed, to send first when it goes on air."""

    def __init__(self) -> None:
        self._tags: dict[int, Tag] = {}

    def keep(self, tag: Tag) -> bool:
        """Remember `tag` if it is a header; whether it was one."""
        if tag.is_metadata or tag.is_sequence_header:
            self._tags[tag.kind] = tag
            return True
        return False

    def clear(self) -> None:
        self._tags.clear()

    def __iter__(self) -> Iterator[Tag]:
        return (self._tags[k] for k in (SCRIPT, VIDEO, AUDIO) if k in self._tags)
