"""TikTok LIVE at the TikTokLive library's network edges: its real client, fed protobuf frames made here.

TikTok's wire protocol is signed, undocumented and changes, so this fake replaces only where the library
touches the network: the web routes that find the room, check it is live and sign the websocket
(`client.web.fetch_*`), and the websocket client (`client._ws`). Everything in between is the library's own:
`TikTokLiveClient.start()` and `disconnect()`, its websocket loop, the protobuf parsing (TikTokLiveProto),
its custom events (LiveEndEvent from a control message), and its event emitter. The frames are the
library's real protobuf messages (WebcastChatMessage with a `User` that has `nickname`, `display_id`, `id`;
WebcastRoomUserSeqMessage with `total` and `total_user`; WebcastLikeMessage with `total`...), serialised to
bytes as TikTok sends them.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from TikTokLive import TikTokLiveClient
from TikTokLive.client.errors import SignatureRateLimitError, UserNotFoundError, UserOfflineError
from TikTokLive.proto import (
    CommonMessageData,
    ControlAction,
    ProtoMessageFetchResult,
    ProtoMessageFetchResultBaseProtoMessage,
    User,
    WebcastChatMessage,
    WebcastControlMessage,
    WebcastGiftMessage,
    WebcastLikeMessage,
    WebcastRoomUserSeqMessage,
)

ROOM_ID = 7_123_456_789
_ids = itertools.count(7_300_000_000_000_000_000)
Frame = ProtoMessageFetchResultBaseProtoMessage
OFFLINE = "offline"  # a session that starts with this finds the account not live (the library raises)
DROP = "drop"  # the websocket closes here (the library then emits DisconnectEvent)
__all__ = ["DROP", "OFFLINE", "FakeTikTok", "SignatureRateLimitError", "UserNotFoundError", "UserOfflineError"]


def _common(method: str, msg_id: int | None = None, at_ms: int | None = None) -> CommonMessageData:
    return CommonMessageData(method=method, msg_id=next(_ids) if msg_id is None else msg_id, room_id=ROOM_ID,
                             create_time=int(time.time() * 1000) if at_ms is None else at_ms)


def _frame(method: str, message: Any) -> Frame:
    return Frame(method=method, payload=bytes(message), msg_id=message.common.msg_id)


def comment(nickname: str, text: str, handle: str | None = None, user_id: int = 1, msg_id: int | None = None,
            at_ms: int | None = None) -> Frame:
    """A chat message as TikTok sends it; `handle` is the @-name (`display_id`), derived when not given."""
    handle = nickname.lower().replace(" ", "") if handle is None else handle
    user = User(id=user_id, nickname=nickname, display_id=handle)
    return _frame("WebcastChatMessage", WebcastChatMessage(common=_common("WebcastChatMessage", msg_id, at_ms),
                                                           user=user, content=text))


def viewers(total: int, total_user: int = 0) -> Frame:
    """The room's counters: `total` watching now, `total_user` who have watched."""
    return _frame("WebcastRoomUserSeqMessage", WebcastRoomUserSeqMessage(
        common=_common("WebcastRoomUserSeqMessage"), total=total, total_user=total_user))


def likes(total: int, count: int = 1, user_id: int = 2) -> Frame:
    return _frame("WebcastLikeMessage", WebcastLikeMessage(
        common=_common("WebcastLikeMessage"), count=count, total=total, user=User(id=user_id, nickname="fan")))


def gift(user_id: int = 3, repeat_count: int = 1) -> Frame:
    return _frame("WebcastGiftMessage", WebcastGiftMessage(
        common=_common("WebcastGiftMessage"), repeat_count=repeat_count, user=User(id=user_id, nickname="giver")))


def live_end() -> Frame:
    """The control message TikTok sends when the broadcaster ends the LIVE."""
    return _frame("WebcastControlMessage", WebcastControlMessage(
        common=_common("WebcastControlMessage"), action=ControlAction.STREAM_ENDED))


def garbage(method: str = "WebcastChatMessage", payload: bytes = b"\n\xff") -> Frame:
    """A frame whose payload is not the protobuf its method names: a truncated one the library cannot parse
    (it logs it and goes on), or bytes that parse into an empty message (b"\\xff\\xff\\xff\\xff\\x0f")."""
    return Frame(method=method, payload=payload, msg_id=next(_ids))


