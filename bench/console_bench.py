"""Console under load: 50 signed-in pages (websockets and real Chromium pages) while 500 comments/s flow.

Measures, in the browser: comment stored → row on a moderator's page; "forward" sent → the question on the
officials' screen; "on air" sent → the overlay. Also comment created → received by the plain websocket clients,
and the CPU each part used while the comments flowed (everything shares the machine's cores). Two methods:

- old: start when the bench's own `CommentsStored` subscriber wakes (it is woken after every page's socket
  task has already run, so it starts late), end at the first animation frame after the DOM change (before
  that frame's style, layout and paint);
- new: start when the recorder publishes the comments as stored, end when the frame that contains the change
  has been rendered (style, layout and paint done, handed to the compositor).

Run from the checkout:

    python bench/console_bench.py [--seconds 15] [--rate 500] [--sockets 45]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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

# Installed in each page (through DevTools, so the page's CSP does not apply): when each id was first shown.
# __seen (old method): the first animation frame after the change. __drawn (new method): right after the frame
# that contains the change was rendered; a message posted from within a frame runs once that frame is done, so a
# change made in a requestAnimationFrame callback is stamped after its own frame, any other after the next one.
# One animation-frame callback per batch of changes, not per row: the observer should cost the page little.
OBSERVE = """([selector, attribute]) => {
  const seen = (window.__seen = {}), drawn = (window.__drawn = {});
  const raf = window.requestAnimationFrame.bind(window);
  const channel = new MessageChannel(), jobs = [];
  channel.port1.onmessage = () => jobs.shift()();
  const afterThisTask = (job) => { jobs.push(job); channel.port2.postMessage(null); };
  let inFrame = false;
  window.requestAnimationFrame = (callback) => raf((time) => {
    if (!inFrame) { inFrame = true; afterThisTask(() => { inFrame = false; }); }
    callback(time);
  });
  const stamp = (into, ids) => { const t = Date.now(); for (const id of ids) if (!(id in into)) into[id] = t; };
  let batch = null;
  const note = (id) => {
    if (!id || id in seen) return;
    if (!batch) {
      const ids = (batch = []);
      raf(() => { batch = null; stamp(seen, ids); });
      const done = () => afterThisTask(() => stamp(drawn, ids));
      if (inFrame) done(); else raf(done);
    }
    batch.push(id);
  };
  const root = document.querySelector(selector);
  new MutationObserver((changes) => {
    for (const change of changes) {
      if (change.type === "attributes") note(root.getAttribute(attribute));
      for (const node of change.addedNodes) {
        if (node.dataset?.id) note(node.dataset.id);
        else if (node.querySelectorAll) for (const item of node.querySelectorAll("[data-id]")) note(item.dataset.id);
      }
    }
  }).observe(root, { childList: true, subtree: true, attributes: Boolean(attribute),
                     attributeFilter: attribute ? [attribute] : undefined });
}"""

CHROMIUM_PARTS = {"--type=renderer": "Chromium pages (renderers)", "--type=": "Chromium browser, GPU, network"}


def cpu_seconds() -> tuple[dict[str, float], float]:
    """CPU seconds used so far by this bench's processes, by part, and by the whole machine (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    used: dict[int, tuple[str, float]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(name))
        used[int(name)] = (cmd, (int(fields[11]) + int(fields[12])) / tick)
    parts: dict[str, float] = {}
    todo = [os.getpid()]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        cmd, seconds = used.get(pid, ("", 0.0))
        if pid == os.getpid():
            part = "server, generator, bench"
        elif "--sockets-of" in cmd:
            part = "websocket clients"
        elif "chrom" in cmd:
            part = next((v for k, v in CHROMIUM_PARTS.items() if k in cmd), "Chromium browser, GPU, network")
        else:
            part = "Playwright driver"
        parts[part] = parts.get(part, 0.0) + seconds
    cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return parts, (sum(cpu) - cpu[3] - cpu[4]) / tick  # busy = all but idle and iowait


