"""Alerts in a real Chromium: each kind produced for real reaches /operate, survives a reload, is acknowledged.

One browser for the module; each test runs its own event (real ffmpeg, real RTMP, a local YouTube fake).
"""

from __future__ import annotations

import re
import secrets
from contextlib import asynccontextmanager

import pytest
import pytest_asyncio
from playwright.async_api import expect

from streamctl.fakes.youtube import FakeYouTube
from streamctl.restream.rtmp_server import RtmpServer

from .conftest import LOOPBACK, free_port
from .console_harness import running_console
from .ingest_media import Publisher, encode_args
from .test_alerts import refusing_platform
from .test_browser import DESKTOP, TABLET, Watch, chromium, signed_in

pytestmark = pytest.mark.asyncio(loop_scope="module")
SLOW = 20_000  # ms: what waits on ffmpeg, a retry or a poll (the machine may be busy)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser():
    async with chromium() as shared:
        yield shared


@asynccontextmanager
async def operator_page(browser, url: str, watch: Watch):
    """The operator on /operate; the page is closed before the console stops (its socket would hold it up)."""
    page = await signed_in(browser, url, "op", watch, DESKTOP, "/operate")
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        await page.context.close()


def alert(page, code: str, recovery: bool = False):
    kind = "li.recovery" if recovery else "li:not(.recovery)"
    return page.locator(f"#alerts {kind}[data-code='{code}']")


async def test_a_refused_key_is_an_alert_the_operator_fixes_from_the_console(browser, tmp_path, monkeypatch,
                                                                           artifacts):
    platform, right, tables = await refusing_platform(monkeypatch)
    try:
        async with running_console(tmp_path, (("op", "operator"),), tables) as console:
            watch = Watch()
            async with operator_page(browser, console.url, watch) as op:
                await see_refused_key_fixed(op, console.url, platform, right, artifacts)
            assert watch.problems == []
    finally:
        await platform.close()


async def see_refused_key_fixed(op, url: str, platform: RtmpServer, right: str, artifacts) -> None:
    backoff = alert(op, "destination.backoff")
    await expect(backoff).to_have_count(1, timeout=SLOW)
    await expect(backoff.locator(".message")).to_contain_text("fb-page (custom) mất kết nối và đang tự thử lại")
    await expect(op.locator("#alerts-unacked")).to_have_text("1", timeout=SLOW)
    await expect(op.locator("#program-status")).to_have_attribute("data-state", "off_air", timeout=SLOW)
    await expect(op.locator("#strip-destinations-value")).to_have_text("0/1 đang phát", timeout=SLOW)
    # One alert however many retries; still there after a reload; the count on every page.
    await op.reload()
    await expect(backoff).to_have_count(1, timeout=SLOW)
    await op.goto(f"{url}/moderate")
    await expect(op.locator("#alerts-unacked")).to_have_text("1", timeout=SLOW)
    await op.goto(f"{url}/operate")

    # The operator pastes the right key: only this destination restarts, the alert closes.
    await op.locator("tbody[data-name='fb-page'] button.key").click()
    await op.fill("#key-input", right)
    await op.click("#key-save")
    await expect(op.locator("tbody[data-name='fb-page'] .badge")).to_have_text("Đang phát", timeout=SLOW)
    recovered = alert(op, "destination.backoff", recovery=True)
    await expect(recovered).to_contain_text("fb-page đã phát trở lại.", timeout=SLOW)
    await expect(backoff).to_contain_text("đã khắc phục", timeout=SLOW)
    await expect(op.locator("#program-status")).to_have_attribute("data-state", "on_air", timeout=SLOW)
    await expect(op.locator("#program-status")).to_have_text("Đang phát sóng", timeout=SLOW)
    await expect(op.locator("#strip-destinations-value")).to_have_text("1/1 đang phát", timeout=SLOW)
    await expect(op.locator("#strip-program-value")).to_have_text("đầu vào chính", timeout=SLOW)

    await backoff.locator("button.ack").click()
    await expect(backoff.locator(".acked")).to_have_text("op đã xem")
    await expect(op.locator("#alerts-unacked")).to_have_text("0", timeout=SLOW)
    await op.reload()
    await expect(backoff.locator(".acked")).to_have_text("op đã xem")
    await op.screenshot(path=artifacts / "operate-alerts-key-replaced-1920x1080.png")
    await op.set_viewport_size(TABLET)
    await op.screenshot(path=artifacts / "operate-alerts-key-replaced-820x1180.png")
    # The top bar's new parts fit a tablet: nothing pushed past the edge.
    overflow = await op.evaluate("() => [...document.querySelectorAll('.topbar > *')]"
                                 ".filter((n) => n.getBoundingClientRect().right > innerWidth + 1).length")
    assert overflow == 0
    content = await op.content()
    assert right not in content and platform.counters["refused_total"] >= 1


