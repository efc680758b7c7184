"""The console's aiohttp application: identity, JSON errors, and every area's routes."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from ..redact import redact
from .auth import IDENTITY, bearer_identity, csrf_middleware, security_headers_middleware, session_middleware

if TYPE_CHECKING:
    from ..controller import Controller

log = logging.getLogger(__name__)

CONTROLLER: web.AppKey[Controller] = web.AppKey("controller")


def json_response(data: object, status: int = 200) -> web.Response:
    """JSON with non-ASCII kept as is (Vietnamese text stays readable)."""
    return web.Response(text=json.dumps(data, ensure_ascii=False), status=status, content_type="application/json")


def json_error(status: int, message: str) -> web.Response:
    return json_response({"error": redact(message)}, status=status)


@web.middleware
async def identity_middleware(request: web.Request, handler):
    controller = request.app[CONTROLLER]
    identity = bearer_identity(request, controller.store)
    if identity is not None:
        request[IDENTITY] = identity
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Unexpected errors become a JSON 500 with secrets masked; the traceback goes to the log only."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as e:
        log.exception("error in %s %s", request.method, request.path)
        return json_error(500, f"internal error: {type(e).__name__}")


async def healthz(request: web.Request) -> web.Response:
    return json_response({"ok": True})


def make_app(controller: Controller) -> web.Application:
    """The console application for one running event."""
    from ..report import web as report_web
    from . import api_audience, api_broadcasts, api_questions, api_restream, overlays, pages, ws

    # Outermost first: security headers on every answer, then errors, then who is asking and CSRF.
    middlewares = [security_headers_middleware, error_middleware, identity_middleware,
                   session_middleware(lambda request: request.app[CONTROLLER].store), csrf_middleware]
    app = web.Application(middlewares=middlewares, client_max_size=2 * 1024 * 1024)
    app[CONTROLLER] = controller
    app.router.add_get("/healthz", healthz)
    for area in (api_broadcasts, api_restream, api_audience, api_questions, ws, pages, overlays, report_web):
        area.setup(app)
    return app
