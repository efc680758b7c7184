"""What keeping stream keys out of `ps` costs (restream/hidden.py): a copy destination with the key handed through
a pipe (`-fpre /dev/fd/N`, the default) against the same destination with the key on the command line.

The pipe is read once when ffmpeg starts; the bytes of the stream go straight from ffmpeg to the platform, with
no hop in between. So the figures to compare are ffmpeg's CPU per second of program, its start time (spawn to
the receiver's first frame) and this process's CPU (which also holds the feed's pump and the RTMP receiver,
alike for both), measured from /proc/PID/stat over the same window. The program: 720p30 at 4 Mbit/s.

Run from the checkout: `python bench/hidden_keys.py [--seconds 20] [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamctl.config import DestinationConfig  # noqa: E402
from streamctl.events import Bus  # noqa: E402
from streamctl.restream.destinations import Destination, Timing  # noqa: E402
from streamctl.restream.program import Program  # noqa: E402
from streamctl.restream.rtmp_server import RtmpServer  # noqa: E402
from streamctl.restream.supervisor import Supervisor  # noqa: E402
from tests.receivers import Feed, wait_for  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
KEY = "bench-key-0123456789abcdef"


def cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class OnCommandLine(Destination):
    """The old way: the full publish URL, key included, as ffmpeg's last argument."""

    def command(self):
        return self.argv(), None


async def run(kind: type[Destination], seconds: float) -> dict[str, float]:
    program, bus, supervisor = Program(), Bus(), Supervisor()
    receiver = RtmpServer(app="live", key=KEY)
    await receiver.start()
    feed = await Feed(program, size="1280x720", fps=30, kbps=4000).start()
    config = DestinationConfig(name="bench", platform="custom", url=f"rtmp://127.0.0.1:{receiver.port}/live", key=KEY)
    dest = kind(config, program, bus, supervisor, Timing())
    try:
        started = time.monotonic()
        dest.start()
        await wait_for(lambda: receiver.counters["video_frames"] > 0, 20, "the first frame")
        first_frame_s = time.monotonic() - started
        child = supervisor.children[0].pid
        ours, theirs, frames = cpu(os.getpid()), cpu(child), receiver.counters["video_frames"]
        await asyncio.sleep(seconds)
        return {"ffmpeg_cpu_pct": 100 * (cpu(child) - theirs) / seconds,
                "streamctl_cpu_pct": 100 * (cpu(os.getpid()) - ours) / seconds,
                "first_frame_s": first_frame_s,
                "fps_arrived": (receiver.counters["video_frames"] - frames) / seconds}
    finally:
        await dest.stop()
        await feed.stop()
        await receiver.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"pipe": [], "command line": []}
    for _ in range(args.rounds):  # interleaved, so a busy moment of the machine hits both alike
        for name, kind in (("pipe", Destination), ("command line", OnCommandLine)):
            results[name].append(await run(kind, args.seconds))
    print(f"{'key handed':<14} {'ffmpeg CPU %':>13} {'streamctl CPU %':>16} {'first frame s':>14} {'fps':>6}")
    for name, rounds in results.items():
        mean = {k: sum(r[k] for r in rounds) / len(rounds) for k in rounds[0]}
        spread = {k: (min(r[k] for r in rounds), max(r[k] for r in rounds)) for k in rounds[0]}
        ffmpeg, ours = spread["ffmpeg_cpu_pct"], spread["streamctl_cpu_pct"]
        print(f"{name:<14} {mean['ffmpeg_cpu_pct']:>6.1f} ({ffmpeg[0]:.1f}-{ffmpeg[1]:.1f}) "
              f"{mean['streamctl_cpu_pct']:>8.1f} ({ours[0]:.1f}-{ours[1]:.1f}) "
              f"{mean['first_frame_s']:>8.2f} {mean['fps_arrived']:>10.1f}")


if __name__ == "__main__":
    asyncio.run(main())
