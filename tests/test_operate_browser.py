"""/operate in a real Chromium over a real running event: testsrc ingest, a destination to a local RTMP receiver."""

from __future__ import annotations

import re
import secrets

from playwright.async_api import expect

from streamctl.events import Alert
from streamctl.fakes.youtube import FakeYouTube
from streamctl.restream.rtmp_server import RtmpServer

from .audience_harness import until
from .conftest import LOOPBACK, free_port
from .console_harness import running_console
from .ingest_media import Publisher, encode_args
from .test_browser import DESKTOP, TABLET, Watch, chromium, signed_in

DESTINATION = "hall-youtube"
SLOW_MS = 20_000  # a source's state on a machine shared with other suites: a restart and a first call


def tables(receiver: RtmpServer, youtube: FakeYouTube) -> str:
    """A testsrc program, one destination to the local receiver, YouTube chat (a local fake), a manual source."""
    return f"""
        [ingest]
        url = "testsrc"

        [[destination]]
        name = "{DESTINATION}"
        platform = "youtube"
        url = "{receiver.url}"
        key_env = "OPERATE_TEST_KEY"
        {audience_tables(youtube, "daily_quota = 10000", "planned_hours = 2")}"""


def audience_tables(youtube: FakeYouTube, *youtube_keys: str) -> str:
    """A manual source and a YouTube chat read from the local fake, with its token in OPERATE_TEST_YT_TOKEN."""
    extra = "\n".join(youtube_keys)
    return f"""
        [[audience]]
        name = "zalo"
        platform = "manual"
        label = "zalo"

        [[audience]]
        name = "yt-chat"
        platform = "youtube"
        video_id = "{youtube.video_id}"
        credential_env = "OPERATE_TEST_YT_TOKEN"
        api_base = "{youtube.url}"
        {extra}
        """


