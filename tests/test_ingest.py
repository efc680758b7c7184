"""The ingest with real ffmpeg on loopback: RTMP publishers, an SRT caller, files, testsrc, pulls, failures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from pathlib import Path

import pytest
from aiohttp import web

from streamctl.config import IngestConfig
from streamctl.events import Alert, Bus, IngestStateChanged
from streamctl.restream.commands import ingest_argv as ffmpeg_argv
from streamctl.restream.drawtext import FONT, filter_value
from streamctl.restream.flv import VIDEO, FlvReader, Tag
from streamctl.restream.ingest import Ingest
from streamctl.restream.program import Program
from streamctl.restream.supervisor import Supervisor
from tests.conftest import LOOPBACK, free_port
from tests.ingest_media import FFMPEG, encode_args, make_file, publish_rtmp, run, until

KEY = "ingest-Key-90210"
EVENT_NAME = "Kỳ họp HĐND tỉnh — phiên chất vấn"


class Rig:
    """An Ingest running under test: its program tapped by a reader, its bus events collected."""

    def __init__(self, config: IngestConfig | None, **options):
        self.program = Program()
        self.bus = Bus()
        self.supervisor = Supervisor(grace_s=0.5)
        self.events = self.bus.subscribe(IngestStateChanged, name="test")
        self.alerts = self.bus.subscribe(Alert, name="test.alerts")
        self.ingest = Ingest(config, self.program, self.bus, self.supervisor, EVENT_NAME, **options)
        self.reader = self.program.reader("test")
        self.tags: list[Tag] = []
        self.seen: list[IngestStateChanged] = []

    def states(self) -> list[str]:
        while not self.events.queue.empty():
            self.seen.append(self.events.get_nowait())
        return [e.state for e in self.seen]

    def video(self) -> list[Tag]:
        return [t for t in self.tags if t.kind == VIDEO and not t.is_sequence_header]

    async def _tap(self) -> None:
        parser = FlvReader()
        while data := await self.reader.read():
            self.tags += parser.feed(data)

    @contextlib.asynccontextmanager
    async def running(self):
        run = asyncio.create_task(self.ingest.run(), name="ingest")
        tap = asyncio.create_task(self._tap(), name="tap")
        try:
            yield self
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            self.reader.close()
            await asyncio.gather(tap, return_exceptions=True)
        # Cancelled: every child gone, the state says so.
        assert self.supervisor.children == []
        assert self.ingest.state == "stopped" and self.states()[-1] == "stopped"


def monotonic(tags: list[Tag]) -> bool:
    stamps = [t.timestamp for t in tags]
    return stamps == sorted(stamps)


def rtmp_config(port: int) -> IngestConfig:
    return IngestConfig(url=f"rtmp://{LOOPBACK}:{port}/live", kind="rtmp_listen", key_env="INGEST_KEY", key=KEY)


# ---- RTMP listen -----------------------------------------------------------------------------------


async def test_rtmp_publishers_feed_the_program_and_a_reconnect_continues_the_timeline():
    port = free_port()
    rig = Rig(rtmp_config(port))
    async with rig.running():
        await until(lambda: rig.ingest.server and rig.ingest.server.port == port, 5, "the listener")
        url = f"rtmp://{LOOPBACK}:{port}/live/{KEY}"
        first = asyncio.create_task(publish_rtmp(url, 1.5, gop=30))
        await until(lambda: rig.ingest.state == "live", 10, "the first publisher to be live")
        status = rig.ingest.status()
        assert status["publisher"].startswith(f"{LOOPBACK}:") and status["kind"] == "rtmp_listen"
        assert status["url"] == f"rtmp://{LOOPBACK}:{port}/live" and KEY not in str(status)
        assert (await first)[0] == 0
        await until(lambda: rig.ingest.state == "lost", 5, "the first publisher to be gone")
        first_feed = rig.video()
        assert first_feed and monotonic(first_feed)
        code, err = await publish_rtmp(url, 1.5, gop=30)
        assert code == 0, err
        await until(lambda: rig.ingest.state == "lost" and rig.ingest.feeds == 2, 5, "the second feed to end")
        await until(lambda: len(rig.video()) >= 80, 5, "both feeds to reach the reader")
    states = rig.states()
    assert states[:2] == ["waiting", "live"] and states.count("lost") == 2 and states.count("live") >= 4
    ready = [e.probe for e in rig.seen if e.state == "live" and e.probe.get("ready")]
    assert len(ready) == 2 and ready[0]["width"] == 640 and ready[0]["keyframe_interval_s"] == pytest.approx(1.0)
    lost = [e.error for e in rig.seen if e.state == "lost"]
    assert all(e.endswith("publisher stopped") for e in lost)
    video = rig.video()
    assert monotonic(video), "timestamps must continue across publishers"
    second_start = video[len(first_feed)].timestamp
    assert second_start > first_feed[-1].timestamp
    assert video[-1].timestamp == pytest.approx(3000, abs=250)  # two 1.5 s feeds, back to back


async def test_wrong_key_or_app_never_reaches_the_program():
    port = free_port()
    rig = Rig(rtmp_config(port))
    async with rig.running():
        await until(lambda: rig.ingest.server and rig.ingest.server.port == port, 5, "the listener")
        code, err = await publish_rtmp(f"rtmp://{LOOPBACK}:{port}/live/wrong-key-123", 1, realtime=False)
        assert code != 0 and "invalid stream key" in err
        refused = await until(lambda: rig.ingest.status()["refused"], 2, "the refusal on the status")
        assert refused["address"].startswith(f"{LOOPBACK}:") and refused["reason"] == "wrong stream key on app 'live'"
        code, err = await publish_rtmp(f"rtmp://{LOOPBACK}:{port}/other/{KEY}", 1, realtime=False)
        assert code != 0
        assert rig.program.tags_in == 0 and rig.ingest.state == "waiting" and rig.ingest.feeds == 0
        await until(lambda: rig.ingest.status()["refused"]["reason"] == "app 'other' is not 'live'", 2, "the second")
        status = rig.ingest.status()
        assert status["refused"]["at"] > refused["at"]
        assert status["inputs"][0]["refused"] == status["refused"] and KEY not in str(status)
    alerts = [rig.alerts.get_nowait() for _ in range(rig.alerts.queue.qsize())]
    assert [(a.code, a.source, a.params["reason"]) for a in alerts] == [
        ("ingest.refused", "ingest:primary", "wrong stream key on app 'live'"),
        ("ingest.refused", "ingest:primary", "app 'other' is not 'live'")]
    assert all(a.params["address"].startswith(f"{LOOPBACK}:") and "wrong-key-123" not in str(a) for a in alerts)


async def test_a_busy_port_is_reported_and_retried():
    with socket.socket() as busy:
        busy.bind((LOOPBACK, 0))
        busy.listen()
        port = busy.getsockname()[1]
        rig = Rig(rtmp_config(port), backoff_s=(0.1,))
        async with rig.running():
            await until(lambda: rig.ingest.error, 5, "the error")
            assert f"cannot listen on {LOOPBACK}:{port}" in rig.ingest.error
            busy.close()
            await until(lambda: rig.ingest.error is None, 5, "the listener once the port is free")
            code, err = await publish_rtmp(f"rtmp://{LOOPBACK}:{port}/live/{KEY}", 0.5, realtime=False)
            assert code == 0, err
            assert rig.ingest.feeds == 1


# ---- SRT listen ------------------------------------------------------------------------------------


async def srt_push(port: int, passphrase: str, seconds: float, attempts: int, until_said: str = "") -> str:
    """Push MPEG-TS over SRT as a caller; tries again while the listener is not up yet. Returns ffmpeg's stderr."""
    url = f"srt://{LOOPBACK}:{port}?passphrase={passphrase}&pbkeylen=16&latency=100000&connect_timeout=1000"
    err = ""
    for _ in range(attempts):
        code, err = await run(encode_args(seconds, gop=30) + ["-f", "mpegts", url], seconds + 10)
        if (code == 0 and not until_said) or (until_said and until_said in err):
            return err
    raise AssertionError(f"SRT push never got as far as expected: {err[-300:]}")


