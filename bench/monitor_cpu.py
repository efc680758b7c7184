"""What the confidence monitor costs: CPU of its one ffmpeg (commands.monitor_argv) decoding a 1080p30 program in
real time, against variants of its decoder options, and the age of its pictures.

A feeder ffmpeg plays the benchmark clip (restream_cpu.make_clip) in real time into an OS pipe; the monitor
ffmpeg reads it as streamctl feeds it. CPU seconds of the monitor process alone, from /proc (utime + stime).

Run from the checkout: `python bench/monitor_cpu.py [--seconds 20] [--kbps 6000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from restream_cpu import FFMPEG, cpu_seconds, end, make_clip, spawn  # noqa: E402

from streamctl.restream.commands import monitor_argv  # noqa: E402


def variants() -> dict[str, list[str]]:
    """The monitor's command as shipped, and the same with one decoder option changed."""
    shipped = monitor_argv(2, 480, ffmpeg=FFMPEG)
    at = shipped.index("-skip_loop_filter")
    full_decode = shipped[:at] + shipped[at + 2:]
    return {
        "shipped (deblocking skipped)": shipped,
        "full decode (deblocking on)": full_decode,
        "+ -skip_frame nonref": shipped[:at] + ["-skip_frame", "nonref"] + shipped[at:],
        "+ -threads 1": shipped[:at] + ["-threads", "1"] + shipped[at:],
    }


async def run(clip: Path, argv: list[str], seconds: float) -> tuple[float, int, float]:
    """(CPU s per s, pictures made, largest gap between pictures in s) over `seconds` after a 3 s warm-up."""
    read_end, write_end = os.pipe()
    feeder = await spawn([FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(clip),
                          "-c", "copy", "-f", "flv", "pipe:1"], stdout=write_end)
    monitor = await asyncio.create_subprocess_exec(*argv, stdin=read_end, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.DEVNULL)
    os.close(read_end)
    os.close(write_end)
    stamps: list[float] = []

    async def pictures() -> None:
        assert monitor.stdout is not None
        while True:
            head = await monitor.stdout.readuntil(b"\r\n\r\n")
            size = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            await monitor.stdout.readexactly(size + 2)
            stamps.append(time.monotonic())

    reader = asyncio.create_task(pictures())
    try:
        await asyncio.sleep(3.0)
        cpu0, t0, n0 = cpu_seconds(monitor.pid), time.monotonic(), len(stamps)
        await asyncio.sleep(seconds)
        cpu1, t1 = cpu_seconds(monitor.pid), time.monotonic()
        if cpu0 is None or cpu1 is None:
            return float("nan"), 0, float("nan")  # it exited: the option does not work with this input
        window = [s for s in stamps if s >= t0]
        gaps = [b - a for a, b in zip(window, window[1:], strict=False)]
        return (cpu1 - cpu0) / (t1 - t0), len(stamps) - n0, max(gaps, default=float("nan"))
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await end(feeder)
        await end(monitor)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--kbps", type=int, default=6000)
    parser.add_argument("--preset", default="veryfast", help="x264 preset of the program's encoder (default veryfast)")
    args = parser.parse_args()
    clip = await make_clip(20, args.kbps, args.preset)
    load = os.getloadavg()[0]
    print(f"1080p30 H.264 ({args.preset}, 2 B-frames) {args.kbps} kbit/s program, {args.seconds:g} s per case, "
          f"load average {load:.1f} "
          f"on {os.cpu_count()} cores\n")
    print("| monitor ffmpeg | CPU (share of one core) | pictures / s | largest gap between pictures |")
    print("|---|---|---|---|")
    for name, argv in variants().items():
        cpu, pictures, gap = await run(clip, argv, args.seconds)
        print(f"| {name} | {cpu * 100:.1f} % | {pictures / args.seconds:.2f} | {gap:.2f} s |", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
