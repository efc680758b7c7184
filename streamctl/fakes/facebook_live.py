"""A fake Facebook Page that can go live: live_videos, ingest health, Page tokens and debug_token.

Everything `FakeFacebook` serves (comments, live_views) plus, as the Graph API documents them:
`POST /{page-id}/live_videos` (title, description, status, enable_backup_ingest) answering `id`,
`stream_url`, `secure_stream_url` and the secondary URLs; `POST /{live-video-id}` (title/description,
`status=LIVE_NOW`, `end_live_video=true`); `GET /{live-video-id}?fields=status,ingest_streams{...}`;
`GET /{page-id}?fields=access_token,name` and `/me/accounts` with a user token; `GET /debug_token`.
The stream URLs point at an RTMP receiver this fake runs, so `ingest_streams` reflects a real publish.
Errors: 190 (expired token), 368 (blocked action) as scripted `create_faults`.
"""

from __future__ import annotations

import itertools
import time

from aiohttp import web

from .facebook import FakeFacebook, graph_error
from .server import IngestFake, dumps

BLOCKED_368 = "(#368) The action attempted has been deemed abusive or is otherwise disallowed"


class FakeFacebookLive(FakeFacebook, IngestFake):
    """One Page with a user who manages it; the live videos it creates; an RTMP ingest on loopback."""

    def __init__(self, page_id: str = "104857600000001", page_name: str = "Báo Quảng Ninh (fake)",
                 user_token: str = "EAAfake-user-token", prefix: str = "/v26.0", **kw):  # noqa: S107 - a fake's
        kw.setdefault("live_video_id", "")
        super().__init__(prefix=prefix, **kw)
        self.page_id = page_id
        self.page_name = page_name
        self.user_token = user_token
        self.page_token_expires_at = 0  # 0: never, as a Page token from a long-lived user token
        self.user_token_expires_at = int(time.time()) + 60 * 86400
        self.videos: dict[str, dict] = {}
        self.create_faults: list[str] = []  # "190" or "368", one per create
        self.health_override: str | None = None  # "no_master": the platform sees no master stream while we send
        self.writes: list[tuple[str, dict]] = []
        self._ids = itertools.count(1)
        self.app.router.add_post(prefix + "/{node}/live_videos", self.create_live_video)
        self.app.router.add_post(prefix + "/{node}", self.update_node)
        self.app.router.add_get(prefix + "/me/accounts", self.accounts)

    def _token(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if " " in header:
            return header.split(" ", 1)[1]
        return request.query.get("access_token")

    async def _form(self, request: web.Request) -> dict:
        form = dict(await request.post())
        return {**dict(request.query), **{k: str(v) for k, v in form.items()}}

    # ---- live videos --------------------------------------------------------------------------------

    async def create_live_video(self, request: web.Request) -> web.Response:
        self.log(request)
        form = await self._form(request)
        if form.get("access_token") != self.token and self._token(request) != self.token:
            return graph_error(190, "Error validating access token: Session has expired.", subcode=463)
        if request.match_info["node"] != self.page_id:
            return graph_error(100, "(#100) Unsupported post request.", subcode=33)
        if self.create_faults:
            fault = self.create_faults.pop(0)
            if fault == "368":
                return graph_error(368, BLOCKED_368, subcode=1390008)
            return graph_error(190, "Error validating access token: Session has expired.", subcode=463)
        status = form.get("status", "UNPUBLISHED")
        if status not in ("LIVE_NOW", "UNPUBLISHED", "SCHEDULED_UNPUBLISHED"):
            return graph_error(100, f"(#100) param status must be one of {{LIVE_NOW, UNPUBLISHED, "
                                    f"SCHEDULED_UNPUBLISHED}}, got {status}")
        self.writes.append(("live_videos.create", form))
        video_id = str(1700000000000000 + next(self._ids))
        key = f"FB-{video_id}-0-Abw{next(self._ids):04d}"
        base = self.ingest_base + "/rtmp/"
        video = {"id": video_id, "title": form.get("title", ""), "description": form.get("description", ""),
                 "_status": "LIVE_NOW" if status == "LIVE_NOW" else status, "_key": key,
                 "_backup_key": key + "-b" if form.get("enable_backup_ingest") == "true" else None,
                 "permalink_url": f"/{self.page_id}/videos/{video_id}/", "creation_time": int(time.time())}
        self.videos[video_id] = video
        self.video_id = video_id  # comments and live_views of the base fake are this video's
        body = {"id": video_id, "stream_url": base + key, "secure_stream_url": base + key}
        if video["_backup_key"]:
            body["stream_secondary_urls"] = [base + video["_backup_key"]]
            body["secure_stream_secondary_urls"] = [base + video["_backup_key"]]
        return web.Response(text=dumps(body), content_type="application/json")

    def _read_status(self, video: dict) -> str:
        """The read-side status: LIVE once a LIVE_NOW video receives a stream; VOD after the end."""
        wanted = video["_status"]
        if wanted == "ENDED":
            return "VOD"
        if wanted == "LIVE_NOW":
            return "LIVE" if self.publishing(video["_key"]) or video.get("_was_live") else "UNPUBLISHED"
        return wanted

    def _ingest_streams(self, video: dict) -> list[dict]:
        streams = []
        for i, key in enumerate(k for k in (video["_key"], video["_backup_key"]) if k):
            if not self.publishing(key):
                continue
            master = i == 0 and self.health_override != "no_master"
            streams.append({"id": f"{video['id']}{i}", "stream_id": str(i), "is_master": master,
                            "stream_health": {"video_bitrate": 2500000, "video_framerate": 30,
                                              "audio_bitrate": 128000, "video_gop_size": 60,
                                              "video_width": 1280, "video_height": 720}})
        return streams

    async def video(self, request: web.Request) -> web.Response:
        node = request.match_info["video"]
        if node == "debug_token":
            return self._debug_token(request)
        if node == self.page_id or node == "me":
            return self._page(request, node)
        video = self.videos.get(node)
        if video is None:
            return await super().video(request)
        self.log(request)
        denied = self._denied(request)
        if denied is not None:
            return denied
        status = self._read_status(video)
        if status == "LIVE":
            video["_was_live"] = True
        body = {"id": video["id"]}
        for field in request.query.get("fields", "status").replace("{", ",{").split(","):
            name = field.split("{")[0].strip()
            if name == "status":
                body["status"] = status
            elif name == "ingest_streams":
                body["ingest_streams"] = self._ingest_streams(video)
            elif name in ("title", "description", "permalink_url", "creation_time"):
                body[name] = video[name]
            elif name == "live_views":
                body["live_views"] = self.live_views if status == "LIVE" else 0
        return web.Response(text=dumps(body), content_type="application/json")

    async def update_node(self, request: web.Request) -> web.Response:
        self.log(request)
        form = await self._form(request)
        if form.get("access_token") != self.token and self._token(request) != self.token:
            return graph_error(190, "Error validating access token: Session has expired.", subcode=463)
        video = self.videos.get(request.match_info["node"])
        if video is None:
            return graph_error(100, "(#100) Unsupported post request.", subcode=33)
        self.writes.append(("live_video.update", form))
        if form.get("end_live_video") == "true":
            video["_status"] = "ENDED"
            self.end()
        if form.get("status") == "LIVE_NOW":
            video["_status"] = "LIVE_NOW"
        for key in ("title", "description"):
            if key in form:
                video[key] = form[key]
        return web.Response(text=dumps({"id": video["id"], "success": True}), content_type="application/json")

    # ---- tokens -------------------------------------------------------------------------------------

    def _page(self, request: web.Request, node: str) -> web.Response:
        self.log(request)
        token = self._token(request)
        if token not in (self.user_token, self.token):
            return graph_error(190, "Error validating access token: The session has been invalidated.", subcode=460)
        if node == "me":
            return web.Response(text=dumps({"id": "100000000000042", "name": "Fake Admin"}),
                                content_type="application/json")
        body = {"id": self.page_id, "name": self.page_name}
        if "access_token" in request.query.get("fields", "") and token == self.user_token:
            body["access_token"] = self.token
        return web.Response(text=dumps(body), content_type="application/json")

    async def accounts(self, request: web.Request) -> web.Response:
        """`/me/accounts`: the Pages this user manages, each with its Page token."""
        self.log(request)
        if self._token(request) != self.user_token:
            return graph_error(190, "Error validating access token: The session has been invalidated.", subcode=460)
        page = {"id": self.page_id, "name": self.page_name, "access_token": self.token, "category": "Media/News",
                "tasks": ["ANALYZE", "ADVERTISE", "MODERATE", "CREATE_CONTENT", "MANAGE"]}
        return web.Response(text=dumps({"data": [page], "paging": {"cursors": {"before": "QVFI", "after": "QVFI"}}}),
                            content_type="application/json")

    def _debug_token(self, request: web.Request) -> web.Response:
        self.log(request)
        if self._token(request) not in (self.user_token, self.token):
            return graph_error(190, "Error validating access token: The session has been invalidated.", subcode=460)
        token = request.query.get("input_token")
        page = token == self.token
        if not page and token != self.user_token:
            data = {"is_valid": False, "error": {"code": 190, "message": "Invalid OAuth access token."}}
        else:
            data = {"app_id": "1234567890", "type": "PAGE" if page else "USER", "application": "streamctl (fake)",
                    "is_valid": True, "expires_at": self.page_token_expires_at if page else self.user_token_expires_at,
                    "data_access_expires_at": int(time.time()) + 90 * 86400,
                    "scopes": ["pages_show_list", "pages_read_engagement", "pages_manage_posts", "publish_video"],
                    "user_id": "100000000000042"}
            if page:
                data["profile_id"] = self.page_id
        return web.Response(text=dumps({"data": data}), content_type="application/json")