async def test_srt_listener_takes_only_the_right_passphrase():
    port = free_port()
    passphrase = "srt-pass-phrase-1"
    config = IngestConfig(url=f"srt://{LOOPBACK}:{port}?mode=listener&latency=100000", kind="srt_listen",
                          key_env="SRT_PASS", key=passphrase)
    rig = Rig(config, backoff_s=(0.2,))
    async with rig.running():
        # The listener answers a wrong passphrase with a rejection (not a time-out): it was there, and said no.
        await srt_push(port, "wrong-pass-phrase", 1, attempts=8, until_said="Incorrect passphrase")
        assert rig.program.tags_in == 0 and rig.ingest.state != "live"
        await srt_push(port, passphrase, 2, attempts=5)
        await until(lambda: rig.ingest.probe.ready, 5, "the probe to see the SRT feed")
        facts = rig.ingest.status()["probe"]
        assert (facts["video_codec"], facts["width"], facts["audio_codec"]) == ("h264", 640, "aac")
        assert passphrase not in str(rig.ingest.status()) and all(passphrase not in str(e) for e in rig.seen)


async def test_a_bad_srt_passphrase_is_reported_and_not_retried():
    config = IngestConfig(url=f"srt://{LOOPBACK}:{free_port()}?mode=listener", kind="srt_listen", key="short")
    rig = Rig(config)
    async with rig.running():
        await until(lambda: rig.ingest.error, 5, "the error")
        assert rig.ingest.error == "the SRT passphrase has 5 characters, expected 10 to 79"
        assert rig.supervisor.children == []


