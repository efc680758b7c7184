"""Console routes for alerts: the stored list in the reader's language, and acknowledging one."""

from __future__ import annotations

from aiohttp import web

from ..alerts import api_view
from .app import CONTROLLER, json_error, json_response
from .auth import IDENTITY, requires
from .i18n import pick_lang


def _whole(value: str | None, name: str, default: int) -> int:
    if value in (None, ""):
        return default
    if not value.isdigit():
        raise ValueError(f"{name}: {value[:20]!r} is not a whole number, expected e.g. {name}=0")
    return int(value)


@requires("operator")
async def list_alerts(request: web.Request) -> web.Response:
    """`GET /api/alerts?after=ID&limit=N&lang=vi|en`: oldest first after `after`, else the latest `limit`."""
    try:
        after = _whole(request.query.get("after"), "after", 0)
        limit = _whole(request.query.get("limit"), "limit", 200)
    except ValueError as e:
        return json_error(400, str(e))
    lang = pick_lang(request.query.get("lang"), request[IDENTITY].lang)
    desk = request.app[CONTROLLER].alerts
    alerts = desk.alerts(lang, after, limit)
    return json_response({"alerts": alerts, "unacknowledged": desk.store.unacknowledged_alerts(),
                          "next_after": alerts[-1]["id"] if alerts else after})


@requires("operator")
async def acknowledge(request: web.Request) -> web.Response:
    """`POST /api/alerts/{id}/ack`: the operator has seen it (the first acknowledgement stands)."""
    raw = request.match_info["id"]
    if not raw.isdigit():
        return json_error(404, f"no alert {raw[:20]!r}, expected an alert id")
    desk = request.app[CONTROLLER].alerts
    identity = request[IDENTITY]
    alert = desk.acknowledge(int(raw), identity.name)
    if alert is None:
        return json_error(404, f"no alert {raw}")
    await desk.acknowledged(alert)
    return json_response(api_view(alert, pick_lang(request.query.get("lang"), identity.lang)))


def setup(app: web.Application) -> None:
    """Register this area's routes."""
    app.router.add_get("/api/alerts", list_alerts)
    app.router.add_post("/api/alerts/{id}/ack", acknowledge)
