"""An asyncio RTMP server: takes a publisher's stream (app and key checked) and hands it on as FLV tags.

Two uses: the event's ingest (one publisher, the switcher, with the configured app and key) and local
receivers that stand in for the platforms in the demo and tests (any key, many publishers, counters).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from . import amf
from .flv import AUDIO, SCRIPT, VIDEO, Tag

log = logging.getLogger(__name__)

HANDSHAKE_SIZE = 1536
RTMP_VERSION = 3
DEFAULT_CHUNK_SIZE = 128
# The chunk size we announce. ffmpeg publishes with whatever the server announces (128 if nothing) and writes
# each chunk and each 1-byte continuation header separately: 64 KiB carries most frames in one chunk, so an
# ffmpeg publisher makes a few writes per frame instead of hundreds, and we read one chunk per message. (SRS
# announces 60000; nginx-rtmp 4096.)
OUT_CHUNK_SIZE = 65536
WINDOW_ACK_SIZE = 2_500_000

# Message types (RTMP spec 5.4 and 7.1).
SET_CHUNK_SIZE, ABORT, ACKNOWLEDGEMENT, USER_CONTROL, WINDOW_ACK, PEER_BANDWIDTH = 1, 2, 3, 4, 5, 6
MSG_AUDIO, MSG_VIDEO, DATA_AMF3, COMMAND_AMF3, DATA_AMF0, COMMAND_AMF0, AGGREGATE = 8, 9, 15, 17, 18, 20, 22
# User control events.
STREAM_BEGIN, PING_REQUEST, PING_RESPONSE = 0, 6, 7
# Our outgoing chunk streams: protocol control, commands, per-stream status.
CS_CONTROL, CS_COMMAND, CS_STREAM = 2, 3, 5

SET_DATA_FRAME = amf.encode("@setDataFrame")
ON_METADATA = amf.encode("onMetaData")

Callback = Callable[..., Awaitable[None] | None]


class RtmpProtocolError(Exception):
    """The peer broke the RTMP protocol; its connection is closed."""


class _Refused(Exception):
    """We turned the peer away (wrong app or key, someone else publishing); the reason is logged."""


@dataclass(eq=False)
class RtmpSession:
    """One client connection: who it is, what it asked for, what it sent."""

    id: int
    peer: str
    connected_at: float = field(default_factory=time.time)
    app: str | None = None
    stream_name: str | None = field(default=None, repr=False)  # the stream key: never log it
    publishing: bool = False
    tags: int = 0
    bytes: int = 0
    chunk_size: int = DEFAULT_CHUNK_SIZE  # what the client writes with (its Set Chunk Size)
    first_tag_at: float | None = None
    last_tag_at: float | None = None
    close_reason: str | None = None


@dataclass(slots=True)
class _ChunkStream:
    """What the previous chunk on one chunk stream said, so shorter headers can refer to it."""

    timestamp: int = 0
    ts_field: int = 0  # the last header's timestamp field: absolute for type 0, a delta otherwise
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False
    partial: bytearray | None = None


class _ChunkReader:
    """Reassembles RTMP messages from interleaved chunks (header types 0-3, extended timestamps)."""

    HEADER_SIZES = (11, 7, 3, 0)

    def __init__(self, reader: asyncio.StreamReader, max_message_bytes: int, touch: Callable[[], None],
                 max_chunk_streams: int = 32):
        self.reader = reader
        self.max_message_bytes = max_message_bytes
        self.max_pending_bytes = 2 * max_message_bytes
        self.max_chunk_streams = max_chunk_streams
        self.touch = touch
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.bytes_read = 0
        self._streams: dict[int, _ChunkStream] = {}
        self._pending = 0  # bytes held in partly assembled messages, over all chunk streams

    async def _read(self, n: int) -> bytes:
        data = await self.reader.readexactly(n)
        self.bytes_read += n
        return data

    def abort(self, csid: int) -> None:
        """Drop the partly assembled message of one chunk stream (Abort Message)."""
        cs = self._streams.get(csid)
        if cs is not None and cs.partial is not None:
            self._pending -= len(cs.partial)
            cs.partial = None

    async def read_message(self) -> tuple[int, int, int, bytes]:
        """The next whole message: (type id, message stream id, timestamp ms, payload)."""
        while True:
            message = await self._read_chunk()
            if message is not None:
                return message

    async def _read_chunk(self) -> tuple[int, int, int, bytes] | None:
        first = (await self._read(1))[0]
        fmt, csid = first >> 6, first & 0x3F
        if csid == 0:
            csid = 64 + (await self._read(1))[0]
        elif csid == 1:
            low, high = await self._read(2)
            csid = 64 + low + 256 * high
        cs = self._streams.get(csid)
        if cs is None:
            if fmt >= 2:
                raise RtmpProtocolError(f"chunk stream {csid} starts with a type {fmt} header")
            if len(self._streams) >= self.max_chunk_streams:
                raise RtmpProtocolError(f"more than {self.max_chunk_streams} chunk streams")
            cs = self._streams[csid] = _ChunkStream()
        if fmt < 3:
            header = await self._read(self.HEADER_SIZES[fmt])
            ts_field = int.from_bytes(header[0:3], "big")
            if fmt <= 1:
                cs.length = int.from_bytes(header[3:6], "big")
                cs.type_id = header[6]
            if fmt == 0:
                cs.stream_id = int.from_bytes(header[7:11], "little")
            cs.extended = ts_field == 0xFFFFFF
            if cs.extended:
                ts_field = int.from_bytes(await self._read(4), "big")
            if cs.partial is not None:
                # A full header mid-message starts a new message: the unfinished one is dropped.
                self.abort(csid)
            cs.timestamp = ts_field if fmt == 0 else cs.timestamp + ts_field
            cs.ts_field = ts_field
        else:
            if cs.extended:
                ext = int.from_bytes(await self._read(4), "big")
                if cs.partial is None:
                    cs.ts_field = ext
            if cs.partial is None:
                # Type 3 opening a new message repeats the previous timestamp delta.
                cs.timestamp += cs.ts_field
        if cs.partial is None:
            if cs.length > self.max_message_bytes:
                raise RtmpProtocolError(f"message of {cs.length} bytes exceeds {self.max_message_bytes}")
            cs.partial = bytearray()
        need = min(self.chunk_size, cs.length - len(cs.partial))
        self._pending += need
        if self._pending > self.max_pending_bytes:
            raise RtmpProtocolError("too many bytes held in unfinished messages")
        cs.partial += await self._read(need)
        self.touch()
        if len(cs.partial) < cs.length:
            return None
        payload = bytes(cs.partial)
        self._pending -= len(payload)
        cs.partial = None
        return cs.type_id, cs.stream_id, cs.timestamp & 0xFFFFFFFF, payload


class _Connection:
    """One client, from handshake to close: answers its commands and turns its media into tags."""

    def __init__(self, server: RtmpServer, session: RtmpSession, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, touch: Callable[[], None]):
        self.server = server
        self.session = session
        self.reader = reader
        self.writer = writer
        self.chunks = _ChunkReader(reader, server.max_message_bytes, touch)
        self.out_chunk_size = DEFAULT_CHUNK_SIZE
        self.ack_window = 0
        self.last_ack = 0
        self.connected = False
        self.next_stream_id = 1
        self.publish_stream_id: int | None = None

    # ---- output ------------------------------------------------------------------------------------

    def send(self, csid: int, type_id: int, payload: bytes, stream_id: int = 0, timestamp: int = 0) -> None:
        """Queue one message, cut into chunks of our chunk size."""
        out = bytearray()
        size = self.out_chunk_size
        for offset in range(0, max(len(payload), 1), size):
            if offset == 0:
                out.append(csid)
                out += (timestamp & 0xFFFFFF).to_bytes(3, "big") + len(payload).to_bytes(3, "big")
                out.append(type_id)
                out += stream_id.to_bytes(4, "little")
            else:
                out.append(0xC0 | csid)
            out += payload[offset:offset + size]
        self.writer.write(out)

    def send_control(self, type_id: int, value: int, extra: bytes = b"") -> None:
        self.send(CS_CONTROL, type_id, value.to_bytes(4, "big") + extra)

    def send_user_control(self, event: int, value: int) -> None:
        self.send(CS_CONTROL, USER_CONTROL, event.to_bytes(2, "big") + value.to_bytes(4, "big"))

    def send_command(self, *values: Any, stream_id: int = 0) -> None:
        self.send(CS_STREAM if stream_id else CS_COMMAND, COMMAND_AMF0, amf.encode_all(*values), stream_id)

    def send_status(self, stream_id: int, level: str, code: str, description: str) -> None:
        self.send_command("onStatus", 0, None, {"level": level, "code": code, "description": description},
                          stream_id=stream_id)

    # ---- input -------------------------------------------------------------------------------------

    async def handshake(self) -> None:
        """C0/C1 in, S0/S1/S2 out, C2 in. Zero version bytes in S1: the plain handshake every client takes."""
        version = (await self.reader.readexactly(1))[0]
        if version != RTMP_VERSION:
            raise RtmpProtocolError(f"RTMP version {version} is not supported (encrypted RTMP?)")
        c1 = await self.reader.readexactly(HANDSHAKE_SIZE)
        uptime = int(time.monotonic() * 1000) & 0xFFFFFFFF
        s1 = uptime.to_bytes(4, "big") + bytes(4) + os.urandom(HANDSHAKE_SIZE - 8)
        self.writer.write(bytes([RTMP_VERSION]) + s1 + c1)  # S2 echoes C1
        await self.writer.drain()
        await self.reader.readexactly(HANDSHAKE_SIZE)  # C2: an echo of S1 or a digest; neither matters here

    async def serve(self) -> None:
        """Read messages until the peer leaves; raises on protocol errors and refusals."""
        while True:
            type_id, stream_id, timestamp, payload = await self.chunks.read_message()
            await self.dispatch(type_id, stream_id, timestamp, payload)
            received = self.chunks.bytes_read
            if self.ack_window and received - self.last_ack >= self.ack_window:
                self.send_control(ACKNOWLEDGEMENT, received & 0xFFFFFFFF)
                self.last_ack = received
            await self.writer.drain()

    async def dispatch(self, type_id: int, stream_id: int, timestamp: int, payload: bytes) -> None:
        if type_id in (MSG_AUDIO, MSG_VIDEO):
            if self.session.publishing and stream_id == self.publish_stream_id and payload:
                await self.server._deliver(self.session, Tag(type_id, timestamp, payload))
        elif type_id in (DATA_AMF0, DATA_AMF3):
            if self.session.publishing:
                await self.on_data(payload[1:] if type_id == DATA_AMF3 and payload[:1] == b"\x00" else payload)
        elif type_id == AGGREGATE:
            if self.session.publishing:
                for tag in split_aggregate(payload, timestamp):
                    await self.server._deliver(self.session, tag)
        elif type_id in (COMMAND_AMF0, COMMAND_AMF3):
            body = payload[1:] if type_id == COMMAND_AMF3 and payload[:1] == b"\x00" else payload
            await self.on_command(stream_id, amf.decode_all(body))
        elif type_id == SET_CHUNK_SIZE:
            size = int.from_bytes(_need(payload, 4), "big") & 0x7FFFFFFF
            if size == 0:
                raise RtmpProtocolError("chunk size 0")
            self.chunks.chunk_size = self.session.chunk_size = size
        elif type_id == ABORT:
            self.chunks.abort(int.from_bytes(_need(payload, 4), "big"))
        elif type_id == WINDOW_ACK:
            self.ack_window = int.from_bytes(_need(payload, 4), "big")
        elif type_id == USER_CONTROL:
            event = int.from_bytes(_need(payload, 2), "big")
            if event == PING_REQUEST:
                self.send_user_control(PING_RESPONSE, int.from_bytes(_need(payload, 6)[2:], "big"))
        # Acknowledgement, Set Peer Bandwidth and anything unknown need no answer.

    async def on_data(self, body: bytes) -> None:
        """`@setDataFrame onMetaData {...}` becomes the FLV `onMetaData` script tag; other data is dropped."""
        if body.startswith(SET_DATA_FRAME):
            body = body[len(SET_DATA_FRAME):]
        if body.startswith(ON_METADATA):
            amf.decode_all(body)  # malformed metadata is the publisher's error, not something to pass on
            await self.server._deliver(self.session, Tag(SCRIPT, 0, body))

    async def on_command(self, stream_id: int, values: list[Any]) -> None:
        if not values or not isinstance(values[0], str):
            raise RtmpProtocolError("command without a name")
        name = values[0]
        txn = values[1] if len(values) > 1 and isinstance(values[1], float) else 0.0
        cmd_obj = values[2] if len(values) > 2 else None
        args = values[3:]
        if name == "connect":
            self.on_connect(txn, cmd_obj if isinstance(cmd_obj, dict) else {})
        elif name == "createStream":
            self.send_command("_result", txn, None, float(self.next_stream_id))
            self.next_stream_id += 1
        elif name == "publish":
            name_arg = args[0] if args and isinstance(args[0], str) else ""
            await self.on_publish(stream_id, name_arg)
        elif name in ("releaseStream", "FCPublish"):
            if txn:
                self.send_command("_result", txn, None)
        elif name in ("FCUnpublish", "deleteStream", "closeStream"):
            if self.session.publishing:
                await self.server._end_publish(self.session, "publisher stopped")
        elif txn:
            self.send_command("_error", txn, None, {"level": "error", "code": "NetConnection.Call.Failed",
                                                    "description": f"{name} is not supported here"})

    def on_connect(self, txn: float, cmd: dict) -> None:
        app = _app_name(cmd.get("app"))
        self.session.app = app
        expected = self.server.app
        if expected is not None and app != expected:
            self.send_command("_error", txn, None, {"level": "error", "code": "NetConnection.Connect.Rejected",
                                                    "description": "unknown application"})
            raise _Refused(f"app {app!r} is not {expected!r}")
        self.connected = True
        self.send_control(WINDOW_ACK, WINDOW_ACK_SIZE)
        self.send_control(PEER_BANDWIDTH, WINDOW_ACK_SIZE, b"\x02")
        self.send_control(SET_CHUNK_SIZE, OUT_CHUNK_SIZE)
        self.out_chunk_size = OUT_CHUNK_SIZE
        encoding = cmd.get("objectEncoding", 0.0)
        self.send_command("_result", txn, {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0},
                          {"level": "status", "code": "NetConnection.Connect.Success",
                           "description": "Connection succeeded.",
                           "objectEncoding": encoding if isinstance(encoding, float) else 0.0})

    async def on_publish(self, stream_id: int, stream_name: str) -> None:
        def refuse(reason: str, description: str) -> _Refused:
            self.send_status(stream_id, "error", "NetStream.Publish.BadName", description)
            return _Refused(reason)

        if not self.connected:
            raise refuse("publish before connect", "connect first")
        if self.session.publishing:
            raise refuse("published twice on one connection", "already publishing")
        key = stream_name.split("?", 1)[0]
        if self.server.key is not None and not hmac.compare_digest(key.encode(), self.server.key.encode()):
            raise refuse(f"wrong stream key on app {self.session.app!r}", "invalid stream key")
        if self.server.single_publisher and self.server.publishers:
            other = self.server.publishers[0].peer
            raise refuse(f"{other} is already publishing", "another publisher is live")
        self.publish_stream_id = stream_id
        self.session.stream_name = key
        self.send_user_control(STREAM_BEGIN, stream_id)
        self.send_status(stream_id, "status", "NetStream.Publish.Start", "Publishing started.")
        await self.writer.drain()
        await self.server._begin_publish(self.session)


def _need(payload: bytes, n: int) -> bytes:
    """The first `n` bytes of a control message, which must have them."""
    if len(payload) < n:
        raise RtmpProtocolError(f"control message of {len(payload)} bytes, expected {n}")
    return payload[:n]


def _app_name(value: Any) -> str:
    """The app a client connects to, without query string or slashes (`live/?x=1` is `live`)."""
    text = value if isinstance(value, str) else ""
    return text.split("?", 1)[0].strip("/")


def split_aggregate(payload: bytes, timestamp: int) -> list[Tag]:
    """The FLV-style sub-messages of an Aggregate message, re-timed from the message's timestamp."""
    tags: list[Tag] = []
    pos = 0
    base: int | None = None
    while len(payload) - pos >= 11:
        kind = payload[pos]
        size = int.from_bytes(payload[pos + 1:pos + 4], "big")
        ts = int.from_bytes(payload[pos + 4:pos + 7], "big") | (payload[pos + 7] << 24)
        end = pos + 11 + size
        if end > len(payload):
            raise RtmpProtocolError("aggregate message cut short")
        base = ts if base is None else base
        if kind in (AUDIO, VIDEO) and size:
            tags.append(Tag(kind, (timestamp + ts - base) & 0xFFFFFFFF, bytes(payload[pos + 11:end])))
        pos = end + 4  # each sub-message is followed by its back pointer
    return tags


