"""The slate with real ffmpeg on loopback: a publisher lost and back, a real destination and receiver, failures."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from streamctl.config import IngestConfig, load_event
from streamctl.events import Bus, DestinationStateChanged, IngestStateChanged
from streamctl.recorder import Recorder
from streamctl.report.figures import build_report
from streamctl.restream.commands import slate_argv as card_argv
from streamctl.restream.drawtext import FONT
from streamctl.restream.flv import VIDEO, Tag
from streamctl.restream.probe import StreamProbe
from streamctl.restream.restreamer import Restreamer
from streamctl.restream.slate import NoSlate, Slate, card_filter, layout, slate_format
from streamctl.restream.supervisor import Supervisor
from streamctl.store import Store

from .conftest import LOOPBACK, free_port
from .ingest_media import FFMPEG, Publisher, encode_args, run, until
from .receivers import RtmpReceiver, ffmpeg_children, pid_alive, wait_for
from .test_ingest import Rig, monotonic

KEY = "slate-ingest-key-4242"
EVENT_NAME = "Kỳ họp HĐND tỉnh — phiên chất vấn"


def decoded_video(path: Path) -> list[tuple[float, str, int]]:
    """(pts in s, WxH, mean luma) of every video frame of a recording, as a decoder sees it."""
    done = subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v", "-vf", "showinfo",
                           "-f", "null", "-"], capture_output=True, text=True, timeout=60)
    complaints = re.findall(r"\[h264 @[^\]]*\] .*", done.stderr)
    assert not complaints, complaints[:3]  # every picture decodes: the decoder headers changed in step
    frames = re.findall(r"pts_time:\s*([\d.]+).*?\bs:(\d+x\d+).*?mean:\[(\d+)", done.stderr)
    return [(float(t), size, int(y)) for t, size, y in frames]


def decoded_audio(path: Path) -> list[tuple[float, float]]:
    """(pts in s, RMS level in dB; -inf for silence) of every audio frame of a recording."""
    done = subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:a", "-af",
                           "astats=metadata=1:reset=1,ametadata=print:key=lavfi.astats.Overall.RMS_level",
                           "-f", "null", "-"], capture_output=True, text=True, timeout=60)
    pairs = re.findall(r"pts_time:([\d.]+)\s*\n.*?RMS_level=(\S+)", done.stderr)
    return [(float(t), float(level)) for t, level in pairs]


def runs(values: list[bool]) -> list[tuple[bool, int]]:
    """Consecutive runs of equal values: [(value, length), ...]."""
    out: list[tuple[bool, int]] = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1] = (v, out[-1][1] + 1)
        else:
            out.append((v, 1))
    return out


async def test_the_slate_keeps_a_destination_live_while_the_publisher_is_gone(write_event, tmp_path, monkeypatch):
    receiver = await RtmpReceiver(free_port(), respawn=False, record=tmp_path / "received.flv").start()
    port = free_port()
    monkeypatch.setenv("INGEST_KEY", KEY)
    event = load_event(write_event(f"""
        [event]
        name = "{EVENT_NAME}"
        [ingest]
        url = "rtmp://{LOOPBACK}:{port}/live"
        key_env = "INGEST_KEY"
        [[destination]]
        name = "main"
        url = "{receiver.url}"
    """))
    bus = Bus()
    changes = bus.subscribe(DestinationStateChanged, IngestStateChanged, name="test")
    store = Store(tmp_path / "event.db")
    recorder = Recorder(store, bus)  # the stream's history, as `streamctl run` keeps it for the report
    restreamer = Restreamer(event, bus)
    task = asyncio.create_task(restreamer.run())
    url = f"rtmp://{LOOPBACK}:{port}/live/{KEY}"
    publisher = Publisher(encode_args(60) + ["-f", "flv", url])
    dest = restreamer.get("main")
    try:
        await wait_for(lambda: restreamer.ingest.server and restreamer.ingest.server.port == port, 5, "the listener")
        await publisher.start()
        await wait_for(lambda: dest.state == "live" and restreamer.ingest.probe.ready, 15, "the program live")
        live_since = asyncio.get_running_loop().time()
        await asyncio.sleep(1.0)

        await publisher.stop()  # SIGKILL: the switcher's encoder crashed
        await wait_for(lambda: restreamer.ingest_status()["slate"]["on_air"], 5, "the slate on air")
        status = restreamer.ingest_status()
        assert status["state"] == "lost" and status["probe"]["width"] == 640 and status["publisher"] is None
        assert status["slate"]["enabled"] and status["slate"]["times"] == 1 and status["slate"]["since"]
        assert status["slate"]["format"].startswith("640x360 30 fps h264")
        assert set(status) >= {"state", "url", "kind", "probe", "since", "error", "publisher"}
        slate = [c for c in restreamer.supervisor.children if c.name == "slate"]
        assert len(slate) == 1
        frames_at_slate = len(receiver.video)
        await asyncio.sleep(3.0)
        assert len(receiver.video) - frames_at_slate >= 75, "the receiver must keep getting frames from the slate"
        assert dest.state == "live"

        publisher = Publisher(encode_args(60) + ["-f", "flv", url])
        await publisher.start()
        await wait_for(lambda: not restreamer.ingest_status()["slate"]["on_air"], 10, "the program back")
        assert restreamer.ingest_status()["state"] == "live"
        await wait_for(lambda: not pid_alive(slate[0].pid), 5, "the slate's ffmpeg to exit")
        assert all(c.name != "slate" for c in restreamer.supervisor.children)
        await asyncio.sleep(2.0)

        # Lost again, and the event stops while the slate is on air: nothing may be left behind.
        await publisher.stop()
        await wait_for(lambda: restreamer.ingest_status()["slate"]["on_air"], 5, "the slate on air again")
        await asyncio.sleep(0.5)
        pids = {c.pid for c in restreamer.supervisor.children}
        assert dest.state == "live"
    finally:
        await publisher.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert restreamer.supervisor.children == [] and not any(pid_alive(p) for p in pids)
    assert set(ffmpeg_children()) <= {receiver.process.pid}, "only the receiver may be left"
    await wait_for(lambda: receiver.process.returncode is not None, 5, "the receiver to see the end")
    await receiver.kill()

    # The destination never left `live` and never reconnected; the receiver saw one unbroken stream.
    seen = []
    while not changes.queue.empty():
        seen.append(changes.get_nowait())
    dest_states = [e.new for e in seen if isinstance(e, DestinationStateChanged)]
    assert dest_states[dest_states.index("live"):] == ["live", "stopped"], dest_states
    assert receiver.sessions == 1
    video = [f for f in receiver.video if f.at >= live_since]
    assert [f.dts for f in video] == sorted(f.dts for f in video), "timestamps must only go forward"
    dts_gap, arrival_gap = receiver.largest_gap(since=live_since)
    assert dts_gap <= 200 and arrival_gap < 1.8, (dts_gap, arrival_gap)
    ingest = [(e.state, e.slate) for e in seen if isinstance(e, IngestStateChanged)]
    covered = ingest.index(("lost", True))
    assert ("live", True) in ingest[covered:], "a new publisher is live before its first keyframe takes over"
    assert next(e for e in ingest[covered:] if not e[1]) == ("live", False)

    # What a viewer saw: the program (bright test pattern, a tone), the dark card in silence, the program again.
    pictures = decoded_video(tmp_path / "received.flv")
    assert {size for _, size, _ in pictures} == {"640x360"}
    dark = [luma < 40 for _, _, luma in pictures]
    shape = runs(dark)
    assert [v for v, _ in shape] == [False, True, False, True], shape
    assert shape[1][1] >= 75, "three seconds and more of slate"
    sound = [level != float("-inf") and level > -40 for _, level in decoded_audio(tmp_path / "received.flv")]
    assert [v for v, _ in runs(sound)][:4] == [True, False, True, False], runs(sound)

    # The report still counts both losses as ingest incidents, though the platforms saw the card, not a gap.
    await recorder.drain()
    store.close()
    report = build_report(tmp_path / "event.db")
    incidents = [i for i in report["incidents"] if i["kind"] == "ingest"]
    assert len(incidents) == 2 and incidents[0]["recovered"] and not incidents[1]["recovered"]
    assert 3.5 < incidents[0]["duration_s"] < 8
    assert [d["outages"] for d in report["destinations"]] == [0]


# ---- the ingest and the slate, program tapped by a reader -------------------------------------------


async def program_file(path: Path) -> Path:
    """A program unlike the slate's defaults: 320x180 at 25 fps, H.264 Main 2.1, a keyframe a second, 44.1 kHz mono."""
    argv = encode_args(6, size="320x180", fps=25, gop=25, realtime=False)
    code, err = await run(argv + ["-preset", "veryfast", "-profile:v", "main", "-level", "2.1",
                                  "-ar", "44100", "-ac", "1", "-y", str(path)], 30)
    assert code == 0, err
    return path


