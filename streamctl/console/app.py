"""The console's aiohttp application: identity, JSON errors, and every area's routes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from . import (
    api_alerts,
    api_audience,
    api_broadcasts,
    api_questions,
    api_restream,
    overlays,
    pages,
    report,
    summary,
    ws,
)
from .auth import IDENTITY, bearer_identity, csrf_middleware, security_headers_middleware, session_middleware
from .http import json_error, json_response
from .https import proxy_middleware
from .keys import CONTROLLER
from .limits import LIMITS, SOCKETS, SocketCount, body_deadline_middleware

if TYPE_CHECKING:
    from ..controller import Controller

log = logging.getLogger(__name__)

# api_broadcasts before api_restream: its /go_live and /end come before the generic /{name}/{action}.
AREAS = (api_broadcasts, api_restream, api_alerts, api_audience, api_questions, ws, pages, summary, overlays, report)


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
        return json_error(500, f"internal error: {type(e).__name__}", "error.internal", {"kind": type(e).__name__})


async def healthz(request: web.Request) -> web.Response:
    return json_response({"ok": True})


def make_app(controller: Controller) -> web.Application:
    """The console application for one running event."""
    # Outermost first: what a trusted proxy says about the request, security headers on every answer, then errors,
    # then who is asking and CSRF.
    middlewares = [proxy_middleware(controller.event.console.trusted_proxy), security_headers_middleware,
                   error_middleware, identity_middleware,
                   session_middleware(lambda request: request.app[CONTROLLER].store), csrf_middleware,
                   body_deadline_middleware]
    limits = controller.console_limits
    app = web.Application(middlewares=middlewares, client_max_size=limits.body_bytes)
    app[CONTROLLER] = controller
    app[LIMITS] = limits
    app[SOCKETS] = SocketCount(limits)
    app.router.add_get("/healthz", healthz)
    for area in AREAS:
        area.setup(app)
    return app