# ---- file, testsrc, pull ---------------------------------------------------------------------------


async def test_a_file_loops_in_real_time(tmp_path):
    path = await make_file(tmp_path / "clip.mp4", 1.0, size="320x180", gop=15)
    rig = Rig(IngestConfig(url=str(path), kind="file"))
    async with rig.running():
        loop = asyncio.get_running_loop()
        await until(lambda: rig.video(), 10, "the first frames")
        started = loop.time()
        await until(lambda: rig.video()[-1].timestamp >= 3100, 10, "the file to loop twice")
        took = loop.time() - started
    video = rig.video()
    assert monotonic(video) and rig.ingest.feeds == 1 and rig.ingest.restarts == 0
    assert took > 2.5, "played faster than real time"
    # Three passes of 30 frames (the clip is 1 s at 30 fps), timestamps carried on across the loop.
    assert len([t for t in video if t.timestamp < 3000]) == pytest.approx(90, abs=2)


async def test_testsrc_has_a_keyframe_every_two_seconds():
    rig = Rig(IngestConfig(url="testsrc", kind="testsrc"), realtime=False)
    async with rig.running():
        await until(lambda: len(rig.ingest.probe.keyframe_intervals()) >= 3, 30, "three keyframe intervals")
        facts = rig.ingest.status()["probe"]
    assert rig.ingest.probe.keyframe_intervals()[:3] == [2.0, 2.0, 2.0]
    assert (facts["width"], facts["height"], facts["fps"]) == (1280, 720, 30.0)
    assert (facts["audio_codec"], facts["sample_rate"], facts["channels"]) == ("aac", 48000, 2)
    assert facts["audio_kbps"] == pytest.approx(128, rel=0.15)
    keyframes = [t.timestamp for t in rig.video() if t.is_keyframe]
    assert [b - a for a, b in zip(keyframes, keyframes[1:], strict=False)][:3] == [2000, 2000, 2000]


