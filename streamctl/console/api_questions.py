"""Question, comment-hiding, author-note and audit routes for moderators (and the officials' read-only queue)."""

from __future__ import annotations

from aiohttp import web

from ..questions import MAX_PAGE, ORDERS, ORIGINS, STATES, QuestionDesk, QuestionError, official_view
from ..states import QUESTION_OFFICIAL
from .auth import IDENTITY, Identity, requires
from .http import json_error, json_response, path_int, query_choice, query_int, query_list, read_json
from .keys import CONTROLLER, DESK


def desk_of(request: web.Request) -> QuestionDesk:
    return request.app[DESK]


def _failed(e: QuestionError) -> web.Response:
    return json_error(e.status, e.message, "error.question")


@requires("official")
async def list_questions(request: web.Request) -> web.Response:
    """`?state=&origin=&order=newest|oldest|queue&limit=&before=&after=&q=`: one page and the cursor to the next.

    `queue` (the default) is the hall's whole queue and the latest `limit` of the rest, in queue order;
    `newest` pages down with `before`, `oldest` up with `after`, any number of questions.
    """
    identity: Identity = request[IDENTITY]
    desk = desk_of(request)
    wanted = query_list(request, "state", STATES, "state")
    origins = query_list(request, "origin", ORIGINS, "origin")
    order = query_choice(request, "order", ORDERS, "queue")
    if identity.role == "official":
        # Officials read only what was forwarded to the hall.
        wanted = tuple(s for s in wanted if s in QUESTION_OFFICIAL) or QUESTION_OFFICIAL
    answer: dict = {}
    if order == "queue":
        if any(request.query.get(k) for k in ("before", "after", "q")):
            return json_error(400, "before, after and q page through order=newest or order=oldest",
                              "error.query_choice", {"key": "order", "choices": "newest, oldest"})
        questions = [q for q in desk.questions(wanted, query_int(request, "limit", 1000, 1)) if q["origin"] in origins]
    else:
        limit = query_int(request, "limit", 200, 1, MAX_PAGE)
        questions, cursor = desk.page(wanted, origins, order, limit, before=query_int(request, "before", None),
                                      after=query_int(request, "after", None), q=request.query.get("q", "")[:200])
        answer["next_before" if order == "newest" else "next_after"] = cursor
    if identity.role == "official":
        questions = [q for q in map(official_view, questions) if q["state"] != "hidden"]
    else:
        answer["counts"] = desk.counts()
    return json_response({"questions": questions, **answer})


@requires("moderator")
async def create_question(request: web.Request) -> web.Response:
    body = await read_json(request)
    comment_id = body.get("comment_id")
    if not isinstance(comment_id, int) or isinstance(comment_id, bool):
        return json_error(400, 'expected {"comment_id": ID}', "error.body_field", {"expected": '{"comment_id": ID}'})
    try:
        question, created = await desk_of(request).create(comment_id, request[IDENTITY].name)
    except QuestionError as e:
        return _failed(e)
    return json_response({"question": question, "created": created}, status=201 if created else 200)


@requires("moderator")
async def question_action(request: web.Request) -> web.Response:
    body = await read_json(request)
    qid, action, actor = path_int(request, "id"), request.match_info["action"], request[IDENTITY].name
    try:
        if action == "merge_group":
            question, merged, skipped = await desk_of(request).merge_group(qid, body.get("ids"), actor)
            return json_response({"question": question, "merged": merged, "skipped": skipped})
        question = await desk_of(request).act(qid, action, actor, body)
    except QuestionError as e:
        return _failed(e)
    return json_response({"question": question})


@requires("moderator")
async def hide_comment(request: web.Request) -> web.Response:
    hidden = request.match_info["verb"] == "hide"
    comment_id = path_int(request, "id")
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
        return json_error(400, 'expected {"platform": …, "author_id": …, "note": …}', "error.body_field",
                          {"expected": '{"platform": …, "author_id": …, "note": …}'})
    try:
        note = await desk_of(request).note(platform, author_id, body.get("note", ""), request[IDENTITY].name)
    except QuestionError as e:
        return _failed(e)
    return json_response({"note": note})


@requires("moderator")
async def audit_log(request: web.Request) -> web.Response:
    """`?auto=1&before=&limit=`: the latest actions, newest first: who did what to which item, and when.

    People's actions only, unless `auto=1` adds the desk's own (one "create" per flagged comment).
    """
    automatic = request.query.get("auto") in ("1", "true", "yes")
    limit = query_int(request, "limit", 200, 1, MAX_PAGE)
    rows = request.app[CONTROLLER].store.audit_log(limit, query_int(request, "before", None), automatic)
    return json_response({"audit": rows, "next_before": rows[-1]["id"] if len(rows) == limit else None})


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
