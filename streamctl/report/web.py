"""`GET /report`: the same report, live in the console during and after the event.

Leadership reads it with a read-only account, so every signed-in person role may: operator, moderator and
official (overlay tokens may not). `?format=html|json|csv`, `?lang=vi|en` (default: the user's language).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..console.app import CONTROLLER, json_error, json_response
from ..console.auth import IDENTITY, requires
from ..events import now
from .figures import ReportError, build_report
from .labels import LANGS
from .render import to_csv, to_html

WEB_FORMATS = ("html", "json", "csv")


@requires("official")
async def report_page(request: web.Request) -> web.StreamResponse:
    """The report of the running event, figures up to now."""
    fmt = request.query.get("format", "html")
    identity = request[IDENTITY]
    lang = request.query.get("lang") or getattr(identity, "lang", None) or "vi"
    if fmt not in WEB_FORMATS:
        return json_error(400, f"format {fmt!r} is not one of {', '.join(WEB_FORMATS)}")
    if lang not in LANGS:
        return json_error(400, f"lang {lang!r} is not one of {', '.join(LANGS)}")
    path = request.app[CONTROLLER].store.path
    try:
        # Its own read-only connection, off the event loop: a big event must not stall the console.
        report = await asyncio.to_thread(build_report, path, now())
    except ReportError as e:
        return json_error(500, str(e))
    if fmt == "json":
        return json_response(report)
    if fmt == "csv":
        return web.Response(text=await asyncio.to_thread(to_csv, report, lang), content_type="text/csv",
                            charset="utf-8",
                            headers={"Content-Disposition": 'attachment; filename="report.csv"'})
    html = await asyncio.to_thread(to_html, report, lang)
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def setup(app: web.Application) -> None:
    """Register `GET /report`."""
    app.router.add_get("/report", report_page)
