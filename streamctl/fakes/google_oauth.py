"""A fake Google OAuth server: the device authorization and token endpoints, with their documented errors.

Mounted on any fake (`FakeYouTubeLive` carries one): `POST /device/code`, `POST /token` for the
`device_code` and `refresh_token` grants. Access tokens live `lifetime_s`; `valid(token)` is what the API
fakes check. `revoke()` makes the refresh token answer `invalid_grant`, as a user removing access does.
"""

from __future__ import annotations

import itertools
import secrets
import time

from aiohttp import web

from .server import dumps

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.Response(text=dumps({"error": error, "error_description": description}), status=status,
                        content_type="application/json")


class FakeGoogleOAuth:
    """Issues access tokens for one OAuth client and one user's refresh token."""

    def __init__(self, app: web.Application, client_id: str = "123-fake.apps.googleusercontent.com",
                 client_secret: str = "GOCSPX-fake-client-secret",  # noqa: S107 - a fake's own secret
                 refresh_token: str = "1//fake-refresh-token",  # noqa: S107 - a fake's own token
                 lifetime_s: float = 3600.0, scope: str = "https://www.googleapis.com/auth/youtube"):
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.lifetime_s = lifetime_s
        self.scope = scope
        self.issued: dict[str, float] = {}  # access token -> when it expires
        self.revoked = False
        self.refreshes = 0
        self.device_interval = 1
        # What successive device-code polls answer: "authorization_pending", "slow_down", "access_denied",
        # "expired_token", or "ok" (approved). Once the list is used up every poll is approved.
        self.device_script: list[str] = []
        self.device_polls: list[float] = []  # when each poll came (the test checks the interval was kept)
        self.device_codes: dict[str, str] = {}  # device code -> user code
        self._ids = itertools.count(1)
        app.router.add_post("/device/code", self.device_code)
        app.router.add_post("/token", self.token)

    def valid(self, token: str) -> bool:
        expires = self.issued.get(token)
        return expires is not None and time.time() < expires

    def revoke(self) -> None:
        """The user removed the app's access (or the refresh token's 7 days in "Testing" ran out)."""
        self.revoked = True
        self.issued.clear()

    def _issue(self) -> dict:
        token = f"ya29.fake-{next(self._ids)}-{secrets.token_hex(6)}"
        self.issued[token] = time.time() + self.lifetime_s
        return {"access_token": token, "expires_in": int(self.lifetime_s) if self.lifetime_s >= 1 else 1,
                "scope": self.scope, "token_type": "Bearer"}

    def _client_ok(self, form) -> bool:
        return form.get("client_id") == self.client_id and form.get("client_secret") == self.client_secret

    async def device_code(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("client_id") != self.client_id:
            return oauth_error(401, "invalid_client", "The OAuth client was not found.")
        scopes = str(form.get("scope", "")).split()
        if not scopes or any(s.endswith("youtube.force-ssl") for s in scopes):
            return oauth_error(400, "invalid_scope", "Invalid device flow scope: " + " ".join(scopes))
        device = "AH-" + secrets.token_urlsafe(24)
        user_code = f"{secrets.randbelow(9000) + 1000}-{secrets.randbelow(9000) + 1000}"
        self.device_codes[device] = user_code
        body = {"device_code": device, "user_code": user_code, "expires_in": 1800,
                "interval": self.device_interval, "verification_url": "https://www.google.com/device"}
        return web.Response(text=dumps(body), content_type="application/json")

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if not self._client_ok(form):
            return oauth_error(401, "invalid_client", "Unauthorized")
        grant = form.get("grant_type")
        if grant == DEVICE_GRANT:
            return self._device_poll(str(form.get("device_code", "")))
        if grant == "refresh_token":
            if self.revoked or form.get("refresh_token") != self.refresh_token:
                return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
            self.refreshes += 1
            return web.Response(text=dumps(self._issue()), content_type="application/json")
        return oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")

    def _device_poll(self, device: str) -> web.Response:
        self.device_polls.append(time.monotonic())
        if device not in self.device_codes:
            return oauth_error(400, "invalid_grant", "Malformed auth code.")
        answer = self.device_script.pop(0) if self.device_script else "ok"
        if answer == "authorization_pending":
            return oauth_error(428, "authorization_pending", "Precondition Required")
        if answer == "slow_down":
            return oauth_error(403, "slow_down", "Forbidden")
        if answer == "access_denied":
            return oauth_error(403, "access_denied", "Forbidden")
        if answer == "expired_token":
            return oauth_error(400, "expired_token", "Bad Request")
        del self.device_codes[device]
        return web.Response(text=dumps({**self._issue(), "refresh_token": self.refresh_token}),
                            content_type="application/json")
