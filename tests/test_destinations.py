"""Destinations against real receivers: frames counted where they arrive, not in our own state."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

from streamctl.config import DestinationConfig
from streamctl.events import Bus, DestinationStateChanged
from streamctl.redact import mask_url
from streamctl.restream.destinations import Backoff, Destination, Timing, key_expiry
from streamctl.restream.ffmpeg import ffmpeg_source
from streamctl.restream.profiles import PROFILES, Profile
from streamctl.restream.program import Program
from streamctl.restream.rtmp_server import RtmpServer
from streamctl.restream.supervisor import Supervisor

from .conftest import free_port
from .receivers import BlackHole, Feed, Relay, RtmpReceiver, pid_alive, self_signed_cert, wait_for

# Quick judgements for tests; the small socket buffer makes a stalled receiver push back within moments
# at this test feed's 600 kbit/s (the default 512 KiB does the same at real bitrates).
FAST = Timing(live_after_s=1.0, start_timeout_s=6.0, stall_s=3.0, rw_timeout_s=2.0, stop_grace_s=2.0,
              send_buffer=64 * 1024, backoff=Backoff(base_s=0.3, cap_s=1.5))
FPS = 30


class Stage:
    """A program fed by a test pattern, a bus, a supervisor, and the destinations and receivers of one test."""

    def __init__(self) -> None:
        self.program = Program()
        self.bus = Bus()
        self.supervisor = Supervisor(grace_s=2.0)
        self.feed = Feed(self.program)
        self.destinations: list[Destination] = []
        self.receivers: list[RtmpReceiver] = []
        self.others: list = []
        self.events = self.bus.subscribe(DestinationStateChanged, maxsize=10000, name="test")
        self.transitions: list[DestinationStateChanged] = []
        self.pids: set[int] = set()

    async def receiver(self, port: int | None = None) -> RtmpReceiver:
        rx = await RtmpReceiver(port or free_port()).start()
        self.receivers.append(rx)
        return rx

    def destination(self, name: str, url: str, key: str | None = None, profile: str = "copy",
                    platform: str = "custom", timing: Timing = FAST) -> Destination:
        config = DestinationConfig(name=name, platform=platform, url=url, key=key, key_env="K" if key else None,
                                   profile=profile)
        dest = Destination(config, self.program, self.bus, self.supervisor, timing)
        self.destinations.append(dest)
        return dest

    def states(self, name: str) -> list[str]:
        """Every state `name` went through so far, in order (from the bus)."""
        while not self.events.queue.empty():
            self.transitions.append(self.events.get_nowait())
        return [e.new for e in self.transitions if e.name == name]

    def note_pids(self) -> None:
        self.pids |= {c.pid for c in self.supervisor.children}

    async def close(self) -> None:
        self.note_pids()
        await asyncio.gather(*(d.stop() for d in self.destinations))
        await self.feed.stop()
        for rx in self.receivers:
            await rx.kill()
        for part in self.others:
            await part.stop()
        self.events.close()


@pytest.fixture
async def stage():
    s = Stage()
    await s.feed.start()
    try:
        yield s
    finally:
        await s.close()
        assert not s.supervisor.children
        assert not [pid for pid in s.pids if pid_alive(pid)], "ffmpeg left running after stop"


def assert_continuous(rx: RtmpReceiver, since: float, until: float) -> None:
    """The receiver got one unbroken stream over [since, until]: no reconnect, no hole in time or timestamps."""
    assert rx.sessions == 1, f"receiver on {rx.port} saw {rx.sessions} publishers, expected 1"
    dts_gap, arrival_gap = rx.largest_gap(since)
    assert dts_gap <= 100, f"a {dts_gap} ms hole in the timestamps"
    assert arrival_gap < 1.0, f"nothing arrived for {arrival_gap:.2f} s"
    got = len([f for f in rx.video if since <= f.at <= until])
    expected = (until - since) * FPS
    assert got >= 0.8 * expected, f"{got} frames in {until - since:.1f} s, expected about {expected:.0f}"


async def test_three_live_one_receiver_dies_and_returns_others_keep_every_frame(stage):
    rxs = [await stage.receiver() for _ in range(3)]
    dests = [stage.destination(f"d{i}", rx.url, key=f"key-{i}-secret") for i, rx in enumerate(rxs)]
    loop = asyncio.get_running_loop()
    started = loop.time()
    for d in dests:
        d.start()
    await wait_for(lambda: all(len(rx.video) > FPS for rx in rxs), 10, "frames at every receiver")
    await wait_for(lambda: all(d.state == "live" for d in dests), 5, "every destination live")
    all_receiving_s = loop.time() - started
    assert all(rx.streams[0].codec == "h264" for rx in rxs)
    assert all(d.health()["bitrate_kbps"] > 100 and d.health()["fps"] >= 0 for d in dests)
    stage.note_pids()

    since = loop.time()
    port = rxs[1].port
    await rxs[1].kill()
    await wait_for(lambda: dests[1].state == "backoff", 8, "the destination whose receiver died to back off")
    assert dests[1].health()["last_error"]
    back = await stage.receiver(port)
    await wait_for(lambda: dests[1].state == "live" and len(back.video) > FPS, 10, "the reconnect")
    await asyncio.sleep(0.5)
    until = loop.time()

    for rx in (rxs[0], rxs[2]):
        assert_continuous(rx, since, until)
    assert dests[1].reconnects >= 1
    assert stage.states("d1")[:2] == ["starting", "live"]
    assert "backoff" in stage.states("d1") and stage.states("d1")[-1] == "live"
    assert stage.states("d0") == ["starting", "live"] and stage.states("d2") == ["starting", "live"]
    assert all_receiving_s < 6


async def test_a_receiver_that_comes_back_is_retried_before_the_backoff_ends(stage):
    port = free_port()
    dest = stage.destination("late", f"rtmp://127.0.0.1:{port}/live", timing=replace(FAST, backoff=Backoff(base_s=6)))
    dest.start()
    await wait_for(lambda: dest.state == "backoff", 10, "backoff: nobody listens yet")
    assert "Connection refused" in dest.error and "retrying in" in dest.error
    # A platform's ingest takes many connections (ffmpeg -listen takes one, and the early check would use it up).
    rx = RtmpServer.receiver("127.0.0.1", port)
    await rx.start()
    try:
        back = time.time()
        await wait_for(lambda: rx.first_frame_at, 5, "frames soon after the receiver came back, before the 6 s backoff")
        assert rx.first_frame_at - back < 4.0 and dest.reconnects == 1
    finally:
        await rx.close()


async def test_black_hole_backs_off_within_seconds_others_unaffected(stage, caplog):
    caplog.set_level(logging.DEBUG)
    hole = await BlackHole().start()
    stage.others.append(hole)
    rx = await stage.receiver()
    good = stage.destination("good", rx.url, key="good-key-1234")
    bad = stage.destination("hole", f"rtmp://127.0.0.1:{hole.port}/live", key="hole-secret-5678")
    loop = asyncio.get_running_loop()
    good.start()
    await wait_for(lambda: good.state == "live", 10, "the good destination live")
    since = loop.time()
    bad.start()
    await wait_for(lambda: bad.state == "backoff", 8, "the black-hole destination to time out")
    took = loop.time() - since
    assert hole.accepted >= 1
    assert "timed out" in (bad.error or "").lower() or "no output" in (bad.error or "")
    await asyncio.sleep(1.0)
    assert_continuous(rx, since, loop.time())
    assert took < 7
    text = caplog.text + repr(bad.describe()) + (bad.error or "") + str(bad.tail.lines)
    assert "hole-secret-5678" not in text and "good-key-1234" not in text
    assert bad.describe()["url"] == f"rtmp://127.0.0.1:{hole.port}/live/****"


async def test_receiver_that_stops_reading_is_detected(stage):
    rx = await stage.receiver()
    relay = await Relay(rx.port).start()
    stage.others.append(relay)
    dest = stage.destination("stall", f"rtmp://127.0.0.1:{relay.port}/live", key="k-stall")
    dest.start()
    await wait_for(lambda: dest.state == "live" and len(rx.video) > FPS, 10, "live through the relay")
    loop = asyncio.get_running_loop()
    since = loop.time()
    relay.stall()
    await wait_for(lambda: dest.state == "backoff", 20, "the stalled destination to back off")
    assert loop.time() - since < 15
    assert dest.error


async def test_rtmps_output_arrives_through_tls(stage, tmp_path):
    rx = await stage.receiver()
    terminator = await Relay(rx.port, tls=self_signed_cert(tmp_path)).start()
    stage.others.append(terminator)
    dest = stage.destination("tls", f"rtmps://127.0.0.1:{terminator.port}/live", key="tls-key")
    dest.start()
    await wait_for(lambda: len(rx.video) > 2 * FPS and dest.state == "live", 12, "frames over RTMPS, live")
    assert rx.streams[0].codec == "h264"


async def test_srt_output_arrives(stage):
    rx = await RtmpReceiver(free_port(), scheme="srt").start()
    stage.receivers.append(rx)
    dest = stage.destination("srt", rx.url)
    dest.start()
    await wait_for(lambda: len(rx.video) > 2 * FPS and dest.state == "live", 12, "frames over SRT, live")
    assert rx.streams[0].codec == "h264"


async def test_refused_key_gives_up_as_failed(stage):
    server = RtmpServer("127.0.0.1", 0, app="live", key="the-right-key")
    await server.start()
    stage.others.append(SimpleNamespace(stop=server.close))
    timing = replace(FAST, refused_limit=3)
    dest = stage.destination("yt", server.url, key="a-wrong-key-555", platform="youtube", timing=timing)
    dest.start()
    await wait_for(lambda: dest.state == "failed", 20, "failed after refusals")
    # Three attempts and not one connection more: a platform that refused the key is never polled.
    assert server.counters["refused_total"] == server.counters["connections_total"] == 3
    # ffmpeg names the URL it was given: the server and app only, the key reached it through a pipe (hidden.py).
    assert dest.error == "refused 3 times in a row: rtmp: Server error: invalid stream key; " \
        f"{server.url}: Operation not permitted"
    assert "a-wrong-key-555" not in dest.error
    assert stage.states("yt") == ["starting", "backoff", "starting", "backoff", "starting", "failed"]


async def test_portrait_profile_arrives_as_720x1280_with_2s_keyframes(stage):
    rx = await stage.receiver()
    dest = stage.destination("tiktok", rx.url, key="tt-key", profile="portrait-720p")
    dest.start()
    await wait_for(lambda: len([f for f in rx.video if f.key]) >= 3, 20, "three keyframes of the portrait output")
    assert rx.dimensions() == {"720x1280"}
    keys = [f.dts for f in rx.video if f.key]
    assert all(1900 <= b - a <= 2100 for a, b in zip(keys, keys[1:], strict=False)), keys
    assert any(s.codec == "aac" for s in rx.streams.values())


async def test_expired_key_fails_without_starting_ffmpeg(stage):
    dest = stage.destination("tiktok", "rtmp://127.0.0.1:1/game", key="stream-1?expire=1000000000&sign=ab12cd",
                             platform="tiktok")
    dest.start()
    await wait_for(lambda: dest.state == "failed", 3, "failed")
    assert "expired" in dest.error and "sign=ab12cd" not in dest.error
    assert not stage.supervisor.children
    assert key_expiry("rtmp://h/game/stream-1?expire=1700000000&sign=x") == 1700000000.0


async def test_unknown_encoder_is_a_permanent_failure(stage, monkeypatch):
    rx = await stage.receiver()
    monkeypatch.setitem(PROFILES, "broken", Profile("broken", "an encoder this ffmpeg lacks", width=320,
                                                    height=240, video_kbps=300, extra={"c:v": "no_such_264"}))
    dest = stage.destination("broken", rx.url, profile="broken")
    dest.start()
    await wait_for(lambda: dest.state == "failed", 15, "failed")
    assert "no_such_264" in dest.error
    assert stage.states("broken") == ["starting", "failed"]


async def test_missing_ffmpeg_is_a_clear_failure(stage, monkeypatch, tmp_path):
    monkeypatch.setenv("STREAMCTL_FFMPEG", str(tmp_path / "no-ffmpeg-here"))
    ffmpeg_source.cache_clear()
    try:
        dest = stage.destination("nowhere", "rtmp://127.0.0.1:1/live")
        dest.start()
        await wait_for(lambda: dest.state == "failed", 5, "failed")
    finally:
        ffmpeg_source.cache_clear()
    assert dest.error == f"cannot start ffmpeg '{tmp_path / 'no-ffmpeg-here'}': No such file or directory"


async def test_stop_and_start_again_touch_nothing_else(stage):
    rxs = [await stage.receiver() for _ in range(2)]
    a, b = (stage.destination(n, rx.url, key=f"{n}-key") for n, rx in zip("ab", rxs, strict=True))
    a.start()
    b.start()
    await wait_for(lambda: a.state == b.state == "live", 10, "both live")
    stage.note_pids()
    pid_b = b.child.pid
    loop = asyncio.get_running_loop()
    since = loop.time()
    await b.stop()
    assert b.state == "stopped" and not pid_alive(pid_b)
    b.start()
    await wait_for(lambda: b.state == "live", 10, "b live again")
    await b.restart()
    await wait_for(lambda: rxs[1].sessions == 3, 10, "b's third session at its receiver")
    assert_continuous(rxs[0], since, loop.time())


def test_backoff_grows_with_jitter_up_to_the_cap():
    policy = Backoff(base_s=1, factor=2, cap_s=30, jitter=0.2)
    delays = [policy.delay(n) for n in range(8)]
    assert 0.8 <= delays[0] <= 1.2 and 1.6 <= delays[1] <= 2.4 and 3.2 <= delays[2] <= 4.8
    assert all(d <= 36 for d in delays) and delays[-1] >= 24
    assert len({round(policy.delay(3), 6) for _ in range(20)}) > 1  # jittered, not all alike


def test_display_url_masks_the_key():
    config = DestinationConfig(name="fb", platform="facebook", url="rtmps://live-api-s.facebook.com:443/rtmp/",
                               key="123?s_bl=1&a=Abw")
    assert config.display_url == mask_url(config.publish_url) == "rtmps://live-api-s.facebook.com:443/rtmp/****?****"
