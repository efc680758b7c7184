"""The confidence monitor against real ffmpeg: a fresh picture, meters that follow the sound, and black, frozen and
silent programs raised after their time and resolved when the program returns (lavfi sources as the program)."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from streamctl.config import MonitorConfig
from streamctl.events import Alert, Bus, ProgramLevels
from streamctl.restream.ffmpeg import find_ffmpeg
from streamctl.restream.monitor import Monitor
from streamctl.restream.program import Program
from streamctl.restream.supervisor import Supervisor

from .console_harness import running_console
from .receivers import Feed, pid_alive, wait_for

QUICK = MonitorConfig(preview_fps=2, preview_width=240, black_after_s=1.5, frozen_after_s=2.0, silent_after_s=1.5)
MOVING = "testsrc2=size=320x180:rate=25"
TONE = "sine=frequency=1000:sample_rate=48000"
QUIET = "anullsrc=channel_layout=stereo:sample_rate=48000"


class LavfiFeed(Feed):
    """A program made from any lavfi video and audio source (x264 + AAC, FLV), published as the ingest would."""

    def __init__(self, program: Program, video: str, audio: str | None):
        super().__init__(program, audio=False)
        argv = [find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", video]
        if audio:
            argv += ["-re", "-f", "lavfi", "-i", audio]
        argv += ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
                 "-g", "25", "-b:v", "300k"]
        if audio:
            argv += ["-c:a", "aac", "-b:a", "64k", "-ac", "2"]
        self.argv = [*argv, "-flush_packets", "1", "-f", "flv", "pipe:1"]


class Bench:
    """A program, the monitor on it, the alerts it raises, and whichever feed is on air now."""

    def __init__(self, config: MonitorConfig = QUICK, covered=lambda: False):
        self.program = Program()
        self.bus = Bus()
        self.supervisor = Supervisor(grace_s=2.0)
        self.alerts = self.bus.subscribe(Alert, maxsize=1000, name="test.alerts")
        self.levels = self.bus.subscribe(ProgramLevels, maxsize=10000, name="test.levels")
        self.monitor = Monitor(config, self.program, self.bus, self.supervisor, covered=covered)
        self.feed: LavfiFeed | None = None
        self.pids: set[int] = set()

    async def show(self, video: str, audio: str | None = TONE) -> None:
        """Cut the program to another source, as a switcher would."""
        if self.feed is not None:
            await self.feed.stop()
        self.feed = await LavfiFeed(self.program, video, audio).start()

    def raised(self) -> list[tuple[str, bool]]:
        """(code, resolved) of every alert so far, in order."""
        return [(a.code, a.resolved) for a in list(self.alerts.queue._queue)]

    async def close(self) -> None:
        self.pids |= {c.pid for c in self.supervisor.children}
        await self.monitor.stop()
        if self.feed is not None:
            await self.feed.stop()
        self.alerts.close()
        self.levels.close()


@pytest.fixture
async def bench():
    b = Bench()
    try:
        yield b
    finally:
        await b.close()
        assert not b.supervisor.children
        assert not [pid for pid in b.pids if pid_alive(pid)], "the monitor's ffmpeg outlived it"


def decodes_as_jpeg(data: bytes) -> str:
    """The picture's size as ffmpeg reads it (it must decode as a JPEG)."""
    done = subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "mjpeg", "-i", "pipe:0",
                           "-f", "framecrc", "-"], input=data, capture_output=True, timeout=20, check=True)
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    assert b"0," in done.stdout, done.stderr
    probe = subprocess.run([find_ffmpeg(), "-hide_banner", "-f", "mjpeg", "-i", "pipe:0"], input=data,
                           capture_output=True, timeout=20, check=False)
    return probe.stderr.decode(errors="replace")


async def test_the_preview_is_a_jpeg_never_older_than_two_seconds(bench):
    await bench.show(MOVING)
    bench.monitor.start()
    await wait_for(lambda: bench.monitor.preview() is not None, 15, "a first picture")
    assert "240x136" in decodes_as_jpeg(bench.monitor.preview().jpeg)
    first = bench.monitor.pictures
    ages = []
    for _ in range(12):  # three seconds, every quarter second
        await asyncio.sleep(0.25)
        picture = bench.monitor.preview()
        assert picture is not None, "the preview went stale while the program flows"
        ages.append(picture.age_s())
        assert abs(picture.at - time.time()) <= 2.0
    assert max(ages) <= 2.0 and bench.monitor.pictures >= first + 4  # about 2 a second
    assert bench.monitor.state == "live" and bench.raised() == []
    await bench.feed.stop()
    await wait_for(lambda: bench.monitor.preview() is None, 5, "no fresh picture once the program stops")


