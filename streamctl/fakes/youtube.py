"""A fake YouTube Data API v3: liveChatMessages.list, .streamList and videos.list as documented, with failures."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time

from aiohttp import web

from .server import FakeServer, broken_json, dumps, html_503, opaque, position, stamp

RECENT = 200  # a first call without pageToken returns only this many of the latest messages
LIST_COST, VIDEOS_COST = 5, 1


STREAM_MODES = ("ok", "404", "405", "501", "html")  # "ok" serves streamList; the others act as if it were missing
TOO_SOON = "The request was sent too soon after the previous one."


def error_body(status: int, reason: str, message: str, domain: str = "youtube.liveChat") -> dict:
    return {"error": {"code": status, "message": message,
                      "errors": [{"message": message, "domain": domain, "reason": reason}]}}


def google_error(status: int, reason: str, message: str, domain: str = "youtube.liveChat",
                 wrapped: bool = False) -> web.Response:
    """A Google error answer; `wrapped` puts it in an array, as streamList sends its errors."""
    body = error_body(status, reason, message, domain)
    return web.Response(text=dumps([body] if wrapped else body), status=status, content_type="application/json")


class Refused(Exception):
    """A documented API error, answered plain by list and videos, array-wrapped by streamList."""

    def __init__(self, status: int, reason: str, message: str, domain: str = "youtube.liveChat"):
        super().__init__(reason)
        self.answer = (status, reason, message, domain)

    def response(self, wrapped: bool = False) -> web.Response:
        return google_error(*self.answer, wrapped=wrapped)


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
        self.stream_mode = "ok"
        # Taken one per streamed response about to be written: "ok", "drop" (cut the connection mid-response),
        # "garbage", "stall" (go silent, connection open), "close" (end the array), "error:<reason>".
        self.stream_faults: list[str] = []
        self.chunk_bytes: int | None = None  # write each streamed response in pieces this small
        self.streams_open = 0
        self._ids = itertools.count(1)
        self._last_poll: float | None = None
        self._changed = asyncio.Event()
        self._closing = False
        self.app.router.add_get("/youtube/v3/liveChat/messages", self.list_messages)
        self.app.router.add_get("/youtube/v3/liveChat/messages/stream", self.stream_messages)
        self.app.router.add_get("/youtube/v3/videos", self.videos)
        self.app.on_shutdown.append(self._close_streams)

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
        self._notify()
        return msg_id

    def _notify(self) -> None:
        """Wake every open stream: something was added (or the chat ended)."""
        self._changed.set()
        self._changed = asyncio.Event()

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

    def gift(self, author: str, name: str = "Hoa sen", jewels: int = 50, combo: int = 1,
             display: str | None = None) -> str:
        """A giftEvent (jewels), with `giftDetails` as the discovery document names its fields."""
        details = {"giftDetails": {"giftName": name, "jewelsAmount": jewels, "comboCount": combo, "altText": name,
                                   "giftUrl": "https://www.gstatic.com/youtube/img/gift.png",
                                   "hasVisualEffect": False, "language": "vi"}}
        msg_id = self._add("giftEvent", self.author(author), details, display, None, "z")
        self.published.append(msg_id)
        return msg_id

    def fan_funding(self, author: str, comment: str, amount: str = "₫50.000") -> str:
        """A fanFundingEvent (deprecated in the discovery document, still sent), with its userComment."""
        details = {"fanFundingEventDetails": {"amountMicros": "50000000000", "currency": "VND",
                                              "amountDisplayString": amount, "userComment": comment}}
        msg_id = self._add("fanFundingEvent", self.author(author), details, f"{amount} from {author}: {comment}",
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

    def end(self, chat_ended_event: bool = True, offline: bool = True) -> None:
        """The broadcast ends: the next answer carries offlineAt, later ones 403 liveChatEnded.

        `offline=False` sends only the chatEndedEvent (a client must end on either signal).
        """
        if chat_ended_event:
            self._add("chatEndedEvent", None, {}, None, None, "z")
        if offline:
            self.offline_at = stamp(time.time())
            self._notify()

    # ---- the API ------------------------------------------------------------------------------------

    def _authorize(self, request: web.Request, units: int) -> None:
        header = request.headers.get("Authorization", "")
        if header != f"Bearer {self.token}" and request.query.get("key") != self.token:
            raise Refused(401, "authError", "Invalid Credentials", domain="global")
        # Every request costs, even a failing one; once the day's units are gone every call fails.
        if self.used + units > self.daily_quota:
            self.used = self.daily_quota
            raise Refused(403, "quotaExceeded", "The request cannot be completed because you have exceeded your "
                          "<a href=\"/youtube/v3/getting-started#quota\">quota</a>.", domain="youtube.quota")
        self.used += units

    def _start(self, request: web.Request) -> int:
        """Where a chat request starts in `items` (checks shared by list and streamList); raises Refused."""
        q = request.query
        if q.get("liveChatId") != self.chat_id:
            raise Refused(404, "liveChatNotFound", "The live chat cannot be found.")
        if not {"id", "snippet"} <= set(q.get("part", "").split(",")):
            raise Refused(400, "invalidValue", "part must include id and snippet", domain="global")
        if self.end_told:
            raise Refused(403, "liveChatEnded", "The live chat is no longer live.")
        max_results = int(q.get("maxResults", "500"))
        if not 200 <= max_results <= 2000:
            raise Refused(400, "invalidValue", "maxResults must be between 200 and 2000", domain="global")
        token = q.get("pageToken")
        if not token:
            return max(0, len(self.items) - self.recent)
        start = position(token, "page")
        if start is None or start > len(self.items):
            raise Refused(400, "pageTokenInvalid", "The page token is invalid.")
        return start

    def _page(self, start: int, limit: int) -> dict:
        """The LiveChatMessageListResponse from `start`: offlineAt once the reader has caught up with the end."""
        page = self.items[start:start + min(limit, self.page_size)]
        served = time.time()
        for item in page:
            self.served_at.setdefault(item["id"], served)
        body = {"kind": "youtube#liveChatMessageListResponse", "etag": f"p{start}",
                "nextPageToken": opaque(start + len(page), "page"), "pollingIntervalMillis": self.interval_ms,
                "pageInfo": {"totalResults": len(page), "resultsPerPage": len(page)}, "items": page}
        if self.offline_at and start + len(page) >= len(self.items):
            body["offlineAt"] = self.offline_at
            self.end_told = True
        return body

    async def list_messages(self, request: web.Request) -> web.Response:
        self.log(request)
        try:
            self._authorize(request, LIST_COST)
            fault = self.fault()
            if fault is not None:
                return self._fault_response(fault)
            now = time.monotonic()
            early = (self._last_poll is not None and self.enforce_interval
                     and (now - self._last_poll) * 1000 < self.interval_ms * 0.9)
            self._last_poll = now
            if early:
                raise Refused(403, "rateLimitExceeded", TOO_SOON)
            start = self._start(request)
        except Refused as e:
            return e.response()
        return web.Response(text=dumps(self._page(start, int(request.query.get("maxResults", "500")))),
                            content_type="application/json")

    def _fault_response(self, fault: str, wrapped: bool = False) -> web.Response:
        if fault == "503":
            return html_503()
        if fault == "malformed":
            return broken_json()
        refusals = {"rate": (403, "rateLimitExceeded", TOO_SOON, "youtube.liveChat"),
                    "quota": (403, "quotaExceeded", "quota exceeded", "youtube.quota"),
                    "auth": (401, "authError", "Invalid Credentials", "global"),
                    "disabled": (403, "liveChatDisabled", "Live chat is not enabled for the specified broadcast.",
                                 "youtube.liveChat"),
                    "forbidden": (403, "forbidden", "You do not have the permissions required.", "youtube.liveChat"),
                    "notfound": (404, "liveChatNotFound", "The live chat cannot be found.", "youtube.liveChat"),
                    "badtoken": (400, "pageTokenInvalid", "The page token is invalid.", "youtube.liveChat")}
        if fault not in refusals:
            raise ValueError(fault)
        return google_error(*refusals[fault], wrapped=wrapped)

    # ---- streamList: one long chunked JSON array, written as messages arrive ---------------------------

    async def stream_messages(self, request: web.Request) -> web.StreamResponse:
        self.log(request)
        if self.stream_mode != "ok":  # a server without the endpoint (or a proxy in front of it)
            return missing(self.stream_mode)
        try:
            self._authorize(request, LIST_COST)
            fault = self.fault()
            if fault is not None:
                return self._fault_response(fault, wrapped=True)
            start = self._start(request)
        except Refused as e:
            return e.response(wrapped=True)
        limit = int(request.query.get("maxResults", "500"))
        response = web.StreamResponse(headers={"Content-Type": "application/json; charset=UTF-8"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        self.streams_open += 1
        try:
            await self._stream(request, response, start, limit)
        except (ConnectionError, RuntimeError):
            pass  # the client went away mid-write
        finally:
            self.streams_open -= 1
        return response

    async def _stream(self, request: web.Request, response: web.StreamResponse, start: int, limit: int) -> None:
        await response.write(b"[")
        first = True
        while not self._closing:
            changed = self._changed  # taken before looking, so no wake-up is missed
            if first or start < len(self.items) or (self.offline_at and not self.end_told):
                body = self._page(start, limit)
                fault = self.stream_faults.pop(0) if self.stream_faults else "ok"
                text = ("" if first else "\n,\r\n") + json.dumps(body, ensure_ascii=False, indent=1)
                if fault != "ok":
                    await self._stream_fault(request, response, fault, text)
                    return
                await self._write(response, text.encode())
                first = False
                start += len(body["items"])
                if "offlineAt" in body:
                    await response.write(b"]")
                    return
                continue
            if await self._gone(request, changed, 1.0):
                return
        # Shutting down: the array is left open, as a dropped connection would leave it.

    async def _write(self, response: web.StreamResponse, data: bytes) -> None:
        step = self.chunk_bytes or len(data)
        for i in range(0, len(data), step):
            await response.write(data[i:i + step])
            if self.chunk_bytes:
                await asyncio.sleep(0.001)  # separate chunks on the wire, so responses arrive split

    async def _stream_fault(self, request: web.Request, response: web.StreamResponse, fault: str,
                            text: str) -> None:
        if fault == "drop":
            await self._write(response, text.encode()[:len(text.encode()) // 2])
            if request.transport is not None:
                request.transport.abort()  # cut mid-response: the client must keep nothing of it
            raise ConnectionResetError
        if fault == "garbage":
            await response.write(b",\n<html>garbage")
        elif fault == "close":
            await response.write(b"]")
        elif fault == "stall":
            while not await self._gone(request, self._changed, 0.2):
                pass
        elif fault.startswith("error:"):
            reason = fault.split(":", 1)[1]
            status = 404 if reason == "liveChatNotFound" else 403
            if reason == "liveChatEnded":
                self.end_told = True
            await response.write((",\n" + dumps(error_body(status, reason, reason)) + "]").encode())
        else:
            raise ValueError(fault)

    async def _gone(self, request: web.Request, changed: asyncio.Event, seconds: float) -> bool:
        """Wait up to `seconds` for a change; True once the client has left or the fake is shutting down."""
        try:
            await asyncio.wait_for(changed.wait(), seconds)
        except TimeoutError:
            pass
        return self._closing or request.transport is None or request.transport.is_closing()

    async def _close_streams(self, app: web.Application) -> None:
        """On shutdown, end open streams now instead of letting the server wait for them."""
        self._closing = True
        self._notify()

    async def videos(self, request: web.Request) -> web.Response:
        self.log(request)
        try:
            self._authorize(request, VIDEOS_COST)
        except Refused as e:
            return e.response()
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


def missing(mode: str) -> web.Response:
    """What a server without streamList answers: a bare 404, 405 or 501, or (mode "html") a 200 HTML page."""
    if mode == "html":
        return web.Response(text="<!DOCTYPE html><html><body>Please sign in</body></html>", content_type="text/html")
    reasons = {"404": "Not Found", "405": "Method Not Allowed", "501": "Not Implemented"}
    return web.Response(text=f"{mode}: {reasons[mode]}", status=int(mode), content_type="text/plain")
