"""Who is asking, and may they: bearer tokens, session cookies, CSRF, Origin checks, sign-in limits, CSP."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from urllib.parse import urlsplit

from aiohttp import web

from ..events import now
from ..store import ROLES, Store
from .http import http_error
from .https import strict_transport

# Which roles may do what a route requires; the operator may do everything but overlays' work.
ALLOWED = {
    "operator": {"operator"},
    "moderator": {"operator", "moderator"},
    "official": {"operator", "moderator", "official"},
    "overlay": {"operator", "overlay"},
}

SESSION_COOKIE = "streamctl_session"
LOGIN_PATH = "/login"
LOGIN_COOKIE = "streamctl_login"  # the sign-in form's own CSRF token (double submit), before any session exists
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SESSION_S = 14 * 3600  # one long event day; signing in again the next morning is fine
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_TOKEN: web.RequestKey[str] = web.RequestKey("csrf_token", str)  # the signed-in session's CSRF token


@dataclass(frozen=True)
class Identity:
    """A signed-in user or a token holder."""

    name: str
    role: str
    via: str  # "token" or "session"
    user_id: int | None = None
    lang: str = "vi"


IDENTITY: web.RequestKey[Identity] = web.RequestKey("identity", Identity)  # who sent this request


def bearer_identity(request: web.Request, store: Store) -> Identity | None:
    """The identity of an `Authorization: Bearer` token, or None."""
    token = _bearer(request)
    role = store.token_role(token) if token else None
    if role is None:
        return None
    return Identity(name=f"token:{role}", role=role, via="token")


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def still_valid(request: web.Request, identity: Identity, store: Store) -> Callable[[], bool]:
    """A check that the credential this request came with still holds (a long-lived websocket asks it often).

    A token revoked (`streamctl token revoke`), a session signed out or its user removed or given a new
    password (`streamctl user remove|passwd`) all end here, in whichever process did it: the check reads
    the event database, not this process's memory.
    """
    if identity.via == "session":
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return lambda: session_identity(store, cookie) is not None
    token = _bearer(request) or request.query.get("token", "")
    return lambda: store.token_role(token) == identity.role


def may(identity: Identity | None, role: str) -> bool:
    """Whether `identity` may do what `role` is required for."""
    return identity is not None and identity.role in ALLOWED[role]


def requires(role: str) -> Callable:
    """Route decorator: 401 without credentials, 403 for a role that may not do this."""
    if role not in ROLES:
        raise ValueError(role)

    def wrap(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        @wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            identity: Identity | None = request.get(IDENTITY)
            if identity is None:
                raise http_error(web.HTTPUnauthorized, "sign in or send Authorization: Bearer TOKEN",
                                 "error.sign_in", headers={"WWW-Authenticate": "Bearer"})
            if identity.role not in ALLOWED[role]:
                raise http_error(web.HTTPForbidden, f"role {identity.role} may not do this", "error.role",
                                 {"role": identity.role})
            return await handler(request)

        guarded.required_role = role  # type: ignore[attr-defined]
        return guarded

    return wrap


# ---- sessions -----------------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(store: Store, user_id: int) -> str:
    """A new session for `user_id`; returns the cookie value (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    at = now()
    with store.transaction() as db:
        db.execute("DELETE FROM sessions WHERE expires_at < ?", (at,))
        db.execute("INSERT INTO sessions (id_hash, user_id, csrf, created_at, expires_at) VALUES (?,?,?,?,?)",
                   (_digest(token), user_id, secrets.token_urlsafe(32), at, at + SESSION_S))
    return token


def session_identity(store: Store, token: str) -> tuple[Identity, str] | None:
    """The identity and CSRF token of a live session cookie, or None."""
    row = store.query_one(
        "SELECT u.id, u.username, u.role, u.lang, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.id_hash = ? AND s.expires_at > ?", (_digest(token), now()))
    if row is None:
        return None
    return Identity(name=row["username"], role=row["role"], via="session", user_id=row["id"],
                    lang=row["lang"]), row["csrf"]


def end_session(store: Store, token: str) -> None:
    """Sign out: the cookie's session no longer exists."""
    with store.transaction() as db:
        db.execute("DELETE FROM sessions WHERE id_hash = ?", (_digest(token),))


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
    """An HttpOnly, SameSite=Strict cookie for the whole console (Secure when the browser used HTTPS: served over
    TLS, or said so by the trusted proxy)."""
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Strict",
                        secure=request.secure)


