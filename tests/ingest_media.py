"""Test media for the ingest area: real ffmpeg publishers and files, and bounded waits on conditions."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"


def encode_args(seconds: float, *, size: str = "640x360", fps: int = 30, gop: int = 60, audio: bool = True,
                realtime: bool = True) -> list[str]:
    """ffmpeg arguments (no output yet) for a test pattern with a tone: H.264 + AAC, keyframe every `gop` frames."""
    args = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error"]
    if realtime:
        args.append("-re")
    args += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    args += ["-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
             "-pix_fmt", "yuv420p", "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0"]
    if audio:
        args += ["-c:a", "aac", "-b:a", "96k", "-ac", "2"]
    return args


async def run(argv: list[str], within: float) -> tuple[int, str]:
    """Run a command to its end (killed after `within` s); its exit code and stderr."""
    process = await asyncio.create_subprocess_exec(*argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.PIPE)
    try:
        async with asyncio.timeout(within):
            _, err = await process.communicate()
    except TimeoutError:
        process.kill()
        _, err = await process.communicate()
    return process.returncode, err.decode(errors="replace")


async def publish_rtmp(url: str, seconds: float, within: float = 20, **encode) -> tuple[int, str]:
    """Publish a test pattern to `url` the way a switcher would, until done or refused."""
    return await run(encode_args(seconds, **encode) + ["-f", "flv", url], within)


class Publisher:
    """A publisher left running in the background (stopped with `stop()`)."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> Publisher:
        self.process = await asyncio.create_subprocess_exec(*self.argv, stdin=subprocess.DEVNULL,
                                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    async def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        return await asyncio.wait_for(self.process.wait(), 5)


async def make_file(path: Path, seconds: float, **encode) -> Path:
    """A short MP4 test file (encoded as fast as ffmpeg can)."""
    code, err = await run(encode_args(seconds, realtime=False, **encode) + ["-y", str(path)], 30)
    assert code == 0, err
    return path


async def until(predicate: Callable[[], object], within: float, what: str) -> object:
    """Wait until `predicate()` is truthy, checking every 20 ms; fail with `what` after `within` s."""
    for _ in range(int(within / 0.02) + 1):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {within:g} s: {what}")
