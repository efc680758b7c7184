"""Console under load: 50 signed-in pages (websockets and real Chromium pages) while 500 comments/s flow.

Measures, in the browser (a MutationObserver, then the next animation frame): comment stored → row on a
moderator's page; "forward" sent → the question on the officials' screen; "on air" sent → the overlay.
Also comment stored → received by the plain websocket clients. Run from the checkout:

    python bench/console_bench.py [--seconds 15] [--rate 500] [--sockets 45]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.async_api import async_playwright  # noqa: E402

from streamctl.audience.models import Comment  # noqa: E402
from streamctl.events import CommentsFetched, CommentsStored  # noqa: E402
from tests.console_harness import PASSWORD, Console, running_console  # noqa: E402
from tests.test_browser import ARGS, CHROMIUM, DESKTOP  # noqa: E402

BATCH_EVERY_S = 0.1  # pollers hand over comments in batches

# Installed in each page (through DevTools, so the page's CSP does not apply): first time each id is shown.
OBSERVE = """([selector, attribute]) => {
  window.__seen = {};
  const root = document.querySelector(selector);
  const note = (id) => { if (id && !(id in window.__seen)) { const t = Date.now();
    requestAnimationFrame(() => { window.__seen[id] = window.__seen[id] || Date.now(); }); } };
  new MutationObserver((changes) => {
    for (const change of changes) {
      if (change.type === "attributes") note(root.getAttribute(attribute));
      for (const node of change.addedNodes) if (node.dataset) note(node.dataset.id);
    }
  }).observe(root, { childList: true, subtree: true, attributes: Boolean(attribute),
                     attributeFilter: attribute ? [attribute] : undefined });
}"""


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(name: str, values_ms: list[float]) -> str:
    return (f"| {name} | {len(values_ms)} | {statistics.median(values_ms):.0f} | {p(values_ms, 0.95):.0f} | "
            f"{p(values_ms, 0.99):.0f} | {max(values_ms):.0f} |")


async def sign_in(browser, url: str, name: str):
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    await page.goto(f"{url}/login")
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button.primary")
    await page.wait_for_load_state("load")
    await page.wait_for_function("document.getElementById('live-status').dataset.state === 'live'")
    return page


async def socket_reader(ws, latencies: list[float] | None, until: float) -> None:
    """Read every message; time the comments in them when `latencies` is given (a sample of the sockets)."""
    while time.monotonic() < until:
        try:
            async with asyncio.timeout(0.5):
                msg = await ws.receive()
        except TimeoutError:
            continue
        if msg.type != 1:  # not text: closed
            return
        if latencies is None:
            continue
        at = time.time()
        event = json.loads(msg.data)
        if event["type"] == "CommentsStored":
            latencies.extend((at - datetime.fromisoformat(c["received_at"]).timestamp()) * 1000
                             for c in event["comments"])


async def sockets_of(url: str, sockets: int, seconds: float) -> list[float]:
    """Child process: `sockets` signed-in websocket clients reading for `seconds`; their latencies."""
    console = Console(controller=None, url=url, tmp=Path("."))  # only its URL is used by the clients
    try:
        clients = [await console.client(f"mod{4 + i}") for i in range(2)]
        wss = [await clients[i % 2].session.ws_connect(f"{url}/ws", origin=url) for i in range(sockets)]
        latencies: list[float] = []
        until = time.monotonic() + seconds
        # Parsing every message of 45 sockets in one Python process would measure this process, not the
        # server: all sockets read everything, five of them time it.
        await asyncio.gather(*(socket_reader(ws, latencies if i < 5 else None, until) for i, ws in enumerate(wss)))
        for ws in wss:
            await ws.close()
        return latencies
    finally:
        for session in console.clients:
            await session.close()


async def bench(seconds: float, rate: int, sockets: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        users = [("op", "operator"), ("chair", "official")] + [(f"mod{i}", "moderator") for i in range(1, 6)]
        async with running_console(Path(tmp), users=users) as console, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            bus = console.controller.bus
            stored_at: dict[int, float] = {}
            stop = asyncio.Event()

            base_subscribers = bus.subscribers
            # Real pages: three moderators, the officials' screen, the on-air overlay.
            moderators = [await sign_in(browser, console.url, f"mod{i}") for i in (1, 2, 3)]
            official = await sign_in(browser, console.url, "chair")
            token = console.controller.store.create_token("overlay")
            overlay = await (await browser.new_context(viewport=DESKTOP)).new_page()
            await overlay.goto(f"{console.url}/overlay/question?token={token}")
            await overlay.wait_for_function("document.body.dataset.live === '1'")
            for page in moderators:
                await page.evaluate(OBSERVE, ["#comments", None])
            await official.evaluate(OBSERVE, ["#next", None])
            await overlay.evaluate(OBSERVE, ["#lower-third", "data-question-id"])

            # The rest of the 50: websocket clients of signed-in moderators, in their own process (as on
            # other machines), so their JSON parsing does not slow the server being measured.
            child = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--sockets-of", console.url, "--sockets", str(sockets),
                "--seconds", str(seconds + 3), stdout=asyncio.subprocess.PIPE)
            async with asyncio.timeout(30):
                while console.controller.bus.subscribers < base_subscribers + 3 + sockets:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

            async def record_stored() -> None:
                with bus.subscribe(CommentsStored, maxsize=100000, lossless=True, name="bench") as sub:
                    while True:
                        event = await sub.get()
                        at = time.time()
                        for c in event.comments:
                            stored_at[c["id"]] = at

            recorder = asyncio.create_task(record_stored())
            forwarded: dict[int, float] = {}
            aired: dict[int, float] = {}
            mod = await console.client("mod5")

            async def moderate() -> None:
                """Once a second: forward the oldest pending question, then put the last forwarded on air."""
                while not stop.is_set():
                    await asyncio.sleep(1.0)
                    pending = console.controller.store.query_one(
                        "SELECT id FROM questions WHERE state = 'pending' ORDER BY id LIMIT 1")
                    if pending is None:
                        continue
                    qid = pending["id"]
                    forwarded[qid] = time.time()
                    await mod.call("POST", f"/api/questions/{qid}/forward")
                    await asyncio.sleep(0.3)
                    aired[qid] = time.time()
                    await mod.call("POST", f"/api/questions/{qid}/on_air")

            moderator_task = asyncio.create_task(moderate())
            n = 0
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < seconds:
                # Keep to the rate by the clock: a late batch is made up by the next one.
                due = int(rate * (elapsed + BATCH_EVERY_S)) - n
                batch = []
                for _ in range(max(0, due)):
                    n += 1
                    text = f"Câu hỏi số {n}: bao giờ sửa đường?" if n % 10 == 0 else f"Bình luận số {n} từ Hạ Long"
                    batch.append(Comment("youtube", "yt-bench", f"b{n}", f"Khán giả {n % 300}", f"u{n % 300}", text,
                                         time.time(), time.time()))
                if batch:
                    await bus.publish(CommentsFetched("yt-bench", "youtube", tuple(batch)))
                await asyncio.sleep(max(0.0, started + (n / rate) - time.monotonic()))
            elapsed = time.monotonic() - started
            await asyncio.sleep(2.0)  # let the last ones arrive
            stop.set()
            for task in (moderator_task, recorder):
                task.cancel()
            await asyncio.gather(moderator_task, recorder, return_exceptions=True)
            out, _ = await child.communicate()
            socket_latencies = json.loads(out)

            browser_latencies: list[float] = []
            for page in moderators:
                seen = await page.evaluate("window.__seen")
                browser_latencies += [seen[k] - stored_at[int(k)] * 1000 for k in seen if int(k) in stored_at]
            seen_official = await official.evaluate("window.__seen")
            seen_overlay = await overlay.evaluate("window.__seen")
            forward_ms = [seen_official[str(q)] - t * 1000 for q, t in forwarded.items() if str(q) in seen_official]
            air_ms = [seen_overlay[str(q)] - t * 1000 for q, t in aired.items() if str(q) in seen_overlay]
            await browser.close()
            pages = len(moderators) + 2 + sockets
            return [
                f"{n} comments in {elapsed:.1f} s ({n / elapsed:.0f}/s), {pages} signed-in pages "
                f"({len(moderators) + 2} Chromium pages, {sockets} websockets); "
                f"{len(forwarded)} forwarded, {len(aired)} put on air",
                "",
                "| path | samples | median ms | p95 ms | p99 ms | max ms |",
                "|---|---|---|---|---|---|",
                row("comment stored → row on a moderator's page (Chromium)", browser_latencies),
                row("comment created → websocket client (own process)", socket_latencies),
                row("forward → officials' screen (Chromium)", forward_ms),
                row("on air → overlay (Chromium)", air_ms),
            ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=int, default=500, help="comments per second")
    parser.add_argument("--sockets", type=int, default=45, help="websocket clients beside the 5 browser pages")
    parser.add_argument("--sockets-of", default=None, help=argparse.SUPPRESS)  # the child process's mode
    args = parser.parse_args()
    if args.sockets_of:
        print(json.dumps(asyncio.run(sockets_of(args.sockets_of, args.sockets, args.seconds))))
        return
    print("\n".join(asyncio.run(bench(args.seconds, args.rate, args.sockets))))


if __name__ == "__main__":
    main()