@pytest.mark.skipif(not FONT.is_file(), reason="needs fonts-dejavu-core")
@pytest.mark.parametrize("name", [EVENT_NAME, "It's 100% \\ done: [a], b; c = 'x'", "  spaces  "])
async def test_event_name_is_drawn_literally(tmp_path, name):
    """The escaped name draws exactly what drawtext draws from a file holding the raw text."""
    (tmp_path / "name.txt").write_text(name, encoding="utf-8")

    async def frame(text_option: str) -> bytes:
        vf = (f"drawtext=fontfile={filter_value(str(FONT))}:expansion=none:{text_option}:fontsize=28"
              ":fontcolor=white:x=8:y=40")
        process = await asyncio.create_subprocess_exec(
            FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "color=black:size=720x100",
            "-vf", vf, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0, err.decode()
        return out

    from_option = await frame(f"text={filter_value(name)}")
    from_file = await frame(f"textfile={filter_value(str(tmp_path / 'name.txt'))}")
    assert len(from_option) == 720 * 100 and any(from_option), "nothing was drawn"
    assert from_option == from_file


def test_testsrc_command_carries_the_clock_and_name_and_falls_back_without_font(tmp_path):
    argv = ffmpeg_argv(IngestConfig(url="testsrc", kind="testsrc"), EVENT_NAME)
    vf = argv[argv.index("-vf") + 1]
    assert "%{localtime}" in vf and "Kỳ họp HĐND" in vf and "-re" in argv
    assert argv[argv.index("-g") + 1] == "60" and argv[argv.index("-keyint_min") + 1] == "60"
    from streamctl.restream.commands import testsrc_filter

    assert testsrc_filter(EVENT_NAME, font=tmp_path / "missing.ttf") is None


async def test_pull_over_http_feeds_the_program(tmp_path):
    path = await make_file(tmp_path / "stream.flv", 2.0, size="320x180", gop=30)
    app = web.Application()
    async def serve(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path)

    app.router.add_get("/live/stream.flv", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        rig = Rig(IngestConfig(url=f"http://{LOOPBACK}:{port}/live/stream.flv", kind="pull"), backoff_s=(0.2,))
        async with rig.running():
            await until(lambda: rig.ingest.probe.ready, 10, "the pulled stream to be probed")
            assert rig.ingest.status()["probe"]["width"] == 320
            await until(lambda: rig.ingest.state == "lost", 10, "the end of the pulled file")
            assert rig.ingest.error.startswith("ffmpeg exited with code 0")
            await until(lambda: rig.ingest.feeds == 2, 10, "the pull to start again")
    finally:
        await runner.cleanup()


async def test_an_unreachable_pull_is_lost_with_a_masked_error_and_retried():
    url = f"http://{LOOPBACK}:{free_port()}/live/secret-pull-key-77"
    rig = Rig(IngestConfig(url=url, kind="pull"), backoff_s=(0.1,))
    async with rig.running():
        await until(lambda: rig.ingest.restarts >= 2, 10, "two retries")
        status = rig.ingest.status()
    assert status["state"] == "lost" and "Connection refused" in status["error"]
    assert "secret-pull-key-77" not in str(status) and status["url"].endswith("/live/****")
    assert rig.states()[:2] == ["waiting", "lost"]


async def test_a_dead_or_stalled_child_is_restarted_and_the_timeline_goes_on(tmp_path):
    path = await make_file(tmp_path / "clip.mp4", 1.0, size="320x180", gop=15)
    rig = Rig(IngestConfig(url=str(path), kind="file"), stall_s=1.0, backoff_s=(0.2,))
    async with rig.running():
        await until(lambda: len(rig.video()) > 10, 10, "the first frames")
        os.kill(rig.supervisor.children[0].pid, signal.SIGKILL)
        await until(lambda: rig.ingest.feeds == 2 and len(rig.video()) > 30, 10, "a new child after the kill")
        os.kill(rig.supervisor.children[0].pid, signal.SIGSTOP)  # alive but silent: a stall
        await until(lambda: rig.ingest.feeds == 3 and len(rig.video()) > 50, 10, "a new child after the stall")
    errors = [e.error for e in rig.seen if e.state == "lost"]
    assert errors[0].startswith("ffmpeg exited with code -9") and errors[1] == "no data for 1 s"
    assert rig.ingest.restarts == 2
    assert monotonic(rig.video()), "timestamps must continue across restarts"


async def test_without_an_ingest_nothing_runs():
    rig = Rig(None)
    assert rig.ingest.status()["state"] == "stopped" and rig.ingest.status()["url"] is None
    run_task = asyncio.create_task(rig.ingest.run())
    await asyncio.sleep(0.05)
    assert not run_task.done() and rig.supervisor.children == [] and rig.states() == []
    run_task.cancel()
    await asyncio.gather(run_task, return_exceptions=True)


def test_srt_and_pull_commands_carry_the_key_where_it_belongs():
    srt = IngestConfig(url="srt://0.0.0.0:9000?mode=listener&latency=200000", kind="srt_listen",
                       key="a-good-passphrase")
    assert "srt://0.0.0.0:9000?mode=listener&latency=200000&passphrase=a-good-passphrase" in ffmpeg_argv(srt, "x")
    pull = IngestConfig(url="rtmp://origin.example/live", kind="pull", key="pull-key-1")
    argv = ffmpeg_argv(pull, "x")
    assert "rtmp://origin.example/live/pull-key-1" in argv and "-re" not in argv
    paced = ffmpeg_argv(IngestConfig(url="https://cdn.example/vod/a.mp4", kind="pull"), "x")
    assert "-re" in paced and Path(paced[paced.index("-i") + 1]).name == "a.mp4"