async def test_a_refused_publisher_a_lost_ingest_and_a_failing_source_reach_the_page(browser, tmp_path, monkeypatch,
                                                                                      artifacts):
    key = "ing-" + secrets.token_hex(6)
    monkeypatch.setenv("ALERTS_INGEST_KEY", key)
    youtube = FakeYouTube(token="yt-" + secrets.token_hex(6))
    monkeypatch.setenv("ALERTS_YT_TOKEN", youtube.token)
    port = free_port()
    async with youtube:
        tables = f"""
            [ingest]
            url = "rtmp://{LOOPBACK}:{port}/live"
            key_env = "ALERTS_INGEST_KEY"

            [[audience]]
            name = "yt-chat"
            platform = "youtube"
            video_id = "{youtube.video_id}"
            credential_env = "ALERTS_YT_TOKEN"
            api_base = "{youtube.url}"
            transport = "poll"
            interval = 0.3
            """
        youtube.faults = ["503"] * 50  # the platform answers 5xx, call after call
        async with running_console(tmp_path, (("op", "operator"),), tables) as console:
            watch = Watch()
            async with operator_page(browser, console.url, watch) as op:
                await see_ingest_and_audience_alerts(op, youtube, port, key, artifacts)
            assert watch.problems == []


async def see_ingest_and_audience_alerts(op, youtube: FakeYouTube, port: int, key: str, artifacts) -> None:
    failing = alert(op, "audience.failing")
    await expect(failing).to_have_count(1, timeout=SLOW)
    await expect(failing.locator(".message")).to_contain_text("Không đọc được bình luận và lượt xem từ yt-chat")
    youtube.faults.clear()
    await expect(alert(op, "audience.failing", recovery=True)).to_have_count(1, timeout=SLOW)

    # A wrong key: refused, shown on the ingest card (who, when, why) and as an alert.
    intruder = await Publisher(encode_args(20) + ["-f", "flv", f"rtmp://{LOOPBACK}:{port}/live/not-it"]).start()
    try:
        refused = alert(op, "ingest.refused")
        await expect(refused).to_have_count(1, timeout=SLOW)
        await expect(refused.locator(".message")).to_contain_text("bị từ chối", timeout=SLOW)
        await expect(op.locator("#ingest-refused")).to_have_text(
            re.compile(r"^127\.0\.0\.1:\d+ lúc \d\d:\d\d:\d\d: .+"))
    finally:
        await intruder.stop()

    # The right key, then the encoder dies: ingest lost (an error: the top bar flashes).
    publisher = await Publisher(encode_args(60) + ["-f", "flv", f"rtmp://{LOOPBACK}:{port}/live/{key}"]).start()
    try:
        await expect(op.locator("#ingest-state")).to_have_text("Có tín hiệu", timeout=SLOW)
    finally:
        await publisher.stop()
    lost = alert(op, "ingest.lost")
    await expect(lost).to_have_count(1, timeout=SLOW)
    await expect(lost).to_have_class(re.compile(r"level-error"), timeout=SLOW)
    await expect(op.locator("#alerts-badge")).to_have_class(re.compile(r"\bflash\b"), timeout=SLOW)
    await expect(op.locator("#strip-program-value")).to_have_text("thẻ chờ", timeout=SLOW)

    # Muted stays muted; every alert survives a reload.
    await op.click("#alerts-mute")
    await expect(op.locator("#alerts-mute")).to_have_attribute("aria-pressed", "true")
    await op.reload()
    await expect(op.locator("#alerts-mute")).to_have_attribute("aria-pressed", "true")
    for code in ("audience.failing", "ingest.refused", "ingest.lost"):
        await expect(alert(op, code)).to_have_count(1, timeout=SLOW)
    await op.screenshot(path=artifacts / "operate-alerts-ingest-1920x1080.png")
    assert key not in await op.content() and youtube.token not in await op.content()
