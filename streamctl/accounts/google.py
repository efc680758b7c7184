"""Google OAuth for YouTube: the device flow that writes an `authorized_user` file, and access tokens from it.

Written on aiohttp rather than google-auth: google-auth's asyncio side (`google.auth.aio`) has no
authorized-user credentials, its older async classes are private modules, and its synchronous refresh
needs `requests` in a thread with a fixed 3 min 45 s refresh threshold (a token that lives less than that is
refreshed before every call). What is needed here is small: one POST per refresh, on the event's own
session, at a margin we choose, and a clear word when the refresh token is revoked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from ..redact import register_secret
from .files import CredentialFileError, read_json, tail, write_private

log = logging.getLogger(__name__)

TOKEN_URI = "https://oauth2.googleapis.com/token"
DEVICE_URI = "https://oauth2.googleapis.com/device/code"
YOUTUBE_SCOPE = "https://www.googleapis.com/auth/youtube"  # the device flow allows it (not youtube.force-ssl)
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
REFRESH_MARGIN_S = 120.0  # refresh this long before the access token expires
MIN_MARGIN_S = 0.5  # a token that lives only seconds (tests) is refreshed in its last quarter
TIMEOUT_S = 15.0
AUTH_FIX = "run `streamctl auth youtube --client-secrets FILE -o {path}` again"

# What a credential is, for callers that must react: a revoked grant needs a person, the rest may pass.
REVOKED = "revoked"
UNAVAILABLE = "unavailable"


class CredentialError(Exception):
    """A token could not be had. `kind` is REVOKED (a person must sign in again) or UNAVAILABLE (retry)."""

    def __init__(self, message: str, kind: str = UNAVAILABLE):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class AuthorizedUser:
    """The `authorized_user` file google-auth and gcloud read: what refreshes an access token."""

    client_id: str
    client_secret: str
    refresh_token: str
    token_uri: str = TOKEN_URI
    scopes: tuple[str, ...] = (YOUTUBE_SCOPE,)

    def as_json(self) -> dict:
        return {"type": "authorized_user", "client_id": self.client_id, "client_secret": self.client_secret,
                "refresh_token": self.refresh_token, "token_uri": self.token_uri, "scopes": list(self.scopes)}

    @classmethod
    def load(cls, path: str | Path) -> AuthorizedUser:
        """Read and check the file; CredentialFileError names what is wrong and the command that fixes it."""
        fix = AUTH_FIX.format(path=path)
        data = read_json(path, fix)
        if data.get("type", "authorized_user") != "authorized_user":
            raise CredentialFileError(f"{path}: type is {data.get('type')!r}, expected \"authorized_user\"; {fix}")
        missing = [k for k in ("client_id", "client_secret", "refresh_token")
                   if not isinstance(data.get(k), str) or not data[k]]
        if missing:
            raise CredentialFileError(f"{path}: {', '.join(missing)} missing; {fix}")
        scopes = data.get("scopes") or [YOUTUBE_SCOPE]
        if isinstance(scopes, str):
            scopes = scopes.split()
        user = cls(client_id=data["client_id"], client_secret=data["client_secret"],
                   refresh_token=data["refresh_token"], token_uri=str(data.get("token_uri") or TOKEN_URI),
                   scopes=tuple(str(s) for s in scopes))
        register_secret(user.client_secret)
        register_secret(user.refresh_token)
        return user


SessionFactory = Callable[[], aiohttp.ClientSession]


class GoogleCredentials:
    """Access tokens for every Google call of one account: refreshed before expiry and once after a 401.

    One object per credentials file is shared by the audience source and the broadcasts of that channel,
    so a refresh serves them all. `token()` is safe to call from many tasks at once (one refresh at a time).
    """

    refreshable = True

    def __init__(self, user: AuthorizedUser, path: str | Path, session: SessionFactory,
                 margin_s: float = REFRESH_MARGIN_S, clock: Callable[[], float] = time.time):
        self.user = user
        self.path = Path(path)
        self._session = session
        self.margin_s = margin_s
        self._clock = clock
        self._token: str | None = None
        self.expires_at = 0.0
        self._issued = 0.0
        self.refreshes = 0
        self.revoked: str | None = None  # why, once the refresh token was refused: no retry helps
        self._lock = asyncio.Lock()

    @classmethod
    def from_file(cls, path: str | Path, session: SessionFactory, **kw) -> GoogleCredentials:
        return cls(AuthorizedUser.load(path), path, session, **kw)

    @property
    def fix(self) -> str:
        return AUTH_FIX.format(path=self.path)

    def _fresh(self) -> bool:
        if self._token is None:
            return False
        lifetime_margin = min(self.margin_s, max(MIN_MARGIN_S, (self.expires_at - self._issued) / 4))
        return self._clock() < self.expires_at - lifetime_margin

    async def token(self) -> str:
        """A valid access token, refreshed first when it expires within the margin."""
        if self._fresh():
            return self._token  # type: ignore[return-value]
        async with self._lock:
            if not self._fresh():
                await self._refresh()
            return self._token  # type: ignore[return-value]

    def refused(self, token: str | None = None) -> bool:
        """A call answered 401 with `token`: forget it so the next `token()` refreshes. False if revoked."""
        if self.revoked:
            return False
        if token is None or token == self._token:
            self._token = None
        return True

    async def sign(self, params: dict, headers: dict) -> str:
        """Add the Authorization header; returns the token used (for `refused`)."""
        token = await self.token()
        headers["Authorization"] = f"Bearer {token}"
        return token

    async def _refresh(self) -> None:
        if self.revoked:
            raise CredentialError(self.revoked, REVOKED)
        form = {"grant_type": "refresh_token", "refresh_token": self.user.refresh_token,
                "client_id": self.user.client_id, "client_secret": self.user.client_secret}
        try:
            async with asyncio.timeout(TIMEOUT_S):
                async with self._session().post(self.user.token_uri, data=form) as resp:
                    status = resp.status
                    try:
                        body = await resp.json(content_type=None)
                    except ValueError:
                        body = None
        except TimeoutError:
            raise CredentialError(f"token refresh at {self.user.token_uri}: no answer within {TIMEOUT_S:g} s") \
                from None
        except aiohttp.ClientError as e:
            raise CredentialError(f"token refresh at {self.user.token_uri}: {type(e).__name__}: {e}") from None
        if not isinstance(body, dict):
            raise CredentialError(f"token refresh at {self.user.token_uri}: HTTP {status}, not JSON")
        if status == 200 and isinstance(body.get("access_token"), str):
            issued = self._clock()
            self._token = body["access_token"]
            register_secret(self._token)
            self._issued = issued
            self.expires_at = issued + float(body.get("expires_in") or 3600)
            self.refreshes += 1
            log.info("google: access token refreshed for %s (valid %g s)", self.path.name, self.expires_at - issued)
            return
        error = str(body.get("error") or f"HTTP {status}")
        if error in ("invalid_grant", "unauthorized_client", "invalid_client"):
            detail = str(body.get("error_description") or "the refresh token was revoked or has expired")[:160]
            self.revoked = f"Google refused the saved sign-in ({error}: {detail}): {self.fix}"
            raise CredentialError(self.revoked, REVOKED)
        raise CredentialError(f"token refresh at {self.user.token_uri}: HTTP {status} {error}")


class StaticCredential:
    """A `credential_env` value: an API key (`AIza…`, sent as `key=`) or a bearer token that is not refreshed."""

    refreshable = False
    revoked = None

    def __init__(self, value: str):
        self.value = value
        register_secret(value)

    @property
    def api_key(self) -> bool:
        return self.value.startswith("AIza")

    async def sign(self, params: dict, headers: dict) -> str:
        if self.api_key:
            params["key"] = self.value
        else:
            headers["Authorization"] = f"Bearer {self.value}"
        return self.value

    def refused(self, token: str | None = None) -> bool:
        return False


# ---- the device flow (`streamctl auth youtube`) -----------------------------------------------------


@dataclass(frozen=True)
class ClientSecrets:
    """An OAuth client from Google Cloud's downloaded JSON (`installed` or `web`), endpoints overridable."""

    client_id: str
    client_secret: str
    token_uri: str = TOKEN_URI
    device_uri: str = DEVICE_URI

    @classmethod
    def load(cls, path: str | Path, token_uri: str | None = None, device_uri: str | None = None) -> ClientSecrets:
        fix = "download the OAuth client (type \"TVs and Limited Input devices\") from Google Cloud's Credentials page"
        data = read_json(path, fix)
        inner = data.get("installed") or data.get("web") or data
        if not isinstance(inner, dict) or not inner.get("client_id") or not inner.get("client_secret"):
            raise CredentialFileError(f"{path}: no client_id/client_secret; {fix}")
        register_secret(str(inner["client_secret"]))
        return cls(client_id=str(inner["client_id"]), client_secret=str(inner["client_secret"]),
                   token_uri=token_uri or str(inner.get("token_uri") or TOKEN_URI),
                   device_uri=device_uri or str(inner.get("device_uri") or DEVICE_URI))


