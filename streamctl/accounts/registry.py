"""One credentials object per file for the whole event, shared by audience sources and broadcasts."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from .facebook import PageToken
from .google import GoogleCredentials

TIMEOUT_S = 15.0


class Accounts:
    """The event's platform credentials: a Google account per `authorized_user` file, a Page token per file."""

    def __init__(self, refresh_margin_s: float | None = None):
        self.refresh_margin_s = refresh_margin_s
        self._session: aiohttp.ClientSession | None = None
        self._google: dict[Path, GoogleCredentials] = {}
        self._pages: dict[Path, PageToken] = {}

    def session(self) -> aiohttp.ClientSession:
        """The session token refreshes and broadcast calls go through (opened inside the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))
        return self._session

    def google(self, path: str | Path) -> GoogleCredentials:
        """The credentials of this file (raises CredentialFileError with the fix when it is unusable)."""
        key = Path(path).resolve()
        if key not in self._google:
            kw = {"margin_s": self.refresh_margin_s} if self.refresh_margin_s is not None else {}
            self._google[key] = GoogleCredentials.from_file(key, self.session, **kw)
        return self._google[key]

    def facebook(self, path: str | Path) -> PageToken:
        key = Path(path).resolve()
        if key not in self._pages:
            self._pages[key] = PageToken.load(key)
        return self._pages[key]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
