"""Publishers other than ffmpeg, and one whose AAC header comes late: what reaches a real receiver decodes.

Each test runs the whole restream path: our RTMP listener, the program, a copy destination's ffmpeg, and
a real receiver (ffmpeg -listen) recording what it got, which ffprobe and a decoder then read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from streamctl.config import load_event
from streamctl.events import Bus
from streamctl.restream.flv import AUDIO, VIDEO, FlvReader, Tag
from streamctl.restream.restreamer import Restreamer

from .conftest import LOOPBACK, free_port
from .ingest_media import run
from .receivers import RtmpReceiver, wait_for
from .test_ingest import KEY
from .test_rtmp_server import ScriptedClient

FFPROBE = shutil.which("ffprobe") or "ffprobe"
GST = shutil.which("gst-launch-1.0")


def streams(path: Path) -> dict[str, dict]:
    """ffprobe's view of a recording: its streams by codec type."""
    done = subprocess.run([FFPROBE, "-v", "error", "-show_streams", "-of", "json", str(path)],
                          capture_output=True, text=True, timeout=30, check=True)
    return {s["codec_type"]: s for s in json.loads(done.stdout)["streams"]}


def decoded_audio_frames(path: Path) -> tuple[int, str]:
    """Audio frames a decoder gets out of a recording, and what it complained about."""
    done = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a",
                           "-f", "framecrc", "-"], capture_output=True, text=True, timeout=60)
    frames = [line for line in done.stdout.splitlines() if line and not line.startswith("#")]
    return len(frames), done.stderr


@contextlib.asynccontextmanager
async def restreaming(write_event, tmp_path: Path, monkeypatch, ingest: str = ""):
    """A restreamer with an RTMP-listen ingest (key KEY) and one copy destination to a recording receiver."""
    receiver = await RtmpReceiver(free_port(), respawn=False, record=tmp_path / "received.flv",
                                  probe_us=2_000_000).start()
    port = free_port()
    monkeypatch.setenv("INGEST_KEY", KEY)
    event = load_event(write_event(f"""
        [event]
        name = "publishers"
        [ingest]
        url = "rtmp://{LOOPBACK}:{port}/live"
        key_env = "INGEST_KEY"
        {ingest}
        [[destination]]
        name = "main"
        url = "{receiver.url}"
    """))
    restreamer = Restreamer(event, Bus())
    task = asyncio.create_task(restreamer.run())
    try:
        await wait_for(lambda: restreamer.ingest.server and restreamer.ingest.server.port == port, 5, "the listener")
        yield restreamer, f"rtmp://{LOOPBACK}:{port}/live/{KEY}", receiver
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receiver.process.wait(), 5)  # it writes the end of its recording
        await receiver.kill()


def gst_publisher(sink: str, url: str, seconds: int) -> list[str]:
    """A GStreamer pipeline publishing H.264 + AAC (x264enc, avenc_aac, flvmux) to `url` with `sink`."""
    location = f"{url} live=1" if sink == "rtmpsink" else url
    frames = seconds * 30
    return [GST, "-q", "videotestsrc", "is-live=true", f"num-buffers={frames}", "!",
            "video/x-raw,format=I420,width=320,height=180,framerate=30/1", "!",
            "x264enc", "tune=zerolatency", "key-int-max=30", "!", "h264parse", "!",
            "flvmux", "name=mux", "streamable=true", "!", sink, f"location={location}",
            "audiotestsrc", "is-live=true", "wave=sine", f"num-buffers={round(seconds * 48000 / 1024)}", "!",
            "audio/x-raw,rate=48000,channels=2", "!", "avenc_aac", "!", "aacparse", "!", "mux."]


