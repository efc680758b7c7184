"""How much of the console any client may hold: body size and time, connections, websockets, idle time.

A client over a limit is refused at once (413, 408, 503, or a closed connection), never queued, so sign-in,
the pages and `/healthz` keep answering whatever a hostile or broken client does. README "Limits" lists them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from .http import http_error


@dataclass(frozen=True)
class Limits:
    body_bytes: int = 2 * 1024 * 1024  # a request body (a webhook batch of 1000 messages is ~300 KB): more is 413
    body_s: float = 10.0  # time to send that body once the headers are in (a slow POST): more is 408
    idle_s: float = 15.0  # a connection with no complete request for this long is closed (slowloris, dead clients)
    connections: int = 2048  # open TCP connections at once; more are closed as they arrive
    connections_per_address: int = 256  # from one client address (not the trusted proxy, which has its own limits)
    sockets: int = 1000  # websockets at once (pages, overlays, scripts): more are 503
    sockets_per_identity: int = 32  # websockets of one user, token, or all overlays together: more are 503


LIMITS: web.AppKey[Limits] = web.AppKey("limits", Limits)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@web.middleware
async def body_deadline_middleware(request: web.Request, handler):
    """Read a request's body within `body_s` (aiohttp's `client_max_size` bounds its size: 413)."""
    # A multipart body is read as a stream by request.post() (still within client_max_size), never pre-read.
    if request.method in BODY_METHODS and request.can_read_body and request.content_type != "multipart/form-data":
        try:
            async with asyncio.timeout(request.app[LIMITS].body_s):
                await request.read()  # kept by aiohttp: the handler's read(), json() and post() use it
        except TimeoutError:
            raise http_error(web.HTTPRequestTimeout, "the request body did not arrive in time",
                             "error.request_timeout") from None
    return await handler(request)


class SocketCount:
    """Websockets open now, in all and per identity; `admit` before accepting one, `release` when it ends."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.total = 0
        self.by_identity: dict[str, int] = {}

    def admit(self, identity: str) -> None:
        """Count one more socket for `identity`, or raise 503 saying which limit it hit."""
        if self.total >= self.limits.sockets:
            raise http_error(web.HTTPServiceUnavailable, f"too many live connections ({self.limits.sockets}); "
                             "close some pages or overlays", "error.too_many_sockets")
        if self.by_identity.get(identity, 0) >= self.limits.sockets_per_identity:
            raise http_error(web.HTTPServiceUnavailable, f"too many live connections for {identity} "
                             f"({self.limits.sockets_per_identity}); close some of its pages",
                             "error.too_many_sockets")
        self.total += 1
        self.by_identity[identity] = self.by_identity.get(identity, 0) + 1

    def release(self, identity: str) -> None:
        self.total -= 1
        left = self.by_identity.get(identity, 1) - 1
        if left:
            self.by_identity[identity] = left
        else:
            self.by_identity.pop(identity, None)


SOCKETS: web.AppKey[SocketCount] = web.AppKey("socket_count", SocketCount)


class ConnectionGuard:
    """Counts the console's open TCP connections, in all and per client address; past a limit a new one is
    closed as it arrives, so one client holding many connections (slowloris) cannot lock the others out."""

    def __init__(self, limit: int, per_address: int, exempt: str | None = None):
        self.limit = limit
        self.per_address = per_address
        self.exempt = exempt  # the trusted proxy: every browser arrives through it
        self.open = 0
        self.by_address: dict[str, int] = {}
        self.refused = 0

    def take(self, address: str) -> bool:
        """Room for one more connection from `address` (counted if so)?"""
        mine = self.by_address.get(address, 0)
        if self.open >= self.limit or (address != self.exempt and mine >= self.per_address):
            self.refused += 1
            return False
        self.open += 1
        self.by_address[address] = mine + 1
        return True

    def give_back(self, address: str) -> None:
        self.open -= 1
        left = self.by_address.get(address, 1) - 1
        if left:
            self.by_address[address] = left
        else:
            self.by_address.pop(address, None)


class _Guarded(asyncio.Protocol):
    """One connection: handed to aiohttp's own protocol when there is room, closed at once when there is not."""

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard):
        self._inner = inner
        self._guard = guard
        self._address: str | None = None  # set while counted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self._guard.take(address):
            transport.abort()
            return
        self._address = address
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._address is not None:
            self._guard.give_back(self._address)
            self._address = None
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class GuardedSite(web.BaseSite):
    """A TCP site like aiohttp's TCPSite, with the connection limit in front of every connection."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard, *,
                 ssl_context=None) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host, self._port, self.guard = host, port, guard

    @property
    def name(self) -> str:
        return f"{'https' if self._ssl_context else 'http'}://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        """The port listened on (the real one when 0 was asked for)."""
        sockets = self._server.sockets if self._server else ()
        return sockets[0].getsockname()[1] if sockets else self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Guarded(server(), self.guard), self._host, self._port, ssl=self._ssl_context,
            reuse_address=True, backlog=512)
