"""`GET /report`: the same report, live in the console during and after the event.

Leadership reads it with a read-only account, so every signed-in person role may: operator, moderator and
official (overlay tokens may not). `?format=html|pdf|csv|json`, `?lang=vi|en` (default: the user's language).
The PDF is printed by a short-lived headless Chromium, as `streamctl report --format pdf` does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import tempfile
from html import unescape as html_unescape
from pathlib import Path

from aiohttp import web

from ..events import now
from ..report.figures import ReportError, build_report
from ..report.labels import LANGS
from ..report.render import ToolMissing, to_csv, to_html, to_pdf
from .auth import CSP, IDENTITY, requires
from .http import json_error, json_response, query_choice
from .keys import CONTROLLER

log = logging.getLogger(__name__)

WEB_FORMATS = ("html", "pdf", "csv", "json")
# One PDF at a time: each is a short-lived headless Chromium; leadership clicking twice must not start ten.
_PDF_ONE_AT_A_TIME = asyncio.Semaphore(1)


def downloads(lang: str) -> list[tuple[str, str]]:
    """The report's download links (label, href) in the reader's language."""
    return [(fmt.upper(), f"/report?format={fmt}&lang={lang}") for fmt in WEB_FORMATS]


def _attachment(body: bytes | str, content_type: str, name: str) -> web.Response:
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if isinstance(body, bytes):
        return web.Response(body=body, content_type=content_type, headers=headers)
    return web.Response(text=body, content_type=content_type, charset="utf-8", headers=headers)


def _pdf(report: dict, lang: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="streamctl-report-") as tmp:
        target = Path(tmp) / "report.pdf"
        to_pdf(to_html(report, lang), target)
        return target.read_bytes()


@requires("official")
async def report_page(request: web.Request) -> web.StreamResponse:
    """The report of the running event, figures up to now, and its downloads (html, pdf, csv, json)."""
    identity = request[IDENTITY]
    fmt = query_choice(request, "format", WEB_FORMATS, "html")
    lang = query_choice(request, "lang", LANGS, getattr(identity, "lang", None) or "vi")
    path = request.app[CONTROLLER].store.path
    try:
        # Its own read-only connection, off the event loop: a big event must not stall the console.
        report = await asyncio.to_thread(build_report, path, now())
        if fmt == "pdf":
            async with _PDF_ONE_AT_A_TIME:
                return _attachment(await asyncio.to_thread(_pdf, report, lang), "application/pdf", "report.pdf")
    except ToolMissing as e:
        log.warning("report PDF: %s", e)
        return json_error(503, str(e), "error.report_pdf")
    except ReportError as e:
        log.warning("report: %s", e)
        return json_error(500, str(e), "error.report")
    if fmt == "json":
        return json_response(report)
    if fmt == "csv":
        return _attachment(await asyncio.to_thread(to_csv, report, lang), "text/csv", "report.csv")
    html = await asyncio.to_thread(to_html, report, lang, downloads(lang))
    return web.Response(text=html, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": report_csp(html)})


_STYLE_BLOCK = re.compile(r"<style[^>]*>(.*?)</style>", re.S)
_STYLE_ATTR = re.compile(r'\sstyle="([^"]*)"')


def _hash_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def report_csp(html: str) -> str:
    """The console's strict CSP, admitting exactly this report's own styles by hash (it has no script).

    The report is one self-contained document (the same file `streamctl report` writes), so its CSS is
    inline; hashing each block keeps the no-inline rule for anything else that might end up in the page.
    """
    sources = {_hash_source(m) for m in _STYLE_BLOCK.findall(html)}
    # A <style> block is hashed as written; an attribute as the browser reads it, entities decoded.
    attrs = {_hash_source(html_unescape(m)) for m in _STYLE_ATTR.findall(html)}
    style = " ".join(["'self'", *sorted(sources), *(["'unsafe-hashes'", *sorted(attrs)] if attrs else [])])
    return CSP.format(frames="'none'").replace("style-src 'self'", f"style-src {style}")


def setup(app: web.Application) -> None:
    """Register `GET /report`."""
    app.router.add_get("/report", report_page)