def cpu_line(before: tuple[dict[str, float], float], after: tuple[dict[str, float], float], seconds: float) -> str:
    """CPU in cores (CPU-seconds per second) over the stream, by part, and what the rest of the machine used."""
    parts = {k: (v - before[0].get(k, 0.0)) / seconds for k, v in after[0].items()}
    ours = sum(parts.values())
    machine = (after[1] - before[1]) / seconds
    shown = ", ".join(f"{k} {v:.2f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
    return (f"CPU in cores while the comments flowed ({os.cpu_count()} cores): {shown}; all of the bench "
            f"{ours:.2f}; other processes on the machine {max(0.0, machine - ours):.2f}")


def stamp_stored(bus, stored_at: dict[int, float]) -> None:
    """Note when the recorder publishes each comment as stored (observes this bus's publish, changes nothing)."""
    publish = bus.publish

    async def publish_noting(event) -> None:
        if isinstance(event, CommentsStored):
            at = time.time()
            for c in event.comments:
                stored_at[c["id"]] = at
        await publish(event)

    bus.publish = publish_noting


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def since(started: dict[int, float], shown: dict[str, float]) -> list[float]:
    """Milliseconds from each start (seconds, by id) to when the page showed that id (ms, by id as text)."""
    return [shown[str(i)] - t * 1000 for i, t in started.items() if str(i) in shown]


def row(name: str, method: str, values_ms: list[float]) -> str:
    if not values_ms:
        return f"| {name} | {method} | 0 | – | – | – | – |"
    return (f"| {name} | {method} | {len(values_ms)} | {statistics.median(values_ms):.0f} | {p(values_ms, 0.95):.0f} | "
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
            stored_at: dict[int, float] = {}  # new method: published as stored by the recorder
            woke_at: dict[int, float] = {}  # old method: the bench's own subscriber woke with them
            stamp_stored(bus, stored_at)
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
                            woke_at[c["id"]] = at

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
            cpu_before = cpu_seconds()
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
            cpu = cpu_line(cpu_before, cpu_seconds(), elapsed)
            await asyncio.sleep(2.0)  # let the last ones arrive
            stop.set()
            for task in (moderator_task, recorder):
                task.cancel()
            await asyncio.gather(moderator_task, recorder, return_exceptions=True)
            out, _ = await child.communicate()
            socket_latencies = json.loads(out)

            old_ms: list[float] = []
            new_ms: list[float] = []
            elements = []
            for page in moderators:
                seen, drawn = await page.evaluate("[window.__seen, window.__drawn]")
                old_ms += since(woke_at, seen)
                new_ms += since(stored_at, drawn)
                elements.append(await page.evaluate("document.getElementsByTagName('*').length"))
            seen_official, drawn_official = await official.evaluate("[window.__seen, window.__drawn]")
            seen_overlay, drawn_overlay = await overlay.evaluate("[window.__seen, window.__drawn]")
            await browser.close()
            pages = len(moderators) + 2 + sockets
            return [
                f"{n} comments in {elapsed:.1f} s ({n / elapsed:.0f}/s), {pages} signed-in pages "
                f"({len(moderators) + 2} Chromium pages, {sockets} websockets); "
                f"{len(forwarded)} forwarded, {len(aired)} put on air; "
                f"elements on the moderators' pages at the end: {', '.join(map(str, elements))}",
                cpu,
                "",
                "| path | method | samples | median ms | p95 ms | p99 ms | max ms |",
                "|---|---|---|---|---|---|---|",
                row("comment stored → row on a moderator's page (Chromium)", "old", old_ms),
                row("comment stored → row on a moderator's page (Chromium)", "new", new_ms),
                row("comment created → websocket client (own process)", "", socket_latencies),
                row("forward → officials' screen (Chromium)", "old", since(forwarded, seen_official)),
                row("forward → officials' screen (Chromium)", "new", since(forwarded, drawn_official)),
                row("on air → overlay (Chromium)", "old", since(aired, seen_overlay)),
                row("on air → overlay (Chromium)", "new", since(aired, drawn_overlay)),
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
