"""A fake YouTube Data API v3: liveChatMessages.list and videos.list as documented, with their failures."""

from __future__ import annotations

import hashlib
import itertools
import time

from aiohttp import web

from .server import FakeServer, broken_json, dumps, html_503, opaque, position, stamp

RECENT = 200  # a first call without pageToken returns only this many of the latest messages
LIST_COST, VIDEOS_COST = 5, 1


def google_error(status: int, reason: str, message: str, domain: str = "youtube.liveChat") -> web.Response:
    body = {"error": {"code": status, "message": message,
                      "errors": [{"message": message, "domain": domain, "reason": reason}]}}
    return web.Response(text=dumps(body), status=status, content_type="application/json")


class FakeYouTube(FakeServer):
    """One live video with its chat. Post messages with the helpers; read what a poller would see."""

    def __init__(self, video_id: str = "vid00000001", chat_id: str = "KicKGFVDZmFrZQ", token: str = "yt-token",  # noqa: S107 - a fake's own token
                 interval_ms: int = 200, page_size: int = 2000, daily_quota: int = 10_000,
                 enforce_interval: bool = True, live: bool = True):
        super().__init__()
        self.video_id = video_id
        self.chat_id = chat_id
        self.token = token
        self.interval_ms = interval_ms
        self.page_size = page_size
        self.daily_quota = daily_quota
        self.enforce_interval = enforce_interval
        self.live = live  # False: the video is upcoming, no activeLiveChatId yet
        self.recent = RECENT
        self.served_at: dict[str, float] = {}  # message id -> when an answer first carried it (benchmarks)
        self.used = 0
        self.viewers: int | None = 0
        self.items: list[dict] = []
        self.published: list[str] = []  # ids of messages that should end up stored as comments
        self.offline_at: str | None = None
        self.end_told = False
        self.video_faults: list[str] = []
        self._ids = itertools.count(1)
        self._last_poll: float | None = None
        self.app.router.add_get("/youtube/v3/liveChat/messages", self.list_messages)
        self.app.router.add_get("/youtube/v3/videos", self.videos)

    # ---- what the test (or the simulated audience) does --------------------------------------------

    def _add(self, type_: str, author: dict | None, details: dict, display: str | None,
             at: float | None, time_style: str) -> str:
        msg_id = "LCC." + opaque(next(self._ids), "fake-msg")
        snippet = {"type": type_, "liveChatId": self.chat_id, "publishedAt": stamp(at or time.time(), time_style),
                   "hasDisplayContent": display is not None, **details}
        if display is not None:
            snippet["displayMessage"] = display
        item = {"kind": "youtube#liveChatMessage", "etag": f"e{len(self.items)}", "id": msg_id, "snippet": snippet}
        if author is not None:
            snippet["authorChannelId"] = author["channelId"]
            item["authorDetails"] = author
        self.items.append(item)
        return msg_id

    @staticmethod
    def author(name: str, channel_id: str | None = None, moderator: bool = False) -> dict:
        cid = channel_id or "UC" + hashlib.sha256(name.encode()).hexdigest()[:22]
        return {"channelId": cid, "channelUrl": f"http://www.youtube.com/channel/{cid}", "displayName": name,
                "profileImageUrl": "https://yt3.ggpht.com/a.jpg", "isVerified": False, "isChatOwner": False,
                "isChatSponsor": False, "isChatModerator": moderator}

    def post_comment(self, author: str, text: str, author_id: str | None = None, at: float | None = None,
                     time_style: str = "micro", **kw) -> str:
        details = {"textMessageDetails": {"messageText": text}}
        msg_id = self._add("textMessageEvent", self.author(author, author_id), details, text, at, time_style)
        self.published.append(msg_id)
        return msg_id

    def super_chat(self, author: str, comment: str, amount: str = "$5.00") -> str:
        details = {"superChatDetails": {"amountMicros": "5000000", "currency": "USD", "amountDisplayString": amount,
                                        "userComment": comment, "tier": 2}}
        msg_id = self._add("superChatEvent", self.author(author), details, f"{amount} from {author}: {comment}",
                           None, "z")
        self.published.append(msg_id)
        return msg_id

    def delete(self, target: str) -> str:
        return self._add("messageDeletedEvent", self.author("Moderator", moderator=True),
                         {"messageDeletedDetails": {"deletedMessageId": target}}, None, None, "z")

    def retract(self, target: str) -> str:
        return self._add("messageRetractedEvent", self.author("Someone"),
                         {"messageRetractedDetails": {"retractedMessageId": target}}, None, None, "z")

    def ban(self, name: str, temporary_s: int | None = None) -> str:
        banned = self.author(name)
        details = {"userBannedDetails": {"banType": "temporary" if temporary_s else "permanent",
                                         "bannedUserDetails": {k: banned[k] for k in ("channelId", "channelUrl",
                                                                                      "displayName")}}}
        if temporary_s:
            details["userBannedDetails"]["banDurationSeconds"] = str(temporary_s)
        msg_id = self._add("userBannedEvent", self.author("Moderator", moderator=True), details,
                           f"{name} has been banned", None, "z")
        self.published.append(msg_id)
        return msg_id

    def unknown(self, type_: str = "holographicCheerEvent") -> str:
        return self._add(type_, self.author("Future"), {"futureDetails": {"x": 1}}, "something new", None, "z")

    def set_viewers(self, viewers: int | None) -> None:
        self.viewers = viewers

    def end(self, chat_ended_event: bool = True) -> None:
        """The broadcast ends: the next list answer carries offlineAt, later ones 403 liveChatEnded."""
        if chat_ended_event:
            self._add("chatEndedEvent", None, {}, None, None, "z")
        self.offline_at = stamp(time.time())

    # ---- the API ------------------------------------------------------------------------------------

    def _auth_error(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if header != f"Bearer {self.token}" and request.query.get("key") != self.token:
            return google_error(401, "authError", "Invalid Credentials", domain="global")
        return None

    def _charge(self, units: int) -> web.Response | None:
        # Every request costs, even a failing one; once the day's units are gone every call fails.
        if self.used + units > self.daily_quota:
            self.used = self.daily_quota
            return google_error(403, "quotaExceeded", "The request cannot be completed because you have exceeded "
                                "your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.", domain="youtube.quota")
        self.used += units
        return None

    async def list_messages(self, request: web.Request) -> web.Response:
        self.log(request)
        q = request.query
        denied = self._auth_error(request) or self._charge(LIST_COST)
        if denied is not None:
            return denied
        fault = self.fault()
        if fault is not None:
            return self._fault_response(fault)
        now = time.monotonic()
        early = (self._last_poll is not None and self.enforce_interval
                 and (now - self._last_poll) * 1000 < self.interval_ms * 0.9)
        self._last_poll = now
        if early:
            return google_error(403, "rateLimitExceeded", "The request was sent too soon after the previous one.")
        if q.get("liveChatId") != self.chat_id:
            return google_error(404, "liveChatNotFound", "The live chat cannot be found.")
        if not {"id", "snippet"} <= set(q.get("part", "").split(",")):
            return google_error(400, "invalidValue", "part must include id and snippet", domain="global")
        if self.end_told:
            return google_error(403, "liveChatEnded", "The live chat is no longer live.")
        max_results = int(q.get("maxResults", "500"))
        if not 200 <= max_results <= 2000:
            return google_error(400, "invalidValue", "maxResults must be between 200 and 2000", domain="global")
        token = q.get("pageToken")
        if token:
            start = position(token, "page")
            if start is None or start > len(self.items):
                return google_error(400, "pageTokenInvalid", "The page token is invalid.")
        else:
            start = max(0, len(self.items) - self.recent)
        page = self.items[start:start + min(max_results, self.page_size)]
        served = time.time()
        for item in page:
            self.served_at.setdefault(item["id"], served)
        body = {"kind": "youtube#liveChatMessageListResponse", "etag": f"p{start}",
                "nextPageToken": opaque(start + len(page), "page"), "pollingIntervalMillis": self.interval_ms,
                "pageInfo": {"totalResults": len(page), "resultsPerPage": len(page)}, "items": page}
        if self.offline_at and start + len(page) >= len(self.items):
            body["offlineAt"] = self.offline_at
            self.end_told = True
        return web.Response(text=dumps(body), content_type="application/json")

    def _fault_response(self, fault: str) -> web.Response:
        if fault == "503":
            return html_503()
        if fault == "malformed":
            return broken_json()
        if fault == "rate":
            return google_error(403, "rateLimitExceeded", "The request was sent too soon after the previous one.")
        if fault == "quota":
            return google_error(403, "quotaExceeded", "quota exceeded", domain="youtube.quota")
        if fault == "auth":
            return google_error(401, "authError", "Invalid Credentials", domain="global")
        if fault == "disabled":
            return google_error(403, "liveChatDisabled", "Live chat is not enabled for the specified broadcast.")
        if fault == "badtoken":
            return google_error(400, "pageTokenInvalid", "The page token is invalid.")
        raise ValueError(fault)

    async def videos(self, request: web.Request) -> web.Response:
        self.log(request)
        denied = self._auth_error(request) or self._charge(VIDEOS_COST)
        if denied is not None:
            return denied
        if self.video_faults:
            return self._fault_response(self.video_faults.pop(0))
        items = []
        if request.query.get("id") == self.video_id:
            details: dict = {"actualStartTime": "2024-05-01T11:58:02Z", "scheduledStartTime": "2024-05-01T12:00:00Z"}
            content = "live"
            if self.offline_at:
                details["actualEndTime"] = self.offline_at
                content = "none"
            elif not self.live:
                content = "upcoming"
                del details["actualStartTime"]
            else:
                details["activeLiveChatId"] = self.chat_id
                if self.viewers is not None:
                    details["concurrentViewers"] = str(self.viewers)  # uint64 serialized as a string
            items.append({"kind": "youtube#video", "etag": "y", "id": self.video_id, "liveStreamingDetails": details,
                          "snippet": {"title": "Fake live", "liveBroadcastContent": content}})
        body = {"kind": "youtube#videoListResponse", "etag": "x", "items": items,
                "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)}}
        return web.Response(text=dumps(body), content_type="application/json")
