"""A Facebook live video on a Page: POST /{page-id}/live_videos, its ingest health, going live and ending."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from ..accounts.facebook import default_api_base
from ..config import DestinationConfig
from ..redact import register_secret
from .client import CREDENTIAL, REFUSED, TRANSIENT, BroadcastError, Signer, call

log = logging.getLogger(__name__)

OVER = ("VOD", "LIVE_STOPPED", "SCHEDULED_EXPIRED", "SCHEDULED_CANCELED")
HEALTH_FIELDS = "status,ingest_streams{is_master,stream_health,stream_id}"


def _error(what: str, status: int, data: Any) -> BroadcastError:
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    code = error.get("code")
    message = str(error.get("message", ""))[:200]
    kind = TRANSIENT if status >= 500 or error.get("is_transient") or code in (1, 2, 4, 17, 32, 613) else REFUSED
    if code == 190:
        kind = CREDENTIAL
        message += "; the Page token no longer works: run `streamctl auth facebook` again"
    elif code == 368:
        message += "; Facebook blocked the action for this Page: check the Page's quality and live eligibility " \
                   "in Meta Business Suite"
    return BroadcastError(f"{what}: HTTP {status} (#{code}) {message}", kind, status, str(code), code)


class FacebookBroadcast:
    """One destination's live video on one Page."""

    platform = "facebook"
    cost_per_health = 0

    def __init__(self, config: DestinationConfig, signer: Signer, session: Callable[[], aiohttp.ClientSession],
                 page_id: str, title: str = "", description: str = "", api_base: str | None = None):
        self.config = config
        self.signer = signer
        self._session = session
        self.page_id = page_id
        self.api = (config.api_base or api_base or default_api_base()).rstrip("/")
        self.title = config.title or title
        self.description = config.description or description
        self.id: str | None = None if config.broadcast in (None, "create") else config.broadcast
        self.chat_id = None
        self.stream_id = None
        self.status: str | None = None
        self.permalink: str | None = None
        self.calls = 0
        self.units = 0
        self._backup: str | None = None

    @property
    def watch_url(self) -> str | None:
        if self.permalink:
            return "https://www.facebook.com" + self.permalink if self.permalink.startswith("/") else self.permalink
        return f"https://www.facebook.com/{self.page_id}/videos/{self.id}/" if self.id else None

    def ids(self) -> dict:
        return {"broadcast_id": self.id, "stream_id": None, "chat_id": None}

    async def _call(self, method: str, path: str, what: str, params: dict) -> dict:
        def booked() -> None:
            self.calls += 1

        return await call(self._session(), self.signer, method, f"{self.api}/{path}", what, params,
                          form=method != "GET", booked=booked, error=_error)

    async def prepare(self, known: dict | None = None) -> tuple[str, str | None]:
        """Create the live video (or find the stored / configured one); returns (publish URL, backup URL)."""
        if known and known.get("broadcast_id") and self.id is None:
            self.id = known["broadcast_id"]
        if self.id:
            video = await self._get("status,secure_stream_url,stream_url,permalink_url,title,description")
            if video.get("status") in OVER and self.config.broadcast == "create":
                log.info("facebook %s: live video %s is over; creating a new one", self.config.name, self.id)
                self.id = None
            elif video.get("secure_stream_url") or video.get("stream_url"):
                self._take(video)
                url = video.get("secure_stream_url") or video["stream_url"]
                register_secret(url)
                return url, None  # Facebook hands out the secondary URL only in the answer that creates the video
        params = {"title": self.title[:255], "description": self.description, "status": "LIVE_NOW"}
        if self.config.backup:
            params["enable_backup_ingest"] = "true"
        created = await self._call("POST", f"{self.page_id}/live_videos", "live_videos.create", params)
        self.id = str(created["id"])
        url = created.get("secure_stream_url") or created.get("stream_url")
        if not url:
            raise BroadcastError("live_videos.create: no secure_stream_url in the answer", REFUSED)
        register_secret(url)
        secondary = created.get("secure_stream_secondary_urls") or created.get("stream_secondary_urls") or []
        self._backup = secondary[0] if secondary else None
        if self._backup:
            register_secret(self._backup)
        await self.refresh()
        return url, self._backup

    def _take(self, video: dict) -> None:
        self.status = video.get("status", self.status)
        self.permalink = video.get("permalink_url", self.permalink)
        self.title = video.get("title", self.title)
        self.description = video.get("description", self.description)

    async def _get(self, fields: str) -> dict:
        return await self._call("GET", str(self.id), "live video", {"fields": fields})

    async def refresh(self) -> dict:
        video = await self._get("status,permalink_url,title,description")
        self._take(video)
        return video

    async def health(self) -> dict:
        """Facebook's view of our ingest: the master stream's health, or no master stream at all."""
        video = await self._get(HEALTH_FIELDS)
        self._take(video)
        streams = [s for s in video.get("ingest_streams") or [] if isinstance(s, dict)]
        master = next((s for s in streams if s.get("is_master")), None)
        issues = []
        if master is None:
            issues.append({"type": "noMasterStream", "severity": "error",
                           "description": "Facebook receives no master ingest stream"})
        health = (master or {}).get("stream_health") or {}
        return {"status": "good" if master else "noData", "issues": issues, "stream_status": self.status,
                "streams": len(streams), "video_bitrate": health.get("video_bitrate"),
                "video_framerate": health.get("video_framerate")}

    @staticmethod
    def bad(health: dict) -> bool:
        return health.get("status") != "good"

    async def preview(self) -> None:
        """Nothing to do: a LIVE_NOW video goes public as the stream arrives."""

    async def go_live(self, **_: Any) -> str:
        """A live video not yet public (UNPUBLISHED / scheduled) is set LIVE_NOW; a live one stays as it is."""
        await self.refresh()
        if self.status in OVER:
            raise BroadcastError(f"the live video is {self.status}: it cannot go live again", REFUSED)
        if self.status != "LIVE":
            await self._call("POST", str(self.id), "live video go live", {"status": "LIVE_NOW"})
            await self.refresh()
        return self.status or "LIVE"

    async def end(self, **_: Any) -> str:
        await self._call("POST", str(self.id), "live video end", {"end_live_video": "true"})
        await self.refresh()
        return self.status or "VOD"

    async def apply(self, title: str, description: str) -> dict:
        await self._call("POST", str(self.id), "live video update", {"title": title[:255], "description": description})
        await self.refresh()
        return {"title": self.title, "description": self.description}


__all__ = ["CREDENTIAL", "FacebookBroadcast"]