@pytest.mark.skipif(GST is None, reason="needs gstreamer1.0-tools and its plugins (see .ci/run)")
@pytest.mark.parametrize("sink", ["rtmp2sink", "rtmpsink"])
async def test_a_gstreamer_publisher_reaches_the_platform_with_video_and_aac(write_event, tmp_path, monkeypatch, sink):
    async with restreaming(write_event, tmp_path, monkeypatch) as (restreamer, url, receiver):
        code, err = await run(gst_publisher(sink, url, 4), 30)
        assert code == 0, err[-500:]
        await wait_for(lambda: restreamer.ingest.state == "lost", 10, "the publisher to have ended")
        probe = restreamer.ingest.status()["probe"]
        assert "GStreamer" in (probe["encoder"] or "") and probe["width"] == 320 and probe["sample_rate"] == 48000
        await wait_for(lambda: len(receiver.video) >= 90, 10, "the frames at the receiver")
    got = streams(tmp_path / "received.flv")
    assert (got["video"]["codec_name"], got["video"]["width"], got["video"]["height"]) == ("h264", 320, 180)
    assert (got["audio"]["codec_name"], got["audio"]["sample_rate"], got["audio"]["channels"]) == ("aac", "48000", 2)
    frames, complaints = decoded_audio_frames(tmp_path / "received.flv")
    assert frames >= 150 and not complaints, complaints[:300]


# ---- a publisher whose AAC header comes after the first video keyframe (as nginx-rtmp's relay sends) -----


async def media_tags(path: Path, seconds: float) -> list[Tag]:
    """H.264 + AAC 44.1 kHz mono as FLV tags, from a real encoder (an odd audio format on purpose)."""
    code, err = await run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                           "testsrc2=size=320x180:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                           "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
                           "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "1", "-ar", "44100", "-y", str(path)], 30)
    assert code == 0, err
    return FlvReader().feed(await asyncio.to_thread(path.read_bytes))


def late_audio_header(tags: list[Tag], after_video_frames: int) -> list[Tag]:
    """The stream as such a relay sends it: no audio until `after_video_frames` video frames have gone (the
    first a keyframe), then the AudioSpecificConfig, then audio."""
    media = [t for t in tags if t.kind in (AUDIO, VIDEO)]
    aac_header = next(t for t in media if t.kind == AUDIO and t.is_sequence_header)
    out: list[Tag] = []
    video_frames = 0
    for tag in media:
        if tag.kind == VIDEO:
            out.append(tag)
            video_frames += not tag.is_sequence_header
            if video_frames == after_video_frames:
                out.append(Tag(AUDIO, tag.timestamp, aac_header.data))
        elif not tag.is_sequence_header and video_frames >= after_video_frames:
            out.append(tag)
    return out


async def publish_tags(port: int, key: str, tags: list[Tag]) -> None:
    """Publish FLV tags with our scripted RTMP client, paced in real time by their timestamps."""
    client = await ScriptedClient.connect(port)
    try:
        stream_id = await client.publish(key)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for tag in tags:
            delay = start + tag.timestamp / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            client.message(4 if tag.kind == AUDIO else 6, tag.kind, tag.data, stream_id, tag.timestamp)
            await client.writer.drain()
    finally:
        client.close()


async def test_an_aac_header_after_the_first_keyframe_reaches_the_platform(write_event, tmp_path, monkeypatch):
    tags = late_audio_header(await media_tags(tmp_path / "media.flv", 5), after_video_frames=15)
    assert tags[0].is_sequence_header and tags[1].is_keyframe and tags[16].kind == AUDIO
    async with restreaming(write_event, tmp_path, monkeypatch) as (restreamer, url, receiver):
        port = restreamer.ingest.server.port
        dest = restreamer.get("main")
        await publish_tags(port, KEY, tags)
        await wait_for(lambda: len(receiver.video) >= 120, 10, "the frames at the receiver")
        assert dest.state == "live"
    got = streams(tmp_path / "received.flv")
    assert got["video"]["codec_name"] == "h264"
    assert (got["audio"]["codec_name"], got["audio"]["sample_rate"], got["audio"]["channels"]) == ("aac", "44100", 1)
    frames, complaints = decoded_audio_frames(tmp_path / "received.flv")
    assert frames >= 150 and not complaints, complaints[:300]  # about 4.5 s of 1024-sample frames at 44.1 kHz