async def _notify(callback: Callback | None, *args: Any) -> None:
    if callback is None:
        return
    result = callback(*args)
    if inspect.isawaitable(result):
        await result


class RtmpServer:
    """An RTMP publish endpoint on one port; tags reach `on_tag(session, tag)` in arrival order.

    `app`/`key` None accept anything. `on_publish(session)` runs when a publish is accepted, before any of
    its tags; `on_unpublish(session)` once when it ends (its `close_reason` says why); `on_refuse(session,
    reason)` when a client is turned away (wrong app or key, someone else publishing). Callbacks may be
    plain functions or coroutines (a coroutine `on_tag` slows the publisher down rather than buffering).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, app: str | None = None,
                 key: str | None = None, single_publisher: bool = True,
                 on_publish: Callback | None = None, on_tag: Callback | None = None,
                 on_unpublish: Callback | None = None, on_refuse: Callback | None = None,
                 idle_timeout_s: float = 10.0,
                 max_connections: int = 16, max_message_bytes: int = 8 * 1024 * 1024):
        self.host = host
        self.requested_port = port
        self.port = port
        self.app = app.strip("/") if app is not None else None
        self.key = key or None
        self.single_publisher = single_publisher
        self.on_publish = on_publish
        self.on_tag = on_tag
        self.on_unpublish = on_unpublish
        self.on_refuse = on_refuse
        self.idle_timeout_s = idle_timeout_s
        self.max_connections = max_connections
        self.max_message_bytes = max_message_bytes
        self.publishers: list[RtmpSession] = []
        self.history: deque[RtmpSession] = deque(maxlen=64)  # recent sessions, newest last
        self._server: asyncio.Server | None = None
        self._closing = False
        self._tasks: set[asyncio.Task] = set()
        self._ids = count(1)
        self.counters = {"connections_total": 0, "publishes_total": 0, "refused_total": 0, "video_frames": 0,
                         "audio_frames": 0, "keyframes": 0, "bytes": 0}
        self.first_frame_at: float | None = None
        self.last_frame_at: float | None = None

    @classmethod
    def receiver(cls, host: str = "127.0.0.1", port: int = 0, **options: Any) -> RtmpServer:
        """A local stand-in for a platform's ingest: any app, any key, several publishers at once."""
        options.setdefault("single_publisher", False)
        return cls(host, port, **options)

    @property
    def url(self) -> str:
        """Where to publish: `rtmp://host:port/app` (add `/KEY`)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"rtmp://{host}:{self.port}/{self.app or 'live'}"

    @property
    def connections(self) -> int:
        """Open client connections, publishing or not."""
        return len(self._tasks)

    @property
    def publisher(self) -> RtmpSession | None:
        """The (first) session publishing now, if any."""
        return self.publishers[0] if self.publishers else None

    def stats(self) -> dict:
        """Counters a test, benchmark or the demo can ask for: is someone publishing, what arrived, when."""
        return {"connected": bool(self.publishers), "publishers": len(self.publishers),
                "connections": len(self._tasks), **self.counters,
                "first_frame_at": self.first_frame_at, "last_frame_at": self.last_frame_at}

    async def start(self) -> None:
        """Listen; `port` holds the real port afterwards (useful with port 0)."""
        self._server = await asyncio.start_server(self._handle, self.host, self.requested_port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening, drop every connection, and wait until each handler has finished."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> RtmpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        session = RtmpSession(next(self._ids), _peer_text(writer.get_extra_info("peername")))
        self.counters["connections_total"] += 1
        reason = "disconnected"
        try:
            if len(self._tasks) > self.max_connections:
                reason = f"turned away: more than {self.max_connections} connections"
                log.warning("rtmp: %s %s", session.peer, reason)
                return
            self.history.append(session)
            await self._serve(session, reader, writer)
        except _Refused as e:
            self.counters["refused_total"] += 1
            reason = f"refused: {e}"
            log.warning("rtmp: refused %s: %s", session.peer, e)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.drain(), 1.0)
            try:
                await _notify(self.on_refuse, session, str(e))
            except Exception:
                log.exception("rtmp: on_refuse failed")  # the refusal itself stands
        except TimeoutError:
            reason = f"no data for {self.idle_timeout_s:g} s"
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except (RtmpProtocolError, amf.AmfError) as e:
            reason = f"protocol error: {e}"
            log.warning("rtmp: dropped %s: %s", session.peer, reason)
        except asyncio.CancelledError:
            reason = "server closed"
            if not self._closing:
                raise
            # Our own close(): end quietly, or asyncio's server reports the cancelled handler as an error.
        except Exception:
            reason = "internal error"
            log.exception("rtmp: connection from %s failed", session.peer)
        finally:
            session.close_reason = session.close_reason or reason
            try:
                if session.publishing:
                    await self._end_publish(session, session.close_reason)
            finally:
                writer.close()
                self._tasks.discard(task)

    async def _serve(self, session: RtmpSession, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        """Handshake and messages, with the idle deadline pushed back by every chunk that arrives."""
        loop = asyncio.get_running_loop()
        idle = self.idle_timeout_s
        slack = min(0.5, idle / 10)
        async with asyncio.timeout(idle) as deadline:
            def touch() -> None:
                # Moved at most every `slack` seconds, not per chunk: never sooner than `idle` after the last
                # chunk, at most `slack` later.
                now = loop.time()
                when = deadline.when()
                if when is not None and when < now + idle:
                    deadline.reschedule(now + idle + slack)

            conn = _Connection(self, session, reader, writer, touch)
            await conn.handshake()
            touch()
            await conn.serve()

    async def _begin_publish(self, session: RtmpSession) -> None:
        session.publishing = True
        self.publishers.append(session)
        self.counters["publishes_total"] += 1
        log.info("rtmp: %s publishing on app %r", session.peer, session.app)
        await _notify(self.on_publish, session)

    async def _end_publish(self, session: RtmpSession, reason: str) -> None:
        if not session.publishing:
            return
        session.publishing = False
        session.close_reason = reason
        if session in self.publishers:
            self.publishers.remove(session)
        log.info("rtmp: %s stopped publishing: %s", session.peer, reason)
        await _notify(self.on_unpublish, session)

    async def _deliver(self, session: RtmpSession, tag: Tag) -> None:
        now = time.time()
        session.tags += 1
        session.bytes += len(tag.data)
        session.last_tag_at = now
        if session.first_tag_at is None:
            session.first_tag_at = now
        counters = self.counters
        counters["bytes"] += len(tag.data)
        if tag.kind != SCRIPT and not tag.is_sequence_header and not _is_end_of_sequence(tag):
            counters["video_frames" if tag.kind == VIDEO else "audio_frames"] += 1
            counters["keyframes"] += tag.is_keyframe
            self.last_frame_at = now
            if self.first_frame_at is None:
                self.first_frame_at = now
        await _notify(self.on_tag, session, tag)


def _is_end_of_sequence(tag: Tag) -> bool:
    """AVC/HEVC end-of-sequence marker: sent as a 'keyframe' when a publisher stops, but not a frame."""
    return tag.kind == VIDEO and len(tag.data) > 1 and tag.data[0] & 0x0F in (7, 12) and tag.data[1] == 2


def _peer_text(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return "unknown peer"
