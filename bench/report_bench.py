"""Report benchmark: a 4-hour event, 200,000 comments, five platforms sampled every 5 s.

    python bench/report_bench.py [--dir DIR] [--runs 3]

Builds the event database through the store, then runs `streamctl report … --format json` and `--format html`
as subprocesses and measures each one's wall time and peak RSS (from wait4). Targets: under 3 s, under 300 MB.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from streamctl.audience.models import Comment, ViewerSample
from streamctl.store import Store

HOURS = 4
COMMENTS = 200_000
SAMPLE_S = 5
PLATFORMS = (("facebook-qmg", "facebook"), ("youtube-qmg", "youtube"), ("youtube-qn", "youtube"),
             ("tiktok", "tiktok"), ("zalo", "zalo"))
TARGET_S, TARGET_MB = 3.0, 300.0
WORDS = ("xin", "hỏi", "tỉnh", "đường", "bao giờ", "cảm ơn", "trực tiếp", "Quảng Ninh", "chúc mừng", "rất", "hay")


def build(path: Path) -> None:
    """The big event, written the way the recorder writes it."""
    rng = random.Random(4)
    t0 = datetime(2024, 9, 2, 1, 0, tzinfo=UTC).timestamp()
    end = t0 + HOURS * 3600
    store = Store(path)
    store.set_meta("event_name", "Benchmark: 4 h, 200,000 comments")
    store.set_meta("timezone", "Asia/Ho_Chi_Minh")
    store.set_meta("started_at", datetime.fromtimestamp(t0, UTC).isoformat())
    store.set_meta("ended_at", datetime.fromtimestamp(end, UTC).isoformat())
    for name, platform in PLATFORMS:
        store.log_destination_event(t0, name, platform, "stopped", "starting", None)
        store.log_destination_event(t0 + 2, name, platform, "starting", "live", None)
        for k in range(int(HOURS * 3600 / SAMPLE_S)):
            at = t0 + k * SAMPLE_S
            store.add_viewers(ViewerSample(name, platform, at, rng.randrange(100, 5000), likes=k, views=10 * k,
                                           manual=platform == "zalo"))
            store.log_destination_health(at, name, {"bitrate_kbps": 6000 + rng.gauss(0, 100), "fps": 30.0,
                                                    "speed": 1.0})
    chatty = [p for p in PLATFORMS if p[1] != "zalo"]
    batch: dict[str, list[Comment]] = {name: [] for name, _ in chatty}
    for i in range(COMMENTS):
        name, platform = chatty[i % len(chatty)]
        at = t0 + rng.random() * HOURS * 3600
        text = " ".join(rng.choices(WORDS, k=rng.randrange(3, 12))) + ("?" if i % 7 == 0 else "")
        batch[name].append(Comment(platform, name, f"{name}-{i}", f"Người xem {i % 40_000}", f"a{i % 40_000}", text,
                                   at, at + 3, kind="paid" if i % 5000 == 0 else "comment"))
        if len(batch[name]) >= 1000:
            store.add_comments(name, batch[name])
            batch[name] = []
    for name, rest in batch.items():
        store.add_comments(name, rest)
    with store.transaction() as db:
        rows = db.execute("SELECT id, author_name, platform, source, text, published_at FROM comments"
                          " WHERE is_question = 1 LIMIT 3000").fetchall()
        for n, r in enumerate(rows):
            answered = r["published_at"] + 600 if n % 10 == 0 else None
            db.execute("INSERT INTO questions (comment_id, text, original_text, author, platform, source, state,"
                       " asked_at, created_at, updated_at, approved_at, answered_at, answered_by)"
                       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       (r["id"], r["text"], r["text"], r["author_name"], r["platform"], r["source"],
                        "answered" if answered else "pending", r["published_at"], r["published_at"],
                        r["published_at"], answered, answered, "official" if answered else None))
    store.close()


def measure(db: Path, fmt: str, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `streamctl report` run."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "streamctl", "report", str(db), "--format", fmt, "-o", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"streamctl report --format {fmt} failed: {child.stderr.read().decode()}")
    child.stderr.close()
    return wall, usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="keep the database here (default: a temp folder)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        db = folder / "bench-4h.db"
        if not db.exists():
            began = time.perf_counter()
            build(db)
            print(f"built {db} ({db.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - began:.0f} s",
                  file=sys.stderr)
        ok = True
        print(f"| format | wall s (median of {args.runs}) | worst wall s | peak RSS MB |")
        print("|---|---|---|---|")
        for fmt in ("json", "html"):
            runs = [measure(db, fmt, folder / f"report.{fmt}") for _ in range(max(1, args.runs))]
            walls, rss = [w for w, _ in runs], max(r for _, r in runs)
            print(f"| {fmt} | {statistics.median(walls):.2f} | {max(walls):.2f} | {rss:.0f} |")
            ok = ok and max(walls) < TARGET_S and rss < TARGET_MB
    print(f"targets: under {TARGET_S:.0f} s and {TARGET_MB:.0f} MB: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
