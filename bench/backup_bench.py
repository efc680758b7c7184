"""`streamctl backup` of a big event database while it is being written: how long, and how much it holds up the
writer. Fills a database with N comments (the anniversary event had 559; a busy day is tens of thousands), then
times a backup with and without a writer committing 50-comment batches meanwhile.

Run from the checkout: `python bench/backup_bench.py [--comments 200000]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamctl.audience.models import Comment  # noqa: E402
from streamctl.backup import backup  # noqa: E402
from streamctl.store import Store  # noqa: E402


def comments(start: int, count: int) -> list[Comment]:
    at = time.time()
    return [Comment(platform="youtube", source="yt", platform_id=f"c{n}", author_name=f"Người xem {n % 997}",
                    author_id=f"a{n % 997}", text=f"Xin hỏi đại biểu về dự án số {n}, khi nào hoàn thành?",
                    published_at=at, received_at=at) for n in range(start, start + count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="streamctl-backup-bench-") as tmp:
        folder = Path(tmp)
        store = Store(folder / "event.db")
        for start in range(0, args.comments, 5000):
            store.add_comments("yt", comments(start, min(5000, args.comments - start)))
        size_mb = (folder / "event.db").stat().st_size / 1e6
        idle = backup(folder / "event.db", folder / "idle.db")
        stop, batches, slowest = threading.Event(), [0], [0.0]

        def write() -> None:
            n = args.comments
            while not stop.is_set():
                began = time.monotonic()
                store.add_comments("yt", comments(n, 50), cursor=str(n))
                slowest[0] = max(slowest[0], time.monotonic() - began)
                n += 50
                batches[0] += 1

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.5)
        busy = backup(folder / "event.db", folder / "busy.db")
        stop.set()
        writer.join()
        store.close()
        print(f"database: {args.comments:,} comments, {size_mb:.1f} MB")
        print(f"backup, nothing writing:           {idle.seconds:.2f} s ({idle.bytes / 1e6:.1f} MB)")
        print(f"backup, a writer committing 50s:   {busy.seconds:.2f} s; the writer committed {batches[0]} "
              f"batches meanwhile, the slowest in {slowest[0] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