def child(rig: Rig, name: str):
    found = [c for c in rig.supervisor.children if c.name == name]
    return found[0] if found else None


def segments(tags: list[Tag]) -> list[dict]:
    """The reader's stream cut where a new video decoder header comes, each part probed with the headers in force
    (and `gop`: frames from its first keyframe to the next)."""
    probes = [StreamProbe()]
    keyframes: list[list[int]] = [[]]
    headers: dict[int, Tag] = {}
    frames = False
    for tag in tags:
        if tag.kind == VIDEO and tag.is_sequence_header and frames:
            probes.append(StreamProbe())
            keyframes.append([])
            for header in headers.values():
                probes[-1].feed(header)
            frames = False
        if tag.is_sequence_header:
            headers[tag.kind] = tag
        elif not tag.is_metadata:
            frames = True
        probes[-1].feed(tag)
        if tag.kind == VIDEO and not tag.is_sequence_header:
            keyframes[-1].append(tag.is_keyframe)
    return [{**p.facts(), "gop": _first_gop(k)} for p, k in zip(probes, keyframes, strict=True)]


def _first_gop(keyframes: list[bool]) -> int | None:
    marks = [i for i, key in enumerate(keyframes) if key]
    return marks[1] - marks[0] if len(marks) > 1 else None


async def test_the_slate_takes_the_program_format_survives_a_crash_and_gives_way_to_a_resumed_feed(tmp_path):
    path = await program_file(tmp_path / "program.mp4")
    rig = Rig(IngestConfig(url=str(path), kind="file"), slate_after_s=0.5, stall_s=8.0)
    async with rig.running():
        await until(lambda: rig.ingest.probe.ready, 10, "the program probed")
        feed = child(rig, "ingest-file")
        os.kill(feed.pid, signal.SIGSTOP)  # alive but silent: a network stall, not an end
        try:
            await until(lambda: rig.ingest.on_air == "slate", 5, "the slate on air")
            assert rig.ingest.state == "lost" and rig.ingest.error == "no data for 0.5 s"
            await until(lambda: len(segments(rig.tags)) == 2 and segments(rig.tags)[1]["keyframe_interval_s"],
                        8, "two keyframes of the slate")
            os.kill(child(rig, "slate").pid, signal.SIGKILL)
            await until(lambda: rig.ingest.slate.starts == 2 and child(rig, "slate"), 5, "the slate restarted")
            ticks = len(rig.video())
            await until(lambda: len(rig.video()) > ticks + 10, 5, "the restarted slate on air")
        finally:
            os.kill(feed.pid, signal.SIGCONT)
        await until(lambda: rig.ingest.on_air == "primary", 5, "the resumed feed back on air")
        await until(lambda: child(rig, "slate") is None, 5, "the slate's ffmpeg gone")
        await until(lambda: len(segments(rig.tags)) == 3 and segments(rig.tags)[2]["ready"], 5, "the program again")
        assert rig.ingest.state == "live" and rig.ingest.feeds == 1, "the same feed, resumed"
    program, slate, again = segments(rig.tags)
    same = ("width", "height", "video_profile", "video_level", "sample_rate", "channels", "audio_codec")
    assert {k: slate[k] for k in same} == {k: program[k] for k in same} == {
        "width": 320, "height": 180, "video_profile": "Main", "video_level": "2.1",
        "sample_rate": 44100, "channels": 1, "audio_codec": "aac"}
    assert slate["gop"] == 50 and program["gop"] == 25, "25 fps: a keyframe every 50 frames, every 25 frames"
    # Every 2 s (the last interval is shorter: the crash cut a GOP short and the restarted slate began anew).
    assert slate["keyframe_interval_max_s"] == 2.0 and program["keyframe_interval_max_s"] == 1.0
    # Within 14 ms: the resumed ffmpeg (-re) catches up in a burst and may cross the file's loop point, where
    # -stream_loop adds the audio's priming (a 1.014 s interval, the same from ffmpeg alone).
    assert again["width"] == 320 and again["keyframe_interval_s"] == pytest.approx(1.0, abs=0.015)
    assert monotonic(rig.video()), "timestamps go on across every switch and the slate's restart"
    states = [(e.state, e.slate) for e in rig.seen]
    assert states[states.index(("lost", True)) + 1:][:1] == [("live", False)]
    assert rig.ingest.slate_times == 1 and rig.ingest.status()["slate"]["on_air"] is False


