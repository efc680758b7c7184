"""The websocket hub: live bus events pushed to the console pages, filtered by the viewer's role."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import WSMsgType, web

from ..events import (
    Alert,
    AlertStored,
    AuthorNoted,
    CommentsHidden,
    CommentsStored,
    DestinationHealth,
    DestinationRemoved,
    DestinationStateChanged,
    Event,
    IngestStateChanged,
    PlatformHealthChanged,
    ProgramLevels,
    ProgramStatus,
    QuestionChanged,
    SourceStateChanged,
    ViewersStored,
)
from ..questions import official_view
from ..reasons import for_pages
from ..redact import mask_secrets, redact
from .auth import IDENTITY, Identity, same_origin, still_valid
from .http import http_error
from .keys import CONTROLLER, HUB
from .limits import SOCKETS

log = logging.getLogger(__name__)

CLIENT_QUEUE = 500  # events a slow page may fall behind by before it loses the oldest
HEALTH_EVERY_S = 1.0  # destination health at most this often per destination and page
CREDENTIAL_CHECK_S = 1.0  # how soon a revoked token or a removed user's open socket is closed
CLOSE_SIGNED_OUT = 4401  # websocket close code: the credential no longer holds (the page goes to sign-in)

# Alerts reach pages as the desk stored them (`AlertStored`: counted once, a sentence per language); the raw
# `Alert` (English) only reaches operators' scripts.
MODERATOR_EVENTS = (CommentsStored, CommentsHidden, ViewersStored, QuestionChanged, AuthorNoted, AlertStored,
                    ProgramStatus)
ROLE_EVENTS: dict[str, tuple[type[Event], ...]] = {
    "operator": (*MODERATOR_EVENTS, Alert, DestinationStateChanged, DestinationHealth, DestinationRemoved,
                 IngestStateChanged, SourceStateChanged, ProgramLevels, PlatformHealthChanged),
    "moderator": MODERATOR_EVENTS,
    "official": (QuestionChanged,),
}

Encoder = Callable[[Event], "str | None"]
# Events that carry audience text (comments, questions, notes): shown exactly as typed.
AUDIENCE_TEXT: tuple[type[Event], ...] = (CommentsStored, QuestionChanged, AuthorNoted)


def _plain(value: object) -> object:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else str(value)


def event_json(event: Event, **replace) -> str:
    """`{"type": EventName, ...fields}` with secrets masked (error texts may quote URLs)."""
    # Fields are read as they are (json walks the dicts and tuples itself): asdict's deep copy of every
    # comment of a 50-comment batch cost more than the encoding.
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    data = {"type": type(event).__name__, **fields, **replace}
    if not isinstance(event, AUDIENCE_TEXT):
        data = for_pages(data)  # pages show why something failed from `error_key`, never the raw text
    text = json.dumps(data, ensure_ascii=False, default=_plain)
    # What the audience typed reaches pages as typed ("?a=1" in a comment is not a secret); only our own
    # registered keys are masked there. Everything else may quote URLs with keys and is fully redacted.
    return mask_secrets(text) if isinstance(event, AUDIENCE_TEXT) else redact(text)


class Hub:
    """Connected pages, and one encoding of each event shared by every page of the same kind."""

    def __init__(self) -> None:
        self.clients: set[web.WebSocketResponse] = set()
        self._cache: OrderedDict[tuple[int, str], tuple[Event, str | None]] = OrderedDict()

    def encoded(self, event: Event, variant: str, encode: Encoder) -> str | None:
        # Keyed by id(event); the event is kept in the entry so the id cannot be reused while cached.
        key = (id(event), variant)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is event:
            return hit[1]
        text = encode(event)
        self._cache[key] = (event, text)
        if len(self._cache) > 512:
            self._cache.popitem(last=False)
        return text


def _for_official(event: Event) -> str | None:
    assert isinstance(event, QuestionChanged)
    return event_json(event, question=official_view(event.question), by=None)


def page_encoder(hub: Hub, role: str) -> Encoder:
    """How one page turns events into messages: officials' question events trimmed, health throttled."""
    last_health: dict[str, float] = {}

    def encode(event: Event) -> str | None:
        if isinstance(event, DestinationHealth):
            at = time.monotonic()
            if at - last_health.get(event.name, 0.0) < HEALTH_EVERY_S:
                return None
            last_health[event.name] = at
        if role == "official":
            return hub.encoded(event, "official", _for_official)
        return hub.encoded(event, "full", event_json)

    return encode