def clear_cookie(response: web.StreamResponse, name: str) -> None:
    response.del_cookie(name, path="/")


# ---- cross-site request forgery ----------------------------------------------------------------------


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}".lower()


def same_origin(request: web.Request) -> bool:
    """True when the Origin header (or, without one, the Referer) is this console's own origin."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        referer = request.headers.get("Referer")
        if not referer:
            return False
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin.lower() == own_origin(request)


def not_cross_origin(request: web.Request) -> bool:
    """False when Origin (or Referer) names another site; a client sending neither (a script) passes.

    Browsers always send Origin on a form POST, so a missing one is never another site's form; the
    sign-in form's own token still has to match.
    """
    if "Origin" not in request.headers and "Referer" not in request.headers:
        return True
    return same_origin(request)


def tokens_match(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and hmac.compare_digest(given.encode(), expected.encode())


async def _submitted_csrf(request: web.Request) -> str | None:
    if CSRF_HEADER in request.headers:
        return request.headers[CSRF_HEADER]
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def _refuse(message: str) -> web.HTTPException:
    return http_error(web.HTTPForbidden, message, "error.csrf")


def session_middleware(store_of: Callable[[web.Request], Store]):
    """Middleware: a valid session cookie sets `identity`, unless a bearer token already did."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        token = request.cookies.get(SESSION_COOKIE)
        if token and IDENTITY not in request:
            found = session_identity(store_of(request), token)
            if found is not None:
                request[IDENTITY], request[CSRF_TOKEN] = found
        return await handler(request)

    return middleware


@web.middleware
async def csrf_middleware(request: web.Request, handler):
    """Cookie-authenticated state changes need our own Origin and the session's CSRF token.

    Bearer tokens are exempt: a browser never attaches them by itself, so no other site can ride on them.
    """
    identity: Identity | None = request.get(IDENTITY)
    # The sign-in form carries its own token (set before any session exists) and is checked by its handler.
    signing_in = request.path == LOGIN_PATH
    if request.method not in SAFE_METHODS and identity is not None and identity.via == "session" and not signing_in:
        if not same_origin(request):
            raise _refuse("cross-origin request refused")
        if not tokens_match(await _submitted_csrf(request), request.get(CSRF_TOKEN)):
            raise _refuse("missing or wrong CSRF token; reload the page")
    return await handler(request)


# ---- sign-in rate limiting ---------------------------------------------------------------------------


class LoginLimiter:
    """Failed sign-ins per user name and per client address in a sliding window; too many means wait."""

    def __init__(self, per_name: int = 5, per_address: int = 20, window_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic):
        self.limits = {"name": per_name, "address": per_address}
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        cutoff = self.clock() - self.window_s
        while times and times[0] <= cutoff:
            times.popleft()
        return times

    def _keys(self, name: str, address: str) -> list[tuple[str, str]]:
        return [("name", name.casefold()), ("address", address)]

    def retry_after(self, name: str, address: str) -> float:
        """Seconds to wait before another attempt is allowed (0 when allowed now)."""
        wait = 0.0
        for key in self._keys(name, address):
            times = self._recent(key)
            if len(times) >= self.limits[key[0]]:
                wait = max(wait, times[0] + self.window_s - self.clock())
        return wait

    def failed(self, name: str, address: str) -> None:
        for key in self._keys(name, address):
            self._recent(key).append(self.clock())
        if len(self._failures) > 10000:  # a spray of made-up names must not grow memory without bound
            for key in [k for k, v in self._failures.items() if not v]:
                del self._failures[key]

    def succeeded(self, name: str) -> None:
        self._failures.pop(("name", name.casefold()), None)


# ---- response headers ----------------------------------------------------------------------------------

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {frames}")


def _secure_headers(request: web.Request, headers) -> None:
    overlay = request.path.startswith("/overlay/")
    # Overlays are read-only graphics that vision mixers may frame; everything else may not be framed.
    headers.setdefault("Content-Security-Policy", CSP.format(frames="*" if overlay else "'none'"))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if not overlay:
        headers.setdefault("X-Frame-Options", "DENY")
    if not request.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")
    strict_transport(request, headers)


@web.middleware
async def security_headers_middleware(request: web.Request, handler):
    """CSP (no inline script or style), nosniff, no framing, no caching of live data."""
    try:
        response = await handler(request)
    except web.HTTPException as e:
        _secure_headers(request, e.headers)
        raise
    if not response.prepared:
        _secure_headers(request, response.headers)
    return response
