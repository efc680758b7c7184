"""Audience benchmarks: ingest rate with durable writes and dedupe, fetch-to-stored latency, memory over 1M comments,
and TikTok comments through the real TikTokLive client (protobuf parsing, its emitter) to SQLite.

Run: `python bench/audience_bench.py [--million N] [--seconds S] [--tiktok N] [--only tiktok]` (pinned to one
core). Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamctl.audience.models import Comment  # noqa: E402
from streamctl.audience.poller import Poller, Timing  # noqa: E402
from streamctl.audience.source import Batch, Http  # noqa: E402
from streamctl.audience.webhook import WebhookSource  # noqa: E402
from streamctl.audience.youtube import YouTubeSource  # noqa: E402
from streamctl.config import AudienceConfig  # noqa: E402
from streamctl.events import Bus, CommentsStored  # noqa: E402
from streamctl.fakes.youtube import FakeYouTube  # noqa: E402
from streamctl.recorder import Recorder  # noqa: E402
from streamctl.store import Store  # noqa: E402

TEXTS = ("Cho hỏi khi nào đường Hạ Long được sửa xong ạ?", "Cảm ơn HĐND tỉnh!", "When will the school open?",
         "Mỗi lần mưa lớn Cẩm Phả lại ngập sâu", "👍👍👍")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def comment(i: int, source: str) -> Comment:
    at = time.time()
    return Comment(platform="webhook", source=source, platform_id=f"m{i}", author_name=f"Người xem {i % 997}",
                   author_id=f"u{i % 997}", text=TEXTS[i % len(TEXTS)], published_at=at, received_at=at)


class Pipeline:
    """The real path: a poller's deliver → bus → recorder → SQLite (WAL) → CommentsStored."""

    def __init__(self, db: Path):
        self.store = Store(db)
        self.bus = Bus()
        self.recorder = Recorder(self.store, self.bus)
        self.stored = self.bus.subscribe(CommentsStored, maxsize=100_000, lossless=True, name="bench")
        self.count = 0
        self.changed = asyncio.Event()
        self.poller = Poller(WebhookSource(AudienceConfig("bench", "webhook", {}, credential="x")), self.bus)

    async def __aenter__(self):
        self.tasks = [asyncio.create_task(self.recorder.run()), asyncio.create_task(self._count())]
        return self

    async def __aexit__(self, *exc):
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.store.close()

    async def _count(self):
        async for event in self.stored:
            self.count += len(event.comments)
            self.changed.set()

    async def until_stored(self, n: int, timeout: float = 300.0):  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while self.count < n:
                self.changed.clear()
                await self.changed.wait()


async def ingest_rate(batch: int, total: int, dup_share: float = 0.1) -> tuple[float, int]:
    """Comments per second, each batch one transaction; `dup_share` of every batch was seen before."""
    with tempfile.TemporaryDirectory() as tmp:
        async with Pipeline(Path(tmp) / "rate.db") as p:
            start = time.perf_counter()
            i = 0
            while i < total:
                fresh = [comment(i + k, "bench") for k in range(batch)]
                dups = [comment(max(0, i - 1 - k), "bench") for k in range(int(batch * dup_share))]
                i += batch
                # Dups bypass the poller's memory (as after a restart) so the store's dedupe does the work.
                p.poller._seen.clear()
                await p.poller.deliver(Batch(comments=dups + fresh, cursor=str(i)))
            await p.until_stored(total)
            elapsed = time.perf_counter() - start
            rows = p.store.query_one("SELECT COUNT(*) AS n FROM comments")["n"]
    return total / elapsed, rows


async def latency(seconds: float, rate: int) -> list[float]:
    """Seconds from the fake platform answering with a comment to that comment stored and published."""
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeYouTube(token="t", interval_ms=200, daily_quota=10**9) as fake, \
                Pipeline(Path(tmp) / "lat.db") as p:
            http = Http()
            cfg = AudienceConfig("yt", "youtube", {"video_id": fake.video_id, "api_base": fake.url}, credential="t")
            poller = Poller(YouTubeSource(cfg, http), p.bus, Timing(interval=0.2, jitter=0.1))
            poller.resume(None)
            latencies: list[float] = []
            expected = [10**12]  # the number sent, once known
            all_in = asyncio.Event()
            watch = p.bus.subscribe(CommentsStored, maxsize=100_000, name="lat")

            async def measure():
                async for event in watch:
                    at = time.time()
                    for c in event.comments:
                        pid = p.store.query_one("SELECT platform_id FROM comments WHERE id = ?", (c["id"],))[0]
                        latencies.append(at - fake.served_at[pid])
                    if len(latencies) >= expected[0]:
                        all_in.set()

            tasks = [asyncio.create_task(poller.run()), asyncio.create_task(measure())]
            start = time.monotonic()
            sent = 0
            while time.monotonic() - start < seconds:
                due = int((time.monotonic() - start) * rate)
                while sent < due:
                    fake.post_comment(f"Người {sent % 50}", TEXTS[sent % len(TEXTS)])
                    sent += 1
                await asyncio.sleep(0.005)
            expected[0] = sent
            if len(latencies) >= sent:
                all_in.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_in.wait(), 10)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await http.close()
    return latencies