async def serve(ws: web.WebSocketResponse, sub, encode: Encoder, hub: Hub,
                valid: Callable[[], bool] | None = None) -> None:
    """Push `sub`'s events to `ws` until either side stops; answers the page's "ping" keep-alives.

    With `valid`, the credential is checked every CREDENTIAL_CHECK_S: once it no longer holds (a token
    revoked, a user removed), the socket is closed with CLOSE_SIGNED_OUT.
    """

    signed_out = False

    async def watch() -> None:
        nonlocal signed_out
        while True:
            await asyncio.sleep(CREDENTIAL_CHECK_S)
            if valid is not None and not valid():
                log.info("websocket %s closed: its credential was revoked or signed out", sub.name)
                signed_out = True  # closed below, once nothing else reads the socket (a close racing a read
                return             # could drop the connection before our close frame went out)

    async def push() -> None:
        async for event in sub:
            text = encode(event)
            if text is not None:
                await ws.send_str(text)

    async def read() -> None:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and msg.data == "ping":
                await ws.send_str('{"type": "pong"}')

    hub.clients.add(ws)
    tasks = [asyncio.create_task(read(), name="ws.read"), asyncio.create_task(push(), name="ws.push")]
    if valid is not None:
        tasks.append(asyncio.create_task(watch(), name="ws.credential"))
    try:
        # Whichever ends first (the page left, or sending failed) ends the connection.
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.clients.discard(ws)
        sub.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if signed_out:
            await ws.close(code=CLOSE_SIGNED_OUT, message=b"signed out")
        else:
            await ws.close()


async def page_socket(request: web.Request) -> web.StreamResponse:
    """`GET /ws`: live events for a signed-in page (or a bearer-token script)."""
    identity: Identity | None = request.get(IDENTITY)
    if identity is None or identity.role not in ROLE_EVENTS:
        raise http_error(web.HTTPUnauthorized, "sign in first", "error.sign_in")
    # A session cookie rides along with any page's websocket: only our own pages may use it.
    if identity.via == "session" and not same_origin(request):
        raise http_error(web.HTTPForbidden, "cross-origin websocket refused", "error.cross_origin")
    hub = request.app[HUB]
    bus = request.app[CONTROLLER].bus
    # No permessage-deflate: it would compress every message once per page (browsers ask for it), in a thread
    # for anything over 4 KB; a busy stream is ~150 KB/s of JSON per page, nothing for a hall's network.
    sockets = request.app[SOCKETS]
    owner = socket_owner(request, identity)
    sockets.admit(owner)  # 503 past the limits (console/limits.py)
    try:
        ws = web.WebSocketResponse(heartbeat=25, max_msg_size=4096, compress=False)
        await ws.prepare(request)
        sub = bus.subscribe(*ROLE_EVENTS[identity.role], maxsize=CLIENT_QUEUE, name=f"ws:{identity.name}")
        store = request.app[CONTROLLER].store
        await serve(ws, sub, page_encoder(hub, identity.role), hub, still_valid(request, identity, store))
    finally:
        sockets.release(owner)
    return ws


def socket_owner(request: web.Request, identity: Identity) -> str:
    """Whose share of the websockets this one counts against: the user, or the one bearer token."""
    if identity.via != "token":
        return f"user {identity.name}"
    token = request.headers.get("Authorization", "")
    return f"token {hashlib.sha256(token.encode()).hexdigest()[:12]}"


def setup(app: web.Application) -> None:
    """Register this area's routes."""
    app[HUB] = Hub()
    app.router.add_get("/ws", page_socket)
