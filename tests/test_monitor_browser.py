"""/operate's confidence monitor in a real Chromium: the program's picture refreshed without a blank frame, meters
that move with the testsrc tone, and a destination's backup output as its own row under it."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

from streamctl.restream.rtmp_server import RtmpServer

from .console_harness import running_console
from .test_browser import DESKTOP, Watch, chromium, signed_in

# A blank frame is an image element shown with nothing decoded in it (or none shown at all).
SHOWN_PICTURE = """() => {
  const shown = [...document.querySelectorAll('#preview img.shown')].filter((i) => !i.hidden);
  return shown.length === 1 && shown[0].complete && shown[0].naturalWidth > 0 ? shown[0].naturalWidth : 0;
}"""


async def test_operate_shows_the_program_picture_meters_and_the_backup_row(tmp_path, artifacts):
    primary, backup = RtmpServer.receiver(), RtmpServer.receiver()
    await primary.start()
    await backup.start()
    tables = f"""
        [ingest]
        url = "testsrc"
        [monitor]
        preview_width = 320
        [[destination]]
        name = "hall"
        url = "{primary.url}"
        backup = true
        backup_url = "{backup.url}"
        """
    try:
        async with running_console(tmp_path, (("op", "operator"),), tables) as console, chromium() as browser:
            watch = Watch()
            op = await signed_in(browser, console.url, "op", watch, DESKTOP, "/operate")
            op.set_default_timeout(20_000)
            await expect(op.locator("#preview")).to_have_class("preview fresh")
            assert await op.evaluate(SHOWN_PICTURE) == 320
            loaded = int(await op.locator("#preview").get_attribute("data-loaded"))
            for _ in range(20):  # four seconds: a picture is shown at every moment, and new ones keep coming
                assert await op.evaluate(SHOWN_PICTURE) == 320, "a blank frame while the picture refreshed"
                await asyncio.sleep(0.2)
            assert int(await op.locator("#preview").get_attribute("data-loaded")) >= loaded + 2

            # The testsrc tone: a meter per channel, well off the floor.
            meters = op.locator("#meters .meter")
            await expect(meters).not_to_have_count(0)
            levels = [float(await m.get_attribute("data-rms")) for m in await meters.all()]
            assert all(-40 < level < 0 for level in levels), levels

            # The backup output: its own row right under its destination, no remove button of its own.
            rows = op.locator("#dest-table tbody.item-body")
            await expect(rows).to_have_count(2)
            assert [await r.get_attribute("data-name") for r in await rows.all()] == ["hall", "hall (backup)"]
            backup_row = op.locator("tbody[data-name='hall (backup)']")
            await expect(backup_row).to_have_class("item-body backup-row")
            await expect(backup_row.locator(".badge")).to_have_text("Đang phát")
            await expect(backup_row).to_contain_text("đường dự phòng của hall")
            await expect(backup_row.locator("button", has_text="Gỡ")).to_have_count(0)
            await expect(op.locator("tbody[data-name='hall'] button", has_text="Gỡ")).to_have_count(1)
            assert backup.counters["video_frames"] > 0 and primary.counters["video_frames"] > 0
            # One platform on air, not two: the strip counts destinations, not their backup outputs.
            status, body = await (await console.client("op")).call("GET", "/api/status")
            assert status == 200 and (body["destinations_live"], body["destinations"]) == (1, 1)
            await op.screenshot(path=artifacts / "operate-monitor-1920x1080.png", full_page=True)
            assert watch.problems == []
    finally:
        await primary.close()
        await backup.close()
