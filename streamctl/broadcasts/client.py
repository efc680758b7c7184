"""What the platform clients share: one error type and one JSON call with a single retry after a 401."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp

from ..accounts.google import REVOKED, CredentialError
from ..redact import redact

TIMEOUT_S = 15.0

# What a failed call means for the caller.
TRANSIENT = "transient"  # network, 5xx: try again later
REFUSED = "refused"  # the platform said no (a documented reason): act on `reason`
CREDENTIAL = "credential"  # a person must sign in again (the message says how)


class BroadcastError(Exception):
    """A platform call failed: `kind` (TRANSIENT, REFUSED, CREDENTIAL), HTTP `status`, platform `reason`."""

    def __init__(self, message: str, kind: str = TRANSIENT, status: int = 0, reason: str | None = None,
                 code: int | None = None):
        super().__init__(redact(message))
        self.kind, self.status, self.reason, self.code = kind, status, reason, code


class Signer(Protocol):
    """A credential that signs requests: Google's refreshable one, a static token, a Page token."""

    refreshable: bool

    async def sign(self, params: dict, headers: dict) -> str: ...

    def refused(self, token: str | None = None) -> bool: ...


class PageSigner:
    """A Facebook Page token, sent as `access_token` (the Graph API's own way)."""

    refreshable = False

    def __init__(self, token: str):
        self.token = token

    async def sign(self, params: dict, headers: dict) -> str:
        params["access_token"] = self.token
        return self.token

    def refused(self, token: str | None = None) -> bool:
        return False


async def call(session: aiohttp.ClientSession, signer: Signer, method: str, url: str, what: str,
               params: dict | None = None, body: dict | None = None, form: bool = False,
               booked: Callable[[], None] | None = None,
               error: Callable[[str, int, Any], BroadcastError] | None = None) -> dict:
    """One API call; after a 401 a refreshable credential is refreshed and the call made once more.

    `booked` runs before each request goes out (quota is charged per request, failed or not); `error`
    turns an error answer into a BroadcastError with the platform's reason.
    """
    for attempt in (1, 2):
        query, headers = dict(params or {}), {}
        try:
            token = await signer.sign(query, headers)
        except CredentialError as e:
            raise BroadcastError(str(e), CREDENTIAL if e.kind == REVOKED else TRANSIENT) from None
        if booked is not None:
            booked()
        send: dict[str, Any] = {"params": query, "headers": headers}
        if body is not None and form:
            send = {"data": {**body, **query}, "headers": headers}
        elif body is not None:
            send["json"] = body
        elif form and method != "GET":
            send = {"data": query, "headers": headers}
        try:
            async with asyncio.timeout(TIMEOUT_S):
                async with session.request(method, url, **send) as resp:
                    status = resp.status
                    text = await resp.text()
        except TimeoutError:
            raise BroadcastError(f"{what}: no answer within {TIMEOUT_S:g} s") from None
        except aiohttp.ClientError as e:
            raise BroadcastError(f"{what}: {type(e).__name__}: {e}") from None
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = None
        if status == 401 and attempt == 1 and signer.refused(token):
            continue
        if status >= 400 or not isinstance(data, dict) or "error" in data:
            if error is not None and isinstance(data, dict):
                raise error(what, status, data)
            raise BroadcastError(f"{what}: HTTP {status}{'' if isinstance(data, dict) else ', not JSON'}",
                                 TRANSIENT if status >= 500 or data is None else REFUSED, status)
        return data
    raise BroadcastError(f"{what}: HTTP 401 after a fresh token", CREDENTIAL, 401)