class DeviceFlowError(Exception):
    """The device flow ended without a token; the message says why and what to do."""


@dataclass(frozen=True)
class DeviceCode:
    device_code: str
    user_code: str
    verification_url: str
    expires_in: float
    interval: float


async def request_device_code(session: aiohttp.ClientSession, client: ClientSecrets,
                              scopes: tuple[str, ...] = (YOUTUBE_SCOPE,)) -> DeviceCode:
    """Step 1: ask for a user code to type at the verification URL."""
    status, body = await _post(session, client.device_uri, {"client_id": client.client_id, "scope": " ".join(scopes)})
    if status != 200 or not body.get("device_code") or not body.get("user_code"):
        error = body.get("error") or f"HTTP {status}"
        raise DeviceFlowError(f"device code request refused ({error}: {body.get('error_description', '')}); "
                              "check that the OAuth client's type is \"TVs and Limited Input devices\"")
    register_secret(str(body["device_code"]))
    return DeviceCode(device_code=str(body["device_code"]), user_code=str(body["user_code"]),
                      verification_url=str(body.get("verification_url") or body.get("verification_uri") or ""),
                      expires_in=float(body.get("expires_in") or 1800), interval=float(body.get("interval") or 5))


async def poll_for_token(session: aiohttp.ClientSession, client: ClientSecrets, code: DeviceCode,
                         sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                         clock: Callable[[], float] = time.monotonic) -> dict:
    """Step 2: poll the token endpoint at `interval` until the person approves, refuses, or the code expires."""
    interval = max(1.0, code.interval)
    deadline = clock() + code.expires_in
    form = {"client_id": client.client_id, "client_secret": client.client_secret, "device_code": code.device_code,
            "grant_type": DEVICE_GRANT}
    while clock() < deadline:
        await sleep(interval)
        status, body = await _post(session, client.token_uri, form)
        if status == 200 and body.get("access_token"):
            if not body.get("refresh_token"):
                raise DeviceFlowError("Google answered without a refresh token; remove streamctl's access at "
                                      "myaccount.google.com/permissions and sign in again")
            return body
        error = body.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5.0  # RFC 8628: add 5 s for this and every later request
            continue
        if error == "access_denied":
            raise DeviceFlowError("the sign-in was refused on the phone; run the command again and choose Allow")
        if error == "expired_token":
            break
        raise DeviceFlowError(f"token endpoint answered HTTP {status} {error or ''}: "
                              f"{str(body.get('error_description', ''))[:160]}")
    raise DeviceFlowError("the code expired before the sign-in was approved; run the command again and type the "
                          "code within its time")


