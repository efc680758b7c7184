"""YouTube: live chat from liveChatMessages.list (page tokens, pollingIntervalMillis), viewers from videos.list."""

from __future__ import annotations

import re

from ..config import AudienceConfig
from ..events import now
from .models import Comment, ViewerSample
from .quota import LIST_COST, VIDEOS_COST
from .source import (
    BLOCKED,
    FATAL,
    QUOTA,
    RATE_LIMITED,
    TRANSIENT,
    WAITING,
    Batch,
    Http,
    Reply,
    SourceError,
    parse_time,
    unexpected,
)

DEFAULT_API = "https://www.googleapis.com"
PARTS = "id,snippet,authorDetails"
MAX_RESULTS = 2000
MEMBER_TYPES = ("newSponsorEvent", "memberMilestoneChatEvent", "membershipGiftingEvent",
                "giftMembershipReceivedEvent")
SYSTEM_TYPES = ("sponsorOnlyModeStartedEvent", "sponsorOnlyModeEndedEvent")


class YouTubeSource:
    """One video's live chat; the poller calls `fetch` (5 units) and `sample` (1 unit)."""

    platform = "youtube"

    def __init__(self, config: AudienceConfig, http: Http):
        self.name = config.name
        self.video_id = config.get("video_id")
        self.chat_id: str | None = config.get("live_chat_id")
        self._chat_configured = self.chat_id is not None
        self.credential = config.credential
        self.api = (config.get("api_base") or DEFAULT_API).rstrip("/")
        self.http = http
        self.page_token: str | None = None
        self.units = 0
        self.advised: float | None = None  # the last pollingIntervalMillis, in seconds

    def resume(self, cursor: str | None) -> None:
        self.page_token = cursor or None

    async def close(self) -> None:
        """Nothing of its own to release: the HTTP session belongs to the service."""

    # ---- calls --------------------------------------------------------------------------------------

    async def _get(self, what: str, path: str, params: dict, cost: int) -> Reply:
        if not self.credential:
            raise SourceError(f"{what}: no credential: set the environment variable named by credential_env",
                              FATAL)
        headers = {}
        params = dict(params)
        if self.credential.startswith("AIza"):  # an API key rather than an OAuth token
            params["key"] = self.credential
        else:
            headers["Authorization"] = f"Bearer {self.credential}"
        self.units += cost  # YouTube charges every request, failed or not
        return await self.http.get(what, self.api + path, params, headers)

    async def _video(self) -> dict:
        what = "videos.list"
        reply = await self._get(what, "/youtube/v3/videos",
                                {"part": "liveStreamingDetails,snippet", "id": self.video_id}, VIDEOS_COST)
        if reply.status != 200 or not isinstance(reply.data, dict):
            raise self._error(what, reply)
        items = reply.data.get("items")
        if not isinstance(items, list):
            raise unexpected(what, reply)
        if not items:
            raise SourceError(f"{what}: video {self.video_id} not found (check video_id)", BLOCKED)
        video = items[0] if isinstance(items[0], dict) else {}
        return video

    async def fetch(self) -> Batch:
        """One page of chat messages after the stored page token."""
        if self.chat_id is None:
            details = (await self._video()).get("liveStreamingDetails") or {}
            if details.get("actualEndTime"):
                return Batch(ended=True)
            self.chat_id = details.get("activeLiveChatId")
            if not self.chat_id:
                raise SourceError(f"video {self.video_id} is not live yet (no active live chat)", WAITING)
        what = "liveChatMessages.list"
        params = {"liveChatId": self.chat_id, "part": PARTS, "maxResults": str(MAX_RESULTS)}
        if self.page_token:
            params["pageToken"] = self.page_token
        reply = await self._get(what, "/youtube/v3/liveChat/messages", params, LIST_COST)
        if reply.status == 403 and _reason(reply) == "liveChatEnded":
            return Batch(ended=True)
        if reply.status != 200 or not isinstance(reply.data, dict):
            raise self._error(what, reply)
        return self._page(reply.data)

    async def sample(self) -> Batch:
        """Concurrent viewers (a string in the API); 0 once the broadcast has ended."""
        details = (await self._video()).get("liveStreamingDetails") or {}
        ended = bool(details.get("actualEndTime"))
        viewers = _int(details.get("concurrentViewers"))
        if ended:
            viewers = 0  # YouTube stops counting at the end; the last count must not linger in the total
        return Batch(viewers=ViewerSample(self.name, self.platform, now(), viewers), ended=ended)

    # ---- mapping ------------------------------------------------------------------------------------

    def _page(self, data: dict) -> Batch:
        batch = Batch()
        interval = data.get("pollingIntervalMillis")
        if isinstance(interval, int | float) and interval >= 0:
            self.advised = interval / 1000.0
            batch.wait = self.advised
        received = now()
        items = data.get("items")
        for item in items if isinstance(items, list) else []:
            self._map(item, received, batch)
        token = data.get("nextPageToken")
        if isinstance(token, str) and token:
            self.page_token = token
            batch.cursor = token
        if data.get("offlineAt"):
            batch.ended = True
        return batch

    def _map(self, item: object, received: float, batch: Batch) -> None:
        snippet = item.get("snippet") if isinstance(item, dict) else None
        if not isinstance(snippet, dict) or not isinstance(item.get("id"), str):
            _count(batch, "malformed")
            return
        kind = snippet.get("type")
        if kind == "messageDeletedEvent":
            _deleted(batch, snippet.get("messageDeletedDetails"), "deletedMessageId")
        elif kind == "messageRetractedEvent":
            _deleted(batch, snippet.get("messageRetractedDetails"), "retractedMessageId")
        elif kind == "tombstone":
            batch.deleted_ids.append(item["id"])  # a placeholder left where a message was removed
        elif kind == "chatEndedEvent":
            batch.ended = True
        elif kind in ("textMessageEvent", "superChatEvent", "superStickerEvent", "userBannedEvent",
                      *MEMBER_TYPES, *SYSTEM_TYPES):
            batch.comments.append(self._comment(item, snippet, kind, received))
        else:
            _count(batch, str(kind))  # unknown or not a chat line (polls, gifts): ignored, counted

    def _comment(self, item: dict, snippet: dict, kind: str, received: float) -> Comment:
        author = item.get("authorDetails") if isinstance(item.get("authorDetails"), dict) else {}
        display = _text(snippet.get("displayMessage"))
        text, amount, our_kind = display, None, "comment"
        extra = {k: True for k in ("isChatOwner", "isChatModerator", "isChatSponsor", "isVerified") if author.get(k)}
        if kind == "textMessageEvent":
            text = _text((snippet.get("textMessageDetails") or {}).get("messageText")) or display
        elif kind == "superChatEvent":
            details = snippet.get("superChatDetails") or {}
            text, amount = _text(details.get("userComment")), _text(details.get("amountDisplayString"))
            our_kind = "paid"
        elif kind == "superStickerEvent":
            details = snippet.get("superStickerDetails") or {}
            sticker = details.get("superStickerMetadata") or {}
            text, amount, our_kind = _text(sticker.get("altText")), _text(details.get("amountDisplayString")), "paid"
        elif kind in MEMBER_TYPES:
            our_kind = "member"
        elif kind in SYSTEM_TYPES:
            our_kind = "system"
        elif kind == "userBannedEvent":
            return self._ban(item, snippet, author, received)
        try:
            published = parse_time(snippet.get("publishedAt"))
        except ValueError:
            published = received
        return Comment(platform=self.platform, source=self.name, platform_id=item["id"],
                       author_name=_text(author.get("displayName")),
                       author_id=_text(author.get("channelId") or snippet.get("authorChannelId")),
                       text=text, published_at=published, received_at=received, kind=our_kind, amount=amount,
                       extra=extra)

    def _ban(self, item: dict, snippet: dict, moderator: dict, received: float) -> Comment:
        details = snippet.get("userBannedDetails") or {}
        user = details.get("bannedUserDetails") or {}
        duration = _int(details.get("banDurationSeconds"))
        how = f"for {duration} s" if details.get("banType") == "temporary" and duration else "permanently"
        try:
            published = parse_time(snippet.get("publishedAt"))
        except ValueError:
            published = received
        return Comment(platform=self.platform, source=self.name, platform_id=item["id"],
                       author_name=_text(user.get("displayName")), author_id=_text(user.get("channelId")),
                       text=f"banned {how}", published_at=published, received_at=received, kind="banned",
                       extra={"by": _text(moderator.get("displayName")), "ban_type": details.get("banType")})

    # ---- errors -------------------------------------------------------------------------------------

    def _error(self, what: str, reply: Reply) -> SourceError:
        if reply.data is None or not isinstance(reply.data, dict) or "error" not in reply.data:
            return unexpected(what, reply)
        reason = _reason(reply) or "unknown"
        error = reply.data.get("error")
        message = re.sub(r"<[^>]*>", "", str(error.get("message", "")) if isinstance(error, dict) else "")[:160]
        text = f"{what}: HTTP {reply.status} {reason}: {message}"
        if reason == "rateLimitExceeded":
            return SourceError(text, RATE_LIMITED, retry_after=self.advised)
        if reason in ("quotaExceeded", "dailyLimitExceeded"):
            return SourceError(text, QUOTA)
        if reason == "pageTokenInvalid":
            self.page_token = None  # start again from the latest messages
            return SourceError(text, TRANSIENT)
        if reply.status == 401:
            return SourceError(f"{what}: the token was refused (HTTP 401 {reason})", BLOCKED)
        if reason == "liveChatNotFound" and not self._chat_configured:
            self.chat_id = None  # look the chat up again: the broadcast may have been restarted
        if reply.status >= 500:
            return SourceError(text, TRANSIENT)
        return SourceError(text, BLOCKED)


def _reason(reply: Reply) -> str | None:
    error = reply.data.get("error") if isinstance(reply.data, dict) else None
    errors = error.get("errors") if isinstance(error, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return errors[0].get("reason")
    return None


def _deleted(batch: Batch, details: object, key: str) -> None:
    target = details.get(key) if isinstance(details, dict) else None
    if isinstance(target, str) and target:
        batch.deleted_ids.append(target)
    else:
        _count(batch, "malformed")


def _count(batch: Batch, kind: str) -> None:
    batch.ignored[kind] = batch.ignored.get(kind, 0) + 1


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
