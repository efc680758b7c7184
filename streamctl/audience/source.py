"""The small contract every audience adapter meets, and what adapters share: batches, errors, HTTP, times."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import aiohttp
from multidict import CIMultiDict

from ..redact import redact
from .models import Comment, ViewerSample


@dataclass
class Batch:
    """What one fetch (or one pushed frame) brought: comments, deletions, a viewer sample, the new position."""

    comments: list[Comment] = field(default_factory=list)
    deleted_ids: list[str] = field(default_factory=list)
    cleared_before: float | None = None  # a moderator cleared the chat: hide every message published up to then
    cursor: str | None = None  # the adapter's position after this batch; None leaves it unchanged
    viewers: ViewerSample | None = None
    wait: float | None = None  # seconds the platform asks us to wait before the next fetch
    ended: bool = False  # the live chat is over: the source ends cleanly
    ignored: dict[str, int] = field(default_factory=dict)  # message types skipped, counted by type


# How the poller reacts to each kind of SourceError.
TRANSIENT = "transient"  # network, 5xx, garbage: back off and retry
RATE_LIMITED = "rate_limited"  # the platform asked us to slow down: back off at least retry_after
BLOCKED = "blocked"  # token refused, chat disabled, video unknown: alert, retry slowly
QUOTA = "quota"  # the day's quota is gone: alert, retry after the reset
WAITING = "waiting"  # not live yet: retry at the normal interval
FATAL = "fatal"  # cannot ever work as configured (missing library, no credential): stop
ERROR_KINDS = (TRANSIENT, RATE_LIMITED, BLOCKED, QUOTA, WAITING, FATAL)


class SourceError(Exception):
    """A fetch failed; `kind` tells the poller how to react. The message never carries a secret."""

    def __init__(self, message: str, kind: str = TRANSIENT, retry_after: float | None = None):
        if kind not in ERROR_KINDS:
            raise ValueError(kind)
        super().__init__(redact(message))
        self.kind = kind
        self.retry_after = retry_after


@runtime_checkable
class Source(Protocol):
    """An audience adapter: it only fetches and maps; the poller owns timing, backoff, health and alerts.

    Every source has these; what it can do besides is said by the protocols below, which the poller asks
    with isinstance. A source with none of them is delivered to (webhook, manual: the console pushes).
    """

    name: str
    platform: str
    units: int  # quota units spent so far (YouTube); 0 where the platform counts none

    def resume(self, cursor: str | None) -> None:
        """Restore the stored position (the cursor the last batch set)."""

    async def close(self) -> None:
        """Release what the source holds of its own (not the shared HTTP session)."""


@runtime_checkable
class PolledSource(Source, Protocol):
    """A source the poller calls at intervals for what is new."""

    async def fetch(self) -> Batch:
        """What is new since the last call; raises SourceError."""


@runtime_checkable
class PushedSource(Source, Protocol):
    """A source that holds a connection and yields what the platform pushes.

    It is listened to while `streaming` is true; a source that is also a PolledSource may turn `streaming`
    false (YouTube without streamList), and is polled from then on.
    """

    streaming: bool

    def listen(self) -> AsyncIterator[Batch]:
        """Connect and yield batches; returns when the connection closes, raises SourceError."""


@runtime_checkable
class ViewerSource(Source, Protocol):
    """A source that reads concurrent viewers (and likes, views) on its own schedule."""

    async def sample(self) -> Batch:
        """A batch with `viewers` set; raises SourceError."""


def stable_id(*parts: object) -> str:
    """An id derived from a message's content, the same in every process (for messages that carry none)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")).hexdigest()
    return "h:" + digest[:32]


# ---- times ------------------------------------------------------------------------------------------

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse_time(value: Any) -> float:
    """Epoch seconds from an ISO 8601 string (`Z`, `+00:00`, `+0000`, any fraction) or epoch s/ms number.

    Raises ValueError naming the value when it is none of these.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, int | float):
        # Milliseconds since the epoch are what bridges and TikTok send; seconds would be < 1e11 until 5138.
        return float(value) / 1000.0 if value > 1e11 else float(value)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time")
    text = value.strip()
    if re.fullmatch(r"\d{9,13}(\.\d+)?", text):
        return parse_time(float(text))
    m = _ISO.match(text)
    if not m:
        raise ValueError(f"{value[:40]!r} is not an ISO 8601 time")
    year, month, day, hour, minute = (int(m.group(i)) for i in range(1, 6))
    second = int(m.group(6) or 0)
    frac = float("0." + m.group(7)) if m.group(7) else 0.0
    zone = m.group(8)
    offset = 0
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60)
    try:
        base = datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()
    except ValueError as e:
        raise ValueError(f"{value[:40]!r} is not a valid time ({e})") from None
    return base + frac - offset


# ---- HTTP -------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """An HTTP answer: status, parsed JSON (None when the body is not JSON), headers and a short text."""

    status: int
    data: Any
    headers: CIMultiDict[str]  # header names are case-insensitive: `x-app-usage` finds `X-App-Usage`
    text: str

    def snippet(self) -> str:
        """The start of a non-JSON body, tags stripped, for error messages (503 pages come as HTML)."""
        plain = re.sub(r"<[^>]*>", " ", self.text)
        return re.sub(r"\s+", " ", plain).strip()[:120]


class Http:
    """One shared aiohttp session for every adapter, opened on first use inside the running loop."""

    def __init__(self, timeout: float = 10.0):
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise SourceError("shutting down: the HTTP client is closed")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def get(self, what: str, url: str, params: dict | None = None, headers: dict | None = None) -> Reply:
        """GET and read the body; network failures and timeouts become a transient SourceError."""
        try:
            async with self.session().get(url, params=params, headers=headers) as resp:
                raw = await resp.read()
                text = raw.decode("utf-8", errors="replace")
                try:
                    data = json.loads(text)
                except ValueError:
                    data = None
                return Reply(resp.status, data, CIMultiDict(resp.headers), text)
        except TimeoutError:
            raise SourceError(f"{what}: no answer within {self.timeout:g} s") from None
        except aiohttp.ClientError as e:
            raise SourceError(f"{what}: {type(e).__name__}: {e}") from None

    async def close(self) -> None:
        self._closed = True  # a poller still winding down must not open a new session that nobody closes
        if self._session is not None:
            await self._session.close()
            self._session = None


def unexpected(what: str, reply: Reply) -> SourceError:
    """The error for an answer the adapter cannot use: server errors and garbage are transient."""
    if reply.data is None:
        body = reply.snippet() or "empty body"
        return SourceError(f"{what}: HTTP {reply.status}, not JSON: {body}")
    return SourceError(f"{what}: HTTP {reply.status}, unexpected answer",
                       TRANSIENT if reply.status >= 500 or reply.status == 200 else BLOCKED)
