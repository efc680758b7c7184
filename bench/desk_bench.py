"""The question desk at an event's peak: 11,000 viewers, 50 comments/s for a minute, 3 moderators on /moderate.

The console starts with 2,000 auto-flagged questions already pending (mid-event). Then comments flow at the
rate for the given time, 40 % of them questions (a third of those the same few questions asked again in other
words, the rest distinct), viewer counts of three platforms summing to about 11,000 every 2 s, and the three
moderators act through the API as they would from their pages: each every 2 s approves the newest pending
question, dismisses one, or makes a question of a plain comment by hand.

Measured in each moderator's Chromium page: a new pending question published by the desk → its card (or its
line under the card of its group of likely duplicates) rendered on the page, after the frame that contains it
(style, layout and paint done); the same for the hand-made ones in the moderators' lane. Target: p99 ≤ 250 ms.

Run from the checkout:

    python bench/desk_bench.py [--seconds 60] [--rate 50] [--pending 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from console_bench import OBSERVE, cpu_line, cpu_seconds, row, sign_in, since  # noqa: E402
from playwright.async_api import async_playwright  # noqa: E402

from streamctl.audience.models import Comment, ViewerSample  # noqa: E402
from streamctl.events import CommentsFetched, QuestionChanged, ViewersSampled  # noqa: E402
from tests.console_harness import running_console  # noqa: E402
from tests.test_browser import ARGS, CHROMIUM  # noqa: E402
from tests.test_desk import TOPICS  # noqa: E402
from tests.test_desk_browser import distinct  # noqa: E402

BATCH_EVERY_S = 0.1  # pollers hand over comments in batches
PLAIN = ("Chúc kỳ họp thành công", "Cảm ơn đại biểu", "Xem từ Cẩm Phả", "Âm thanh rõ lắm", "Ủng hộ ý kiến này")
PLATFORMS = (("yt-main", "youtube", 6200), ("fb-page", "facebook", 4100), ("tt-live", "tiktok", 700))


# A question that joins a group of likely duplicates shows as a line of its group's card (which lists the ids
# it holds in data-members): stamped like the others, after the frame that drew that card.
OBSERVE_GROUPS = """() => {
  const drawn = window.__drawn;
  new MutationObserver((changes) => {
    const ids = [];
    for (const change of changes) {
      for (const node of change.addedNodes) if (node.dataset?.members) ids.push(...node.dataset.members.split(" "));
    }
    if (!ids.length) return;
    requestAnimationFrame(() => setTimeout(() => {
      const t = Date.now();
      for (const id of ids) if (!(id in drawn)) drawn[id] = t;
    }));
  }).observe(document.getElementById("question-lanes"), { childList: true, subtree: true });
}"""


def stamp_created(bus, created_at: dict[int, float], by_hand: set[int]) -> None:
    """Note when the desk publishes each new question (observes this bus's publish, changes nothing)."""
    publish = bus.publish

    async def publish_noting(event) -> None:
        if isinstance(event, QuestionChanged) and event.action == "create":
            created_at[event.question["id"]] = time.time()
            if event.question["origin"] == "moderator":
                by_hand.add(event.question["id"])
        await publish(event)

    bus.publish = publish_noting


def comment_text(n: int, rng: random.Random) -> tuple[str, bool]:
    """The n-th comment of the stream and whether it reads as a question."""
    roll = rng.random()
    if roll < 0.6:
        return f"{PLAIN[n % len(PLAIN)]} #{n}", False
    if roll < 0.73:
        return ("Cho hỏi ", "Xin hỏi ", "")[n % 3] + TOPICS[rng.randrange(10)] + (" ạ?", " vậy?", "?")[n % 3], True
    return distinct(n, rng)[1], True


async def moderator(client, store, plain_ids: list[int], stop: asyncio.Event, seed: int) -> int:
    """One moderator's pace: every 2 s approve the newest pending question, dismiss one, or make one by hand."""
    rng = random.Random(seed)
    actions = 0
    while not stop.is_set():
        await asyncio.sleep(2.0)
        roll = rng.random()
        if roll < 0.4 and plain_ids:
            await client.call("POST", "/api/questions", {"comment_id": plain_ids.pop()})
        else:
            newest = store.query_one("SELECT id FROM questions WHERE state = 'pending' ORDER BY id DESC LIMIT 1")
            if newest is not None:
                await client.call("POST", f"/api/questions/{newest['id']}/{'approve' if roll < 0.7 else 'dismiss'}")
        actions += 1
    return actions


async def bench(seconds: float, rate: int, pending: int) -> list[str]:
    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as tmp:
        users = [("op", "operator")] + [(f"mod{i}", "moderator") for i in (1, 2, 3)]
        async with running_console(Path(tmp), users=users) as console, async_playwright() as pw:
            bus = console.controller.bus
            started_seed = time.monotonic()
            await console.feed_questions(*(distinct(n, rng) for n in range(pending)), within=120)
            seeded_in = time.monotonic() - started_seed
            created_at: dict[int, float] = {}
            by_hand: set[int] = set()
            stamp_created(bus, created_at, by_hand)

            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pages = [await sign_in(browser, console.url, f"mod{i}") for i in (1, 2, 3)]
            for page in pages:
                await page.evaluate(OBSERVE, ["#question-lanes", None])
                await page.evaluate(OBSERVE_GROUPS)
            clients = [await console.client(f"mod{i}") for i in (1, 2, 3)]
            stop = asyncio.Event()
            plain_ids: list[int] = []
            store = console.controller.store

            async def viewers() -> None:
                while not stop.is_set():
                    for source, platform, base in PLATFORMS:
                        count = base + rng.randrange(-150, 150)
                        await bus.publish(ViewersSampled(ViewerSample(source, platform, time.time(), count)))
                    await asyncio.sleep(2.0)

            tasks = [asyncio.create_task(viewers(), name="bench.viewers")]
            tasks += [asyncio.create_task(moderator(c, store, plain_ids, stop, i), name=f"bench.mod{i}")
                      for i, c in enumerate(clients)]
            cpu_before = cpu_seconds()
            n = questions = 0
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < seconds:
                due = int(rate * (elapsed + BATCH_EVERY_S)) - n
                by_source: dict[tuple[str, str], list[Comment]] = {}
                for _ in range(max(0, due)):
                    n += 1
                    text, is_question = comment_text(n, rng)
                    questions += is_question
                    source, platform, _ = PLATFORMS[n % 3]
                    at = time.time()
                    by_source.setdefault((source, platform), []).append(
                        Comment(platform, source, f"d{n}", f"Khán giả {n % 900}", f"u{n % 900}", text, at, at))
                for (source, platform), batch in by_source.items():
                    await bus.publish(CommentsFetched(source, platform, tuple(batch)))
                if n % 25 == 0:
                    top = store.last_comment_id()
                    plain_ids[:] = [r["id"] for r in store.query(
                        "SELECT id FROM comments WHERE is_question = 0 AND id > ? ORDER BY id DESC LIMIT 20",
                        (top - 200,))]
                await asyncio.sleep(max(0.0, started + (n / rate) - time.monotonic()))
            elapsed = time.monotonic() - started
            cpu = cpu_line(cpu_before, cpu_seconds(), elapsed)
            await asyncio.sleep(3.0)  # let the last ones arrive
            stop.set()
            done = await asyncio.gather(*tasks, return_exceptions=True)
            auto_ms: list[float] = []
            hand_ms: list[float] = []
            missing = 0
            elements = []
            auto_at = {i: t for i, t in created_at.items() if i not in by_hand}
            hand_at = {i: t for i, t in created_at.items() if i in by_hand}
            for page in pages:
                drawn = await page.evaluate("window.__drawn")
                auto_ms += since(auto_at, drawn)
                hand_ms += since(hand_at, drawn)
                missing += sum(1 for i in created_at if str(i) not in drawn)
                elements.append(await page.evaluate("document.getElementsByTagName('*').length"))
            counts = console.controller.questions.counts()
            await browser.close()
            actions = sum(x for x in done if isinstance(x, int))
            return [
                f"{pending} questions pending at the start (fed in {seeded_in:.1f} s); {n} comments in {elapsed:.1f} s "
                f"({n / elapsed:.0f}/s, {questions} questions), viewers ~11,000 on 3 platforms, 3 moderators on "
                f"Chromium pages doing {actions} actions; pending at the end: {counts['auto']['pending']} auto, "
                f"{counts['moderator']['pending']} by hand",
                f"new questions not shown on a page (3 pages × {len(created_at)}): {missing}; "
                f"elements on the pages at the end: {', '.join(map(str, elements))}",
                cpu, "", "| path | end | samples | median ms | p95 ms | p99 ms | max ms |", "|---" * 7 + "|",
                *(row(name, "frame rendered", values) for name, values in (
                    ("new pending question (auto) → its card on a moderator's page", auto_ms),
                    ("question made by hand → its card in the moderators' lane", hand_ms))),
            ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=50, help="comments per second")
    parser.add_argument("--pending", type=int, default=2000, help="auto-flagged questions pending at the start")
    args = parser.parse_args()
    print("\n".join(asyncio.run(bench(args.seconds, args.rate, args.pending))))


if __name__ == "__main__":
    main()
