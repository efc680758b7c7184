"""A fake YouTube channel that can go live: liveBroadcasts, liveStreams, OAuth, and a real RTMP ingest.

Everything `FakeYouTube` serves (chat, videos.list) plus, as the Data API v3 documents them:
`liveBroadcasts` insert/list/update/bind/transition, `liveStreams` insert/list, and Google's OAuth token and
device endpoints (`FakeGoogleOAuth`). Each stream's `cdn.ingestionInfo` points at an RTMP receiver this fake
runs on loopback, so `status.streamStatus` turns `active` only when a real publish reaches it, and
`healthStatus` is what that receiver sees (`health_override` makes it say `noData`/`bad` while data flows).
A bound broadcast's chat is the chat the base fake serves. Errors are the documented ones:
`invalidTransition`, `redundantTransition`, `errorStreamInactive`, `liveStreamingNotEnabled`, 401 `authError`.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time

from aiohttp import web

from .google_oauth import FakeGoogleOAuth
from .server import IngestFake, dumps, opaque, stamp
from .youtube import FakeYouTube, Refused

LIST_UNITS, WRITE_UNITS = 1, 50
STARTING_S = 0.5  # testStarting / liveStarting last this long before testing / live
TRANSITIONS = {  # target -> the lifeCycleStatus values it may come from
    "testing": ("ready",),
    "live": ("ready", "testing"),
    "complete": ("ready", "testing", "live"),
}


class FakeYouTubeLive(FakeYouTube, IngestFake):
    """One channel: broadcasts and streams it creates, OAuth, an RTMP ingest; chat of the bound broadcast."""

    def __init__(self, channel_id: str = "UCfakeChannel000000000001", token_lifetime_s: float = 3600.0, **kw):
        kw.setdefault("live", False)
        kw.setdefault("video_id", "")
        super().__init__(**kw)
        self.channel_id = channel_id
        self.oauth = FakeGoogleOAuth(self.app, lifetime_s=token_lifetime_s)
        self.broadcasts: dict[str, dict] = {}
        self.streams: dict[str, dict] = {}
        self.live_streaming_enabled = True  # False: inserts answer 403 liveStreamingNotEnabled
        self.health_override: str | None = None  # "noData" / "bad" / "ok": what the platform says while we send
        self.issues_override: list[dict] = []
        self.transition_faults: list[str] = []  # reasons answered to the next transitions, one each
        self.writes: list[tuple[str, dict]] = []  # (method name, body) of every insert/update/bind/transition
        self._starting: dict[str, tuple[str, float]] = {}  # broadcast id -> (target, when it gets there)
        self._bids = itertools.count(1)
        r = self.app.router
        r.add_post("/youtube/v3/liveBroadcasts", self.insert_broadcast)
        r.add_get("/youtube/v3/liveBroadcasts", self.list_broadcasts)
        r.add_put("/youtube/v3/liveBroadcasts", self.update_broadcast)
        r.add_post("/youtube/v3/liveBroadcasts/bind", self.bind)
        r.add_post("/youtube/v3/liveBroadcasts/transition", self.transition)
        r.add_post("/youtube/v3/liveStreams", self.insert_stream)
        r.add_get("/youtube/v3/liveStreams", self.list_streams)

    # ---- what tests look at -------------------------------------------------------------------------

    def client_secrets(self) -> dict:
        """The JSON Google Cloud hands out for a "TVs and Limited Input devices" client, pointed at this fake."""
        return {"installed": {"client_id": self.oauth.client_id, "client_secret": self.oauth.client_secret,
                              "auth_uri": self.url + "/auth", "token_uri": self.url + "/token",
                              "device_uri": self.url + "/device/code"}}

    def authorized_user(self) -> dict:
        """An `authorized_user` credentials file for this fake's user."""
        return {"type": "authorized_user", "client_id": self.oauth.client_id,
                "client_secret": self.oauth.client_secret, "refresh_token": self.oauth.refresh_token,
                "token_uri": self.url + "/token", "scopes": [self.oauth.scope]}

    def calls_to(self, method: str) -> int:
        return sum(1 for name, _ in self.writes if name == method)

    # ---- auth ---------------------------------------------------------------------------------------

    def _authorize(self, request: web.Request, units: int) -> None:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else None
        if token is not None and self.oauth.valid(token):
            self.used += units
            return
        if token is not None and token in self.oauth.issued:
            raise Refused(401, "authError", "Request had invalid authentication credentials. Expected OAuth 2 "
                          "access token, login cookie or other valid authentication credential.", domain="global")
        super()._authorize(request, units)

    # ---- streams ------------------------------------------------------------------------------------

    def _stream_view(self, stream: dict, parts: set[str]) -> dict:
        name = stream["cdn"]["ingestionInfo"]["streamName"]
        active = self.publishing(name)
        health = {"status": "good" if active else "noData", "lastUpdateTimeSeconds": str(int(time.time())),
                  "configurationIssues": []}
        if active and self.health_override:
            health["status"] = self.health_override
            health["configurationIssues"] = list(self.issues_override)
        elif self.health_override == "noData":
            health["status"] = "noData"
        if stream.get("_bound") and not active:
            status = "inactive"
        else:
            status = "active" if active else "ready"
        view = {"kind": "youtube#liveStream", "etag": opaque(len(self.requests), "etag"), "id": stream["id"]}
        if "snippet" in parts:
            view["snippet"] = stream["snippet"]
        if "cdn" in parts:
            view["cdn"] = stream["cdn"]
        if "contentDetails" in parts:
            view["contentDetails"] = stream["contentDetails"]
        if "status" in parts:
            view["status"] = {"streamStatus": status, "healthStatus": health}
        return view

    async def insert_stream(self, request: web.Request) -> web.Response:
        self.log(request)
        try:
            self._authorize(request, WRITE_UNITS)
            self._can_stream()
            body = await _body(request)
        except Refused as e:
            return e.response()
        self.writes.append(("liveStreams.insert", body))
        stream_id = f"{self.channel_id[2:]}{len(self.streams) + 1}"
        name = "-".join(secrets.token_hex(2) for _ in range(5))
        base = self.ingest_base
        cdn = body.get("cdn") or {}
        stream = {"id": stream_id,
                  "snippet": {"title": (body.get("snippet") or {}).get("title", ""), "description": "",
                              "channelId": self.channel_id, "publishedAt": stamp(time.time()),
                              "isDefaultStream": False},
                  "cdn": {"ingestionType": cdn.get("ingestionType", "rtmp"),
                          "resolution": cdn.get("resolution", "variable"),
                          "frameRate": cdn.get("frameRate", "variable"),
                          "ingestionInfo": {"streamName": name, "ingestionAddress": f"{base}/live2",
                                            "backupIngestionAddress": f"{base}/live2?backup=1",
                                            "rtmpsIngestionAddress": f"{base}/live2",
                                            "rtmpsBackupIngestionAddress": f"{base}/live2?backup=1"}},
                  "contentDetails": {"isReusable": True}}
        self.streams[stream_id] = stream
        return _json(self._stream_view(stream, _parts(request)))

    async def list_streams(self, request: web.Request) -> web.Response:
        self.log(request)
        try:
            self._authorize(request, LIST_UNITS)
        except Refused as e:
            return e.response()
        ids = request.query.get("id", "").split(",") if request.query.get("id") else list(self.streams)
        items = [self._stream_view(self.streams[i], _parts(request)) for i in ids if i in self.streams]
        return _json({"kind": "youtube#liveStreamListResponse", "etag": "ls",
                      "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)}, "items": items})

    def _can_stream(self) -> None:
        if not self.live_streaming_enabled:
            raise Refused(403, "liveStreamingNotEnabled", "The user is not enabled for live streaming.",
                          domain="youtube.liveBroadcast")

    # ---- broadcasts ---------------------------------------------------------------------------------

    def _advance(self, broadcast: dict) -> None:
        """testStarting/liveStarting become testing/live a moment after the transition was asked."""
        pending = self._starting.get(broadcast["id"])
        if pending and time.time() >= pending[1]:
            broadcast["status"]["lifeCycleStatus"] = pending[0]
            del self._starting[broadcast["id"]]
            if pending[0] == "live":
                broadcast["snippet"]["actualStartTime"] = stamp(time.time())
                self.live = True

    def _broadcast_view(self, broadcast: dict, parts: set[str]) -> dict:
        self._advance(broadcast)
        view = {"kind": "youtube#liveBroadcast", "etag": opaque(len(self.requests), "etag"), "id": broadcast["id"]}
        for part in ("snippet", "status", "contentDetails"):
            if part in parts:
                view[part] = json.loads(json.dumps(broadcast[part]))
        if "statistics" in parts:
            view["statistics"] = {"concurrentViewers": str(self.viewers or 0)} \
                if broadcast["status"]["lifeCycleStatus"] == "live" else {}
        return view

    def _broadcast(self, request: web.Request) -> dict:
        broadcast = self.broadcasts.get(request.query.get("id", ""))
        if broadcast is None:
            raise Refused(404, "liveBroadcastNotFound", "Broadcast not found", domain="youtube.liveBroadcast")
        return broadcast

    async def insert_broadcast(self, request: web.Request) -> web.Response:
        self.log(request)
        try:
            self._authorize(request, WRITE_UNITS)
            self._can_stream()
            body = await _body(request)
            snippet, status = body.get("snippet") or {}, body.get("status") or {}
            if not snippet.get("title") or not snippet.get("scheduledStartTime"):
                raise Refused(400, "invalidValue" if snippet.get("title") else "titleRequired",
                              "snippet.title and snippet.scheduledStartTime are required",
                              domain="youtube.liveBroadcast")
            if status.get("privacyStatus") not in ("public", "unlisted", "private"):
                raise Refused(400, "invalidPrivacyStatus", "Invalid privacy status.", domain="youtube.liveBroadcast")
        except Refused as e:
            return e.response()
        self.writes.append(("liveBroadcasts.insert", body))
        broadcast_id = "bc" + opaque(next(self._bids), self.channel_id)[:9]
        details = body.get("contentDetails") or {}
        monitor = (details.get("monitorStream") or {}).get("enableMonitorStream", True)
        broadcast = {
            "id": broadcast_id,
            "snippet": {"publishedAt": stamp(time.time()), "channelId": self.channel_id, "title": snippet["title"],
                        "description": snippet.get("description", ""),
                        "scheduledStartTime": snippet["scheduledStartTime"], "isDefaultBroadcast": False,
                        "liveChatId": "Kic" + secrets.token_urlsafe(12)},
            "status": {"lifeCycleStatus": "created", "privacyStatus": status["privacyStatus"],
                       "recordingStatus": "notRecording", "madeForKids": False, "selfDeclaredMadeForKids": False},
            "contentDetails": {"monitorStream": {"enableMonitorStream": monitor, "broadcastStreamDelayMs": 0},
                               "enableEmbed": True, "enableDvr": True, "recordFromStart": True,
                               "enableClosedCaptions": False, "closedCaptionsType": "closedCaptionsDisabled",
                               "projection": "rectangular",
                               "enableAutoStart": bool(details.get("enableAutoStart", False)),
                               "enableAutoStop": bool(details.get("enableAutoStop", False)),
                               "latencyPreference": details.get("latencyPreference", "normal")},
        }
        self.broadcasts[broadcast_id] = broadcast
        return _json(self._broadcast_view(broadcast, _parts(request)))

    async def list_broadcasts(self, request: web.Request) -> web.Response:
        self.log(request)
        try:
            self._authorize(request, LIST_UNITS)
        except Refused as e:
            return e.response()
        ids = request.query.get("id", "").split(",") if request.query.get("id") else list(self.broadcasts)
        items = [self._broadcast_view(self.broadcasts[i], _parts(request)) for i in ids if i in self.broadcasts]
        return _json({"kind": "youtube#liveBroadcastListResponse", "etag": "lb",
                      "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)}, "items": items})

    async def update_broadcast(self, request: web.Request) -> web.Response:
        self.log(request)
        try:
            self._authorize(request, WRITE_UNITS)
            body = await _body(request)
            broadcast = self.broadcasts.get(str(body.get("id")))
            if broadcast is None:
                raise Refused(404, "liveBroadcastNotFound", "Broadcast not found", domain="youtube.liveBroadcast")
            snippet = body.get("snippet") or {}
            if "snippet" in _parts(request) and (not snippet.get("title") or not snippet.get("scheduledStartTime")):
                raise Refused(400, "invalidValue", "snippet.title and snippet.scheduledStartTime are required",
                              domain="youtube.liveBroadcast")
        except Refused as e:
            return e.response()
        self.writes.append(("liveBroadcasts.update", body))
        for key in ("title", "description", "scheduledStartTime"):
            if key in snippet:
                broadcast["snippet"][key] = snippet[key]
        return _json(self._broadcast_view(broadcast, _parts(request)))

    async def bind(self, request: web.Request) -> web.Response:
        self.log(request)
        try:
            self._authorize(request, WRITE_UNITS)
            broadcast = self._broadcast(request)
            stream = self.streams.get(request.query.get("streamId", ""))
            if stream is None:
                raise Refused(404, "liveStreamNotFound", "Stream not found", domain="youtube.liveBroadcast")
        except Refused as e:
            return e.response()
        self.writes.append(("liveBroadcasts.bind", dict(request.query)))
        broadcast["contentDetails"]["boundStreamId"] = stream["id"]
        broadcast["contentDetails"]["boundStreamLastUpdateTimeMs"] = stamp(time.time())
        stream["_bound"] = True
        if broadcast["status"]["lifeCycleStatus"] == "created":
            broadcast["status"]["lifeCycleStatus"] = "ready"
        # The chat the base fake serves is this broadcast's (its video id is the broadcast id).
        self.video_id, self.chat_id = broadcast["id"], broadcast["snippet"]["liveChatId"]
        return _json(self._broadcast_view(broadcast, _parts(request)))

    async def transition(self, request: web.Request) -> web.Response:
        self.log(request)
        try:
            self._authorize(request, WRITE_UNITS)
            broadcast = self._broadcast(request)
            self._advance(broadcast)
            target = request.query.get("broadcastStatus", "")
            if target not in TRANSITIONS:
                raise Refused(400, "invalidValue", f"broadcastStatus {target!r}", domain="youtube.liveBroadcast")
            self._check_transition(broadcast, target)
        except Refused as e:
            return e.response()
        self.writes.append(("liveBroadcasts.transition", dict(request.query)))
        now = time.time()
        if target == "complete":
            broadcast["status"]["lifeCycleStatus"] = "complete"
            broadcast["snippet"]["actualEndTime"] = stamp(now)
            self.end()
        else:
            broadcast["status"]["lifeCycleStatus"] = "testStarting" if target == "testing" else "liveStarting"
            self._starting[broadcast["id"]] = (target, now + STARTING_S)
        return _json(self._broadcast_view(broadcast, _parts(request)))

    def _check_transition(self, broadcast: dict, target: str) -> None:
        if self.transition_faults:
            reason = self.transition_faults.pop(0)
            raise Refused(403, reason, reason, domain="youtube.liveBroadcast")
        current = broadcast["status"]["lifeCycleStatus"]
        if current == target:
            raise Refused(403, "redundantTransition", "The broadcast is already in the requested status.",
                          domain="youtube.liveBroadcast")
        if current not in TRANSITIONS[target]:
            raise Refused(403, "invalidTransition", f"The broadcast cannot transition from {current} to {target}.",
                          domain="youtube.liveBroadcast")
        stream = self.streams.get(broadcast["contentDetails"].get("boundStreamId", ""))
        if target in ("testing", "live") and (stream is None
                                              or not self.publishing(stream["cdn"]["ingestionInfo"]["streamName"])):
            raise Refused(403, "errorStreamInactive", "The bound stream is not active.",
                          domain="youtube.liveBroadcast")
        if target == "testing" and not broadcast["contentDetails"]["monitorStream"]["enableMonitorStream"]:
            raise Refused(403, "invalidTransition", "The monitor stream is disabled: testing is not possible.",
                          domain="youtube.liveBroadcast")


def _parts(request: web.Request) -> set[str]:
    return {p.strip() for p in request.query.get("part", "").split(",") if p.strip()}


async def _body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise Refused(400, "parseError", "Parse Error", domain="global") from None
    if not isinstance(body, dict):
        raise Refused(400, "parseError", "Parse Error", domain="global")
    return body


def _json(body: dict) -> web.Response:
    return web.Response(text=dumps(body), content_type="application/json")
