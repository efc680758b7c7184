"""Console routes for platform broadcasts: go live, end, and the event's title and description on every platform."""

from __future__ import annotations

import json

from aiohttp import web

from ..broadcasts.client import CREDENTIAL, BroadcastError
from ..broadcasts.manager import NotReady
from .auth import IDENTITY, requires
from .http import json_error, json_response
from .keys import CONTROLLER

TITLE_MAX, DESCRIPTION_MAX = 100, 5000  # YouTube's limits (Facebook's are larger)


def _manager(request: web.Request):
    return request.app[CONTROLLER].broadcasts


async def _act(request: web.Request, action: str) -> web.Response:
    name = request.match_info["name"]
    controller = request.app[CONTROLLER]
    try:
        controller.restreamer.get(name)
    except KeyError:
        return json_error(404, f"no destination named {name!r}")
    try:
        result = await (_manager(request).go_live(name) if action == "go_live" else _manager(request).end(name))
    except NotReady as e:
        return json_error(409, str(e))
    except BroadcastError as e:
        return json_error(502 if e.kind != CREDENTIAL else 401, str(e))
    controller.store.audit(request[IDENTITY].name, f"destination.{action}", "destination", name, None,
                           {"broadcast": result["broadcast"]})
    entry = next((d for d in controller.restreamer.destinations() if d["name"] == name), {"name": name})
    entry.update(result)
    return json_response(entry)


@requires("operator")
async def go_live(request: web.Request) -> web.Response:
    return await _act(request, "go_live")


@requires("operator")
async def end(request: web.Request) -> web.Response:
    return await _act(request, "end")


@requires("operator")
async def get_event(request: web.Request) -> web.Response:
    return json_response(_manager(request).event_info())


@requires("operator")
async def patch_event(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return json_error(400, "request body is not JSON, expected {\"title\": …, \"description\": …}")
    if not isinstance(body, dict) or not ({"title", "description"} & set(body)):
        return json_error(400, "expected a JSON object with title and/or description")
    unknown = set(body) - {"title", "description"}
    if unknown:
        return json_error(400, f"unknown key(s) {', '.join(sorted(unknown))}, expected title and/or description")
    title, description = body.get("title"), body.get("description")
    if title is not None and (not isinstance(title, str) or not title.strip() or len(title) > TITLE_MAX
                              or any(c in title for c in "<>")):
        return json_error(400, f"title: expected 1 to {TITLE_MAX} characters without < or >")
    if description is not None and (not isinstance(description, str) or len(description) > DESCRIPTION_MAX
                                    or any(c in description for c in "<>")):
        return json_error(400, f"description: expected at most {DESCRIPTION_MAX} characters without < or >")
    manager = _manager(request)
    before = {"title": manager.title, "description": manager.description}
    info = await manager.set_event(title.strip() if title else None, description)
    request.app[CONTROLLER].store.audit(request[IDENTITY].name, "event.update", "event", None, before,
                                        {"title": info["title"], "description": info["description"]})
    return json_response(info)


def setup(app: web.Application) -> None:
    """Register this area's routes (before the generic /api/destinations/{name}/{action})."""
    app.router.add_post("/api/destinations/{name}/go_live", go_live)
    app.router.add_post("/api/destinations/{name}/end", end)
    app.router.add_get("/api/event", get_event)
    app.router.add_patch("/api/event", patch_event)
