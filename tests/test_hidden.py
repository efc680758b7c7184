"""Stream keys out of `ps` (restream/hidden.py): no process's command line holds a key while frames arrive."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from streamctl.config import DestinationConfig
from streamctl.events import Bus
from streamctl.restream.destinations import Destination
from streamctl.restream.ffmpeg import destination_argv
from streamctl.restream.hidden import OptionsPipe, preset_text, rtmp_app_and_playpath, split_publish_url
from streamctl.restream.profiles import PROFILES
from streamctl.restream.program import Program
from streamctl.restream.rtmp_server import RtmpServer
from streamctl.restream.supervisor import Supervisor

from .conftest import free_port
from .receivers import Feed, Relay, RtmpReceiver, self_signed_cert, wait_for
from .test_destinations import FAST

RTMP_KEY = "rtmp-key-5f2c9a71d0"
FB_KEY = "FB-1234567890123456-0-AbzXq1"
FB_QUERY = "s_bl=1&s_psm=1&s_sc=1234567890123456&s_sw=0&s_vt=api-s&a=AbyQwErTy"
SRT_PASSPHRASE = "srt-passphrase-8d1e"
SRT_STREAMID = "publish/live/srt-streamid-key-77"


@pytest.mark.parametrize(("url", "public", "hidden"), [
    ("rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl", "rtmp://a.rtmp.youtube.com/live2",
     {"rtmp_app": "live2", "rtmp_playpath": "abcd-efgh-ijkl"}),
    (f"rtmps://live-api-s.facebook.com:443/rtmp/{FB_KEY}?{FB_QUERY}", "rtmps://live-api-s.facebook.com:443/rtmp",
     {"rtmp_app": "rtmp", "rtmp_playpath": f"{FB_KEY}?{FB_QUERY}"}),
    ("rtmps://b.rtmps.youtube.com/live2?backup=1/abcd", "rtmps://b.rtmps.youtube.com/live2?backup=1",
     {"rtmp_app": "live2?backup=1", "rtmp_playpath": "abcd"}),
    ("rtmp://h:1935/app/instance/KEY", "rtmp://h:1935/app/instance", {"rtmp_app": "app/instance",
                                                                      "rtmp_playpath": "KEY"}),
    ("rtmp://h/live", "rtmp://h", {"rtmp_playpath": "live"}),
    (f"srt://h:9000?mode=caller&latency=200000&passphrase={SRT_PASSPHRASE}&streamid=a%2Fb",
     "srt://h:9000?mode=caller&latency=200000", {"passphrase": SRT_PASSPHRASE, "streamid": "a/b"}),
    ("/tmp/out.flv", "/tmp/out.flv", {}),
])
def test_a_publish_url_splits_into_what_may_be_seen_and_what_ffmpeg_reads_from_the_pipe(url, public, hidden):
    assert split_publish_url(url) == (public, hidden)


def test_the_split_follows_ffmpegs_own_reading_of_an_rtmp_path():
    assert rtmp_app_and_playpath("/app/mp4:folder/file") == ("app", "mp4:folder/file")
    assert rtmp_app_and_playpath("/vod/clip.flv") == ("vod", "clip")
    assert rtmp_app_and_playpath("/vod/clip.mp4") == ("vod", "mp4:clip.mp4")
    assert rtmp_app_and_playpath("/ondemand/x/y") == ("ondemand", "x/y")


def test_the_command_line_names_only_the_server_and_a_pipe():
    url = f"rtmps://live-api-s.facebook.com:443/rtmp/{FB_KEY}?{FB_QUERY}"
    argv = destination_argv(url, PROFILES["copy"], keys_from="/dev/fd/9")
    line = " ".join(argv)
    assert FB_KEY not in line and "s_sc=" not in line
    assert argv[-1] == "rtmps://live-api-s.facebook.com:443/rtmp"
    assert argv[argv.index("-fpre") + 1] == "/dev/fd/9"
    assert preset_text(split_publish_url(url)[1]) == f"rtmp_app=rtmp\nrtmp_playpath={FB_KEY}?{FB_QUERY}\n".encode()
    with pytest.raises(ValueError, match="line break"):
        OptionsPipe({"rtmp_playpath": "a\nrtmp_app=evil"})
    with pytest.raises(ValueError, match="longer than 999"):
        OptionsPipe({"rtmp_playpath": "k" * 1000})


def test_the_pipe_holds_the_options_once_and_is_not_inherited_by_others(tmp_path):
    pipe = OptionsPipe({"rtmp_playpath": RTMP_KEY})
    try:
        assert not os.get_inheritable(pipe.read_fd)  # only a child it is passed to gets it
        with open(pipe.path, "rb") as reader:
            assert reader.read() == f"rtmp_playpath={RTMP_KEY}\n".encode()
    finally:
        pipe.close()
    assert pipe.read_fd == -1


class SrtReceiver(RtmpReceiver):
    """An SRT listener that wants a passphrase and a stream id, as a platform's SRT ingest does."""

    @property
    def listen_url(self) -> str:
        return f"srt://127.0.0.1:{self.port}?mode=listener&passphrase={SRT_PASSPHRASE}"


