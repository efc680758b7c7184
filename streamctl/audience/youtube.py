"""YouTube: live chat pushed by liveChatMessages.streamList (or polled from .list), viewers from videos.list."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator

import aiohttp
from multidict import CIMultiDict

from ..accounts.google import REVOKED, CredentialError, StaticCredential
from ..config import AudienceConfig
from ..events import now
from .jsonarray import ArrayReader
from .models import Comment, ViewerSample
from .options import YOUTUBE_TRANSPORTS, YouTubeOptions
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

log = logging.getLogger(__name__)

LIST_PATH = "/youtube/v3/liveChat/messages"
STREAM_PATH = "/youtube/v3/liveChat/messages/stream"
TRANSPORTS = YOUTUBE_TRANSPORTS
FALLBACK_STATUSES = (404, 405, 501)  # no streamList behind this api_base: poll instead
STALL_S = 60.0  # a live stream that sends no byte for this long is presumed dead: reconnect from the last token
ERROR_BODY_MAX = 65536
PARTS = "id,snippet,authorDetails"
MAX_RESULTS = 2000
MEMBER_TYPES = ("newSponsorEvent", "memberMilestoneChatEvent", "membershipGiftingEvent",
                "giftMembershipReceivedEvent")
SYSTEM_TYPES = ("sponsorOnlyModeStartedEvent", "sponsorOnlyModeEndedEvent")
# Messages that carry money: Super Chat, Super Sticker, a gift (jewels), fan funding (deprecated, still sent).
PAID_TYPES = ("superChatEvent", "superStickerEvent", "giftEvent", "fanFundingEvent")


class YouTubeSource:
    """One video's live chat: the poller `listen`s (5 units a connection) or calls `fetch` (5 units a poll).

    `streaming` starts True for transport "stream" and turns False when the stream endpoint is missing,
    which makes the poller poll `fetch` instead; `sample` (1 unit) reads the viewer count.
    """

    platform = "youtube"

    def __init__(self, config: AudienceConfig, http: Http, signer=None):
        self.name = config.name
        options: YouTubeOptions = config.options
        self.video_id = options.video_id
        self.chat_id: str | None = options.live_chat_id
        self._chat_configured = self.chat_id is not None
        self.credential = config.credential
        # Who signs the calls: the account of a credentials_file (refreshed tokens), else credential_env as is.
        self.signer = signer or (StaticCredential(config.credential) if config.credential else None)
        self.api = options.api_base.rstrip("/")
        self.http = http
        self.page_token: str | None = None
        self.units = 0
        self.advised: float | None = None  # the last pollingIntervalMillis, in seconds
        self.stall_s = STALL_S
        transport = options.transport
        self._misconfigured = None
        if transport not in TRANSPORTS:
            self._misconfigured = f"transport {str(transport)[:20]!r} is unknown, expected stream or poll"
        self.streaming = transport == "stream"

    def resume(self, cursor: str | None) -> None:
        self.page_token = cursor or None

    def bind_broadcast(self, video_id: str, chat_id: str | None) -> None:
        """The broadcast streamctl made for the destination of the same name: read its chat."""
        if video_id != self.video_id:
            self.page_token = None if self.video_id else self.page_token
        self.video_id = video_id
        if chat_id:
            self.chat_id, self._chat_configured = chat_id, True

    async def close(self) -> None:
        """Nothing of its own to release: the HTTP session belongs to the service."""

    # ---- calls --------------------------------------------------------------------------------------

    async def _signed(self, what: str, params: dict, cost: int) -> tuple[dict, dict, str]:
        """The query and headers of a call, with the credential (and the token used); books the quota units."""
        if self._misconfigured:
            raise SourceError(self._misconfigured, FATAL)
        if self.signer is None:
            raise SourceError(f"{what}: no credential: set the environment variable named by credential_env",
                              FATAL)
        headers: dict = {}
        params = dict(params)
        try:
            token = await self.signer.sign(params, headers)
        except CredentialError as e:
            # A revoked sign-in needs a person (the message names the command); anything else may pass.
            raise SourceError(f"{what}: {e}", BLOCKED if e.kind == REVOKED else TRANSIENT) from None
        self.units += cost  # YouTube charges every request, failed or not
        return params, headers, token

    async def _get(self, what: str, path: str, params: dict, cost: int) -> Reply:
        for _attempt in range(2):
            query, headers, token = await self._signed(what, params, cost)
            reply = await self.http.get(what, self.api + path, query, headers)
            # A refused access token is refreshed and the call made once more, so the chat has no gap.
            if reply.status != 401 or not self.signer.refused(token):
                return reply
        return reply

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

    async def _chat_params(self) -> dict | None:
        """The chat query after the stored page token; None when the broadcast is over.

        Finds the chat id from the video when it is not configured (raising WAITING until it is live).
        """
        if self.chat_id is None:
            if not self.video_id:
                raise SourceError("waiting for the destination's broadcast to be made (no video id yet)", WAITING)
            details = (await self._video()).get("liveStreamingDetails") or {}
            if details.get("actualEndTime"):
                return None
            self.chat_id = details.get("activeLiveChatId")
            if not self.chat_id:
                raise SourceError(f"video {self.video_id} is not live yet (no active live chat)", WAITING)
        params = {"liveChatId": self.chat_id, "part": PARTS, "maxResults": str(MAX_RESULTS)}
        if self.page_token:
            params["pageToken"] = self.page_token
        return params

    async def fetch(self) -> Batch:
        """One page of chat messages after the stored page token (liveChatMessages.list)."""
        params = await self._chat_params()
        if params is None:
            return Batch(ended=True)
        what = "liveChatMessages.list"
        reply = await self._get(what, LIST_PATH, params, LIST_COST)
        if reply.status == 403 and _reason(reply) == "liveChatEnded":
            return Batch(ended=True)
        if reply.status != 200 or not isinstance(reply.data, dict):
            raise self._error(what, reply)
        return self._page(reply.data)

    async def listen(self) -> AsyncIterator[Batch]:
        """Chat pushed over liveChatMessages.streamList: a Batch per streamed response, until the stream closes.

        The body is one long JSON array read as it arrives. Returns on a clean close or a stall (the poller
        reconnects from the last page token); a cut-off or garbled stream is a transient error. When the
        endpoint is not there it sets `streaming` to False and returns, and the poller polls `fetch`.
        """
        params = await self._chat_params()
        if params is None:
            yield Batch(ended=True)
            return
        what = "liveChatMessages.streamList"
        params, headers, token = await self._signed(what, params, LIST_COST)
        # No total timeout: the answer lasts as long as the chat. Stalls are caught per read below.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.http.timeout)
        reader = ArrayReader()
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout(self.http.timeout):
                    resp = await stack.enter_async_context(
                        self.http.session().get(self.api + STREAM_PATH, params=params, headers=headers,
                                                timeout=timeout))
                if resp.status == 401 and self.signer.refused(token):
                    raise SourceError(f"{what}: the access token was refused; reconnecting with a fresh one")
                if resp.status != 200:
                    batch = await self._refused(what, resp)
                    if batch is not None:
                        yield batch
                    return
                while not reader.done:
                    try:
                        async with asyncio.timeout(self.stall_s):
                            chunk = await resp.content.readany()
                    except TimeoutError:
                        # A dead connection, or only a quiet chat: either way the last token loses nothing.
                        log.debug("%s: %s sent nothing for %g s; reconnecting", self.name, what, self.stall_s)
                        return
                    elements = reader.feed(chunk) if chunk else []
                    if not chunk:
                        reader.end()
                    for element in elements:
                        batch = self._streamed(what, element)
                        yield batch
                        if batch.ended:
                            return
                    if reader.error is not None and reader.error.not_json and reader.count == 0:
                        self._fall_back(what, f"answered {reader.error}")
                        return
                    if reader.error is not None:
                        raise SourceError(f"{what}: {reader.error}; resuming from the last complete response")
        except (aiohttp.ClientError, OSError) as e:
            raise SourceError(f"{what}: {type(e).__name__}: {e}; resuming from the last complete response") from None
        except TimeoutError:
            raise SourceError(f"{what}: no answer within {self.http.timeout:g} s") from None

    async def _refused(self, what: str, resp: aiohttp.ClientResponse) -> Batch | None:
        """A stream refused with an HTTP error: the end of the chat (a Batch), a fallback (None), or raises."""
        reader = ArrayReader()
        raw = bytearray()
        first = None
        async with asyncio.timeout(self.http.timeout):
            while first is None and reader.error is None and len(raw) < ERROR_BODY_MAX:
                chunk = await resp.content.readany()
                if not chunk:
                    break
                raw += chunk
                elements = reader.feed(chunk)
                first = elements[0] if elements else None  # errors come array-wrapped: the first is the error
        reply = Reply(resp.status, first, CIMultiDict(resp.headers), raw.decode("utf-8", errors="replace"))
        reason = _reason(reply)
        if resp.status in FALLBACK_STATUSES and reason is None:
            self._fall_back(what, f"answered HTTP {resp.status}")
            return None
        if reason == "liveChatEnded":
            return Batch(ended=True)
        raise self._error(what, reply)

    def _streamed(self, what: str, element: dict) -> Batch:
        """One streamed element: a LiveChatMessageListResponse, or an error sent inside the stream."""
        error = element.get("error")
        if error is None:
            return self._page(element)
        code = error.get("code") if isinstance(error, dict) else None
        reply = Reply(code if isinstance(code, int) else 500, element, {}, "")
        if _reason(reply) == "liveChatEnded":
            return Batch(ended=True)
        raise self._error(what, reply)

    def _fall_back(self, what: str, why: str) -> None:
        self.streaming = False
        log.warning("%s: %s %s; polling liveChatMessages.list instead", self.name, what, why)

    async def sample(self) -> Batch:
        """Concurrent viewers (a string in the API); 0 once the broadcast has ended."""
        if not self.video_id:
            raise SourceError("waiting for the destination's broadcast to be made (no video id yet)", WAITING)
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
        elif kind in ("textMessageEvent", *PAID_TYPES, "userBannedEvent", *MEMBER_TYPES, *SYSTEM_TYPES):
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
        elif kind == "fanFundingEvent":
            details = snippet.get("fanFundingEventDetails") or {}
            text, amount = _text(details.get("userComment")) or display, _text(details.get("amountDisplayString"))
            our_kind = "paid"
        elif kind == "giftEvent":
            text, amount, our_kind = _gift(snippet.get("giftDetails"), display), None, "paid"
            jewels = (snippet.get("giftDetails") or {}).get("jewelsAmount")
            if isinstance(jewels, int) and not isinstance(jewels, bool):
                amount = f"{jewels} jewels"
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
            fix = ": run `streamctl auth youtube` again" if getattr(self.signer, "refreshable", False) else ""
            return SourceError(f"{what}: the token was refused (HTTP 401 {reason}){fix}", BLOCKED)
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


def _gift(details: object, display: str) -> str:
    """A gift's line: YouTube's own display text, else its name and how many in a row."""
    if display:
        return display
    details = details if isinstance(details, dict) else {}
    name = _text(details.get("giftName")) or _text(details.get("altText")) or "a gift"
    combo = details.get("comboCount")
    return f"sent {name} x{combo}" if isinstance(combo, int) and not isinstance(combo, bool) and combo > 1 \
        else f"sent {name}"
