"""Our RTMP server against real ffmpeg publishers, a scripted client for the protocol's corners, and garbage."""

from __future__ import annotations

import asyncio
import logging
import random
import struct

import pytest

from streamctl.restream import amf
from streamctl.restream.flv import AUDIO, SCRIPT, VIDEO, Tag
from streamctl.restream.probe import StreamProbe
from streamctl.restream.rtmp_server import OUT_CHUNK_SIZE, RtmpServer
from tests.conftest import LOOPBACK
from tests.ingest_media import Publisher, encode_args, publish_rtmp, until

KEY = "k3y-Secret-4711"


class Collector:
    """Records what the server hands out: publishes, tags per session, unpublishes."""

    def __init__(self) -> None:
        self.published: list = []
        self.unpublished: list = []
        self.tags: list[tuple[int, Tag]] = []

    def kwargs(self) -> dict:
        return {"on_publish": self.published.append, "on_unpublish": self.unpublished.append,
                "on_tag": lambda session, tag: self.tags.append((session.id, tag))}

    def of(self, kind: int) -> list[Tag]:
        return [t for _, t in self.tags if t.kind == kind]


# ---- real publishers ----------------------------------------------------------------------------------


async def test_ffmpeg_publish_with_the_right_key_arrives_as_tags():
    got = Collector()
    async with RtmpServer(LOOPBACK, 0, app="live", key=KEY, **got.kwargs()) as server:
        code, err = await publish_rtmp(f"{server.url}/{KEY}", 2.5)
        assert code == 0, err
        stats = server.stats()
    assert [s.peer.startswith(f"{LOOPBACK}:") for s in got.published] == [True]
    assert got.unpublished == got.published and got.published[0].close_reason == "publisher stopped"
    assert got.published[0].app == "live"
    # ffmpeg writes with the chunk size the server announces (else 128 bytes, a write per 128 bytes).
    assert got.published[0].chunk_size == OUT_CHUNK_SIZE
    tags = [t for _, t in got.tags]
    assert tags[0].kind == SCRIPT and tags[0].is_metadata
    assert [t.is_sequence_header for t in tags if t.kind == VIDEO][:1] == [True]
    for kind in (VIDEO, AUDIO):
        stamps = [t.timestamp for t in got.of(kind)]
        assert stamps == sorted(stamps)
    probe = StreamProbe()
    for tag in tags:
        probe.feed(tag)
    f = probe.facts()
    assert (f["video_codec"], f["width"], f["height"]) == ("h264", 640, 360)
    assert f["fps"] == pytest.approx(30, abs=0.5)
    assert f["keyframe_interval_s"] == pytest.approx(2.0, abs=0.05)
    assert (f["audio_codec"], f["sample_rate"], f["channels"]) == ("aac", 48000, 2)
    assert stats["video_frames"] == 75 and stats["keyframes"] == 2 and stats["publishes_total"] == 1
    assert stats["connected"] is False and stats["last_frame_at"] > stats["first_frame_at"]


async def test_wrong_key_and_wrong_app_are_refused_and_the_key_never_logged(caplog):
    caplog.set_level(logging.INFO)
    got = Collector()
    async with RtmpServer(LOOPBACK, 0, app="live", key=KEY, **got.kwargs()) as server:
        wrong_key = "not-the-key-1234"
        code, err = await publish_rtmp(f"{server.url}/{wrong_key}", 1, realtime=False)
        assert code != 0 and "invalid stream key" in err
        code, err = await publish_rtmp(f"rtmp://{LOOPBACK}:{server.port}/other/{KEY}", 1, realtime=False)
        assert code != 0 and "unknown application" in err
        assert server.stats()["refused_total"] == 2
    assert got.tags == [] and got.published == []
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 2 and all(f"{LOOPBACK}:" in line for line in refusals)
    assert "wrong stream key" in refusals[0] and "'other'" in refusals[1]
    assert not any(KEY in r.getMessage() or wrong_key in r.getMessage() for r in caplog.records)


