"""YouTube quota of a 4-hour, two-channel event with broadcasts made by streamctl and platform health polling.

Two parts:
1. Measured: one channel's whole broadcast life (insert, stream, bind, testing, go live, a title change, end) run for
   real by `YouTubeBroadcast` against the local fake (`FakeYouTubeLive`, whose ledger charges what YouTube charges),
   with a real ffmpeg publishing to the fake's RTMP ingest so the transitions succeed.
2. Simulated clock: the steady state of 4 hours per channel, call by call, with the real `QuotaPlanner` choosing
   the chat interval (the health polling reserved in it) at the default `BroadcastTiming.health_every_s`:
   chat over streamList (5 units a connection; a reconnect every `--reconnect-min` minutes assumed) or polled
   (`liveChatMessages.list`, 5 units a poll), `videos.list` for viewers, `liveStreams.list` for health.

Run: `python bench/quota_bench.py [--hours 4] [--channels 2] [--reconnect-min 10]`. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamctl.accounts.registry import Accounts  # noqa: E402
from streamctl.audience.quota import LIST_COST, VIDEOS_COST, QuotaPlanner  # noqa: E402
from streamctl.broadcasts.manager import BroadcastTiming  # noqa: E402
from streamctl.broadcasts.youtube import LIST_UNITS, YouTubeBroadcast  # noqa: E402
from streamctl.config import DestinationConfig  # noqa: E402
from streamctl.fakes.youtube_live import FakeYouTubeLive  # noqa: E402
from streamctl.restream.ffmpeg import find_ffmpeg  # noqa: E402

DAILY = 10_000


async def measured_life() -> tuple[int, Counter, int]:
    """(units the fake charged, calls by method, units our ledger booked) for one broadcast's life."""
    async with FakeYouTubeLive() as yt:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "yt.json"
            path.write_text(json.dumps(yt.authorized_user()))
            accounts = Accounts()
            booked = []
            config = DestinationConfig(name="yt", platform="youtube", url="rtmp://x/live2", broadcast="create",
                                       credentials_file=path, title="Kỳ họp", api_base=yt.url)
            b = YouTubeBroadcast(config, accounts.google(path), accounts.session, spend=booked.append, title="Kỳ họp")
            publisher = None
            try:
                url, _ = await b.prepare()
                publisher = await asyncio.create_subprocess_exec(
                    find_ffmpeg(), "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=15",
                    "-f", "lavfi", "-i", "sine", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "aac",
                    "-t", "60", "-f", "flv", url, stdin=asyncio.subprocess.DEVNULL)
                for _ in range(100):  # until the fake's ingest sees frames
                    if (await b.health())["status"] == "good":
                        break
                    await asyncio.sleep(0.2)
                await b.preview()
                await b.go_live(wait_s=30, step_s=0.5)
                await b.apply("Kỳ họp — buổi chiều", "")
                await b.end(wait_s=30, step_s=0.5)
            finally:
                if publisher is not None and publisher.returncode is None:
                    publisher.kill()
                    await publisher.wait()
                await accounts.close()
            calls = Counter(f"{path.split('/youtube/v3/')[-1]}" for _, path, _ in yt.requests
                            if "/youtube/v3/" in path)
            health_calls = sum(1 for _, p, q in yt.requests if p.endswith("/liveStreams") and "status" in q.get(
                "part", "") and "cdn" not in q.get("part", ""))
            return yt.used - health_calls * LIST_UNITS, calls, sum(booked) - health_calls * LIST_UNITS


def steady_state(hours: float, health_every_s: float, transport: str, reconnect_min: float, setup_units: int,
                 viewers_every_s: float = 15.0) -> tuple[Counter, float]:
    """Units by kind for one channel over `hours`, on a simulated clock; and the last chat interval planned.

    The broadcast's own calls (`setup_units`, measured) are booked at the start, as the manager books them in
    the channel's ledger, so the planner's chat interval leaves room for them.
    """
    start = 1_796_000_000.0  # a weekday morning; what matters is that no Pacific midnight falls inside
    planner = QuotaPlanner(daily=DAILY, planned_s=hours * 3600, started_at=start, viewers_every_s=viewers_every_s)
    planner.reserve("health", LIST_UNITS / health_every_s)
    units: Counter = Counter({"broadcast life (measured)": setup_units})
    planner.spend(setup_units, start)
    at, end = start, start + hours * 3600
    next_health = next_viewers = next_chat = at
    interval = 0.0
    while at < end:
        if at >= next_health:
            units["liveStreams.list (health)"] += LIST_UNITS
            planner.spend(LIST_UNITS, at)
            next_health += health_every_s
        if at >= next_viewers:
            units["videos.list (viewers)"] += VIDEOS_COST
            planner.spend(VIDEOS_COST, at)
            next_viewers += max(viewers_every_s, planner.plan(at).viewers_every_s)
        if at >= next_chat:
            units[f"liveChatMessages.{'streamList' if transport == 'stream' else 'list'}"] += LIST_COST
            planner.spend(LIST_COST, at)
            interval = reconnect_min * 60 if transport == "stream" else planner.plan(at).interval_s
            next_chat += interval
        at = min(next_health, next_viewers, next_chat)
    return units, interval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--reconnect-min", type=float, default=10.0,
                        help="minutes between streamList reconnects assumed (each costs 5 units)")
    args = parser.parse_args()
    health_every = BroadcastTiming().health_every_s
    charged, calls, booked = asyncio.run(measured_life())
    print(f"one broadcast's life against the fake (health looks left out): {charged} units charged, "
          f"{booked} booked in our ledger")
    for name, n in sorted(calls.items()):
        print(f"  {name:<28} {n:>3} calls")
    for transport in ("stream", "poll"):
        units, interval = steady_state(args.hours, health_every, transport, args.reconnect_min, booked)
        per_channel = sum(units.values())
        print(f"\nchat over {transport}, {args.hours:g} h, health every {health_every:g} s "
              f"(last chat interval {interval:g} s):")
        for name, n in units.most_common():
            print(f"  {name:<32} {n:>6} units")
        print(f"  per channel {per_channel} units ({per_channel / DAILY:.0%} of a {DAILY:,}-unit day); "
              f"{args.channels} channels {per_channel * args.channels} units: "
              f"{'fits' if per_channel <= DAILY else 'DOES NOT fit'} one project per channel, "
              f"{'fits' if per_channel * args.channels <= DAILY else 'does NOT fit'} one shared project")


if __name__ == "__main__":
    main()
