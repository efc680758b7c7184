"""Console routes for alerts: the stored list in the reader's language, and acknowledging one."""

from __future__ import annotations

from aiohttp import web

from ..alerts import api_view
from ..reasons import with_reasons
from .auth import IDENTITY, requires
from .http import json_error, json_response, path_int, query_int
from .i18n import pick_lang
from .keys import CONTROLLER


@requires("operator")
async def list_alerts(request: web.Request) -> web.Response:
    """`GET /api/alerts?after=ID&limit=N&lang=vi|en`: oldest first after `after`, else the latest `limit`."""
    after = query_int(request, "after", 0)
    limit = query_int(request, "limit", 200)
    lang = pick_lang(request.query.get("lang"), request[IDENTITY].lang)
    desk = request.app[CONTROLLER].alerts
    alerts = desk.alerts(lang, after, limit)
    return json_response(with_reasons({"alerts": alerts, "unacknowledged": desk.store.unacknowledged_alerts(),
                                       "next_after": alerts[-1]["id"] if alerts else after}))


@requires("operator")
async def acknowledge(request: web.Request) -> web.Response:
    """`POST /api/alerts/{id}/ack`: the operator has seen it (the first acknowledgement stands)."""
    alert_id = path_int(request, "id")
    desk = request.app[CONTROLLER].alerts
    identity = request[IDENTITY]
    alert = desk.acknowledge(alert_id, identity.name)
    if alert is None:
        return json_error(404, f"no alert {alert_id}", "error.alert_unknown", {"id": alert_id})
    await desk.acknowledged(alert)
    return json_response(api_view(alert, pick_lang(request.query.get("lang"), identity.lang)))


def setup(app: web.Application) -> None:
    """Register this area's routes."""
    app.router.add_get("/api/alerts", list_alerts)
    app.router.add_post("/api/alerts/{id}/ack", acknowledge)
