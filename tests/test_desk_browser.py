"""The question desk in real Chromium with 2,000 auto-flagged questions pending: a hand-made one shows at once,
likely duplicates sit under one card and merge with one click, the page draws a window, not thousands."""

from __future__ import annotations

import random
import re

from playwright.async_api import expect

from streamctl.text import fold

from .console_harness import running_console
from .test_browser import DESKTOP, Watch, chromium, signed_in
from .test_desk import TOPICS, flood

SYLLABLES = [c + v for c in ("b", "c", "d", "g", "h", "k", "l", "m", "n", "ph", "s", "t", "th", "tr", "v", "x")
             for v in ("an", "ang", "em", "inh", "oc", "uong", "ay", "iet", "uan", "ot", "uc", "ep")]


def distinct(n: int, rng: random.Random) -> tuple[str, str]:
    """A question unlike the others: six words of a large vocabulary (alike would need five the same)."""
    return (f"Người xem {n}", "Xin hỏi " + " ".join(rng.sample(SYLLABLES, 6)) + " thế nào?")


async def test_a_hand_made_question_shows_at_once_beside_2000_auto_ones_and_duplicates_merge_in_one_click(
        tmp_path, artifacts):
    rng = random.Random(9)
    items = [distinct(n, rng) for n in range(1800)]
    # Then a burst: five questions asked forty times each, worded differently, half without diacritics.
    for n in range(200):
        text = (("Cho hỏi ", "Xin hỏi ", "", "Anh ơi ")[n % 4] + TOPICS[n % 5]
                + (" ạ?", " vậy?", "?", " không?")[n // 5 % 4])
        items.append((f"Khán giả {n}", fold(text) if n % 2 else text))
    watch = Watch()
    async with running_console(tmp_path) as console, chromium() as browser:
        await flood(console, items)
        (plain,) = await console.feed(("Lê Văn Cường", "Tỉnh cần công khai tiến độ dự án cầu Vân Tiên."))
        mod1 = await signed_in(browser, console.url, "mod1", watch, DESKTOP, "/moderate")
        lane = mod1.locator("#questions")
        await expect(mod1.locator("#lane-count-auto")).to_have_text("2.000")
        # The newest 200 are on the page: the burst's duplicates, five cards each with its others under it.
        await expect(lane.locator(".card .merge-group")).to_have_count(5)
        await expect(lane.locator(".card")).to_have_count(5)

        # mod1 makes a question of a comment without a cue: in the moderators' lane at once, on top.
        row = mod1.locator("#comments .comment", has_text="cầu Vân Tiên")
        await row.locator(".text").click()
        await mod1.keyboard.press("q")
        mine = mod1.locator("#questions-moderator .card", has_text="cầu Vân Tiên")
        await expect(mine).to_be_visible(timeout=2000)
        await expect(mine).to_be_in_viewport()
        await expect(mod1.locator("#lane-count-moderator")).to_have_text("1")
        # Made by another moderator, it reaches this page live, just as fast.
        (other,) = await console.feed(("Phạm Thu", "Cảm ơn các đại biểu đã lắng nghe"))
        mod2 = await console.client("mod2")
        status, _ = await mod2.call("POST", "/api/questions", {"comment_id": other["id"]})
        assert status == 201
        await expect(mod1.locator("#questions-moderator .card").first).to_contain_text("lắng nghe", timeout=2000)

        # One click merges a group of likely duplicates into the card that holds them.
        group = lane.locator(".card").filter(has_text=re.compile("Bến Rừng|ben rung")).first
        await expect(group.locator(".similar-head")).to_have_text("39 câu tương tự")
        await group.locator(".merge-group").click()
        await expect(lane.locator(".card .merge-group")).to_have_count(4)
        await expect(lane.locator(".card", has_text="×40")).to_have_count(1)
        await expect(mod1.locator("#lane-count-auto")).to_have_text("1.961")
        leader = console.controller.store.query_one("SELECT id, merged_count FROM questions WHERE merged_count > 1")
        merged = console.controller.store.query_one("SELECT COUNT(*) AS n FROM questions WHERE merged_into = ?",
                                                    (leader["id"],))
        assert (leader["merged_count"], merged["n"]) == (40, 39)

        # The end of the lane pages back through the server, and only a window of what is loaded is drawn.
        await lane.locator(".more button").click()
        await expect(lane.locator(".card")).to_have_count(100)  # 205 loaded: 5 from the burst, 200 older
        await expect(lane.locator(".more button")).to_have_text(re.compile("105"))

        # Searched without diacritics, among questions not even loaded yet (the very first one).
        await mod1.locator("#q-search").fill(items[0][1].split()[2] + " " + items[0][1].split()[3])
        await expect(lane.locator(".card", has_text=items[0][0])).to_have_count(1)
        await mod1.locator("#q-search").fill("")

        # The audit shows people's actions; the desk's own thousands only on request.
        await mod1.locator("#audit-box summary").click()
        await expect(mod1.locator("#audit li").first).to_be_visible()
        assert "auto" not in await mod1.locator("#audit").inner_text()
        await mod1.locator("#audit-auto").check()
        await expect(mod1.locator("#audit li strong", has_text="auto").first).to_be_visible()
        await mod1.screenshot(path=artifacts / "desk-2000-pending-1920x1080.png")
        assert watch.problems == []