async def test_meters_move_with_a_tone_and_fall_with_silence_which_raises_program_silent(bench):
    await bench.show(MOVING, TONE)
    bench.monitor.start()
    await wait_for(lambda: len(bench.monitor.levels()["rms_db"]) == 2, 15, "levels of two channels")
    await asyncio.sleep(0.6)  # past the encoder's first block (AAC priming is silent)
    levels = bench.monitor.levels()
    # lavfi's sine is at 1/8 full scale (-18 dBFS), made stereo at -3 dB each: a peak near -21 dBFS, and the
    # RMS of a sine 3 dB under its peak.
    assert all(-23 < p < -19 for p in levels["peak_db"]), levels
    assert all(2.5 < p - r < 3.5 for p, r in zip(levels["peak_db"], levels["rms_db"], strict=True)), levels
    assert not bench.levels.queue.empty()
    await bench.show(MOVING, QUIET)
    await wait_for(lambda: bench.monitor.levels()["rms_db"] and max(bench.monitor.levels()["rms_db"]) <= -100,
                   10, "the meters to fall")
    await wait_for(lambda: ("program.silent", False) in bench.raised(), 8, "program.silent")
    assert bench.monitor.describe()["silent"]
    await bench.show(MOVING, TONE)
    await wait_for(lambda: ("program.silent", True) in bench.raised(), 10, "program.silent resolved")
    # The reading that resolved it may still average in the last quiet block; the next ones are the tone's.
    await wait_for(lambda: min(bench.monitor.levels()["rms_db"] or [-120]) > -26, 5, "the meters back up")
    codes = {code for code, _ in bench.raised()}
    assert codes == {"program.silent"}, bench.raised()


async def test_a_black_program_raises_black_only_and_clears_when_the_picture_returns(bench):
    await bench.show(MOVING)
    bench.monitor.start()
    await wait_for(lambda: bench.monitor.state == "live", 15, "the monitor live")
    await bench.show("color=black:size=320x180:rate=25")
    await wait_for(lambda: ("program.black", False) in bench.raised(), 10, "program.black")
    alert = next(a for a in bench.alerts.queue._queue if a.code == "program.black")
    assert alert.source == "program" and alert.params["seconds"] >= 1
    await asyncio.sleep(QUICK.frozen_after_s + 0.5)  # black is still too: only the stronger alert is raised
    await bench.show(MOVING)
    await wait_for(lambda: ("program.black", True) in bench.raised(), 10, "program.black resolved")
    assert bench.raised() == [("program.black", False), ("program.black", True)]


async def test_a_frozen_program_raises_frozen_and_clears_when_it_moves(bench):
    await bench.show(MOVING)
    bench.monitor.start()
    await wait_for(lambda: bench.monitor.state == "live", 15, "the monitor live")
    await bench.show("smptebars=size=320x180:rate=25")
    await wait_for(lambda: ("program.frozen", False) in bench.raised(), 10, "program.frozen")
    await bench.show(MOVING)
    await wait_for(lambda: ("program.frozen", True) in bench.raised(), 10, "program.frozen resolved")
    assert bench.raised() == [("program.frozen", False), ("program.frozen", True)]


async def test_nothing_is_raised_while_the_slate_covers_the_program():
    bench = Bench(covered=lambda: True)
    try:
        await bench.show("color=black:size=320x180:rate=25", QUIET)
        bench.monitor.start()
        await wait_for(lambda: bench.monitor.state == "live", 15, "the monitor live")
        await asyncio.sleep(3.0)
        assert bench.monitor.black.since is not None and bench.raised() == []
    finally:
        await bench.close()