def rate_limited(retry_after: int = 1) -> SignatureRateLimitError:
    """The sign server's 429, as the library raises it."""
    response = httpx.Response(429, headers={"RateLimit-Remaining": str(retry_after)})
    return SignatureRateLimitError("Too many connections started", "Retry in %s seconds", response=response)


class FakeTikTok:
    """Hands out one real TikTokLiveClient per connection; each plays its scripted session, then pushed frames."""

    def __init__(self, sessions: list[list] | None = None):
        self.sessions = list(sessions or [])
        self.connects = 0
        self.unique_ids: list[str] = []
        self.api_keys: list[str | None] = []
        self.current: FakeWebcast | None = None
        self.clients: list[TikTokLiveClient] = []

    def factory(self, unique_id: str, sign_api_key: str | None) -> TikTokLiveClient:
        self.connects += 1
        self.unique_ids.append(unique_id)
        self.api_keys.append(sign_api_key)
        script = self.sessions.pop(0) if self.sessions else []
        client = TikTokLiveClient(unique_id=unique_id)
        self.current = FakeWebcast(script)
        self.current.install(client)
        self.clients.append(client)
        return client

    async def push(self, *frames: Frame | str | BaseException) -> None:
        """Deliver frames on the connection that is open now."""
        if self.current is None:
            raise RuntimeError("no client connected")
        for frame in frames:
            await self.current.feed.put(frame)


class FakeWebcast:
    """One connection's network edges: the room lookup, live check and signing, and the websocket."""

    def __init__(self, script: list):
        self.script = list(script)
        self.feed: asyncio.Queue = asyncio.Queue()
        self.open = False
        self.closed = asyncio.Event()
        self.disconnects = 0

    def install(self, client: TikTokLiveClient) -> None:
        web = client.web
        web.fetch_room_id_from_html = self._room_id
        web.fetch_room_id_from_api = self._room_id
        web.fetch_is_live = self._is_live
        web.fetch_signed_websocket = self._signed
        client._ws = self  # the websocket client: `connected`, `connect(...)`, `disconnect()`

    async def _room_id(self, unique_id: str) -> int:
        return ROOM_ID

    async def _is_live(self, room_id: int | None = None, unique_id: str | None = None) -> bool:
        if self.script and self.script[0] == OFFLINE:
            self.script.pop(0)
            return False
        return True

    async def _signed(self, platform: Any = None) -> ProtoMessageFetchResult:
        if self.script and isinstance(self.script[0], BaseException):
            raise self.script.pop(0)  # the sign server refused (rate limit, blocked...)
        return ProtoMessageFetchResult(cursor="0", is_first=True)

    # ---- the websocket client's surface, as TikTokLiveClient uses it ---------------------------------

    @property
    def connected(self) -> bool:
        return self.open

    async def connect(self, **_: Any) -> AsyncIterator[ProtoMessageFetchResult]:
        self.open = True
        try:
            yield ProtoMessageFetchResult(is_first=True)  # the library emits ConnectEvent for it
            for item in self.script:
                if self._ends(item):
                    return
                yield ProtoMessageFetchResult(messages=[item])
            while True:
                item = await self._next()
                if item is None or self._ends(item):
                    return
                yield ProtoMessageFetchResult(messages=[item])
        finally:
            self.open = False

    def _ends(self, item: Any) -> bool:
        """Whether the connection ends at this item (raising the error it is, as a broken socket does)."""
        if isinstance(item, BaseException):
            raise item
        return item == DROP or self.closed.is_set()

    async def _next(self) -> Any:
        """The next pushed item, or None once `disconnect()` closed the connection."""
        getter = asyncio.ensure_future(self.feed.get())
        closing = asyncio.ensure_future(self.closed.wait())
        done, _ = await asyncio.wait({getter, closing}, return_when=asyncio.FIRST_COMPLETED)
        for task in (getter, closing):
            task.cancel()
        return getter.result() if getter in done else None

    async def disconnect(self) -> None:
        self.disconnects += 1
        self.closed.set()
