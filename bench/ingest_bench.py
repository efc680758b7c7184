"""Ingest benchmark: what our RTMP listener costs, feeding a Program read by several destinations.

Publishes a pre-encoded 1080p30 H.264/AAC clip (stream copy) with ffmpeg to the real Ingest on loopback:
- realtime: `-re`, like a switcher; reports this process's CPU per second of program (one core = 100 %);
- flat out: no `-re`; reports how many Mbit/s the listener can take in.

Run from the checkout: `python bench/ingest_bench.py [--seconds 20] [--kbps 6000] [--readers 5]`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamctl.config import IngestConfig  # noqa: E402
from streamctl.events import Bus  # noqa: E402
from streamctl.restream.ffmpeg import find_ffmpeg  # noqa: E402
from streamctl.restream.ingest import Ingest  # noqa: E402
from streamctl.restream.program import Program  # noqa: E402
from streamctl.restream.supervisor import Supervisor  # noqa: E402

KEY = "bench-key-0001"


async def make_clip(path: Path, seconds: float, kbps: int) -> None:
    argv = [find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "60", "-b:v", f"{kbps}k",
            "-maxrate", f"{kbps}k", "-bufsize", f"{kbps}k", "-c:a", "aac", "-b:a", "128k", "-y", str(path)]
    process = await asyncio.create_subprocess_exec(*argv)
    if await process.wait() != 0:
        raise SystemExit("could not encode the benchmark clip")


async def drain(reader) -> None:
    while await reader.read():
        pass


async def run_once(clip: Path, realtime: bool, readers: int, port: int) -> dict:
    program = Program()
    config = IngestConfig(url=f"rtmp://127.0.0.1:{port}/live", kind="rtmp_listen", key=KEY)
    ingest = Ingest(config, program, Bus(), Supervisor(), "bench")
    outs = [program.reader(f"dest-{i}") for i in range(readers)]
    tasks = [asyncio.create_task(drain(r)) for r in outs]
    run = asyncio.create_task(ingest.run())
    for _ in range(100):
        if ingest.server and ingest.server.port == port:
            break
        await asyncio.sleep(0.05)
    argv = [find_ffmpeg(), "-hide_banner", "-loglevel", "error", *(["-re"] if realtime else []), "-i", str(clip),
            "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{port}/live/{KEY}"]
    wall, cpu = time.perf_counter(), time.process_time()
    publisher = await asyncio.create_subprocess_exec(*argv)
    code = await asyncio.wait_for(publisher.wait(), 600)
    for _ in range(600):  # what the publisher wrote may still sit in the socket: count it in
        if ingest.server is None or not ingest.server.publishers:
            break
        await asyncio.sleep(0.05)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    media_s = ingest.probe.media_ms / 1000
    stats = ingest.server.stats() if ingest.server else {}
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    for r in outs:
        r.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"code": code, "wall_s": wall, "cpu_s": cpu, "media_s": media_s, "bytes": stats.get("bytes", 0),
            "delivered": sum(r.bytes_out for r in outs), "overflows": sum(r.overflows for r in outs)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--kbps", type=int, default=6000)
    parser.add_argument("--readers", type=int, default=5)
    parser.add_argument("--port", type=int, default=19461)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        await make_clip(clip, args.seconds, args.kbps)
        for realtime in (True, False):
            r = await run_once(clip, realtime, args.readers, args.port)
            mbit = r["bytes"] * 8 / 1e6
            label = "realtime" if realtime else "flat out"
            print(f"{label:9}: publisher exit {r['code']}, {r['media_s']:.1f} s of program in {r['wall_s']:.1f} s, "
                  f"{mbit / r['wall_s']:.1f} Mbit/s in, {r['delivered'] / 1e6:.1f} MB out to {args.readers} readers "
                  f"({r['overflows']} overflows); CPU {r['cpu_s']:.2f} s = "
                  f"{100 * r['cpu_s'] / r['wall_s']:.1f} % of a core")


if __name__ == "__main__":
    asyncio.run(main())
