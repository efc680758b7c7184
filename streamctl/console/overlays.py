"""On-air graphics for OBS/vMix browser sources: the on-air question and live viewers, pushed over a websocket."""

from __future__ import annotations

import json
import logging
import re

from aiohttp import web

from ..events import QuestionChanged, ViewersStored
from ..questions import QuestionDesk
from .auth import ALLOWED
from .i18n import pick_lang
from .keys import CONTROLLER, DESK, HUB
from .limits import SOCKETS
from .pages import OVERLAYS, render
from .ws import serve

log = logging.getLogger(__name__)

NAMES = ("question", "viewers")
THEMES = ("dark", "light", "glass")
POSITIONS = ("bottom", "top")
HEX = re.compile(r"^[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?$")


# What a browser source gets for a refused token: an empty page, transparent on air. Text here would be
# keyed over the programme; the reason goes to the log instead.
REFUSED_PAGE = '<!doctype html><html><head><meta charset="utf-8"><title></title></head><body></body></html>\n'


def token_problem(request: web.Request) -> tuple[int, str] | None:
    """Why the `?token=` may not show overlays (status, reason), or None when it may; overlays never use cookies."""
    token = request.query.get("token", "")
    if not token:
        return 401, "the URL has no ?token="
    role = request.app[CONTROLLER].store.token_role(token)
    if role is None:
        return 401, "the token is unknown or was revoked"
    if role not in ALLOWED["overlay"]:
        return 403, f"a {role} token may not show overlays"
    return None


def overlay_token_ok(request: web.Request) -> bool:
    return token_problem(request) is None


def _refused(request: web.Request, problem: tuple[int, str]) -> web.HTTPException:
    status, why = problem
    log.warning("overlay %s refused for %s: %s; an operator makes one with `streamctl token create --role overlay`",
                request.path, request.remote, why)
    cls = web.HTTPUnauthorized if status == 401 else web.HTTPForbidden
    return cls(text=REFUSED_PAGE, content_type="text/html")


def on_air_view(question: dict | None) -> dict | None:
    """Only what the audience will see on screen."""
    if question is None:
        return None
    return {k: question[k] for k in ("id", "text", "author", "platform", "merged_count")}


def current_on_air(desk: QuestionDesk) -> dict | None:
    on_air = desk.questions(("on_air",), limit=1)
    return on_air_view(on_air[0]) if on_air else None


def settings(query) -> dict:
    """The look asked for in the URL, each value checked; anything unknown falls back to the default."""
    try:
        scale = min(2.0, max(0.5, float(query.get("scale", "1"))))
    except ValueError:
        scale = 1.0
    accent = query.get("accent", "")
    return {
        "theme": query.get("theme") if query.get("theme") in THEMES else "dark",
        "position": query.get("position") if query.get("position") in POSITIONS else "bottom",
        "accent": f"#{accent}" if HEX.match(accent) else "",
        "scale": scale,
    }


async def overlay(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in NAMES:
        raise web.HTTPNotFound(text=f"no overlay {name!r}; there are: {', '.join(NAMES)}", content_type="text/plain")
    problem = token_problem(request)
    if problem:
        raise _refused(request, problem)
    _, total = request.app[CONTROLLER].store.latest_viewers()
    look = settings(request.query)
    data = {"on_air": current_on_air(request.app[DESK]), "viewers": total, **look}
    return render(request, f"{name}.html", page=f"overlay-{name}", title_key=f"overlay.{name}", data=data,
                  lang=pick_lang(request.query.get("lang")), look=look)


def overlay_encoder(desk: QuestionDesk, shown_id: int | None):
    """Per connection: the on-air question when it changes (None when it leaves the air), and the viewer total."""
    shown: dict[str, int | None] = {"id": shown_id}

    def encode(event) -> str | None:
        if isinstance(event, ViewersStored):
            return json.dumps({"type": "viewers", "total": event.total})
        assert isinstance(event, QuestionChanged)
        question = event.question
        if question["state"] == "on_air":
            shown["id"] = question["id"]
            return json.dumps({"type": "on_air", "question": on_air_view(question)}, ensure_ascii=False)
        if question["id"] == shown["id"]:
            current = current_on_air(desk)
            shown["id"] = current["id"] if current else None
            return json.dumps({"type": "on_air", "question": current}, ensure_ascii=False)
        return None

    return encode


async def overlay_socket(request: web.Request) -> web.StreamResponse:
    """`GET /ws/overlay?token=…`: pushes to a browser source; it starts with what is on air now."""
    problem = token_problem(request)
    if problem:
        raise _refused(request, problem)
    desk: QuestionDesk = request.app[DESK]
    sockets = request.app[SOCKETS]
    sockets.admit("overlays")  # every overlay together counts as one identity
    try:
        ws = web.WebSocketResponse(heartbeat=25, max_msg_size=4096)
        await ws.prepare(request)
        sub = request.app[CONTROLLER].bus.subscribe(QuestionChanged, ViewersStored, maxsize=200, name="ws:overlay")
        current = current_on_air(desk)
        _, total = request.app[CONTROLLER].store.latest_viewers()
        await ws.send_str(json.dumps({"type": "snapshot", "on_air": current, "viewers": total}, ensure_ascii=False))
        await serve(ws, sub, overlay_encoder(desk, current["id"] if current else None), request.app[HUB],
                    lambda: overlay_token_ok(request))
    finally:
        sockets.release("overlays")
    return ws


def setup(app: web.Application) -> None:
    """Register this area's routes."""
    app.router.add_get("/ws/overlay", overlay_socket)
    app.router.add_static("/overlay/assets", OVERLAYS / "assets", append_version=False)
    app.router.add_get("/overlay/{name}", overlay)
