"""Question, comment-hiding, author-note and audit routes for moderators (and the officials' read-only queue)."""

from __future__ import annotations

import json

from aiohttp import web

from ..questions import OFFICIAL_STATES, STATES, QuestionDesk, QuestionError, official_view
from ..store import iso
from .app import CONTROLLER, json_error, json_response
from .auth import IDENTITY, Identity, requires

DESK: web.AppKey[QuestionDesk] = web.AppKey("question_desk", QuestionDesk)


def desk_of(request: web.Request) -> QuestionDesk:
    return request.app[DESK]


async def read_json(request: web.Request) -> dict:
    """The request's JSON object body ({} when empty); a 400 that says what was expected otherwise."""
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text='{"error": "the body is not valid JSON, expected a JSON object"}',
                                 content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "expected a JSON object"}', content_type="application/json")
    return body


def _int(request: web.Request, key: str) -> int:
    value = request.match_info[key]
    if not value.isdigit() or len(value) > 18:
        raise web.HTTPNotFound(text=f'{{"error": "{key} must be a number"}}', content_type="application/json")
    return int(value)


def _failed(e: QuestionError) -> web.Response:
    return json_error(e.status, e.message)


@requires("official")
async def list_questions(request: web.Request) -> web.Response:
    identity: Identity = request[IDENTITY]
    wanted = tuple(s for s in request.query.get("state", "").split(",") if s) or STATES
    unknown = [s for s in wanted if s not in STATES]
    if unknown:
        return json_error(400, f"unknown state {unknown[0]!r}, expected some of {', '.join(STATES)}")
    if identity.role == "official":
        # Officials read only what was forwarded to the hall.
        wanted = tuple(s for s in wanted if s in OFFICIAL_STATES) or OFFICIAL_STATES
    try:
        limit = int(request.query.get("limit", "1000"))
    except ValueError:
        return json_error(400, "limit must be a whole number")
    questions = desk_of(request).questions(wanted, limit)
    if identity.role == "official":
        questions = [q for q in map(official_view, questions) if q["state"] != "hidden"]
    return json_response({"questions": questions})


@requires("moderator")
async def create_question(request: web.Request) -> web.Response:
    body = await read_json(request)
    comment_id = body.get("comment_id")
    if not isinstance(comment_id, int) or isinstance(comment_id, bool):
        return json_error(400, 'expected {"comment_id": ID}')
    try:
        question, created = await desk_of(request).create(comment_id, request[IDENTITY].name)
    except QuestionError as e:
        return _failed(e)
    return json_response({"question": question, "created": created}, status=201 if created else 200)


@requires("moderator")
async def question_action(request: web.Request) -> web.Response:
    body = await read_json(request)
    try:
        question = await desk_of(request).act(_int(request, "id"), request.match_info["action"],
                                              request[IDENTITY].name, body)
    except QuestionError as e:
        return _failed(e)
    return json_response({"question": question})


@requires("moderator")
async def hide_comment(request: web.Request) -> web.Response:
    hidden = request.match_info["verb"] == "hide"
    comment_id = _int(request, "id")
    try:
        changed = await desk_of(request).hide(comment_id, hidden, request[IDENTITY].name)
    except QuestionError as e:
        return _failed(e)
    return json_response({"id": comment_id, "hidden": hidden, "changed": changed})


@requires("moderator")
async def list_notes(request: web.Request) -> web.Response:
    return json_response({"notes": desk_of(request).notes()})


@requires("moderator")
async def set_note(request: web.Request) -> web.Response:
    body = await read_json(request)
    platform, author_id = body.get("platform"), body.get("author_id")
    if not isinstance(platform, str) or not isinstance(author_id, str) or not platform or not author_id:
        return json_error(400, 'expected {"platform": …, "author_id": …, "note": …}')
    try:
        note = await desk_of(request).note(platform, author_id, body.get("note", ""), request[IDENTITY].name)
    except QuestionError as e:
        return _failed(e)
    return json_response({"note": note})


@requires("moderator")
async def audit_log(request: web.Request) -> web.Response:
    """The latest moderation actions, newest first: who did what to which item, and when."""
    store = request.app[CONTROLLER].store
    rows = store.query("SELECT * FROM audit ORDER BY id DESC LIMIT 200")
    return json_response({"audit": [
        {"id": r["id"], "at": iso(r["at"]), "actor": r["actor"], "action": r["action"],
         "target_type": r["target_type"], "target_id": r["target_id"],
         "before": json.loads(r["before"]) if r["before"] else None,
         "after": json.loads(r["after"]) if r["after"] else None} for r in rows]})


def setup(app: web.Application) -> None:
    """Register this area's routes."""
    controller = app[CONTROLLER]
    app[DESK] = controller.questions
    app.router.add_get("/api/questions", list_questions)
    app.router.add_post("/api/questions", create_question)
    app.router.add_post("/api/questions/{id}/{action}", question_action)
    app.router.add_post("/api/comments/{id}/{verb:hide|unhide}", hide_comment)
    app.router.add_get("/api/notes", list_notes)
    app.router.add_post("/api/notes", set_note)
    app.router.add_get("/api/audit", audit_log)
