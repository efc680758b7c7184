"""The console's request and response helpers: JSON answers, one error body, bodies and numbers read one way.

Every error answer is `{"error": "<English sentence>", "key": "error.<what>", "params": {...}}`: the
sentence for scripts and logs (secrets masked), the catalogue key and its placeholders for a page to show
it in the viewer's language (`web/i18n/*.json`).
"""

from __future__ import annotations

import json

from aiohttp import web

from ..redact import redact

MAX_JSON_BODY = 64 * 1024  # no console form or action comes near this; a bigger body is a mistake or an attack
MAX_ID = 2**62


def json_response(data: object, status: int = 200, headers: dict | None = None) -> web.Response:
    """JSON with non-ASCII kept as is (Vietnamese text stays readable)."""
    return web.Response(text=json.dumps(data, ensure_ascii=False), status=status, content_type="application/json",
                        headers=headers)


def error_body(message: str, key: str = "error.request", params: dict | None = None, **extra) -> dict:
    """The one shape of every error answer; `extra` adds fields a route documents (e.g. `issues`)."""
    return {"error": redact(message), "key": key, "params": {k: redact(str(v)) for k, v in (params or {}).items()},
            **extra}


def json_error(status: int, message: str, key: str = "error.request", params: dict | None = None,
               **extra) -> web.Response:
    """An error answer to return."""
    return json_response(error_body(message, key, params, **extra), status=status)


def http_error(cls: type[web.HTTPException], message: str, key: str = "error.request", params: dict | None = None,
               headers: dict | None = None) -> web.HTTPException:
    """An error answer to raise (from a helper or a decorator, where there is nothing to return to)."""
    return cls(text=json.dumps(error_body(message, key, params), ensure_ascii=False),
               content_type="application/json", headers=headers)


async def read_json(request: web.Request, expected: str = "a JSON object", *, required: bool = False,
                    limit: int = MAX_JSON_BODY) -> dict:
    """The request's JSON object body ({} when empty, unless `required`); a 400 or 413 that says what was expected.

    `expected` names the shape in the message ('{"viewers": N}'). aiohttp's own `client_max_size` bounds
    what is read at all; `limit` is this body's much smaller bound.
    """
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    raw = await request.read() if request.body_exists else b""  # read() keeps what a middleware read
    if len(raw) > limit:
        raise _too_large(limit)
    if not raw.strip():
        if required:
            raise http_error(web.HTTPBadRequest, f"the body is empty, expected {expected}", "error.body_empty",
                             {"expected": expected})
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise http_error(web.HTTPBadRequest, f"the body is not JSON, expected {expected}", "error.body_json",
                         {"expected": expected}) from None
    if not isinstance(body, dict):
        raise http_error(web.HTTPBadRequest, f"the body is a JSON {type(body).__name__}, expected {expected}",
                         "error.body_json", {"expected": expected})
    return body


def _too_large(limit: int) -> web.HTTPException:
    body = error_body(f"the body is over {limit // 1024} KiB", "error.body_large", {"limit_kib": limit // 1024})
    return web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=None, text=json.dumps(body),
                                         content_type="application/json")


def path_int(request: web.Request, key: str) -> int:
    """A numeric path part (`/api/questions/{id}/…`); anything else names no item: 404."""
    value = request.match_info[key]
    if not value.isdigit() or len(value) > 18:
        raise http_error(web.HTTPNotFound, f"{key} must be a number", "error.path_number", {"key": key})
    return int(value)


def query_int(request: web.Request, key: str, default: int | None, low: int = 0, high: int = MAX_ID) -> int | None:
    """A whole-number query parameter from `low` to `high` (`default` when absent or empty); a 400 otherwise."""
    raw = request.query.get(key)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 19 or not low <= int(raw) <= high:
        raise http_error(web.HTTPBadRequest, f"{key}: expected a whole number from {low} to {high}",
                         "error.query_number", {"key": key, "low": low, "high": high})
    return int(raw)


def query_choice(request: web.Request, key: str, choices: tuple[str, ...], default: str) -> str:
    """One of `choices` (`default` when absent or empty); a 400 naming them otherwise."""
    value = request.query.get(key) or default
    if value not in choices:
        raise http_error(web.HTTPBadRequest, f"{key} {value[:64]!r} is not one of {', '.join(choices)}",
                         "error.query_choice", {"key": key, "choices": ", ".join(choices)})
    return value


def query_list(request: web.Request, key: str, choices: tuple[str, ...], what: str) -> tuple[str, ...]:
    """A comma-separated subset of `choices` (all of them when absent); a 400 naming the first unknown one."""
    wanted = tuple(s for s in request.query.get(key, "").split(",") if s)
    unknown = [s for s in wanted if s not in choices]
    if unknown:
        raise http_error(web.HTTPBadRequest,
                         f"unknown {what} {unknown[0][:64]!r}, expected some of {', '.join(choices)}",
                         "error.query_choice", {"key": key, "choices": ", ".join(choices)})
    return wanted or choices
