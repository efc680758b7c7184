"""/operate in a real Chromium with a broadcast destination on the local YouTube fake: the platform's broadcast and
health beside ours, Go live with its confirm step, the title applied to every platform and shown as taken."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from streamctl.fakes.youtube_live import FakeYouTubeLive

from .console_harness import running_console
from .test_broadcasts import fast, write_creds, youtube_tables
from .test_browser import DESKTOP, Watch, chromium, signed_in

pytestmark = pytest.mark.timeout(90)


async def test_the_operator_sees_the_platform_s_view_goes_live_and_retitles_the_broadcast(tmp_path, artifacts):
    async with FakeYouTubeLive() as yt:
        creds = write_creds(tmp_path, yt.authorized_user(), "yt.json")
        async with running_console(tmp_path, (("op", "operator"),), youtube_tables(yt, creds), prepare=fast()) \
                as console, chromium() as browser:
            watch = Watch()
            op = await signed_in(browser, console.url, "op", watch, DESKTOP, "/operate")
            op.set_default_timeout(30_000)
            row = op.locator("#dest-table tbody[data-name='yt-qmg']")
            await expect(row.locator(".badge")).to_have_text("Đang phát")
            # YouTube's own view, in the destination's notes: its broadcast (testing) and what it receives.
            notes = row.locator(".notes")
            await expect(notes).to_contain_text(re.compile(r"Buổi phát youtube\s*testing \(bc\w+\) · https://www\."
                                                           r"youtube\.com/watch\?v=bc\w+"))
            await expect(notes).to_contain_text(re.compile(r"youtube nhận được\s*good"))
            go_live = row.get_by_role("button", name="Phát công khai yt-qmg")
            await go_live.click()
            await expect(op.locator("#confirm-title")).to_have_text("Phát công khai yt-qmg?")
            await op.click("#confirm-ok")
            await expect(row.get_by_role("button", name="Kết thúc buổi phát yt-qmg")).to_be_visible()
            broadcast = next(iter(yt.broadcasts.values()))
            assert broadcast["status"]["lifeCycleStatus"] == "live"
            await expect(notes).to_contain_text(re.compile(r"Buổi phát youtube\s*live"))

            # A new title, applied to every broadcast; the note says YouTube took it.
            await op.click("#event-title-box summary")
            await op.fill("#event-title", "Phiên chất vấn — buổi chiều")
            await op.click("#event-apply")
            await expect(notes).to_contain_text(re.compile(r"Tiêu đề trên nền tảng\s*đã áp dụng: Phiên chất vấn — "
                                                           r"buổi chiều"))
            assert broadcast["snippet"]["title"] == "Phiên chất vấn — buổi chiều"

            # The platform says it gets nothing while we send: shown at once in the row.
            yt.health_override = "noData"
            await expect(notes).to_contain_text(re.compile(r"youtube nhận được\s*noData"))
            await op.screenshot(path=str(artifacts / "operate-broadcast.png"), full_page=True)
            stream_name = next(iter(yt.streams.values()))["cdn"]["ingestionInfo"]["streamName"]
            assert stream_name not in await op.content()
            assert watch.problems == []
