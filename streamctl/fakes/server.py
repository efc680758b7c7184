"""What every platform fake shares: a real aiohttp server on loopback port 0, a request log, scripted faults."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

from aiohttp import web


def stamp(at: float, style: str = "z") -> str:
    """An ISO time as platforms write it: `z` (…Z), `micro` (…123456+00:00), `milli` (…123Z), `fb` (+0000)."""
    dt = datetime.fromtimestamp(at, UTC)
    if style == "micro":
        return dt.isoformat(timespec="microseconds")
    if style == "milli":
        return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if style == "fb":
        return dt.strftime("%Y-%m-%dT%H:%M:%S+0000")
    if style == "offset":
        return dt.isoformat(timespec="seconds")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def opaque(position: int, prefix: str) -> str:
    """A page token or cursor that looks opaque, as the platforms' do."""
    return base64.urlsafe_b64encode(f"{prefix}:{position}".encode()).decode().rstrip("=")


def position(token: str, prefix: str) -> int | None:
    """The position inside a token made by `opaque`, or None when the token is not ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        head, _, pos = raw.partition(":")
        return int(pos) if head == prefix else None
    except (ValueError, UnicodeDecodeError):
        return None


class FakeServer:
    """A platform fake: subclasses add routes; `start()` serves them on 127.0.0.1 port 0."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_post("/_fake/comments", self._control_comments)
        self.app.router.add_post("/_fake/viewers", self._control_viewers)
        self.app.router.add_post("/_fake/end", self._control_end)
        self.runner: web.AppRunner | None = None
        self.url = ""
        self.requests: list[tuple[float, str, dict]] = []  # (time, path, query) of every platform call
        self.faults: list[str] = []  # scripted failures, one taken per platform call

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.url = f"http://{host}:{sock.getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def log(self, request: web.Request) -> None:
        self.requests.append((time.monotonic(), request.path, dict(request.query)))

    def fault(self) -> str | None:
        return self.faults.pop(0) if self.faults else None

    def calls(self, path_part: str) -> int:
        return sum(1 for _, path, _ in self.requests if path_part in path)

    # ---- control: lets the simulated audience (or a person) drive a fake served elsewhere ---------

    def post_comment(self, author: str, text: str, **kw) -> str:
        raise NotImplementedError

    def set_viewers(self, viewers: int | None) -> None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError

    async def _control_comments(self, request: web.Request) -> web.Response:
        items = await request.json()
        ids = [self.post_comment(str(i["author"]), str(i["text"]), author_id=i.get("author_id"))
               for i in (items if isinstance(items, list) else [items])]
        return web.json_response({"ids": ids})

    async def _control_viewers(self, request: web.Request) -> web.Response:
        self.set_viewers((await request.json()).get("viewers"))
        return web.json_response({"ok": True})

    async def _control_end(self, request: web.Request) -> web.Response:
        self.end()
        return web.json_response({"ok": True})


def broken_json() -> web.Response:
    """A 200 whose body is cut off mid-object, as proxies sometimes deliver."""
    return web.Response(text='{"kind": "youtube#liveChatMessageListResponse", "items": [{"id": ', status=200,
                        content_type="application/json")


def html_503() -> web.Response:
    """What a load balancer answers when the service behind it is down: HTML, not JSON."""
    return web.Response(text="<html><head><title>503 Service Unavailable</title></head>"
                             "<body><h1>Service Unavailable</h1></body></html>", status=503,
                        content_type="text/html")


def dumps(data: object) -> str:
    return json.dumps(data, ensure_ascii=False)


class IngestFake(FakeServer):
    """A platform fake with its own RTMP ingest on loopback: a stream is "active" while a real publish reaches it."""

    active_within_s = 3.0  # a stream is active while its last frame is this recent

    def __init__(self) -> None:
        from ..restream.rtmp_server import RtmpServer

        super().__init__()
        self.ingest = RtmpServer.receiver()  # any app: YouTube's backup address is `live2?backup=1`

    @property
    def ingest_base(self) -> str:
        return f"rtmp://{self.ingest.host}:{self.ingest.port}"

    def publishing(self, key: str | None) -> bool:
        """Whether someone publishes with this stream key right now."""
        now = time.time()
        return key is not None and any(
            s.stream_name == key and s.last_tag_at and now - s.last_tag_at < self.active_within_s
            for s in self.ingest.publishers)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        await self.ingest.start()
        return await super().start(host, port)

    async def stop(self) -> None:
        await super().stop()
        await self.ingest.close()
