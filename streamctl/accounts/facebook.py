"""Facebook Page tokens (`streamctl auth facebook`), their expiry, and the Graph API versions we call.

Graph versions live about two years. `GRAPH_ENDS` is Meta's published "available until" date of each
version we know (developers.facebook.com/docs/graph-api/changelog/versions); None means not announced yet.
Add the newest version here when Meta publishes it, and move `GRAPH_VERSION` to it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import aiohttp

from ..redact import register_secret
from .files import CredentialFileError, read_json, tail, write_private

GRAPH_ROOT = "https://graph.facebook.com"
GRAPH_VERSION = "v26.0"
GRAPH_ENDS: dict[str, str | None] = {
    "v26.0": None,
    "v25.0": "2028-07-29",
    "v24.0": "2028-02-18",
    "v23.0": "2027-10-08",
    "v22.0": "2027-05-20",
    "v21.0": "2027-01-21",
    "v20.0": "2026-09-24",
    "v19.0": "2026-05-21",
    "v18.0": "2026-01-26",
}
VERSION_WARN_DAYS = 30
EXPIRY_WARN_S = 7 * 86400  # `credential.expiring` when a token dies within this
AUTH_FIX = "run `streamctl auth facebook --page PAGE_ID --user-token-env VAR -o {path}` again"
TIMEOUT_S = 15.0
VERSION_RE = re.compile(r"/(v\d+\.\d+)(?:/|$)")


def default_api_base() -> str:
    return f"{GRAPH_ROOT}/{GRAPH_VERSION}"


def version_of(api_base: str) -> str | None:
    """The `vNN.N` an API root names, or None (an unversioned root calls the app's default version)."""
    m = VERSION_RE.search(api_base)
    return m.group(1) if m else None


def version_warning(api_base: str, today: date | None = None) -> str | None:
    """A warning when the version in `api_base` ends within 30 days (or has ended); None otherwise."""
    version = version_of(api_base)
    if version is None or version not in GRAPH_ENDS or GRAPH_ENDS[version] is None:
        return None
    ends = date.fromisoformat(GRAPH_ENDS[version])  # type: ignore[arg-type]
    left = (ends - (today or datetime.now(UTC).date())).days
    if left > VERSION_WARN_DAYS:
        return None
    when = f"ended on {ends}" if left < 0 else f"ends on {ends} ({left} days)"
    return f"Graph API {version} {when}: set api_base to {GRAPH_ROOT}/{GRAPH_VERSION}"


@dataclass(frozen=True)
class PageToken:
    """What `streamctl auth facebook` writes: one Page's token and when it (or the user token) expires."""

    page_id: str
    access_token: str
    page_name: str = ""
    expires_at: float = 0.0  # 0: never (a Page token from a long-lived user token)
    data_access_expires_at: float = 0.0
    api_base: str = ""

    def as_json(self) -> dict:
        return {"type": "facebook_page", "page_id": self.page_id, "page_name": self.page_name,
                "access_token": self.access_token, "expires_at": int(self.expires_at),
                "data_access_expires_at": int(self.data_access_expires_at), "api_base": self.api_base}

    @classmethod
    def load(cls, path: str | Path) -> PageToken:
        fix = AUTH_FIX.format(path=path)
        data = read_json(path, fix)
        if data.get("type") != "facebook_page" or not data.get("access_token") or not data.get("page_id"):
            raise CredentialFileError(f"{path}: not a Page token file (type facebook_page with page_id and "
                                      f"access_token); {fix}")
        register_secret(str(data["access_token"]))
        return cls(page_id=str(data["page_id"]), access_token=str(data["access_token"]),
                   page_name=str(data.get("page_name") or ""), expires_at=float(data.get("expires_at") or 0),
                   data_access_expires_at=float(data.get("data_access_expires_at") or 0),
                   api_base=str(data.get("api_base") or ""))

    def expiring(self, at: float | None = None, within_s: float = EXPIRY_WARN_S) -> str | None:
        """A sentence when the token (or its data access) ends within `within_s`; None when it lasts."""
        at = time.time() if at is None else at
        for what, when in (("token", self.expires_at), ("data access", self.data_access_expires_at)):
            if when and when - at < within_s:
                stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")
                verb = "expired" if when <= at else "expires"
                return f"the Page {what} for {self.page_name or self.page_id} {verb} at {stamp}"
        return None


class GraphError(Exception):
    """A Graph API error: `code` (190 token, 368 blocked, 100 parameter…) and the message without secrets."""

    def __init__(self, what: str, status: int, code: int | None, message: str, subcode: int | None = None):
        super().__init__(f"{what}: HTTP {status} (#{code}) {message[:200]}")
        self.status, self.code, self.subcode = status, code, subcode


async def graph(session: aiohttp.ClientSession, method: str, url: str, what: str, token: str,
                params: dict | None = None) -> dict:
    """One Graph call with the token as `access_token`; GraphError on an error answer."""
    query = dict(params or {})
    query["access_token"] = token
    async with session.request(method, url, params=query if method == "GET" else None,
                               data=query if method != "GET" else None) as resp:
        try:
            body = await resp.json(content_type=None)
        except ValueError:
            body = None
        status = resp.status
    if not isinstance(body, dict):
        raise GraphError(what, status, None, "not JSON")
    if "error" in body or status >= 400:
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        raise GraphError(what, status, error.get("code"), str(error.get("message", "")), error.get("error_subcode"))
    return body


async def debug_token(session: aiohttp.ClientSession, api_base: str, token: str) -> dict:
    """`GET /debug_token`: is_valid, expires_at (0 = never), data_access_expires_at, scopes."""
    body = await graph(session, "GET", api_base.rstrip("/") + "/debug_token", "debug_token", token,
                       {"input_token": token})
    data = body.get("data")
    return data if isinstance(data, dict) else {}


async def exchange(api_base: str, user_token: str, page_id: str) -> PageToken:
    """A user token to the Page's token (`/{page-id}?fields=access_token,name`, else `/me/accounts`)."""
    register_secret(user_token)
    api = api_base.rstrip("/")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as session:
        try:
            page = await graph(session, "GET", f"{api}/{page_id}", "page token", user_token,
                               {"fields": "access_token,name"})
        except GraphError as e:
            if e.code == 190:
                raise
            page = {}
        if not page.get("access_token"):
            accounts = await graph(session, "GET", f"{api}/me/accounts", "me/accounts", user_token,
                                   {"fields": "id,name,access_token"})
            page = next((p for p in accounts.get("data") or [] if str(p.get("id")) == page_id), {})
        if not page.get("access_token"):
            raise GraphError("page token", 403, None, f"this user does not manage Page {page_id} (or the token lacks "
                                                      "pages_manage_posts / pages_read_engagement)")
        token = str(page["access_token"])
        register_secret(token)
        info = await debug_token(session, api, token)
    if info and info.get("is_valid") is False:
        raise GraphError("debug_token", 400, 190, "Facebook says the Page token is not valid")
    return PageToken(page_id=page_id, access_token=token, page_name=str(page.get("name") or ""),
                     expires_at=float(info.get("expires_at") or 0),
                     data_access_expires_at=float(info.get("data_access_expires_at") or 0), api_base=api)


def save(token: PageToken, path: str | Path) -> str:
    """Write the file 0600; returns a line fit to print (the token only by its end)."""
    write_private(path, token.as_json())
    expires = ("never expires" if not token.expires_at else
               "expires " + datetime.fromtimestamp(token.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC"))
    return (f"wrote {path} (mode 0600): Page {token.page_name or token.page_id} ({token.page_id}), "
            f"token {tail(token.access_token)}, {expires}")
