"""The console pages as a tablet and a hall screen show them, in both languages, in one real Chromium.

A running event with two YouTube channels whose names differ only at the end, a custom destination, and a
YouTube chat whose API cannot be reached: nothing is clipped at 820x1180, names stay apart, confirm dialogs
name the destination, server messages read in the viewer's language and never as raw exception text, the
hall screen keeps its account controls out of sight, the report is offered and downloadable, and an overlay
with a bad token shows nothing at all.
"""

from __future__ import annotations

import re
import secrets

from playwright.async_api import expect

from streamctl.console.accounts import set_lang
from streamctl.restream.rtmp_server import RtmpServer

from .conftest import LOOPBACK, free_port
from .console_harness import running_console
from .test_browser import TABLET, Watch, chromium, signed_in

USERS = (("op", "operator"), ("op-en", "operator"), ("mod1", "moderator"), ("mod-en", "moderator"),
         ("chair", "official"), ("chair-vi", "official"))
LANG = {"op": "vi", "op-en": "en", "mod1": "vi", "mod-en": "en", "chair": "en", "chair-vi": "vi"}
RAW = re.compile(r"ClientConnectorError|Cannot connect to host|Connect call failed|Traceback|Errno")

# Every visible element that is cut off: outside the viewport, outside an ancestor that clips (overflow other
# than visible), or a text box whose content is wider than the box (an ellipsis hides part of it).
CLIPPED_JS = """
() => {
  const out = [];
  const vw = document.documentElement.clientWidth;
  const describe = (n) => `${n.tagName.toLowerCase()}${n.id ? "#" + n.id : ""}.${[...n.classList].join(".")}`
    + ` "${(n.innerText || n.value || "").trim().slice(0, 40)}"`;
  const visible = (n) => { const r = n.getBoundingClientRect(); const s = getComputedStyle(n);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.opacity !== "0"; };
  const nodes = document.querySelectorAll("main button, main a, main input, main select, main .badge, main .name,"
    + " main .label, main td, main th, main h1, main h2, main .q-text, header.topbar *");
  for (const n of nodes) {
    if (!visible(n) || n.closest("dialog:not([open])") || n.closest("details:not([open]) > :not(summary)")) continue;
    const r = n.getBoundingClientRect();
    if (r.left < -1 || r.right > vw + 1) {
      out.push(`${describe(n)} outside the viewport (${r.left}..${r.right} of ${vw})`);
      continue;
    }
    for (let a = n.parentElement; a && a !== document.body; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.overflowX === "visible" && s.overflowY === "visible") continue;
      const b = a.getBoundingClientRect();
      if (r.left < b.left - 1 || r.right > b.right + 1) { out.push(`${describe(n)} cut by ${describe(a)}`); break; }
    }
    const s = getComputedStyle(n);
    // A leaf whose text is wider than its box: cut by an ellipsis, or spilling under its neighbour.
    if (n.children.length === 0 && s.display !== "inline" && n.scrollWidth > n.clientWidth + 1
        && n.tagName !== "INPUT" && n.tagName !== "SELECT") {
      out.push(`${describe(n)} text cut (${n.scrollWidth} > ${n.clientWidth})`);
    }
  }
  return out;
}
"""


def tables(receiver: RtmpServer) -> str:
    dead_api = f"http://{LOOPBACK}:{free_port()}"  # nothing listens there: connection refused
    return f"""
        [ingest]
        url = "testsrc"

        [[destination]]
        name = "youtube-channel-1"
        platform = "youtube"
        url = "{receiver.url}"
        key_env = "PAGES_TEST_KEY"

        [[destination]]
        name = "youtube-channel-2"
        platform = "youtube"
        url = "{receiver.url}"
        key_env = "PAGES_TEST_KEY"
        autostart = false

        [[destination]]
        name = "cong-thong-tin-tinh"
        platform = "custom"
        url = "{receiver.url}"
        key_env = "PAGES_TEST_KEY"
        autostart = false

        [[audience]]
        name = "youtube-kenh-chinh-thuc-tinh"
        platform = "youtube"
        video_id = "abcdefghijk"
        credential_env = "PAGES_TEST_YT_TOKEN"
        api_base = "{dead_api}"

        [[audience]]
        name = "zalo"
        platform = "manual"
        label = "zalo"
        """


