"""TikTok LIVE through the TikTokLive library (optional extra `tiktok`, 7.x), behind a small client seam.

The library is imported only when a TikTok source connects, so streamctl works without it. The seam is
`client_factory(unique_id, sign_api_key) -> TikTokLiveClient`; the adapter subscribes to the client's own
events, starts it with `start()` and stops it with `disconnect()` (never by cancelling `connect()`, which
runs `run_until_complete` inside the running loop). Tests hand in real clients whose network edges are
replaced (streamctl.fakes.tiktok).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..config import AudienceConfig
from ..events import now
from .models import Comment, ViewerSample
from .source import BLOCKED, FATAL, RATE_LIMITED, TRANSIENT, WAITING, Batch, SourceError, parse_time, stable_id

INSTALL_HINT = "TikTok needs the TikTokLive library: pip install 'streamctl[tiktok]'"
# The library's errors by class name (TikTokLive.client.errors), so the mapping needs no import of it.
ERROR_KINDS = {
    "UserOfflineError": WAITING,
    "UserNotFoundError": BLOCKED,
    "AgeRestrictedError": BLOCKED,
    "WebcastBlockedError": BLOCKED,
    "AuthenticatedWebSocketConnectionError": BLOCKED,
    "PremiumEndpointError": BLOCKED,
    "SignatureRateLimitError": RATE_LIMITED,
    "SignAPIError": TRANSIENT,
    "WebcastBlocked200Error": TRANSIENT,
}
# The events the adapter subscribes to (TikTokLive.events); the others are never delivered to us.
EVENTS = ("CommentEvent", "RoomUserSeqEvent", "LikeEvent", "GiftEvent", "LiveEndEvent", "DisconnectEvent")

ClientFactory = Callable[[str, "str | None"], Any]  # -> TikTokLive.TikTokLiveClient


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
        connection = Connection(self.factory(self.unique_id, self.credential))
        try:
            async for event in connection.events():
                batch = self._map(event)
                if batch is not None:
                    yield batch
                    if batch.ended:
                        return
        except SourceError:
            raise
        except Exception as e:  # the library's own errors, recognised by name
            kind = next((k for n, k in ERROR_KINDS.items() if n in _names(e)), TRANSIENT)
            raise SourceError(f"TikTok {self.unique_id}: {type(e).__name__}: {e}", kind,
                              retry_after=_retry_after(e)) from None
        finally:
            await connection.close()

    def _map(self, event: object) -> Batch | None:
        names = _names(event)
        if "CommentEvent" in names:
            found = self._comment(event)
            if not found.text and not found.author_id:  # a frame that parsed into nothing: not a comment
                return Batch(ignored={"CommentEvent without text or author": 1})
            return Batch(comments=[found])
        if "RoomUserSeqEvent" in names:
            viewers = _int(event, "total")  # watching now; `total_user` is everyone who has watched
            views = _int(event, "total_user")
            return Batch(viewers=ViewerSample(self.name, self.platform, now(), viewers, likes=self.likes,
                                              views=views or None))
        if "LikeEvent" in names:
            total = _int(event, "total")
            if total:
                self.likes = total  # folded into the next viewer sample
            return None
        if "LiveEndEvent" in names:
            return Batch(ended=True)
        if "DisconnectEvent" in names:
            return None  # the connection closed: `events()` ends, the poller reconnects
        return Batch(ignored={type(event).__name__: 1})

    def _comment(self, event: Any) -> Comment:
        """A CommentEvent: `user` is the proto User (`nickname`, `display_id` = the @handle, `id`)."""
        received = now()
        common = getattr(event, "common", None)
        user = getattr(event, "user", None)
        nickname = _text(user, "nickname").strip()
        handle = _text(user, "display_id").strip()
        user_id = str(_int(user, "id") or "") or handle
        text = _text(event, "content")
        created = _int(common, "create_time")
        try:
            published = parse_time(created) if created else received
        except ValueError:
            published = received
        msg_id = _int(common, "msg_id")
        platform_id = str(msg_id) if msg_id else stable_id(user_id, created, text)
        return Comment(platform=self.platform, source=self.name, platform_id=platform_id,
                       author_name=nickname or (f"@{handle}" if handle else ""), author_id=user_id, text=text,
                       published_at=published, received_at=received,
                       extra={"handle": handle} if handle else {})


def _int(obj: object, name: str) -> int | None:
    value = getattr(obj, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(obj: object, name: str) -> str:
    value = getattr(obj, name, None)
    return value if isinstance(value, str) else ""


def _retry_after(error: Exception) -> float | None:
    try:
        value = getattr(error, "retry_after", None)  # SignatureRateLimitError reads it from the 429's headers
    except (TypeError, ValueError, AssertionError):
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def library_client(unique_id: str, sign_api_key: str | None) -> Any:
    """The real TikTokLive client for one account; a clear FATAL source error when the library is missing."""
    try:
        from TikTokLive import TikTokLiveClient  # optional: imported only when used
    except ImportError:
        raise SourceError(INSTALL_HINT, FATAL) from None
    web_kwargs = {"signer_kwargs": {"sign_api_key": sign_api_key}} if sign_api_key else None
    return TikTokLiveClient(unique_id=unique_id, web_kwargs=web_kwargs)


class Connection:
    """One connection of a TikTokLiveClient, its emitted events read as an async iterator."""

    def __init__(self, client: Any):
        from TikTokLive import events as library_events

        self.client = client
        self.queue: asyncio.Queue = asyncio.Queue()
        for name in EVENTS:
            # A plain function: the emitter calls it at once, in order (a coroutine would become a task).
            client.add_listener(getattr(library_events, name), self.queue.put_nowait)

    async def events(self) -> AsyncIterator[Any]:
        """Start the client and yield its events until its websocket loop ends; raises the library's errors."""
        loop = await self.client.start(fetch_room_info=False)  # raises before connecting: offline, not found...
        while True:
            getter = asyncio.ensure_future(self.queue.get())
            try:
                done, _ = await asyncio.wait({getter, loop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                getter.cancel()
            if getter in done:
                yield getter.result()
                continue
            while not self.queue.empty():
                yield self.queue.get_nowait()
            loop.result()  # raises the library's error, if that is why the connection ended
            return

    async def close(self) -> None:
        """The library's own stop: close the websocket and wait for its loop; then its HTTP client."""
        with contextlib.suppress(Exception):
            await self.client.disconnect()
        with contextlib.suppress(Exception):
            await self.client.web.close()
