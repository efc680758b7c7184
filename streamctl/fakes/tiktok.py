"""A stand-in for the TikTokLive library at its boundary: a client emitting TikTokLive-shaped events and errors.

TikTok's wire protocol is signed, undocumented and changes, so the fake sits where the library hands us
its event objects. The classes carry the names and attributes of TikTokLive's own (CommentEvent with
`common.msg_id`, `user.nickname`, `comment`; RoomUserSeqEvent with `viewer_count`, `total_user`...).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

_ids = itertools.count(7_300_000_000_000_000_000)


@dataclass
class Common:
    msg_id: int = field(default_factory=lambda: next(_ids))
    create_time: int = field(default_factory=lambda: int(time.time() * 1000))  # milliseconds
    room_id: int = 7_123_456_789


@dataclass
class User:
    id: int = 0
    nickname: str = ""
    unique_id: str = ""


@dataclass
class CommentEvent:
    user: User
    content: str
    common: Common = field(default_factory=Common)

    @property
    def comment(self) -> str:
        return self.content


@dataclass
class RoomUserSeqEvent:
    viewer_count: int
    total_user: int = 0
    common: Common = field(default_factory=Common)


@dataclass
class LikeEvent:
    user: User
    count: int = 1
    total: int = 0
    common: Common = field(default_factory=Common)


@dataclass
class GiftEvent:
    user: User
    repeat_count: int = 1
    common: Common = field(default_factory=Common)


@dataclass
class ConnectEvent:
    unique_id: str
    room_id: int = 7_123_456_789


class DisconnectEvent:
    pass


@dataclass
class LiveEndEvent:
    common: Common = field(default_factory=Common)


class UserOfflineError(RuntimeError):
    """The account is not live."""


class UserNotFoundError(RuntimeError):
    """No such account."""


class SignatureRateLimitError(RuntimeError):
    """The sign server refused: too many requests."""

    def __init__(self, message: str = "Too many connections started, try again later", retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


def comment(nickname: str, text: str, unique_id: str | None = None, user_id: int = 1,
            msg_id: int | None = None) -> CommentEvent:
    common = Common() if msg_id is None else Common(msg_id=msg_id)
    return CommentEvent(User(user_id, nickname, unique_id or nickname.lower().replace(" ", "")), text, common)


class FakeTikTok:
    """Hands out one client per connection; each replays its scripted session, then takes pushed events."""

    def __init__(self, sessions: list[list] | None = None):
        self.sessions = list(sessions or [])
        self.connects = 0
        self.unique_ids: list[str] = []
        self.api_keys: list[str | None] = []
        self.current: FakeClient | None = None

    def factory(self, unique_id: str, sign_api_key: str | None) -> FakeClient:
        self.connects += 1
        self.unique_ids.append(unique_id)
        self.api_keys.append(sign_api_key)
        script = self.sessions.pop(0) if self.sessions else []
        self.current = FakeClient(unique_id, script)
        return self.current

    async def push(self, *events: object) -> None:
        """Deliver events on the connection that is open now."""
        if self.current is None:
            raise RuntimeError("no client connected")
        for event in events:
            await self.current.feed.put(event)


class FakeClient:
    """One connection: yields ConnectEvent, the script (raising any exception in it), then pushed events."""

    def __init__(self, unique_id: str, script: list):
        self.unique_id = unique_id
        self.script = script
        self.feed: asyncio.Queue = asyncio.Queue()
        self.closed = False

    async def events(self) -> AsyncIterator[object]:
        if self.script and isinstance(self.script[0], BaseException):
            raise self.script[0]  # failed before connecting (offline, sign server refused...)
        yield ConnectEvent(self.unique_id)
        for item in self.script:
            if isinstance(item, BaseException):
                raise item
            yield item
            if isinstance(item, DisconnectEvent | LiveEndEvent):
                return
        while not self.closed:
            item = await self.feed.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if isinstance(item, DisconnectEvent | LiveEndEvent):
                return

    async def close(self) -> None:
        self.closed = True
