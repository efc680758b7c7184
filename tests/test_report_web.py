"""`GET /report` in the running console: bearer tokens, roles, formats and languages."""

from __future__ import annotations

import csv
import io
import json

import aiohttp
import pytest

from streamctl.audience.models import ViewerSample
from streamctl.config import load_event
from streamctl.controller import Controller
from streamctl.events import now

from .conftest import LOOPBACK
from .console_harness import running

EVENT_NAME = "Kỳ họp HĐND — phiên chất vấn <trực tiếp>"


@pytest.fixture
async def console(write_event, port, tmp_path):
    """The real controller running an event with no destinations and no audience sources."""
    path = write_event(f"""
        [event]
        name = "{EVENT_NAME}"
        timezone = "Asia/Ho_Chi_Minh"
        database = "{tmp_path / 'event.db'}"

        [console]
        listen = "{LOOPBACK}:{port}"
    """)
    controller = Controller(load_event(path, need_secrets=False))
    async with running(controller, start_s=20):
        yield controller


async def get(controller: Controller, query: str = "", token: str | None = None) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.get(f"{controller.console_url}/report{query}",
                                                         headers=headers) as response:
        return response.status, response.content_type, await response.text()


async def test_signed_out_is_401_and_overlay_tokens_are_403(console):
    status, _, _ = await get(console)
    assert status == 401
    status, _, _ = await get(console, token="sct_ope_not-a-real-token")
    assert status == 401
    status, _, _ = await get(console, token=console.store.create_token("overlay"))
    assert status == 403


@pytest.mark.parametrize("role", ["operator", "moderator", "official"])
async def test_every_person_role_reads_the_live_report(console, role):
    status, kind, html = await get(console, token=console.store.create_token(role))
    assert status == 200 and kind == "text/html"
    assert "Kỳ họp HĐND — phiên chất vấn &lt;trực tiếp&gt;" in html
    assert "Sự kiện đang diễn ra" in html  # Vietnamese by default, and marked as still running


async def test_live_figures_in_json_csv_and_english(console):
    token = console.store.create_token("moderator")
    # A viewer sample arrives the way the audience pollers deliver it: stored by the recorder.
    console.store.add_viewers(ViewerSample("facebook-qmg", "facebook", now(), 1234, likes=5, views=800))
    status, kind, body = await get(console, "?format=json", token)
    assert status == 200 and kind == "application/json"
    report = json.loads(body)
    assert report["event"]["name"] == EVENT_NAME and report["event"]["in_progress"] is True
    assert report["platforms"][0]["name"] == "facebook-qmg" and report["total"]["peak_viewers"] == 1234
    status, kind, body = await get(console, "?format=csv&lang=en", token)
    assert status == 200 and kind == "text/csv"
    assert ["Name", EVENT_NAME] in list(csv.reader(io.StringIO(body)))
    status, _, html = await get(console, "?lang=en", token)
    assert status == 200 and "Post-event livestream report" in html and "1,234" in html


async def test_bad_parameters_are_400(console):
    token = console.store.create_token("operator")
    for query in ("?format=docx", "?lang=fr"):
        status, kind, body = await get(console, query, token)
        assert status == 400 and kind == "application/json" and json.loads(body)["key"] == "error.query_choice"


async def test_the_page_links_every_download_and_the_pdf_is_printed(console):
    token = console.store.create_token("official")
    console.store.add_viewers(ViewerSample("facebook-qmg", "facebook", now(), 321))
    status, _, html = await get(console, "?lang=en", token)
    assert status == 200
    for fmt in ("html", "pdf", "csv", "json"):
        assert f'href="/report?format={fmt}&amp;lang=en" download' in html, fmt
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http, http.get(f"{console.console_url}/report?format=pdf&lang=en",
                                                         headers=headers) as response:
        body = await response.read()
        assert response.status == 200 and response.content_type == "application/pdf", body[:200]
        assert response.headers["Content-Disposition"] == 'attachment; filename="report.pdf"'
    assert body.startswith(b"%PDF-") and len(body) > 5000



async def test_report_page_is_styled_in_a_real_browser_under_the_console_csp(console, artifacts):
    from .test_browser import Watch, chromium

    console.store.add_viewers(ViewerSample("yt", "youtube", now() - 30, 120))
    token = console.store.create_token("moderator")
    watch = Watch()
    async with chromium() as browser:
        page = watch.attach(await browser.new_page(viewport={"width": 1280, "height": 900},
                                                   extra_http_headers={"Authorization": f"Bearer {token}"}),
                            "report")
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        await page.goto(f"{console.console_url}/report?lang=en")
        await page.screenshot(path=str(artifacts / "report-console-1280x900.png"), full_page=False)
        # The stylesheet applied: the report's grey desk behind an A4 sheet, not the browser's defaults.
        background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        margin = await page.evaluate("getComputedStyle(document.body).margin")
    assert background == "rgb(233, 233, 233)"
    assert margin == "0px"
    assert violations == [] and watch.problems == []