async def test_second_publisher_is_refused_while_the_first_is_live():
    got = Collector()
    async with RtmpServer(LOOPBACK, 0, app="live", key=KEY, **got.kwargs()) as server:
        first = await Publisher(encode_args(30) + ["-f", "flv", f"{server.url}/{KEY}"]).start()
        try:
            await until(lambda: len(got.of(VIDEO)) > 10, 10, "the first publisher's frames")
            code, err = await publish_rtmp(f"{server.url}/{KEY}", 1, realtime=False)
            assert code != 0 and "another publisher is live" in err
            before = len(got.tags)
            await until(lambda: len(got.tags) > before + 10, 5, "the first publisher to go on")
            assert server.publisher is got.published[0] and len(got.published) == 1
        finally:
            await first.stop()
        await until(lambda: server.publisher is None, 5, "the first publisher to be gone")
        code, err = await publish_rtmp(f"{server.url}/{KEY}", 0.5, realtime=False)
        assert code == 0, err
    assert len(got.published) == 2 and {sid for sid, _ in got.tags} == {s.id for s in got.published}


async def test_receiver_takes_any_key_from_several_publishers_and_counts():
    async with RtmpServer.receiver(LOOPBACK, 0) as receiver:
        live = await Publisher(encode_args(1.5) + ["-f", "flv", f"rtmp://{LOOPBACK}:{receiver.port}/a/one"]).start()
        try:
            await until(lambda: receiver.stats()["connected"], 10, "the receiver to see a publisher")
            code, err = await publish_rtmp(f"rtmp://{LOOPBACK}:{receiver.port}/b/two", 1, realtime=False)
            assert code == 0, err
            assert await asyncio.wait_for(live.process.wait(), 10) == 0
        finally:
            await live.stop()
        await until(lambda: not receiver.stats()["connected"], 5, "both publishers to be gone")
        stats = receiver.stats()
    assert stats["video_frames"] == 45 + 30 and stats["audio_frames"] > 100
    assert stats["publishes_total"] == 2 and stats["refused_total"] == 0 and stats["bytes"] > 50_000
    assert stats["last_frame_at"] - stats["first_frame_at"] > 1.0
    assert sorted(s.stream_name for s in receiver.history) == ["one", "two"]
    assert sorted(s.app for s in receiver.history) == ["a", "b"]


# ---- a scripted client for the protocol's corners ---------------------------------------------------


