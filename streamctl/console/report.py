"""`GET /report`: the same report, live in the console during and after the event.

Leadership reads it with a read-only account, so every signed-in person role may: operator, moderator and
official (overlay tokens may not). `?format=html|json|csv`, `?lang=vi|en` (default: the user's language).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from html import unescape as html_unescape

from aiohttp import web

from ..events import now
from ..report.figures import ReportError, build_report
from ..report.labels import LANGS
from ..report.render import to_csv, to_html
from .auth import CSP, IDENTITY, requires
from .http import json_error, json_response
from .keys import CONTROLLER

WEB_FORMATS = ("html", "json", "csv")


@requires("official")
async def report_page(request: web.Request) -> web.StreamResponse:
    """The report of the running event, figures up to now."""
    fmt = request.query.get("format", "html")
    identity = request[IDENTITY]
    lang = request.query.get("lang") or getattr(identity, "lang", None) or "vi"
    if fmt not in WEB_FORMATS:
        return json_error(400, f"format {fmt!r} is not one of {', '.join(WEB_FORMATS)}", "error.query_choice",
                          {"key": "format", "choices": ", ".join(WEB_FORMATS)})
    if lang not in LANGS:
        return json_error(400, f"lang {lang!r} is not one of {', '.join(LANGS)}", "error.query_choice",
                          {"key": "lang", "choices": ", ".join(LANGS)})
    path = request.app[CONTROLLER].store.path
    try:
        # Its own read-only connection, off the event loop: a big event must not stall the console.
        report = await asyncio.to_thread(build_report, path, now())
    except ReportError as e:
        return json_error(500, str(e), "error.report")
    if fmt == "json":
        return json_response(report)
    if fmt == "csv":
        return web.Response(text=await asyncio.to_thread(to_csv, report, lang), content_type="text/csv",
                            charset="utf-8",
                            headers={"Content-Disposition": 'attachment; filename="report.csv"'})
    html = await asyncio.to_thread(to_html, report, lang)
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
