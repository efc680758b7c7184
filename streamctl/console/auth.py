"""Who is asking: bearer tokens (and, from the console pages, session cookies) mapped to roles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps

from aiohttp import web

from ..store import ROLES, Store

# Which roles may do what a route requires; the operator may do everything but overlays' work.
ALLOWED = {
    "operator": {"operator"},
    "moderator": {"operator", "moderator"},
    "official": {"operator", "moderator", "official"},
    "overlay": {"operator", "overlay"},
}


@dataclass(frozen=True)
class Identity:
    """A signed-in user or a token holder."""

    name: str
    role: str
    via: str  # "token" or "session"
    user_id: int | None = None
    lang: str = "vi"


def bearer_identity(request: web.Request, store: Store) -> Identity | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    token = header[7:].strip()
    role = store.token_role(token) if token else None
    if role is None:
        return None
    return Identity(name=f"token:{role}", role=role, via="token")


def requires(role: str) -> Callable:
    """Route decorator: 401 without credentials, 403 for a role that may not do this."""
    if role not in ROLES:
        raise ValueError(role)

    def wrap(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        @wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            identity: Identity | None = request.get("identity")
            if identity is None:
                raise web.HTTPUnauthorized(
                    text='{"error": "sign in or send Authorization: Bearer TOKEN"}',
                    content_type="application/json",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if identity.role not in ALLOWED[role]:
                raise web.HTTPForbidden(text=f'{{"error": "role {identity.role} may not do this"}}',
                                        content_type="application/json")
            return await handler(request)

        guarded.required_role = role  # type: ignore[attr-defined]
        return guarded

    return wrap