async def test_the_console_serves_the_preview_and_the_levels(tmp_path):
    tables = '[ingest]\nurl = "testsrc"\n[monitor]\npreview_fps = 2\npreview_width = 320\n'
    async with running_console(tmp_path, tables=tables) as console:
        client = await console.client("op")
        await wait_for(lambda: console.controller.restreamer.monitor.preview() is not None, 20, "a picture")
        async with client.session.get(f"{console.url}/api/ingest/preview.jpg") as r:
            assert r.status == 200 and r.content_type == "image/jpeg"
            assert r.headers["Cache-Control"] == "no-store" and int(r.headers["X-Preview-Age-Ms"]) <= 2000
            assert "320x180" in decodes_as_jpeg(await r.read())
        await wait_for(lambda: console.controller.restreamer.monitor.levels()["rms_db"], 10, "levels")
        status, body = await client.call("GET", "/api/ingest")
        channels = body["probe"]["channels"]  # one meter per channel of the program
        assert status == 200 and channels and len(body["audio"]["peak_db"]) == len(body["audio"]["rms_db"]) == channels
        assert body["monitor"]["state"] == "live" and body["monitor"]["preview_at"]
        async with client.session.get(f"{console.url}/metrics") as r:
            metrics = await r.text()
        assert 'streamctl_program_condition{condition="black"} 0' in metrics
        assert 'streamctl_program_rms_db{channel="1"} -' in metrics
        moderator = await console.client("mod1")
        async with moderator.session.get(f"{console.url}/api/ingest/preview.jpg") as r:
            assert r.status == 403


def test_monitor_keys_are_checked_one_by_one(tmp_path):
    from streamctl.config import ConfigError, load_event

    path = tmp_path / "e.toml"
    path.write_text('[event]\nname = "m"\n[ingest]\nurl = "testsrc"\n[monitor]\npreview_fps = 0\n'
                    'silence_db = 3\nblack_after = 2\nenabled = "yes"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_event(path, environ={})
    issues = "\n".join(caught.value.issues)
    assert "monitor.preview_fps: 0 is out of range, expected a number from 1 to 10" in issues
    assert "monitor.silence_db: 3 is out of range" in issues
    assert "monitor.black_after: unknown key" in issues
    assert "monitor.enabled: 'yes' is a str, expected true or false" in issues
    path.write_text('[event]\nname = "m"\n[ingest]\nurl = "testsrc"\n[monitor]\nblack_after_s = 2.5\n',
                    encoding="utf-8")
    monitor = load_event(path, environ={}).monitor
    assert monitor.black_after_s == 2.5 and monitor.frozen_after_s == 20.0 and monitor.enabled


def test_meters_count_only_whole_blocks_so_every_channel_is_there():
    from streamctl.restream.monitor import Meters

    meters = Meters()
    head = "[Parsed_ametadata_2 @ 0x5564] frame:{n}    pts:0       pts_time:0"
    level = "[Parsed_ametadata_2 @ 0x5564] lavfi.astats.{c}.{what}={db}"
    for n, (left, right) in enumerate([(-6.0, -12.0), (-9.0, "-inf")]):
        meters.line(head.format(n=n), float(n))
        for c, db in ((1, left), (2, right)):
            meters.line(level.format(c=c, what="Peak_level", db=db), float(n))
            meters.line(level.format(c=c, what="RMS_level", db=db), float(n))
    meters.line(head.format(n=2), 2.0)
    meters.line(level.format(c=1, what="Peak_level", db=-3.0), 2.0)  # a block half read: not counted yet
    peaks, rms = meters.read()
    # Two whole blocks: the highest peak of each channel, RMS by energy; -inf (digital silence) is the floor.
    assert peaks == (-6.0, -12.0) and rms[0] == -7.2 and len(rms) == 2
    assert meters.read() is None  # nothing whole since


async def test_a_program_that_stops_is_not_called_black():
    from dataclasses import replace

    bench = Bench(replace(QUICK, black_after_s=4.0))
    try:
        await bench.show("color=black:size=320x180:rate=25")
        bench.monitor.start()
        await wait_for(lambda: bench.monitor.black.since is not None, 15, "the black picture seen")
        await bench.feed.stop()  # the ingest is lost: ingest.lost says so, not program.black
        bench.feed = None
        await asyncio.sleep(5.0)
        assert bench.raised() == [] and bench.monitor.black.since is None
    finally:
        bench.pids |= {c.pid for c in bench.supervisor.children}
        await bench.close()