async def nothing_clipped(page, what: str) -> None:
    clipped = await page.evaluate(CLIPPED_JS)
    assert clipped == [], f"{what}: {clipped}"


async def test_tablet_pages_in_both_languages_hall_screen_report_and_overlay(tmp_path, artifacts, monkeypatch):
    key = "live-" + secrets.token_hex(6)
    monkeypatch.setenv("PAGES_TEST_KEY", key)
    monkeypatch.setenv("PAGES_TEST_YT_TOKEN", "ya29." + secrets.token_hex(6))
    receiver = RtmpServer.receiver(app="live2")
    await receiver.start()
    try:
        async with running_console(tmp_path, USERS, tables(receiver)) as console, chromium() as browser:
            store = console.controller.store
            for name, lang in LANG.items():
                row = store.query_one("SELECT id FROM users WHERE username = ?", (name,))
                set_lang(store, row["id"], lang)
            questions = await console.feed_questions("Xin hỏi bao giờ sửa xong Quốc lộ 18 đoạn qua Cẩm Phả ạ?",
                                                     "Trường THCS Hồng Hải thiếu phòng học, bao giờ xây thêm?")
            moderator = await console.client("mod1")
            assert (await moderator.call("POST", f"/api/questions/{questions[0]['id']}/forward"))[0] == 200
            watch = Watch()
            for user in ("op", "op-en"):
                vi = LANG[user] == "vi"
                op = await signed_in(browser, console.url, user, watch, TABLET, "/operate")
                first = op.locator("tbody[data-name='youtube-channel-1']")
                await expect(first.locator(".badge")).to_have_text("Đang phát" if vi else "Live", timeout=20_000)
                source = op.locator("tbody[data-name='youtube-kenh-chinh-thuc-tinh']")
                reason = "Không kết nối được tới máy chủ" if vi else "Could not connect to the server"
                await expect(source).to_contain_text(reason, timeout=20_000)

                # Two channels whose names differ only at the end read apart, whole, with the name on hover.
                names = [await op.locator(f"tbody[data-name='youtube-channel-{n}'] .name").inner_text()
                         for n in (1, 2)]
                assert names == ["youtube-channel-1", "youtube-channel-2"], names
                for n in (1, 2):
                    label = op.locator(f"tbody[data-name='youtube-channel-{n}'] .name")
                    await expect(label).to_have_attribute("title", f"youtube-channel-{n}")
                await nothing_clipped(op, f"/operate {LANG[user]}")
                text = await op.locator("body").inner_text()
                content = await op.content()
                leak = RAW.search(text) or RAW.search(content)
                assert leak is None, content[max(0, leak.start() - 300):][:500]
                assert key not in await op.content()
                await op.screenshot(path=artifacts / f"tablet-operate-{LANG[user]}-820x1180.png", full_page=True)

                # A confirm dialog names the destination, never the platform's code.
                custom = op.locator("tbody[data-name='cong-thong-tin-tinh']")
                remove = "Gỡ" if vi else "Remove"
                await custom.get_by_role("button", name=re.compile(remove)).click()
                await expect(op.locator("#confirm-dialog")).to_be_visible()
                confirm = await op.locator("#confirm-dialog").inner_text()
                assert "cong-thong-tin-tinh" in confirm and "custom" not in confirm, confirm
                await nothing_clipped(op, f"confirm dialog {LANG[user]}")
                await op.locator("#confirm-dialog button[value=cancel]").click()

                # The server's refusal reads in the viewer's language, on the field it names (the page cannot
                # know which environment variables the server has).
                await op.click("#dest-add-open")
                await op.fill("#dest-name", "ban-tin-tinh")
                await op.fill("#dest-url", receiver.url)
                await op.fill("#dest-key-env", "PAGES_TEST_NOT_SET")
                await op.click("#dest-save")
                refusal = op.locator("#dest-form-issues")
                await expect(refusal).to_contain_text("biến môi trường PAGES_TEST_NOT_SET chưa được đặt" if vi
                                                      else "the environment variable PAGES_TEST_NOT_SET is not set")
                assert "expected it to hold" not in await refusal.inner_text()
                await expect(op.locator("#dest-key-env")).to_have_attribute("aria-invalid", "")
                await nothing_clipped(op, f"add dialog {LANG[user]}")
                await op.locator("#dest-dialog button[value=cancel]").click()
                await op.context.close()

            for user in ("mod1", "mod-en"):
                mod = await signed_in(browser, console.url, user, watch, TABLET, "/moderate")
                await expect(mod.locator("#questions .card").first).to_be_visible()
                await expect(mod.locator("#queue li").first).to_be_visible()
                await nothing_clipped(mod, f"/moderate {LANG[user]}")
                await mod.screenshot(path=artifacts / f"tablet-moderate-{LANG[user]}-820x1180.png", full_page=True)
                await mod.context.close()

            for user in ("chair-vi", "chair"):
                vi = LANG[user] == "vi"
                hall = await signed_in(browser, console.url, user, watch, TABLET, "/official")
                await expect(hall.locator("#next li").first).to_contain_text("Quốc lộ 18")
                # Across a room the screen shows the questions only: the account controls stay out of sight
                # until someone at the screen opens the menu.
                for control in ("form[action='/logout'] button", "form[action='/account/lang'] button"):
                    await expect(hall.locator(control)).to_be_hidden()
                await nothing_clipped(hall, f"/official {LANG[user]}")
                await hall.screenshot(path=artifacts / f"tablet-official-{LANG[user]}-820x1180.png", full_page=True)
                await hall.locator("#account-menu summary").click()
                await expect(hall.locator("form[action='/logout'] button")).to_be_visible()
                # Officials may read the report (leadership does): it is in their navigation.
                report_link = hall.get_by_role("link", name="Báo cáo" if vi else "Report")
                await expect(report_link).to_be_visible()
                if not vi:
                    await hall.context.close()
                    continue  # the downloads once is enough: the PDF is a Chromium print of its own
                await report_link.click()
                await hall.wait_for_url("**/report")
                for fmt in ("html", "pdf", "csv", "json"):
                    link = hall.locator(f"a[href*='format={fmt}']")
                    await expect(link).to_have_count(1)
                    response = await hall.request.get(console.url + await link.get_attribute("href"))
                    assert response.status == 200, (fmt, response.status, await response.text())
                    kind = {"html": "text/html", "pdf": "application/pdf", "csv": "text/csv",
                            "json": "application/json"}[fmt]
                    assert response.headers["content-type"].startswith(kind), response.headers
                    if fmt == "pdf":
                        assert (await response.body()).startswith(b"%PDF-")
                await hall.context.close()

            # An overlay with a bad token puts nothing on air: transparent, empty, 401, and the log says why.
            context = await browser.new_context(viewport={"width": 1280, "height": 720})
            overlay = await context.new_page()
            blank = await overlay.screenshot(omit_background=True)
            response = await overlay.goto(f"{console.url}/overlay/question?token=sct_ove_not-a-token")
            assert response.status == 401
            assert (await overlay.locator("body").inner_text()).strip() == ""
            assert await overlay.screenshot(omit_background=True) == blank
            await context.close()

            expected = [p for p in watch.problems if "400" in p]  # the refused add, on purpose
            assert [p for p in watch.problems if p not in expected] == []
    finally:
        await receiver.close()
