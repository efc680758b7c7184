"""The slate with real ffmpeg on loopback: a publisher lost and back, a real destination and receiver, failures."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

from streamctl.config import load_event
from streamctl.events import Bus, DestinationStateChanged, IngestStateChanged
from streamctl.restream.restreamer import Restreamer

from .conftest import LOOPBACK, free_port
from .ingest_media import FFMPEG, Publisher, encode_args
from .receivers import RtmpReceiver, ffmpeg_children, pid_alive, wait_for

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
