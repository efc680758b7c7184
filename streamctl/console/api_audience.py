"""Console routes for the audience: sources' health, viewers, the merged comments, webhooks, manual counts."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..audience.manual import ReadingError
from ..audience.service import ChangeError
from ..audience.webhook import WebhookError
from ..reasons import with_reasons
from ..redact import redact
from .auth import IDENTITY, requires
from .http import json_error, json_response, query_int, read_json
from .issues import issue_view
from .keys import CONTROLLER

MAX_LIMIT = 1000
COMMIT_WAIT_S = 10.0  # how long a webhook request waits for its messages to be on disk before it is refused
RETRY_AFTER_S = 5


@requires("operator")
async def audience(request: web.Request) -> web.Response:
    """Every source: state, last success, last message, last error, quota."""
    return json_response(with_reasons({"sources": request.app[CONTROLLER].audience.sources_status()}))


@requires("moderator")
async def viewers(request: web.Request) -> web.Response:
    """The latest concurrent viewers of every source, and their total."""
    sources, total = request.app[CONTROLLER].store.latest_viewers()
    return json_response({"sources": sources, "total": total})


@requires("moderator")
async def comments(request: web.Request) -> web.Response:
    """The merged comment stream after `after`, oldest first, filtered by platform, words or questions."""
    after = query_int(request, "after", 0)
    limit = query_int(request, "limit", 200, 1, MAX_LIMIT)
    q = request.query
    items = request.app[CONTROLLER].store.comments(
        after=after, limit=limit, platform=q.get("platform") or None, q=q.get("q") or None,
        questions_only=q.get("questions") in ("1", "true", "yes"))
    return json_response({"comments": items, "next_after": items[-1]["id"] if items else after})


async def webhook(request: web.Request) -> web.Response:
    """A bridge posts comments; the HMAC signature over the raw body is the credential."""
    service = request.app[CONTROLLER].audience
    name = request.match_info["source"]
    source = service.webhook(name)
    if source is None:
        return json_error(404, f"no webhook source named {name[:64]!r} in the event file", "error.source_unknown",
                          {"name": name[:64]})
    body = await request.read()
    try:
        batches = source.accept(body, request.headers.get("X-Signature-256"))
    except WebhookError as e:
        return json_error(e.status, str(e), "error.webhook")
    # 2xx only for what is committed to the database: a bridge that got 200 may forget the messages, and
    # streamctl killed a moment later must still have them. Anything else is 503 and the bridge sends again
    # (the store keeps one copy of a message sent twice).
    if not request.app[CONTROLLER].recorder.writable:
        return not_stored("the event database cannot be written (disk full?): nothing was stored, send it again later")
    receipts: list[asyncio.Future] = []
    try:
        async with asyncio.timeout(COMMIT_WAIT_S):
            for batch in batches:
                await service.deliver(name, batch, receipts=receipts)
            outcomes = [await receipt for receipt in receipts]
    except TimeoutError:
        return not_stored(f"not stored within {COMMIT_WAIT_S:g} s (the event database is busy or failing)")
    failed = next((o for o in outcomes if not o.ok), None)
    if failed is not None:
        return not_stored(failed.error)
    return json_response({"accepted": sum(len(b.comments) for b in batches), "new": sum(o.new for o in outcomes),
                          "viewers": sum(1 for b in batches if b.viewers is not None)})


def not_stored(why: str | None) -> web.Response:
    """503 with Retry-After: nothing of the request was acknowledged."""
    response = json_error(503, why or "not stored", "error.not_stored")
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


@requires("operator")
async def manual_viewers(request: web.Request) -> web.Response:
    """The operator types a viewer count for a platform with no API; it is stored marked as manual."""
    service = request.app[CONTROLLER].audience
    name = request.match_info["source"]
    if name not in service.pollers:
        return json_error(404, f"no audience source named {name[:64]!r} in the event file", "error.source_unknown",
                          {"name": name[:64]})
    if not service.takes_readings(name):
        return json_error(409, f"{name} counts its viewers through its API; manual counts go to manual or "
                               "webhook sources", "error.source_counts_itself", {"name": name})
    body = await read_json(request, '{"viewers": N}', required=True)
    try:
        batch = service.reading(name, body)
    except ReadingError as e:
        return json_error(400, str(e), "error.viewer_count")
    await service.deliver(name, batch)
    sample = batch.viewers
    return json_response({"source": name, "platform": sample.platform, "viewers": sample.viewers,
                          "likes": sample.likes, "views": sample.views, "manual": True})


# ChangeError status -> the catalogue key of its answer.
CHANGE_KEYS = {400: "error.source_config", 404: "error.source_unknown", 409: "error.source_no_credential"}


def _change_error(name: str, e: ChangeError) -> web.Response:
    issues = [redact(line) for line in e.issues]
    return json_error(e.status, "; ".join(issues), e.key or CHANGE_KEYS.get(e.status, "error.request"),
                      {"name": name[:64], "issues": "; ".join(issues)}, issues=issues,
                      issue_keys=[issue_view(line) for line in issues])


@requires("operator")
async def change_source(request: web.Request) -> web.Response:
    """Change one source's ids, interval or `enabled` while running; it restarts alone, the others go on."""
    return await _change(request, '{"video_id": "…", "enabled": true, …}', "source.change",
                         lambda service, name, body: service.change(name, body))


@requires("operator")
async def replace_credential(request: web.Request) -> web.Response:
    """Replace one source's token or secret while running; never echoed back, masked from then on."""
    return await _change(request, '{"credential": "the new token"}', "source.credential",
                         lambda service, name, body: service.replace_credential(name, body),
                         credential="replaced")


async def _change(request: web.Request, expected: str, action: str, apply, **answer: str) -> web.Response:
    """Read the body, apply one change to one source and audit it; the answer is the source's new status."""
    service = request.app[CONTROLLER].audience
    name = request.match_info["name"]
    body = await read_json(request, expected, required=True)
    before = service.status_of(name) if name in service.configs else None
    try:
        after = await apply(service, name, body)
    except ChangeError as e:
        return _change_error(name, e)
    request.app[CONTROLLER].store.audit(request[IDENTITY].name, action, "source", name, _brief(before),
                                        _brief(after))
    return json_response(with_reasons({"source": after, **answer}))


def _brief(status: dict | None) -> dict | None:
    """What the audit log keeps of a source: its settings and whether it runs, not its health figures."""
    if status is None:
        return None
    return {"enabled": status.get("enabled"), "settings": status.get("settings")}


def setup(app: web.Application) -> None:
    """Register this area's routes."""
    app.router.add_get("/api/audience", audience)
    app.router.add_get("/api/viewers", viewers)
    app.router.add_get("/api/comments", comments)
    app.router.add_post("/api/webhook/{source}", webhook)
    app.router.add_post("/api/viewers/{source}", manual_viewers)
    app.router.add_patch("/api/audience/{name}", change_source)
    app.router.add_put("/api/audience/{name}/credential", replace_credential)
