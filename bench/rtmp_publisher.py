"""A prototype native asyncio RTMP publisher (bench only, never in the product): FLV tags out to a platform without
an ffmpeg per destination, to learn what a copy destination costs without one.

It speaks just enough RTMP for a live platform ingest: handshake, Set Chunk Size (64 KiB, so a video frame is
one or a few chunks, one write), connect / releaseStream / FCPublish / createStream / publish, then
`@setDataFrame onMetaData` and every tag as an audio or video message with a 4-byte timestamp-delta header
(type 1) or a type-3 continuation. It reuses our server's chunk reader and AMF code. Missing for the product:
reconnects, backpressure policy, acknowledgements beyond reading them, RTMPS (would be asyncio's TLS), errors.

Also runnable alone: `python bench/rtmp_publisher.py rtmp://127.0.0.1:1935/live/key < program.flv`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamctl.restream import amf  # noqa: E402
from streamctl.restream.flv import AUDIO, SCRIPT, VIDEO, FlvReader, Tag  # noqa: E402
from streamctl.restream.rtmp_server import (  # noqa: E402
    COMMAND_AMF0,
    HANDSHAKE_SIZE,
    SET_CHUNK_SIZE,
    _ChunkReader,
)

CHUNK = 65536
CS_CONTROL, CS_COMMAND, CS_AUDIO, CS_VIDEO, CS_DATA = 2, 3, 4, 6, 5
DATA_AMF0 = 18


class Publisher:
    """One RTMP publish session: `await connect()`, then `send(tag)` for every FLV tag, `close()`."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 1935
        app, _, self.stream = parts.path.lstrip("/").partition("/")
        self.app = app + (f"?{parts.query}" if parts.query else "")
        self.tc_url = f"{parts.scheme}://{parts.netloc}/{self.app}"
        self.stream_id = 1
        self.writer: asyncio.StreamWriter | None = None
        self._chunks: _ChunkReader | None = None
        self._last_ts: dict[int, int] = {}
        self.bytes_out = 0
        self._reading: asyncio.Task | None = None

    async def connect(self) -> None:
        reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(b"\x03" + bytes(HANDSHAKE_SIZE))
        s0s1s2 = await reader.readexactly(1 + 2 * HANDSHAKE_SIZE)
        self.writer.write(s0s1s2[1:1 + HANDSHAKE_SIZE])  # C2 echoes S1
        self._chunks = _ChunkReader(reader, 1 << 20, lambda: None)
        self._message(CS_CONTROL, SET_CHUNK_SIZE, CHUNK.to_bytes(4, "big"), stream_id=0, chunk=128)
        self._command("connect", 1.0, {"app": self.app, "type": "nonprivate", "flashVer": "FMLE/3.0",
                                       "tcUrl": self.tc_url})
        await self._until_result()
        self._command("releaseStream", 2.0, None, self.stream)
        self._command("FCPublish", 3.0, None, self.stream)
        self._command("createStream", 4.0, None)
        values = await self._until_result(4.0)
        self.stream_id = int(values[3]) if len(values) > 3 and isinstance(values[3], (int, float)) else 1
        self._command("publish", 5.0, None, self.stream, "live", stream_id=self.stream_id)
        await self._until_status("NetStream.Publish.Start")
        # From now on only acknowledgements and pings come back: read and drop them so the socket never fills.
        self._reading = asyncio.create_task(self._drain())

    async def _next_command(self) -> list:
        """The next AMF0 command the server sends (a chunk size change on the way is taken in)."""
        while True:
            type_id, _, _, payload = await self._chunks.read_message()
            if type_id == SET_CHUNK_SIZE:
                self._chunks.chunk_size = int.from_bytes(payload[:4], "big")
            elif type_id == COMMAND_AMF0:
                return amf.decode_all(payload)

    async def _until_result(self, txn: float | None = None) -> list:
        while True:
            values = await self._next_command()
            if values[0] == "_error":
                raise ConnectionError(f"refused: {values}")
            if values[0] == "_result" and (txn is None or values[1] == txn):
                return values

    async def _until_status(self, code: str) -> None:
        while True:
            values = await self._next_command()
            info = values[3] if len(values) > 3 and isinstance(values[3], dict) else {}
            if values[0] == "onStatus" and info.get("code") == code:
                return
            if values[0] == "onStatus" and info.get("level") == "error":
                raise ConnectionError(f"refused: {info}")

    async def _drain(self) -> None:
        try:
            while True:
                type_id, _, _, payload = await self._chunks.read_message()
                if type_id == SET_CHUNK_SIZE:
                    self._chunks.chunk_size = int.from_bytes(payload[:4], "big")
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    def _command(self, *values, stream_id: int = 0) -> None:
        self._message(CS_COMMAND, COMMAND_AMF0, amf.encode_all(*values), stream_id=stream_id)

    def _message(self, csid: int, type_id: int, payload: bytes, *, stream_id: int, timestamp: int = 0,
                 chunk: int = CHUNK) -> None:
        """One message as a type-0 chunk header (absolute timestamp) and type-3 continuations."""
        header = bytes([csid]) + min(timestamp, 0xFFFFFF).to_bytes(3, "big") + len(payload).to_bytes(3, "big") \
            + bytes([type_id]) + stream_id.to_bytes(4, "little")
        extended = timestamp.to_bytes(4, "big") if timestamp >= 0xFFFFFF else b""
        if len(payload) <= chunk:
            self.writer.write(header + extended + payload)
        else:
            parts = [header + extended + payload[:chunk]]
            for offset in range(chunk, len(payload), chunk):
                parts.append(bytes([0xC0 | csid]) + extended + payload[offset:offset + chunk])
            self.writer.write(b"".join(parts))
        self.bytes_out += len(payload)

    def send(self, tag: Tag) -> None:
        """One FLV tag as the matching RTMP message on the publish stream."""
        if tag.kind == SCRIPT:
            self._message(CS_DATA, DATA_AMF0, amf.encode("@setDataFrame") + tag.data, stream_id=self.stream_id,
                          timestamp=tag.timestamp)
        elif tag.kind in (AUDIO, VIDEO):
            self._message(CS_VIDEO if tag.kind == VIDEO else CS_AUDIO, tag.kind, tag.data,
                          stream_id=self.stream_id, timestamp=tag.timestamp)

    async def drain(self) -> None:
        await self.writer.drain()

    async def close(self) -> None:
        if self._reading:
            self._reading.cancel()
            await asyncio.gather(self._reading, return_exceptions=True)
        if self.writer:
            self.writer.close()


async def publish_stdin(urls: list[str]) -> None:
    """Read FLV from stdin and publish every tag to each URL (one process, one loop, N sessions)."""
    publishers = [Publisher(url) for url in urls]
    for p in publishers:
        await p.connect()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 22)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    flv = FlvReader()
    try:
        while data := await reader.read(1 << 16):
            for tag in flv.feed(data):
                for p in publishers:
                    p.send(tag)
            await asyncio.gather(*(p.drain() for p in publishers))
    finally:
        for p in publishers:
            await p.close()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(f"usage: {os.path.basename(sys.argv[0])} RTMP_URL [RTMP_URL ...] < program.flv")
    asyncio.run(publish_stdin(sys.argv[1:]))