async def test_no_slate_before_the_first_feed_and_none_when_disabled(tmp_path):
    waiting = Rig(IngestConfig(url=f"rtmp://{LOOPBACK}:{free_port()}/live", kind="rtmp_listen"),
                  slate_after_s=0.1)
    async with waiting.running():
        await asyncio.sleep(0.5)
        assert waiting.ingest.slate.starts == 0 and waiting.supervisor.children == []
    path = await program_file(tmp_path / "program.mp4")
    rig = Rig(IngestConfig(url=str(path), kind="file", slate=False), slate_after_s=0.2, stall_s=8.0)
    async with rig.running():
        await until(lambda: rig.ingest.probe.ready, 10, "the program probed")
        feed = child(rig, "ingest-file")
        os.kill(feed.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(0.3)
            tags = rig.program.tags_in
            await asyncio.sleep(0.7)
            assert rig.program.tags_in == tags and [c.name for c in rig.supervisor.children] == ["ingest-file"]
            status = rig.ingest.status()
            assert status["state"] == "live" and status["slate"]["enabled"] is False  # as before the slate
            assert status["slate"]["on_air"] is False
        finally:
            os.kill(feed.pid, signal.SIGCONT)


async def test_stopping_everything_never_puts_the_slate_on_air(tmp_path):
    """Even when the feed's ffmpeg takes its time to stop (here: stopped, so only SIGKILL ends it)."""
    path = await program_file(tmp_path / "program.mp4")
    rig = Rig(IngestConfig(url=str(path), kind="file"), slate_after_s=0.2, stall_s=8.0)
    rig.supervisor.grace_s = 1.5
    async with rig.running():
        await until(lambda: rig.ingest.probe.ready, 10, "the program probed")
        os.kill(child(rig, "ingest-file").pid, signal.SIGSTOP)
        started = asyncio.get_running_loop().time()
    assert asyncio.get_running_loop().time() - started >= 1.4, "the feed's stop took its grace period"
    assert rig.ingest.slate.starts == 0 and rig.supervisor.children == []


async def test_a_slate_that_cannot_start_backs_off_and_stops_cleanly():
    supervisor = Supervisor(grace_s=0.5)
    tags: list[Tag] = []

    async def take(tag: Tag) -> None:
        tags.append(tag)

    slate = Slate(supervisor, EVENT_NAME, "x", take, backoff_s=(0.05, 0.1), ffmpeg="/nonexistent/ffmpeg")
    slate.start(slate_format(FACTS))
    await until(lambda: slate.starts >= 3, 5, "three attempts")
    assert slate.running and slate.error.startswith("cannot start ffmpeg") and tags == []
    await slate.stop()
    assert not slate.running and supervisor.children == []


# ---- the card and its command -------------------------------------------------------------------------

def slate_argv(fmt, event_name: str, text: str) -> list[str]:
    """The slate's command with its card drawn, as Slate runs it."""
    return card_argv(fmt, card_filter(fmt, event_name, text))


FACTS = {"video_codec": "h264", "width": 1280, "height": 720, "fps": 29.97, "video_profile": "High",
         "video_level": "3.1", "video_kbps": 2500, "audio_codec": "aac", "sample_rate": 48000, "channels": 2}


@pytest.mark.parametrize(("facts", "expected"), [
    ({}, (1280, 720, "30000/1001", "high", "3.1", 48000, 2, 60)),
    ({"fps": 25.02, "video_profile": "Constrained Baseline", "video_level": "2.2", "sample_rate": 44100,
      "channels": 1}, (1280, 720, "25", "baseline", "2.2", 44100, 1, 50)),
    ({"fps": 59.94, "video_profile": "High 10", "video_level": None}, (1280, 720, "60000/1001", "high", None,
                                                                         48000, 2, 120)),
    ({"fps": None, "audio_codec": None, "width": 720, "height": 1280}, (720, 1280, "30", "high", "3.1", None, 2,
                                                                         60)),
    ({"fps": 12.4, "sample_rate": 7, "channels": 11}, (1280, 720, "12", "high", "3.1", 48000, 2, 24)),
])
def test_the_slate_format_follows_the_program(facts, expected):
    fmt = slate_format({**FACTS, **facts})
    assert (fmt.width, fmt.height, fmt.rate, fmt.profile, fmt.level, fmt.sample_rate, fmt.channels, fmt.gop) \
        == expected


@pytest.mark.parametrize(("facts", "why"), [
    ({"video_codec": "hevc"}, "the program is hevc"),
    ({"video_codec": None}, "the program is without video"),
    ({"width": None}, "picture size is not known"),
])
def test_no_slate_for_a_program_it_cannot_stand_in_for(facts, why):
    with pytest.raises(NoSlate, match=why):
        slate_format({**FACTS, **facts})


def test_the_card_command_matches_the_program_and_draws_the_text():
    fmt = slate_format(FACTS)
    argv = slate_argv(fmt, EVENT_NAME, "Chương trình sẽ tiếp tục trong giây lát — We'll be right back")
    assert "color=c=0x11161d:size=1280x720:rate=30000/1001" in argv and "anullsrc=r=48000:cl=stereo" in argv
    for option, value in (("-g", "60"), ("-keyint_min", "60"), ("-sc_threshold", "0"), ("-profile:v", "high"),
                          ("-level", "3.1"), ("-ar", "48000"), ("-ac", "2")):
        assert argv[argv.index(option) + 1] == value, option
    assert argv.count("-re") == 2 and argv[-4:] == ["flv", "-flvflags", "no_duration_filesize", "pipe:1"]
    silent = slate_argv(slate_format({**FACTS, "audio_codec": None}), EVENT_NAME, "x")
    assert not any("anullsrc" in a for a in silent) and "-c:a" not in silent
    size, lines = layout("Chương trình sẽ tiếp tục trong giây lát — We'll be right back", 1280, 720)
    assert lines == ["Chương trình sẽ tiếp tục trong giây lát", "We'll be right back"] and 720 / 20 <= size <= 720 / 13
    size, lines = layout("một hai ba bốn năm sáu bảy tám chín mười " * 5, 640, 360)
    assert len(lines) <= 4 and size < 360 / 13
    assert card_filter(fmt, EVENT_NAME, "x", font=Path("/nonexistent.ttf")) is None


@pytest.mark.skipif(not FONT.is_file(), reason="needs fonts-dejavu-core")
def test_the_card_is_dark_with_the_name_above_and_the_message_in_the_middle():
    fmt = slate_format({**FACTS, "width": 320, "height": 180})
    argv = slate_argv(fmt, EVENT_NAME, "Nghỉ giải lao — Break")
    picture = subprocess.run([a for a in argv[:argv.index("-c:v")] if a != "-re"] +
                             ["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"],
                             capture_output=True, timeout=20, check=True).stdout
    assert len(picture) == 320 * 180

    def bright(top: int, bottom: int) -> int:
        return sum(1 for y in range(top, bottom) for x in range(320) if picture[y * 320 + x] > 128)

    assert sum(picture) / len(picture) < 40, "a dark card"
    assert bright(0, 30) == 0 and bright(30, 50) > 50, "the event name in the upper part"
    assert bright(60, 140) > 300 and bright(150, 180) == 0, "the message in the middle"
