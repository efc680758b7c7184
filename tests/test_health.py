"""Parsing what ffmpeg says about its output: `-progress` blocks and stderr, keys masked."""

from __future__ import annotations

import subprocess

from streamctl.redact import register_secret
from streamctl.restream.health import Progress, ProgressParser, StderrTail, mask_urls

from .receivers import FFMPEG

BLOCK = """frame=150
fps=30.02
stream_0_0_q=-1.0
bitrate=2491.3kbits/s
total_size=1558000
out_time_us=5005000
out_time_ms=5005000
out_time=00:00:05.005000
dup_frames=0
drop_frames=2
speed=1.01x
progress=continue
"""


def parse(text: str) -> list[Progress]:
    parser = ProgressParser()
    return [p for line in text.splitlines() if (p := parser.feed_line(line))]


def test_a_block_becomes_figures():
    [p] = parse(BLOCK)
    assert p == Progress(frame=150, fps=30.02, bitrate_kbps=2491.3, total_size=1558000, out_time_us=5005000,
                         speed=1.01, drop_frames=2, dup_frames=0, ended=False)


def test_missing_values_are_zero_and_end_is_seen():
    [p] = parse("frame=0\nfps=0.00\nbitrate=N/A\ntotal_size=N/A\nout_time_us=N/A\nspeed=N/A\nprogress=end\n")
    assert p.bitrate_kbps == 0 and p.total_size == 0 and p.out_time_us == 0 and p.speed == 0 and p.ended
    assert not p.advanced_since(None)


def test_advancing_is_judged_on_time_or_bytes():
    first, second = parse(BLOCK + BLOCK.replace("out_time_us=5005000", "out_time_us=5505000"))
    assert first.advanced_since(None) and second.advanced_since(first) and not first.advanced_since(second)


def test_real_ffmpeg_progress_counts_every_frame():
    done = subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1",
                           "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2", "-c:v", "libx264",
                           "-preset", "ultrafast", "-f", "flv", "-y", "/dev/null"],
                          capture_output=True, text=True, timeout=60)
    blocks = parse(done.stdout)
    assert blocks and blocks[-1].ended and blocks[-1].frame == 50
    assert blocks[-1].out_time_us >= 1_900_000 and blocks[-1].total_size > 0


def test_stderr_tail_masks_keys_and_keeps_the_error():
    register_secret("live_123456_SeCrEt")
    tail = StderrTail(lines=3)
    tail.add("[flv @ 0x1] Non-monotonous DTS in output stream 0:1")
    tail.add("[rtmp @ 0x2] Server error: Authentication failed for live_123456_SeCrEt")
    tail.add("rtmp://live.twitch.tv/app/live_123456_SeCrEt: Input/output error")
    tail.add("frame=  100 fps= 30 q=-1.0 size=     512kB")  # a stats line, not news
    text = " ".join(tail.lines) + (tail.last_error() or "")
    assert "SeCrEt" not in text and "rtmp: Server error: Authentication failed for ****" in tail.lines
    assert tail.last_error() == "rtmp://live.twitch.tv/app/****: Input/output error"
    assert len(tail.lines) == 3


def test_urls_lose_their_keys_even_unregistered():
    line = "Error opening output rtmps://live-api-s.facebook.com:443/rtmp/FB-987?s_bl=1&a=Abw: I/O error"
    assert mask_urls(line) == "Error opening output rtmps://live-api-s.facebook.com:443/rtmp/****?****: I/O error"
    assert mask_urls("srt://10.0.0.1:9000?passphrase=abcdefghijkl") == "srt://10.0.0.1:9000?****"
