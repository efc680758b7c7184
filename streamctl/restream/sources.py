"""Input sources: where one program input's FLV tags come from (our RTMP listener, or an ffmpeg child for an
SRT listener, a pull, a file or testsrc).

A source knows nothing of the program, the slate or the other input: it only tells its `FeedSink` that a feed
started, each tag, that the feed ended (and why), that it is in trouble while waiting (a port taken, a bad
passphrase) and that it turned a publisher away. It restarts itself (with backoff) until cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol
from urllib.parse import urlsplit

from ..config import DEFAULT_PORTS, IngestConfig
from ..redact import register_secret
from .commands import hidden_input, ingest_argv
from .flv import Tag
from .flvchild import run_flv_child
from .hidden import OptionsPipe
from .rtmp_server import RtmpServer, RtmpSession
from .supervisor import Supervisor

log = logging.getLogger(__name__)

STALL_S = 5.0  # a live feed with no tag for this long has ended
FIRST_TAG_S = 15.0  # a pull, file or testsrc that has sent nothing by now is restarted
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0)
STEADY_S = 10.0  # live this long and the backoff starts over


class FeedSink(Protocol):
    """What a source tells: feeds starting and ending, their tags, trouble while waiting, refusals."""

    async def feed_started(self, publisher: str | None) -> None: ...

    async def feed_tag(self, tag: Tag) -> None: ...

    async def feed_ended(self, reason: str) -> None: ...

    async def trouble(self, error: str | None) -> None: ...

    async def refused(self, address: str, reason: str) -> None: ...


def listen_address(config: IngestConfig) -> tuple[str, int]:
    """Host and port an rtmp_listen or srt_listen ingest binds."""
    parts = urlsplit(config.url)
    host = parts.hostname or "0.0.0.0"
    if host == "localhost":
        host = "127.0.0.1"
    return host, parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 1935)


def rtmp_app_and_key(config: IngestConfig) -> tuple[str, str | None]:
    """The app publishers must use and the key they must present (None: any key).

    `rtmp://0.0.0.0:1935/live` with `key_env` is app `live` and that key; without `key_env` a key may
    also sit in the URL itself (`rtmp://0.0.0.0:1935/live/KEY`).
    """
    segments = [s for s in urlsplit(config.url).path.split("/") if s]
    app = segments[0] if segments else "live"
    key = config.key or ("/".join(segments[1:]) or None)
    register_secret(key)
    return app, key


def _backoff(backoff_s: tuple[float, ...], attempt: int) -> float:
    return backoff_s[min(attempt, len(backoff_s) - 1)]


class RtmpListenSource:
    """Our own RTMP server on the input's address: one publisher at a time, app and key checked."""

    def __init__(self, config: IngestConfig, sink: FeedSink, *, stall_s: float = STALL_S,
                 backoff_s: tuple[float, ...] = BACKOFF_S):
        self.config = config
        self.sink = sink
        self.stall_s = stall_s
        self.backoff_s = backoff_s
        self.server: RtmpServer | None = None
        self.restarts = 0  # a listener is never restarted; the field is there for every source

    async def run(self) -> None:
        app, key = rtmp_app_and_key(self.config)
        host, port = listen_address(self.config)
        attempt = 0
        while True:
            server = RtmpServer(host, port, app=app, key=key, on_publish=self._on_publish, on_tag=self._on_tag,
                                on_unpublish=self._on_unpublish, on_refuse=self._on_refuse,
                                idle_timeout_s=self.stall_s)
            try:
                await server.start()
            except OSError as e:
                # Someone else holds the port: say so and try again later rather than give up.
                await self.sink.trouble(f"cannot listen on {host}:{port}: {e.strerror or e}")
                await asyncio.sleep(_backoff(self.backoff_s, attempt))
                attempt += 1
                continue
            self.server = server  # only once it listens: whoever waits for it can connect
            try:
                log.info("ingest listening on %s", self.config.display_url)
                await self.sink.trouble(None)
                await asyncio.Event().wait()
            finally:
                await server.close()

    async def _on_publish(self, session: RtmpSession) -> None:
        await self.sink.feed_started(session.peer)

    async def _on_tag(self, session: RtmpSession, tag: Tag) -> None:
        await self.sink.feed_tag(tag)

    async def _on_unpublish(self, session: RtmpSession) -> None:
        await self.sink.feed_ended(f"{session.peer}: {session.close_reason}")

    async def _on_refuse(self, session: RtmpSession, reason: str) -> None:
        await self.sink.refused(session.peer, reason)


class ChildSource:
    """An ffmpeg child writing the input as FLV (SRT listener, pull, file, testsrc), restarted with backoff."""

    def __init__(self, config: IngestConfig, sink: FeedSink, supervisor: Supervisor, event_name: str, *,
                 name: str, realtime: bool = True, stall_s: float = STALL_S, first_tag_s: float = FIRST_TAG_S,
                 backoff_s: tuple[float, ...] = BACKOFF_S):
        self.config = config
        self.sink = sink
        self.supervisor = supervisor
        self.event_name = event_name
        self.name = name  # the child's name under the supervisor, e.g. ingest-file
        self.realtime = realtime
        self.stall_s = stall_s
        self.first_tag_s = first_tag_s
        self.backoff_s = backoff_s
        self.server = None  # only a listener has one
        self.restarts = 0

    async def run(self) -> None:
        try:
            argv = ingest_argv(self.config, self.event_name, realtime=self.realtime)
            hidden = hidden_input(self.config)  # the passphrase or key, for a pipe: never on the command line
        except ValueError as e:
            # A bad passphrase will not get better by retrying.
            await self.sink.trouble(str(e))
            await asyncio.Event().wait()
            return
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            started_at: list[float] = []
            reason = await self._run_child(argv, started_at, hidden)
            if started_at and loop.time() - started_at[0] >= STEADY_S:
                attempt = 0
            await self.sink.feed_ended(reason)
            await asyncio.sleep(_backoff(self.backoff_s, attempt))
            attempt += 1
            self.restarts += 1

    async def _run_child(self, argv: list[str], started_at: list[float], hidden: bytes | None = None) -> str:
        """One ffmpeg run: its tags to the sink until it ends or stalls; returns why it ended.

        With `hidden` (an ffconcat list holding the key), this run reads its input from a fresh pipe of it."""

        async def take(tag: Tag) -> None:
            if not started_at:
                started_at.append(asyncio.get_running_loop().time())
                await self.sink.feed_started(None)
            await self.sink.feed_tag(tag)

        # A listener may wait for its caller as long as it takes; other sources must start promptly.
        first_tag_s = None if self.config.kind == "srt_listen" else self.first_tag_s
        if hidden is None:
            return await run_flv_child(self.supervisor, self.name, argv, take, first_tag_s=first_tag_s,
                                       stall_s=self.stall_s)
        pipe = OptionsPipe(text=hidden)
        try:
            argv = ingest_argv(self.config, self.event_name, realtime=self.realtime, keys_from=pipe.path)
            return await run_flv_child(self.supervisor, self.name, argv, take, first_tag_s=first_tag_s,
                                       stall_s=self.stall_s, pass_fds=pipe.fds)
        finally:
            pipe.close()


Source = RtmpListenSource | ChildSource
