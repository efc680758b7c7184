"""End to end in a real headless Chromium: two moderators and an official live, the overlay on air, screenshots."""

from __future__ import annotations

from contextlib import asynccontextmanager

from playwright.async_api import Page, async_playwright, expect

from streamctl.audience.models import ViewerSample
from streamctl.events import ViewersSampled

from .console_harness import PASSWORD, running_console
from .test_security import HOSTILE

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1920, "height": 1080}
TABLET = {"width": 820, "height": 1180}


@asynccontextmanager
async def chromium():
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


PREVIEW = "/api/ingest/preview.jpg"  # answers 503 (documented) while no picture of the program is fresh


def failed(response) -> bool:
    """An error answer, except the preview's documented 503."""
    return response.status >= 400 and not (response.status == 503 and PREVIEW in response.url)


class Watch:
    """Everything a page must never do: open a dialog (a script ran), throw, or break the CSP."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def attach(self, page: Page, name: str) -> Page:
        page.on("dialog", lambda d: self.problems.append(f"{name}: dialog {d.message!r}"))
        page.on("pageerror", lambda e: self.problems.append(f"{name}: error {e}"))
        page.on("console", lambda m: self.problems.append(f"{name}: console {m.text}")
                if m.type == "error" and PREVIEW not in (m.location or {}).get("url", "") else None)
        page.on("response", lambda r: self.problems.append(f"{name}: {r.status} {r.url}") if failed(r) else None)
        page.set_default_timeout(10_000)
        return page


async def signed_in(browser, url: str, name: str, watch: Watch, viewport: dict, landing: str) -> Page:
    context = await browser.new_context(viewport=viewport, locale="vi-VN")
    page = watch.attach(await context.new_page(), name)
    await page.goto(f"{url}/login")
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button.primary")
    await page.wait_for_url(f"**{landing}")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    return page


async def test_moderators_forward_to_the_hall_and_put_a_question_on_air(tmp_path, artifacts):
    async with running_console(tmp_path) as console, chromium() as browser:
        watch = Watch()
        await console.feed(("Trần Thị Bình", "Chào buổi sáng Hạ Long!"), *HOSTILE[:4], platform="facebook",
                           source="fb")
        await console.controller.bus.publish(ViewersSampled(ViewerSample("fb", "facebook", 1.0, 10873)))
        mod1 = await signed_in(browser, console.url, "mod1", watch, DESKTOP, "/moderate")
        mod2 = await signed_in(browser, console.url, "mod2", watch, TABLET, "/moderate")
        chair = await signed_in(browser, console.url, "chair", watch, DESKTOP, "/official")
        token = console.controller.store.create_token("overlay")
        overlay_context = await browser.new_context(viewport=DESKTOP)
        overlay = watch.attach(await overlay_context.new_page(), "overlay")
        await overlay.goto(f"{console.url}/overlay/question?token={token}")

        # A citizen's question arrives on every moderator's screen at once, as a comment and as a pending card.
        question = "Xin hỏi khi nào cầu Bến Rừng thông xe?"
        (q,) = await console.feed_questions(question)
        for page in (mod1, mod2):
            await expect(page.locator("#comments .comment", has_text=question)).to_be_visible()
            await expect(page.locator("#questions .card", has_text=question)).to_be_visible()

        # mod1 edits it with the keyboard; mod2 sees it taken while the editor is open.
        card = mod1.locator("#questions .card", has_text=question)
        await card.locator(".text").click()
        await mod1.keyboard.press("e")
        await expect(mod1.locator("#edit-dialog")).to_be_visible()
        await expect(mod2.locator("#questions .card.taken", has_text="mod1")).to_be_visible()
        edited = "Khi nào cầu Bến Rừng được thông xe?"
        await mod1.fill("#edit-text", edited)
        await mod1.keyboard.press("Control+Enter")
        await expect(mod2.locator("#questions .card", has_text=edited)).to_be_visible()
        await expect(mod2.locator("#questions .card.taken")).to_have_count(0)

        # Forward with "f": it reaches the officials' screen.
        await mod1.locator("#questions .card", has_text=edited).locator(".text").click()
        await mod1.keyboard.press("f")
        await expect(chair.locator("#next .hall-question", has_text=edited)).to_be_visible()
        await expect(chair.locator("#next .hall-question", has_text="Trần Thị Bình")).to_have_count(0)

        # A second one is forwarded and assigned to a department through the assign dialog ("t").
        second = "Đề nghị Sở Xây dựng cho biết tiến độ nhà ở xã hội tại Cẩm Phả?"
        await console.feed_questions(second)
        await mod1.locator("#questions .card", has_text=second).locator(".text").click()
        await mod1.keyboard.press("f")
        await mod1.locator("#queue .card", has_text=second).locator(".text").click()
        await mod1.keyboard.press("t")
        await mod1.fill("#assign-to", "Sở Xây dựng")
        await mod1.keyboard.press("Enter")
        await expect(mod2.locator("#queue .card", has_text=second).locator(".assignee")).to_have_text("→ Sở Xây dựng")
        await expect(chair.locator("#next .hall-question", has_text=second).locator(".assignee")).to_contain_text(
            "→ Sở Xây dựng")

        # mod2 (on the tablet) puts the first on air with "o": the hall highlights it and the overlay shows it.
        await mod2.locator("#queue .card", has_text=edited).locator(".text").click()
        await mod2.keyboard.press("o")
        await expect(chair.locator("#on-air-text")).to_have_text(edited)
        await expect(overlay.locator("#q-text")).to_have_text(edited)
        await expect(overlay.locator("#lower-third")).to_be_visible()
        await expect(mod1.locator("#queue .card.state-on_air", has_text=edited)).to_be_visible()

        # Diacritics-insensitive search narrows the stream as one types.
        await mod1.locator("#f-q").fill("ha long")
        await expect(mod1.locator("#comments .comment")).to_have_count(1)
        await expect(mod1.locator("#comments .comment")).to_contain_text("Hạ Long")
        await mod1.locator("#f-q").fill("")
        await mod1.locator("#questions-title").click()

        # The keyboard help overlay.
        await mod2.locator("#pane-queue h2").click()
        await mod2.keyboard.press("?")
        await expect(mod2.locator("#help-dialog")).to_be_visible()
        await mod2.screenshot(path=artifacts / "console-help-820x1180.png")
        await mod2.keyboard.press("Escape")

        # Screenshots at both sizes, for people to look at.
        op = await signed_in(browser, console.url, "op", watch, DESKTOP, "/operate")
        await expect(op.locator("#viewers-total")).to_have_text("10.873")
        for page, name in ((mod1, "moderate"), (chair, "official"), (op, "operate"), (overlay, "overlay-question")):
            for size in (DESKTOP, TABLET):
                await page.set_viewport_size(size)
                await page.screenshot(path=artifacts / f"console-{name}-{size['width']}x{size['height']}.png",
                                      omit_background=page is overlay)  # the overlay is transparent

        # Hostile comments were shown as text and no script of theirs ran.
        await expect(mod1.locator("#comments .comment", has_text="<script>alert('xss-1')</script>")).to_have_count(1)
        assert watch.problems == []
        row = console.controller.store.query_one("SELECT state, text, original_text FROM questions WHERE id = ?",
                                                 (q["id"],))
        assert (row["state"], row["text"], row["original_text"]) == ("on_air", edited, question)
