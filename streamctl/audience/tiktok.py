"""TikTok LIVE through the TikTokLive library (optional extra `tiktok`), behind a small client seam.

The library is imported only when a TikTok source connects, so streamctl works without it. The seam is
`client_factory(unique_id, sign_api_key) -> client` where `client.events()` yields TikTokLive event
objects and raises its errors; tests hand in a fake client (streamctl.fakes.tiktok).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from ..config import AudienceConfig
from ..events import now
from .models import Comment, ViewerSample
from .source import BLOCKED, FATAL, RATE_LIMITED, TRANSIENT, WAITING, Batch, SourceError, parse_time, stable_id

INSTALL_HINT = "TikTok needs the TikTokLive library: pip install 'streamctl[tiktok]'"
# Library errors by class name, so the mapping needs no import of the library.
ERROR_KINDS = {
    "UserOfflineError": WAITING,
    "UserNotFoundError": BLOCKED,
    "AgeRestrictedError": BLOCKED,
    "SignatureRateLimitError": RATE_LIMITED,
    "SignAPIError": RATE_LIMITED,
    "WebcastBlocked200Error": TRANSIENT,
}


class LiveClient(Protocol):
    def events(self) -> AsyncIterator[Any]: ...

    async def close(self) -> None: ...


ClientFactory = Callable[[str, "str | None"], LiveClient]


def _names(obj: object) -> set[str]:
    return {cls.__name__ for cls in type(obj).__mro__}


class TikTokSource:
    """One account's LIVE: comments, viewer counts (RoomUserSeq), likes and the end of the live."""

    platform = "tiktok"
    streaming = True  # always pushed by the library

    def __init__(self, config: AudienceConfig, http: object = None, client_factory: ClientFactory | None = None):
        self.name = config.name
        self.unique_id = str(config.options.unique_id)
        if not self.unique_id.startswith("@"):
            self.unique_id = "@" + self.unique_id
        self.credential = config.credential  # sign-server API key, optional
        self.factory = client_factory or library_client
        self.units = 0
        self.likes: int | None = None

    def resume(self, cursor: str | None) -> None:
        """TikTok replays recent messages on connect; the poller drops the ones already seen."""

    async def close(self) -> None:
        """Each connection's client is closed by `listen`."""

    async def listen(self) -> AsyncIterator[Batch]:
        """Connect and yield what each event brings; returns when the connection drops or the LIVE ends."""
        client = self.factory(self.unique_id, self.credential)
        try:
            async for event in client.events():
                batch = self._map(event)
                if batch is not None:
                    yield batch
                    if batch.ended:
                        return
        except SourceError:
            raise
        except Exception as e:  # the library's own errors, recognised by name
            kind = next((k for n, k in ERROR_KINDS.items() if n in _names(e)), TRANSIENT)
            retry = getattr(e, "retry_after", None)
            raise SourceError(f"TikTok {self.unique_id}: {type(e).__name__}: {e}", kind,
                              retry_after=float(retry) if isinstance(retry, int | float) else None) from None
        finally:
            await client.close()

    def _map(self, event: object) -> Batch | None:
        names = _names(event)
        if "CommentEvent" in names:
            return Batch(comments=[self._comment(event)])
        if "RoomUserSeqEvent" in names:
            viewers = _first_int(event, "viewer_count", "m_total", "total")
            views = _first_int(event, "total_user")
            return Batch(viewers=ViewerSample(self.name, self.platform, now(), viewers, likes=self.likes,
                                              views=views or None))
        if "LikeEvent" in names:
            total = _first_int(event, "total", "total_likes")
            if total:
                self.likes = total  # folded into the next viewer sample
            return None
        if "LiveEndEvent" in names:
            return Batch(ended=True)
        if names & {"ConnectEvent", "DisconnectEvent"}:
            return None
        return Batch(ignored={type(event).__name__: 1})

    def _comment(self, event: Any) -> Comment:
        received = now()
        common = getattr(event, "common", None) or getattr(event, "base_message", None)
        user = getattr(event, "user", None)
        nickname = str(getattr(user, "nickname", "") or getattr(user, "nick_name", "") or "")
        unique_id = str(getattr(user, "unique_id", "") or "")
        user_id = str(getattr(user, "id", "") or getattr(user, "user_id", "") or unique_id)
        text = getattr(event, "comment", None)
        if not isinstance(text, str):
            text = str(getattr(event, "content", "") or "")
        created = _first_int(common, "create_time") if common is not None else None
        try:
            published = parse_time(created) if created else received
        except ValueError:
            published = received
        msg_id = _first_int(common, "msg_id", "message_id") if common is not None else None
        platform_id = str(msg_id) if msg_id else stable_id(user_id, created, text)
        return Comment(platform=self.platform, source=self.name, platform_id=platform_id,
                       author_name=nickname or unique_id, author_id=user_id, text=text, published_at=published,
                       received_at=received, extra={"unique_id": unique_id} if unique_id else {})


def _first_int(obj: object, *names: str) -> int | None:
    for name in names:
        value = getattr(obj, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def library_client(unique_id: str, sign_api_key: str | None) -> LiveClient:
    """The real TikTokLive client; a clear FATAL source error when the library is not installed."""
    try:
        from TikTokLive import TikTokLiveClient  # optional: imported only when used
        from TikTokLive.events import (
            CommentEvent,
            DisconnectEvent,
            LikeEvent,
            LiveEndEvent,
            RoomUserSeqEvent,
        )
    except ImportError:
        raise SourceError(INSTALL_HINT, FATAL) from None
    if sign_api_key:
        with contextlib.suppress(ImportError, AttributeError):
            from TikTokLive.client.web.web_settings import WebDefaults

            WebDefaults.tiktok_sign_api_key = sign_api_key
    return _LibraryClient(TikTokLiveClient(unique_id=unique_id),
                          (CommentEvent, RoomUserSeqEvent, LikeEvent, LiveEndEvent, DisconnectEvent))


class _LibraryClient:
    """Adapts TikTokLiveClient's callbacks to the seam's async iterator of events."""

    def __init__(self, client: Any, event_types: tuple[type, ...]):
        self.client = client
        self.queue: asyncio.Queue = asyncio.Queue()
        for event_type in event_types:
            client.add_listener(event_type, self.queue.put)

    async def events(self) -> AsyncIterator[Any]:
        connection = asyncio.create_task(self.client.connect(fetch_room_info=False), name="tiktok.connect")
        getter: asyncio.Future | None = None
        try:
            while True:
                getter = asyncio.ensure_future(self.queue.get())
                done, _ = await asyncio.wait({getter, connection}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                    continue
                while not self.queue.empty():
                    yield self.queue.get_nowait()
                connection.result()  # raises the library's error, if that is why it stopped
                return
        finally:
            for pending in (getter, connection):
                if pending is not None:
                    pending.cancel()
            await asyncio.gather(connection, return_exceptions=True)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.disconnect()