def command_lines() -> dict[int, str]:
    """Every process's command line on this machine, as any local user can read it."""
    lines = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue  # exited meanwhile
    return lines


async def test_no_command_line_holds_a_key_while_rtmp_rtmps_and_srt_destinations_are_live(tmp_path):
    program, bus, supervisor = Program(), Bus(), Supervisor(grace_s=2.0)
    feed = Feed(program)
    # The platforms: RTMP and (behind a TLS terminator) RTMPS receivers that refuse any other key, and SRT.
    rtmp = RtmpServer(app="live", key=RTMP_KEY)
    rtmps = RtmpServer(app="rtmp", key=FB_KEY)
    await rtmp.start()
    await rtmps.start()
    tls = await Relay(rtmps.port, tls=self_signed_cert(tmp_path)).start()
    srt = await SrtReceiver(free_port(), scheme="srt").start()
    receivers = {srt.process.pid}  # the platform's own process knows its passphrase; no one else may
    configs = [
        DestinationConfig(name="yt", platform="custom", url=f"rtmp://127.0.0.1:{rtmp.port}/live", key=RTMP_KEY),
        DestinationConfig(name="fb", platform="custom", url=f"rtmps://127.0.0.1:{tls.port}/rtmp",
                          key=f"{FB_KEY}?{FB_QUERY}"),
        DestinationConfig(name="srt", platform="custom", url=f"srt://127.0.0.1:{srt.port}?passphrase="
                          f"{SRT_PASSPHRASE}&streamid={SRT_STREAMID}&latency=200000"),
    ]
    destinations = [Destination(c, program, bus, supervisor, FAST) for c in configs]
    await feed.start()
    try:
        for d in destinations:
            d.start()
        await wait_for(lambda: rtmp.counters["video_frames"] > 30 and rtmps.counters["video_frames"] > 30
                       and len(srt.video) > 30, 20, "frames at all three receivers")
        children = {c.pid for c in supervisor.children}
        assert len(children) == 3
        lines = command_lines()
        assert children <= set(lines)
        for pid, line in lines.items():
            if pid in receivers:
                continue
            for secret in (RTMP_KEY, FB_KEY, FB_QUERY.split("&")[-1], SRT_PASSPHRASE, SRT_STREAMID):
                assert secret not in line, (pid, line)
        for pid in children:
            assert " -fpre /dev/fd/" in lines[pid], lines[pid]
        assert rtmps.history[-1].stream_name == FB_KEY  # the key got there, through TLS, without ps seeing it
        # Reconnects hand a fresh pipe to each new ffmpeg.
        await destinations[0].restart()
        before = rtmp.counters["publishes_total"]
        await wait_for(lambda: rtmp.counters["publishes_total"] > before, 20, "the RTMP destination back")
        assert not any(RTMP_KEY in line for line in command_lines().values())
    finally:
        await asyncio.gather(*(d.stop() for d in destinations))
        await feed.stop()
        await srt.kill()
        await tls.stop()
        await rtmp.close()
        await rtmps.close()
    assert supervisor.children == []


async def test_the_srt_listener_ingest_keeps_its_passphrase_off_the_command_line():
    from streamctl.config import IngestConfig

    from .test_ingest import Rig, srt_push, until

    port, passphrase = free_port(), "ingest-srt-passphrase-3f9"
    config = IngestConfig(url=f"srt://127.0.0.1:{port}?mode=listener&latency=100000", kind="srt_listen",
                          key_env="SRT_PASS", key=passphrase)
    rig = Rig(config, backoff_s=(0.2,))
    async with rig.running():
        pusher = asyncio.create_task(srt_push(port, passphrase, 3, attempts=5))
        await until(lambda: rig.ingest.probe.ready, 10, "the SRT feed through the listener")
        children = [c.pid for c in rig.supervisor.children]
        assert children
        lines = command_lines()
        for pid in children:
            line = lines[pid]
            assert passphrase not in line and "-f concat" in line and "/dev/fd/" in line, line
        await pusher