def basic_header(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes([fmt << 6 | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    return bytes([fmt << 6 | 1]) + (csid - 64).to_bytes(2, "little")


def chunked(csid: int, type_id: int, stream_id: int, ts: int, payload: bytes, size: int, fmt: int = 0) -> list[bytes]:
    """One message as chunks (a list, so a test can interleave them): first with a `fmt` header, then type 3."""
    ext = ts >= 0xFFFFFF
    field = (0xFFFFFF if ext else ts).to_bytes(3, "big")
    header = field
    if fmt <= 1:
        header += len(payload).to_bytes(3, "big") + bytes([type_id])
    if fmt == 0:
        header += stream_id.to_bytes(4, "little")
    if fmt == 3:
        header = b""
    ext_bytes = ts.to_bytes(4, "big") if ext else b""
    pieces = [payload[i:i + size] for i in range(0, max(len(payload), 1), size)]
    out = [basic_header(fmt, csid) + header + ext_bytes + pieces[0]]
    out += [basic_header(3, csid) + ext_bytes + p for p in pieces[1:]]
    return out


class ScriptedClient:
    """A tiny RTMP client written from the spec, independent of the server's parser."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.in_chunk = 128
        self.out_chunk = 128
        self._partial: dict[int, tuple[int, int, int, bytearray]] = {}

    @classmethod
    async def connect(cls, port: int, handshake: bool = True) -> ScriptedClient:
        client = cls(*await asyncio.open_connection(LOOPBACK, port))
        if handshake:
            client.writer.write(b"\x03" + bytes(1536))
            s0s1s2 = await client.reader.readexactly(1 + 1536 * 2)
            assert s0s1s2[0] == 3 and s0s1s2[1 + 1536:] == bytes(1536)  # S2 echoes our C1
            client.writer.write(s0s1s2[1:1 + 1536])
        return client

    def send(self, *chunks: bytes) -> None:
        self.writer.write(b"".join(chunks))

    def message(self, csid: int, type_id: int, payload: bytes, stream_id: int = 0, ts: int = 0) -> None:
        self.send(*chunked(csid, type_id, stream_id, ts, payload, self.out_chunk))

    def command(self, *values, stream_id: int = 0) -> None:
        self.message(3 if not stream_id else 8, 20, amf.encode_all(*values), stream_id)

    async def read_message(self) -> tuple[int, int, bytes]:
        """(type id, stream id, payload) of the server's next whole message (it sends type 0 and 3 only)."""
        while True:
            first = (await self.reader.readexactly(1))[0]
            fmt, csid = first >> 6, first & 0x3F
            if fmt == 0:
                h = await self.reader.readexactly(11)
                self._partial[csid] = (h[6], int.from_bytes(h[7:11], "little"), int.from_bytes(h[3:6], "big"),
                                       bytearray())
            type_id, stream_id, length, body = self._partial[csid]
            body += await self.reader.readexactly(min(self.in_chunk, length - len(body)))
            if len(body) == length:
                if type_id == 1:
                    self.in_chunk = int.from_bytes(body, "big")
                return type_id, stream_id, bytes(body)

    async def until_command(self, name: str) -> list:
        for _ in range(20):
            type_id, _, body = await asyncio.wait_for(self.read_message(), 5)
            if type_id == 20 and (values := amf.decode_all(body))[0] == name:
                return values
        raise AssertionError(f"no {name} from the server")

    async def publish(self, key: str, app: str = "live") -> int:
        self.command("connect", 1.0, {"app": app, "type": "nonprivate", "tcUrl": f"rtmp://x/{app}"})
        result = await self.until_command("_result")
        assert result[3]["code"] == "NetConnection.Connect.Success"
        self.command("releaseStream", 2.0, None, key)
        self.command("FCPublish", 3.0, None, key)
        self.command("createStream", 4.0, None)
        created = await self.until_command("_result")
        while created[1] != 4.0:
            created = await self.until_command("_result")
        stream_id = int(created[3])
        self.command("publish", 5.0, None, key, "live", stream_id=stream_id)
        status = await self.until_command("onStatus")
        assert status[3]["code"] == "NetStream.Publish.Start", status
        return stream_id

    def close(self) -> None:
        self.writer.close()


async def test_chunk_headers_extended_timestamps_interleaving_and_control_messages():
    got = Collector()
    async with RtmpServer(LOOPBACK, 0, app="live", key=KEY, **got.kwargs()) as server:
        c = await ScriptedClient.connect(server.port)
        c.message(2, 1, struct.pack(">I", 64))  # Set Chunk Size: our chunks are 64 bytes from now on
        c.out_chunk = 64
        sid = await c.publish(KEY)
        c.message(2, 5, struct.pack(">I", 1000))  # Window Ack Size: the server must acknowledge every 1000 bytes
        c.message(2, 4, b"\x00\x06" + struct.pack(">I", 123456))  # ping request

        video = [bytes([0x27, 1, 0, 0, 0]) + bytes([i]) * (195 if i == 0 else 95) for i in range(5)]
        c.send(*chunked(6, 9, sid, 1000, video[0], 64))  # type 0, split over 4 chunks
        c.send(*chunked(6, 9, sid, 40, video[1], 64, fmt=1))  # type 1: delta 40, new length
        c.send(*chunked(6, 9, sid, 40, video[2], 64, fmt=2))  # type 2: delta 40, same length
        c.send(*chunked(6, 9, sid, 0, video[3], 64, fmt=3))  # type 3 new message: delta 40 again
        # Audio and video interleaved chunk by chunk on two chunk streams.
        audio = b"\xaf\x01" + bytes(range(150))
        v_chunks = chunked(6, 9, sid, 40, video[4], 64, fmt=1)
        a_chunks = chunked(4, 8, sid, 1100, audio, 64)
        c.send(v_chunks[0], a_chunks[0], v_chunks[1], a_chunks[1], a_chunks[2])
        # Extended timestamps: on the type 0 header and repeated in every continuation chunk.
        big = bytes([0x17, 1, 0, 0, 0]) + bytes(range(256)) * 2
        c.send(*chunked(7, 9, sid, 0x01000000, big, 64))
        c.send(*chunked(7, 9, sid, 33, big[:100], 64, fmt=1))
        # Abort: the half-sent message on chunk stream 9 is dropped, the next one counts.
        c.send(chunked(9, 8, sid, 2000, audio, 64)[0])
        c.message(2, 2, struct.pack(">I", 9))
        c.send(*chunked(9, 8, sid, 2100, b"\xaf\x01after-abort", 64))
        # An aggregate message carrying two video sub-tags, re-timed from the message's timestamp.
        subs = b"".join(Tag(VIDEO, 500 + i * 40, b"\x27\x01\x00\x00\x00agg%d" % i).encode() for i in range(2))
        c.message(10, 22, subs, sid, ts=3000)
        c.message(10, 18, amf.encode_all("@setDataFrame", "onMetaData", amf.EcmaArray(width=640.0)), sid)
        c.message(10, 18, amf.encode_all("onCuePoint", {"name": "dropped"}), sid)

        replies = set()
        for _ in range(10):
            type_id, _, body = await asyncio.wait_for(c.read_message(), 5)
            replies.add((type_id, body[:2]) if type_id == 4 else (type_id,))
            if {(3,), (4, b"\x00\x07")} <= replies:
                break
        assert (3,) in replies, "no acknowledgement after the window"
        assert (4, b"\x00\x07") in replies, "no ping response"
        await until(lambda: len(got.tags) >= 12, 5, "every message to arrive")
        c.close()
        await until(lambda: got.unpublished, 5, "the unpublish")
    seen = [(t.kind, t.timestamp, t.data) for _, t in got.tags]
    assert seen[:4] == [(VIDEO, 1000 + 40 * i, video[i]) for i in range(4)]
    assert seen[4:6] == [(VIDEO, 1160, video[4]), (AUDIO, 1100, audio)]
    assert seen[6:8] == [(VIDEO, 0x01000000, big), (VIDEO, 0x01000000 + 33, big[:100])]
    assert seen[8] == (AUDIO, 2100, b"\xaf\x01after-abort")
    assert seen[9:11] == [(VIDEO, 3000, b"\x27\x01\x00\x00\x00agg0"), (VIDEO, 3040, b"\x27\x01\x00\x00\x00agg1")]
    assert seen[11][0] == SCRIPT and amf.decode_all(seen[11][2]) == ["onMetaData", {"width": 640.0}]
    assert len(seen) == 12
    assert got.unpublished[0].close_reason == "disconnected"


async def test_idle_publisher_and_half_open_connection_time_out():
    got = Collector()
    async with RtmpServer(LOOPBACK, 0, idle_timeout_s=0.4, **got.kwargs()) as server:
        silent = await ScriptedClient.connect(server.port, handshake=False)
        c = await ScriptedClient.connect(server.port)
        sid = await c.publish("any")
        c.message(6, 9, b"\x17\x01\x00\x00\x00frame", sid)
        await until(lambda: got.tags, 5, "the one frame")
        await until(lambda: got.unpublished, 3, "the silent publisher to be dropped")
        assert got.unpublished[0].close_reason == "no data for 0.4 s"
        assert await asyncio.wait_for(c.reader.read(), 3) == b""  # the server closed it
        assert await asyncio.wait_for(silent.reader.read(), 3) == b""
        await until(lambda: server.connections == 0, 3, "no connection left")
        c.close()
        silent.close()


# ---- garbage ----------------------------------------------------------------------------------------


def valid_session_bytes() -> bytes:
    """What a well-behaved publisher sends after the handshake: connect, publish, metadata, a few frames."""
    out = chunked(2, 1, 0, 0, struct.pack(">I", 256), 128)
    for values, sid in (((("connect", 1.0, {"app": "live", "tcUrl": "rtmp://x/live"})), 0),
                        (("createStream", 2.0, None), 0), (("publish", 3.0, None, "k", "live"), 1)):
        out += chunked(3, 20, sid, 0, amf.encode_all(*values), 256)
    out += chunked(4, 18, 1, 0, amf.encode_all("@setDataFrame", "onMetaData", amf.EcmaArray(width=1.0)), 256)
    for i in range(6):
        out += chunked(6, 9, 1, i * 33, bytes([0x17 if i == 0 else 0x27, 1, 0, 0, 0]) + bytes(700), 256,
                       fmt=0 if i == 0 else 1)
        out += chunked(5, 8, 1, i * 21, b"\xaf\x01" + bytes(300), 256)
    return b"".join(out)


def hostile_inputs(rng: random.Random) -> list[tuple[bool, bytes]]:
    """(handshake first?, bytes) cases: noise, a valid session mangled, cut-short and oversized headers."""
    noise = [(rng.random() < 0.5, rng.randbytes(rng.randrange(1, 4000))) for _ in range(16)]
    valid = valid_session_bytes()
    for _ in range(16):
        mangled = bytearray(valid[:rng.randrange(1, len(valid))] if rng.random() < 0.3 else valid)
        for _ in range(rng.randrange(1, 6)):
            mangled[rng.randrange(len(mangled))] = rng.getrandbits(8)
        noise.append((True, bytes(mangled)))
    big_chunks = struct.pack(">I", 0x7FFFFFFF)
    return noise + [
        (False, b"\x03" + bytes(700)),  # handshake cut short
        (False, b"\x06" + bytes(1536)),  # encrypted RTMP
        (True, b"".join(chunked(2, 1, 0, 0, big_chunks, 128)) + b"\x06" + bytes(7) + b"\xff\xff\xff\x09"),
        (True, b"".join(chunked(2, 1, 0, 0, big_chunks, 128)) + chunked(6, 9, 1, 0, bytes(5000), 1 << 20)[0][:900]),
        (True, b"".join(chunked(2, 1, 0, 0, b"\x00\x00\x00\x00", 128))),  # chunk size 0
        (True, b"".join(chunked(c, 9, 1, 0, bytes(300), 128)[0] for c in range(3, 200))),  # too many streams
        (True, b"\x46" + bytes(10)),  # a type 1 header... on a new stream is fine; then garbage
        (True, b"\xc5" + bytes(10)),  # type 3 on a stream never opened
        (True, b"".join(chunked(3, 20, 0, 0, b"\x02\x00\x07connect\x00\x3f\xf0\x00\x00\x00\x00\x00\x00\x03\x00", 128))),
        (True, b"".join(chunked(3, 20, 0, 0, b"\x0a\xff\xff\xff\xff", 128))),  # absurd strict array
        (True, b"".join(chunked(3, 20, 0, 0, b"\x03\x00\x01a" * 100, 128))),  # objects nested too deep
        # Large chunks of several unfinished messages at once: more held than the server allows.
        (True, b"".join(chunked(2, 1, 0, 0, struct.pack(">I", 600_000), 128))
         + b"".join(chunked(c, 9, 1, 0, bytes(1_000_000), 600_000)[0] for c in range(3, 8))),
        (True, b"".join(chunked(2, 4, 0, 0, b"\x00", 128))),  # user control cut short
    ]


async def test_garbage_never_crashes_the_server_nor_leaks_tasks(caplog):
    caplog.set_level(logging.WARNING)
    tasks_before = asyncio.all_tasks()
    got = Collector()
    async with RtmpServer(LOOPBACK, 0, idle_timeout_s=0.5, max_message_bytes=1 << 20, max_connections=64,
                          single_publisher=False,
                          **got.kwargs()) as server:
        async def attack(handshake: bool, data: bytes) -> None:
            c = await ScriptedClient.connect(server.port, handshake=handshake)
            try:
                c.writer.write(data)
                await asyncio.wait_for(c.reader.read(), 5)  # until the server hangs up (or times us out)
            except ConnectionError:
                pass
            finally:
                c.close()

        cases = hostile_inputs(random.Random(2024))
        await asyncio.gather(*(attack(h, d) for h, d in cases))
        # Garbage after a proper publish, too.
        c = await ScriptedClient.connect(server.port)
        await c.publish("x")
        c.send(random.Random(5).randbytes(3000))
        assert await asyncio.wait_for(c.reader.read(), 5) == b""
        c.close()
        await until(lambda: server.connections == 0, 5, "every hostile connection closed")
        assert not any(r.levelno >= logging.ERROR for r in caplog.records), "a handler crashed"
        assert len(got.published) >= 10, "the mangled sessions should mostly get as far as publishing"
        code, err = await publish_rtmp(f"{server.url}/after", 0.5, realtime=False)
        assert code == 0, err
        assert got.of(VIDEO)
    leftover = [t for t in asyncio.all_tasks() - tasks_before if not t.done()]
    assert leftover == []


async def test_connections_beyond_the_limit_are_turned_away():
    async with RtmpServer(LOOPBACK, 0, max_connections=2) as server:
        clients = [await ScriptedClient.connect(server.port) for _ in range(2)]
        extra = await ScriptedClient.connect(server.port, handshake=False)
        assert await asyncio.wait_for(extra.reader.read(), 3) == b""
        await clients[0].publish("still-served")
        for c in clients + [extra]:
            c.close()