async def test_the_operator_reads_the_stream_in_words_and_types_a_viewer_count(tmp_path, artifacts, monkeypatch):
    key = "live-" + secrets.token_hex(6)
    monkeypatch.setenv("OPERATE_TEST_KEY", key)
    youtube = FakeYouTube(token="yt-" + secrets.token_hex(6))
    monkeypatch.setenv("OPERATE_TEST_YT_TOKEN", youtube.token)
    receiver = RtmpServer.receiver(app="live2")
    await receiver.start()
    try:
        async with youtube, running_console(tmp_path, (("op", "operator"),), tables(receiver, youtube)) as console, \
                chromium() as browser:
            controller, url = console.controller, console.url
            watch = Watch()
            op = await signed_in(browser, url, "op", watch, DESKTOP, "/operate")
            op.set_default_timeout(20_000)  # the first probe needs a couple of seconds of the program

            # The probe in words, not keys: the testsrc program is H.264 High 720p30 with a 2 s GOP and AAC stereo.
            await expect(op.locator("#ingest-state")).to_have_text("Có tín hiệu")
            await expect(op.locator("#ingest-video")).to_have_text(re.compile(
                r"^H\.264 High 1280×720 · 30 fps · keyframe 2 giây · 2,\d Mbit/s$"))
            await expect(op.locator("#ingest-audio")).to_have_text(re.compile(
                r"^AAC LC · 48 kHz · stereo · 1[23]\d kbit/s$"))
            await expect(op.locator("#ingest-url")).to_have_text("testsrc")
            await expect(op.locator("#ingest-since")).to_contain_text("từ ")
            summary = await op.locator("#ingest-card").inner_text()
            for raw in ("video_codec", "keyframe_interval_s", "media_s", "ready", "true"):
                assert raw not in summary, raw

            # The destination is live, its figures move, and the receiver really gets the program.
            row = op.locator(f"tbody[data-name='{DESTINATION}']")
            await expect(row.locator(".badge")).to_have_text("Đang phát")
            await expect(row.locator("td.num").first).not_to_have_text("–")
            assert receiver.counters["video_frames"] > 0
            assert key not in await op.content()

            # The YouTube quota as people read it: used of the day's units, what is left, the pace, whether it lasts.
            quota = op.locator("tbody[data-name='yt-chat'] td.quota")
            await expect(quota).to_contain_text(re.compile(r"đã dùng [\d.]+/10\.000 .*còn [\d.]+"))
            pace = re.compile(r"mỗi [\d,]+ giây · (đủ cho cả buổi|hết lúc \d\d:\d\d:\d\d)")
            await expect(quota).to_contain_text(pace)
            await expect(op.locator("tbody[data-name='yt-chat'] .badge")).to_have_text("Đang đọc")

            # A typed count reaches the API (and the page); a negative one is refused in the page.
            zalo = op.locator("tbody[data-name='zalo']")
            await zalo.locator("input").fill("-3")
            await zalo.locator("input").press("Enter")
            await expect(zalo.locator("[role=alert]")).to_have_text("Nhập số nguyên từ 0 trở lên.")
            await zalo.locator("input").fill("1234")
            await zalo.locator("button[type=submit]").click()
            await expect(zalo.locator(".last")).to_contain_text("1.234")
            await expect(zalo.locator("[role=alert]")).to_be_hidden()
            viewers = await (await op.request.get(f"{url}/api/viewers")).json()
            (reading,) = [s for s in viewers["sources"] if s["name"] == "zalo"]
            assert (reading["viewers"], reading["manual"]) == (1234, True)
            await expect(op.locator("#viewers-total")).to_have_text("1.234")

            # Alerts: newest first, with level, time, source and the sentence in the operator's language.
            await controller.bus.publish(Alert("warning", "zalo", "Zalo not updated for 10 minutes", code="new.code"))
            await controller.bus.publish(Alert("error", DESTINATION, "token expired", code="destination.failed",
                                               params={"platform": "youtube", "error": "token expired"}))
            await expect(op.locator("#alerts li")).to_have_count(2)
            first = op.locator("#alerts li").first
            await expect(first).to_have_class(re.compile(r"level-error"))
            await expect(first.locator(".source")).to_have_text(DESTINATION)
            # The reason in words, never the raw error text ("token expired" reads as a refused key).
            await expect(first.locator(".message")).to_contain_text("đã ngừng thử lại: nền tảng từ chối khóa")
            await expect(first.locator(".message")).not_to_contain_text("token expired")
            await expect(first.locator("time")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))

            # The add form shows the server's reason, on the field it names.
            await op.click("#dest-add-open")
            await op.fill("#dest-name", "extra")
            await op.fill("#dest-url", receiver.url)
            await op.fill("#dest-key-env", "OPERATE_TEST_NO_SUCH_KEY")
            await op.click("#dest-save")
            await expect(op.locator("#dest-form-issues")).to_contain_text("OPERATE_TEST_NO_SUCH_KEY")
            await expect(op.locator("#dest-key-env")).to_have_attribute("aria-invalid", "")
            await op.locator("#dest-dialog button[value=cancel]").click()

            for size in (DESKTOP, TABLET):
                await op.set_viewport_size(size)
                name = f"operate-live-{size['width']}x{size['height']}.png"
                await op.screenshot(path=artifacts / name, full_page=True)

            # Stop asks first: cancelled, the platform keeps the stream; confirmed, it stops.
            await row.get_by_role("button", name=f"Dừng {DESTINATION}").click()
            await expect(op.locator("#confirm-title")).to_have_text(f"Dừng {DESTINATION}?")
            await op.locator("#confirm-dialog button[value=cancel]").click()
            assert controller.restreamer.get(DESTINATION).state == "live"
            await row.get_by_role("button", name=f"Dừng {DESTINATION}").click()
            await op.click("#confirm-ok")
            await expect(row.locator(".badge")).to_have_text("Đã dừng")
            assert controller.restreamer.get(DESTINATION).state == "stopped"

            expected = [p for p in watch.problems if "400" in p]  # the refused add, on purpose
            assert len(expected) == 2 and [p for p in watch.problems if p not in expected] == []
    finally:
        await receiver.close()