async def memory(total: int, batch: int = 500) -> list[tuple[int, float]]:
    """RSS after every tenth of `total` comments through the real path."""
    marks = []
    with tempfile.TemporaryDirectory() as tmp:
        async with Pipeline(Path(tmp) / "mem.db") as p:
            step = total // 10
            for i in range(0, total, batch):
                await p.poller.deliver(Batch(comments=[comment(i + k, "bench") for k in range(batch)],
                                             cursor=str(i)))
                if (i + batch) % step == 0:
                    await p.until_stored(i + batch)
                    marks.append((i + batch, rss_mb()))
    return marks


async def tiktok(total: int) -> tuple[float, float, float]:
    """From TikTok frames to rows through the real TikTokLive client (it parses every frame's protobuf).

    Returns comments/s by the wall clock, CPU µs per comment for the whole path, and CPU µs of that in the
    library's parsing alone (CPU time, so the figures hold on a loaded machine).
    """
    from TikTokLive.events import CommentEvent

    from streamctl.audience.tiktok import TikTokSource
    from streamctl.fakes.tiktok import FakeTikTok
    from streamctl.fakes.tiktok import comment as frame

    frames = [frame(f"Người xem {i % 997}", TEXTS[i % len(TEXTS)], user_id=i % 997 + 1) for i in range(total)]
    with tempfile.TemporaryDirectory() as tmp:
        async with Pipeline(Path(tmp) / "tiktok.db") as p:
            source = TikTokSource(AudienceConfig("tt", "tiktok", {"unique_id": "@bench"}),
                                  client_factory=FakeTikTok([frames]).factory)
            poller = Poller(source, p.bus, Timing(interval=0.05))
            start, cpu = time.perf_counter(), time.process_time()
            task = asyncio.create_task(poller.run())
            await p.until_stored(total)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    sample = frames[: min(total, 5000)]
    parse = time.process_time()
    for f in sample:
        CommentEvent().parse(f.payload)
    parse = (time.process_time() - parse) / len(sample)
    return total / elapsed, cpu / total * 1e6, parse * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--million", type=int, default=1_000_000, help="comments for the memory run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    parser.add_argument("--tiktok", type=int, default=20_000, help="comments for the TikTok run")
    parser.add_argument("--only", choices=("tiktok",), help="run only this part")
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})  # one core, as the target says
    print(f"python {sys.version.split()[0]}, one core")
    rate, cpu_us, parse_us = asyncio.run(tiktok(args.tiktok))
    print(f"tiktok through TikTokLive, {args.tiktok} comments: {rate:,.0f}/s by the clock; CPU {cpu_us:,.0f} µs "
          f"a comment, of which {parse_us:,.0f} µs the library's protobuf parsing")
    if args.only == "tiktok":
        return
    for batch in (1, 20, 100, 500):
        rate, rows = asyncio.run(ingest_rate(batch, 20_000 if batch > 1 else 5_000))
        print(f"ingest batch={batch:>3} (10% duplicates): {rate:,.0f} comments/s stored, {rows} rows")
    lat = asyncio.run(latency(args.seconds, 500))
    q = statistics.quantiles(lat, n=100)
    print(f"latency at 500/s over {args.seconds:g} s: n={len(lat)} p50={q[49] * 1000:.1f} ms "
          f"p99={q[98] * 1000:.1f} ms max={max(lat) * 1000:.1f} ms")
    marks = asyncio.run(memory(args.million))
    print("memory: " + ", ".join(f"{n // 1000}k={mb:.0f} MB" for n, mb in marks))


if __name__ == "__main__":
    main()
