"""What one copy destination's CPU is made of: our destination ffmpeg with one option changed at a time, and a
prototype native asyncio RTMP publisher (bench/rtmp_publisher.py) in its place, all publishing the 1080p30
benchmark clip to nginx-rtmp (which announces 4096-byte chunks, as platforms do).

Each case: a feeder ffmpeg plays the clip in real time into an OS pipe; the process under test reads it and
publishes; CPU seconds of that process alone from /proc (utime + stime) over the window, and the bytes nginx
took in (to be sure the case really streamed). `×5` cases publish to five nginx applications: five ffmpegs (each
fed by its own feeder, feeders not counted) against one native process with five sessions.

Run from the checkout: `python bench/copy_cost.py [--seconds 30] [--kbps 6000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from restream_cpu import FFMPEG, NginxPlatform, cpu_seconds, end, make_clip, spawn  # noqa: E402

from streamctl.restream.ffmpeg import destination_argv  # noqa: E402
from streamctl.restream.profiles import PROFILES  # noqa: E402

PUBLISHER = ROOT / "bench" / "rtmp_publisher.py"


def ours(url: str) -> list[str]:
    return destination_argv(url, PROFILES["copy"], ffmpeg=FFMPEG)


def changed(url: str, *, drop: tuple[str, ...] = (), before_input: tuple[str, ...] = (),
            global_args: tuple[str, ...] = (), output: tuple[str, ...] = (),
            replace: dict[str, str] | None = None) -> list[str]:
    """Our destination command with options dropped, added (global, before -i, before the URL) or replaced."""
    argv = ours(url)
    for option in drop:
        at = argv.index(option)
        del argv[at:at + 2]
    for option, value in (replace or {}).items():
        argv[argv.index(option) + 1] = value
    at = argv.index("-i")
    argv[at:at] = list(before_input)
    argv[1:1] = list(global_args)
    argv[-1:-1] = list(output)
    return argv


CASES = {
    "our destination ffmpeg (as shipped)": lambda u: ours(u),
    "-stats_period 5 (progress every 5 s, not 0.5 s)": lambda u: changed(u, global_args=("-stats_period", "5")),
    "no -progress at all": lambda u: changed(u, drop=("-progress",)),
    "-fflags nobuffer (input)": lambda u: changed(u, before_input=("-fflags", "nobuffer")),
    "-flush_packets 0": lambda u: changed(u, output=("-flush_packets", "0")),
    "-flush_packets 1": lambda u: changed(u, output=("-flush_packets", "1")),
    "probesize 32, analyzeduration 0": lambda u: changed(u, replace={"-probesize": "32", "-analyzeduration": "0"}),
    "no send_buffer_size / rw_timeout": lambda u: changed(u, drop=("-send_buffer_size", "-rw_timeout")),
    "all cuts (stats_period 5, nobuffer, flush_packets 0)": lambda u: changed(
        u, global_args=("-stats_period", "5"), before_input=("-fflags", "nobuffer"), output=("-flush_packets", "0")),
    "native asyncio publisher (prototype)": lambda u: [sys.executable, str(PUBLISHER), u],
}


async def run_case(clip: Path, argvs: list[list[str]], work: Path, platform: NginxPlatform, seconds: float,
                   feeders: int) -> tuple[float, int]:
    """(CPU s per 60 s of the processes under test, bytes nginx took in) over the window."""
    procs, feeds = [], []
    try:
        for i, argv in enumerate(argvs):
            read_end, write_end = os.pipe()
            if i < feeders:
                feeds.append(await spawn([FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
                                          "-i", str(clip), "-c", "copy", "-f", "flv", "pipe:1"], stdout=write_end))
            procs.append(await asyncio.create_subprocess_exec(
                *argv, stdin=read_end, stdout=asyncio.subprocess.DEVNULL, stderr=(work / "case.log").open("ab")))
            os.close(read_end)
            os.close(write_end)
        async with aiohttp.ClientSession() as http:
            await asyncio.sleep(4.0)
            before = sum((await platform.bytes_in(http)).values())
            cpu0, t0 = [cpu_seconds(p.pid) for p in procs], time.monotonic()
            await asyncio.sleep(seconds)
            cpu1, t1 = [cpu_seconds(p.pid) for p in procs], time.monotonic()
            after = sum((await platform.bytes_in(http)).values())
        if None in cpu0 or None in cpu1:
            return float("nan"), after - before
        return sum(b - a for a, b in zip(cpu0, cpu1, strict=True)) * 60 / (t1 - t0), after - before
    finally:
        for process in feeds + procs:
            await end(process)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="CPU window per case (default 30)")
    parser.add_argument("--kbps", type=int, default=6000, help="video bitrate of the 1080p30 clip (default 6000)")
    args = parser.parse_args()
    clip = await make_clip(60, args.kbps)
    print(f"1080p30 {args.kbps} kbit/s clip, {args.seconds:g} s per case, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| copy destination | CPU s / 60 s | MB nginx took in / s |", "|---|---|---|", sep="\n")
    with tempfile.TemporaryDirectory(prefix="copy-cost-") as tmp:
        work = Path(tmp)
        for name, make in CASES.items():
            platform = NginxPlatform(work, "case")
            await platform.start()
            try:
                cpu, got = await run_case(clip, [make(f"{platform.url}/bench")], work, platform, args.seconds, 1)
            finally:
                await platform.kill()
            print(f"| {name} | {cpu:.2f} | {got / args.seconds / 1e6:.2f} |", flush=True)
        apps = [f"d{i}" for i in range(5)]
        for name, argvs, feeders in (
            ("×5: five ffmpegs (as shipped)", None, 5),
            ("×5: one native process, five sessions", "native", 1),
        ):
            platform = NginxPlatform(work, "five", apps)
            await platform.start()
            urls = [f"rtmp://127.0.0.1:{platform.rtmp_port}/{app}/bench" for app in apps]
            cmd = [[sys.executable, str(PUBLISHER), *urls]] if argvs == "native" else [ours(u) for u in urls]
            try:
                cpu, got = await run_case(clip, cmd, work, platform, args.seconds, feeders)
            finally:
                await platform.kill()
            print(f"| {name} | {cpu:.2f} | {got / args.seconds / 1e6:.2f} |", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