async def device_flow(client: ClientSecrets, show: Callable[[DeviceCode], None],
                      scopes: tuple[str, ...] = (YOUTUBE_SCOPE,),
                      sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> AuthorizedUser:
    """The whole flow: a code shown to the person, polling, and the authorized user it yields."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as session:
        code = await request_device_code(session, client, scopes)
        show(code)
        body = await poll_for_token(session, client, code, sleep=sleep)
    register_secret(str(body["refresh_token"]))
    register_secret(str(body["access_token"]))
    granted = tuple(str(body.get("scope") or " ".join(scopes)).split())
    return AuthorizedUser(client_id=client.client_id, client_secret=client.client_secret,
                          refresh_token=str(body["refresh_token"]), token_uri=client.token_uri, scopes=granted)


def save(user: AuthorizedUser, path: str | Path) -> str:
    """Write the file 0600; returns a line fit to print (no secret in full)."""
    write_private(path, user.as_json())
    return (f"wrote {path} (mode 0600): client {tail(user.client_id)}, refresh token {tail(user.refresh_token)}, "
            f"token_uri {user.token_uri}")


async def _post(session: aiohttp.ClientSession, url: str, form: dict) -> tuple[int, dict]:
    try:
        async with session.post(url, data=form) as resp:
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = None
            return resp.status, body if isinstance(body, dict) else {}
    except aiohttp.ClientError as e:
        raise DeviceFlowError(f"{url}: {type(e).__name__}: {e}") from None