async def test_a_lost_publisher_shows_as_lost_with_the_slate_on_air(tmp_path, artifacts, monkeypatch):
    key = "ingest-" + secrets.token_hex(6)
    monkeypatch.setenv("OPERATE_INGEST_KEY", key)
    port = free_port()
    listen = f"""
        [ingest]
        url = "rtmp://{LOOPBACK}:{port}/live"
        key_env = "OPERATE_INGEST_KEY"
        """
    async with running_console(tmp_path, (("op", "operator"),), listen) as console, chromium() as browser:
        watch = Watch()
        op = await signed_in(browser, console.url, "op", watch, DESKTOP, "/operate")
        await expect(op.locator("#ingest-state")).to_have_text("Chờ tín hiệu")
        await expect(op.locator("#ingest-publisher")).to_have_text("chưa có ai đẩy luồng")
        await expect(op.locator("#ingest-url")).to_have_text(f"rtmp://{LOOPBACK}:{port}/live")  # as given, no key

        publisher = await Publisher(encode_args(60) + ["-f", "flv", f"rtmp://{LOOPBACK}:{port}/live/{key}"]).start()
        try:
            await expect(op.locator("#ingest-state")).to_have_text("Có tín hiệu", timeout=15_000)
            await expect(op.locator("#ingest-publisher")).to_have_text(re.compile(r"127\.0\.0\.1"))
            video = re.compile(r"^H\.264 Constrained Baseline 640×360 · 30 fps · keyframe 2 giây · [\d,]+ Mbit/s$")
            await expect(op.locator("#ingest-video")).to_have_text(video, timeout=15_000)
        finally:
            await publisher.stop()  # the switcher's encoder crashed
        await expect(op.locator("#ingest-state")).to_have_text("Mất tín hiệu")
        await expect(op.locator("#ingest-slate")).to_be_visible()
        await expect(op.locator("#ingest-slate-note")).to_contain_text("Màn chờ đang phát từ")
        await expect(op.locator("#ingest-card")).to_have_attribute("data-state", "lost")
        await expect(op.locator("#ingest-video")).to_have_text(re.compile(r"640×360 .* · lần nhận cuối$"))
        await op.screenshot(path=artifacts / "operate-ingest-lost-1920x1080.png")
        assert key not in await op.content()
        assert watch.problems == []


async def test_the_operator_replaces_a_refused_token_and_turns_a_source_off_and_on(tmp_path, artifacts, monkeypatch):
    youtube = FakeYouTube(token="yt-good-" + secrets.token_hex(6), interval_ms=100)
    monkeypatch.setenv("OPERATE_TEST_YT_TOKEN", "yt-expired-" + secrets.token_hex(6))  # refused: HTTP 401
    async with youtube:
        await replace_token_and_switch(tmp_path, artifacts, youtube)


def stored(controller) -> list[str]:
    return [r["text"] for r in controller.store.query("SELECT text FROM comments WHERE source = 'yt-chat' ORDER BY id")]


async def replace_token_and_switch(tmp_path, artifacts, youtube: FakeYouTube) -> None:
    audience = audience_tables(youtube, "interval = 0.2")
    async with running_console(tmp_path, (("op", "operator"),), audience) as console, chromium() as browser:
        controller = console.controller
        youtube.post_comment("Khán giả", "Cho hỏi về dự án cầu?")
        watch = Watch()
        op = await signed_in(browser, console.url, "op", watch, DESKTOP, "/operate")
        row = op.locator("tbody[data-name='yt-chat']")
        await expect(row.locator(".badge")).to_have_text("Lỗi", timeout=SLOW_MS)
        # The 401 in words: the platform refused the token.
        await expect(row.locator(".notes")).to_contain_text("Nền tảng từ chối khóa hoặc mã truy cập")

        # A wrong value is refused in the dialog; the right token makes it read, the manual source untouched.
        manual = controller.audience.pollers["zalo"]
        await row.get_by_role("button", name="Token mới cho yt-chat").click()
        await expect(op.locator("#src-dialog-title")).to_have_text("Token mới cho yt-chat")
        assert await op.locator("#src-input").get_attribute("type") == "password"
        await op.fill("#src-input", "two words")
        await op.click("#src-save")
        await expect(op.locator("#src-form-error")).to_contain_text("dán không có khoảng trắng")
        await op.fill("#src-input", youtube.token)
        await op.click("#src-save")
        await expect(op.locator("#src-dialog")).to_be_hidden()
        await expect(row.locator(".badge")).to_have_text("Đang đọc", timeout=SLOW_MS)
        await until(lambda: stored(controller) == ["Cho hỏi về dự án cầu?"], timeout=20,
                    what="the comment read with the new token")
        assert controller.audience.pollers["zalo"] is manual
        assert youtube.token not in await op.content()

        # Off asks first, then the source is listed as off and asks nothing of YouTube; on again, it reads on.
        await row.get_by_role("button", name="Tắt yt-chat").click()
        await expect(op.locator("#confirm-title")).to_have_text("Tắt yt-chat?")
        await op.click("#confirm-ok")
        await expect(row.locator(".badge")).to_have_text("Đã tắt", timeout=SLOW_MS)
        youtube.post_comment("Khán giả 2", "Câu hỏi trong lúc tắt")
        await row.get_by_role("button", name="Bật yt-chat").click()
        await expect(row.locator(".badge")).to_have_text("Đang đọc", timeout=SLOW_MS)
        await until(lambda: len(stored(controller)) == 2, timeout=20,
                    what="what was posted while off, read once on again")
        await op.screenshot(path=artifacts / "operate-source-controls.png", full_page=True)
        assert watch.problems == []
