"""A YouTube broadcast: liveBroadcasts + liveStreams (insert, bind, transition, list), as the Data API v3 has them.

Quota (units of the 10,000-unit day): every list is 1, every insert/update/bind/transition 50. Each call
is booked in the channel's quota planner before it goes out (YouTube charges failed calls too).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp

from ..audience.options import YOUTUBE_API
from ..config import DestinationConfig
from ..redact import register_secret
from .client import CREDENTIAL, REFUSED, TRANSIENT, BroadcastError, Signer, call

log = logging.getLogger(__name__)

DEFAULT_API = YOUTUBE_API
LIST_UNITS, WRITE_UNITS = 1, 50
GONE = ("complete", "revoked")  # a broadcast in these states cannot be streamed to again
STARTING = ("testStarting", "liveStarting")
WAIT_STEP_S = 2.0  # between looks while waiting for a stream or a transition
TRANSITION_WAIT_S = 60.0  # go_live gives up after this long without the stream active / the transition done


def _error(what: str, status: int, data: Any) -> BroadcastError:
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    errors = error.get("errors") if isinstance(error.get("errors"), list) else []
    reason = errors[0].get("reason") if errors and isinstance(errors[0], dict) else None
    message = re.sub(r"<[^>]*>", "", str(error.get("message", "")))[:200]
    kind = TRANSIENT if status >= 500 or reason in ("backendError", "rateLimitExceeded") else REFUSED
    if status == 401:
        kind = CREDENTIAL
        message += "; the saved sign-in no longer works: run `streamctl auth youtube` again"
    if reason == "liveStreamingNotEnabled":
        message += "; enable live streaming for the channel at youtube.com/features (it takes up to 24 h)"
    return BroadcastError(f"{what}: HTTP {status} {reason or ''}: {message}", kind, status, reason)


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class YouTubeBroadcast:
    """One destination's broadcast and its bound stream on one channel."""

    platform = "youtube"
    cost_per_health = LIST_UNITS

    def __init__(self, config: DestinationConfig, signer: Signer, session: Callable[[], aiohttp.ClientSession],
                 spend: Callable[[int], None] | None = None, title: str = "", description: str = ""):
        self.config = config
        self.signer = signer
        self._session = session
        self._spend = spend or (lambda units: None)
        self.api = (config.api_base or DEFAULT_API).rstrip("/") + "/youtube/v3"
        self.title = config.title or title
        self.description = config.description or description
        self.id: str | None = None if config.broadcast in (None, "create") else config.broadcast
        self.stream_id: str | None = None
        self.chat_id: str | None = None
        self.status: str | None = None
        self.units = 0
        self.calls = 0
        self._scheduled: str | None = None

    @property
    def watch_url(self) -> str | None:
        return f"https://www.youtube.com/watch?v={self.id}" if self.id else None

    def ids(self) -> dict:
        return {"broadcast_id": self.id, "stream_id": self.stream_id, "chat_id": self.chat_id}

    async def _call(self, method: str, resource: str, what: str, units: int, params: dict,
                    body: dict | None = None) -> dict:
        def booked() -> None:
            self.units += units
            self.calls += 1
            self._spend(units)

        return await call(self._session(), self.signer, method, f"{self.api}/{resource}", what, params, body,
                          booked=booked, error=_error)

    # ---- the broadcast ------------------------------------------------------------------------------

    async def prepare(self, known: dict | None = None) -> tuple[str, str | None]:
        """Create or find the broadcast and its stream; returns (publish URL, backup publish URL).

        `known` holds the ids a previous run stored: reused while the broadcast is not over.
        """
        if known and known.get("broadcast_id") and self.id is None:
            self.id = known["broadcast_id"]
        broadcast = await self._get_broadcast() if self.id else None
        if broadcast is not None and broadcast["status"].get("lifeCycleStatus") in GONE and \
                self.config.broadcast == "create":
            log.info("youtube %s: broadcast %s is over; creating a new one", self.config.name, self.id)
            broadcast = None
        if broadcast is None:
            if self.config.broadcast not in (None, "create"):
                raise BroadcastError(f"liveBroadcasts.list: broadcast {self.config.broadcast} not found on this "
                                     "channel (check broadcast and credentials_file)", REFUSED)
            broadcast = await self._insert_broadcast()
        self._take(broadcast)
        stream_id = (broadcast.get("contentDetails") or {}).get("boundStreamId")
        stream = await self._get_stream(stream_id) if stream_id else None
        if stream is None:
            stream = await self._insert_stream()
            bound = await self._call("POST", "liveBroadcasts/bind", "liveBroadcasts.bind", WRITE_UNITS,
                                     {"id": self.id, "streamId": stream["id"],
                                      "part": "id,snippet,contentDetails,status"})
            self._take(bound)
        self.stream_id = stream["id"]
        return self._ingest(stream)

    def _take(self, broadcast: dict) -> None:
        self.id = broadcast["id"]
        snippet = broadcast.get("snippet") or {}
        self.chat_id = snippet.get("liveChatId") or self.chat_id
        self.status = (broadcast.get("status") or {}).get("lifeCycleStatus")
        self._scheduled = snippet.get("scheduledStartTime") or self._scheduled
        self.title = snippet.get("title", self.title)
        self.description = snippet.get("description", self.description)

    def _ingest(self, stream: dict) -> tuple[str, str | None]:
        info = (stream.get("cdn") or {}).get("ingestionInfo") or {}
        name = info.get("streamName")
        if not name:
            raise BroadcastError(f"liveStreams: stream {stream.get('id')} has no ingestion info", REFUSED)
        register_secret(name)
        secure = not self.config.url.lower().startswith("rtmp:")
        main = info.get("rtmpsIngestionAddress" if secure else "ingestionAddress") or info.get("ingestionAddress")
        backup = info.get("rtmpsBackupIngestionAddress" if secure else "backupIngestionAddress") \
            or info.get("backupIngestionAddress")
        register_secret(_join(main, name))
        if backup:
            register_secret(_join(backup, name))
        return _join(main, name), (_join(backup, name) if backup else None)

    async def _insert_broadcast(self) -> dict:
        self._scheduled = _stamp(time.time() + 60)
        body = {"snippet": {"title": self.title[:100], "description": self.description[:5000],
                            "scheduledStartTime": self._scheduled},
                "status": {"privacyStatus": self.config.privacy, "selfDeclaredMadeForKids": False},
                "contentDetails": {"enableAutoStart": False, "enableAutoStop": False, "latencyPreference": "low",
                                   "enableDvr": True, "recordFromStart": True,
                                   "monitorStream": {"enableMonitorStream": True}}}
        return await self._call("POST", "liveBroadcasts", "liveBroadcasts.insert", WRITE_UNITS,
                                {"part": "snippet,status,contentDetails"}, body)

    async def _insert_stream(self) -> dict:
        body = {"snippet": {"title": f"streamctl {self.config.name}"},
                "cdn": {"ingestionType": "rtmp", "resolution": "variable", "frameRate": "variable"},
                "contentDetails": {"isReusable": True}}
        return await self._call("POST", "liveStreams", "liveStreams.insert", WRITE_UNITS,
                                {"part": "snippet,cdn,contentDetails,status"}, body)

    async def _get_broadcast(self) -> dict | None:
        data = await self._call("GET", "liveBroadcasts", "liveBroadcasts.list", LIST_UNITS,
                                {"part": "id,snippet,status,contentDetails", "id": self.id})
        items = data.get("items") or []
        return items[0] if items else None

    async def _get_stream(self, stream_id: str, parts: str = "id,cdn,status") -> dict | None:
        data = await self._call("GET", "liveStreams", "liveStreams.list", LIST_UNITS, {"part": parts, "id": stream_id})
        items = data.get("items") or []
        return items[0] if items else None

    async def refresh(self) -> dict | None:
        """Read the broadcast back (1 unit); None when YouTube no longer has it."""
        broadcast = await self._get_broadcast()
        if broadcast is not None:
            self._take(broadcast)
        return broadcast

    # ---- health -------------------------------------------------------------------------------------

    async def health(self) -> dict:
        """What YouTube says it receives: {status, issues[], stream_status} (liveStreams.list part=status)."""
        stream = await self._get_stream(self.stream_id, "id,status") if self.stream_id else None
        status = (stream or {}).get("status") or {}
        health = status.get("healthStatus") or {}
        issues = [{"type": i.get("type"), "severity": i.get("severity"), "reason": i.get("reason"),
                   "description": i.get("description")} for i in health.get("configurationIssues") or []
                  if isinstance(i, dict)]
        return {"status": health.get("status") or "noData", "issues": issues,
                "stream_status": status.get("streamStatus")}

    @staticmethod
    def bad(health: dict) -> bool:
        return health.get("status") in ("noData", "bad", "revoked")

    # ---- transitions --------------------------------------------------------------------------------

    async def preview(self) -> None:
        """ready → testing once the stream is active, so Go live later is one step (errors are left to go_live)."""
        if self.status in STARTING:
            await self.refresh()  # 1 unit, only while YouTube is between states
        if self.status != "ready":
            return
        try:
            await self._transition("testing")
        except BroadcastError as e:
            if e.kind != REFUSED:
                raise
            log.info("youtube %s: testing not possible yet (%s)", self.config.name, e.reason)

    async def go_live(self, wait_s: float = TRANSITION_WAIT_S, step_s: float = WAIT_STEP_S) -> str:
        """testing → live once the stream is active; waits and retries within `wait_s`. Returns the status."""
        return await self._until("live", wait_s, step_s)

    async def end(self, wait_s: float = TRANSITION_WAIT_S, step_s: float = WAIT_STEP_S) -> str:
        return await self._until("complete", wait_s, step_s)

    async def _until(self, target: str, wait_s: float, step_s: float) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        last: BroadcastError | None = None
        while True:
            await self.refresh()
            if self.status == target or (target == "live" and self.status == "liveStarting"):
                return await self._settle(target, deadline, step_s)
            if self.status in GONE:
                raise BroadcastError(f"the broadcast is {self.status}: it cannot go {target}", REFUSED,
                                     reason="invalidTransition")
            try:
                if target == "complete" or self.status not in STARTING:
                    await self._transition(target)
                    return await self._settle(target, deadline, step_s)
            except BroadcastError as e:
                if e.reason == "redundantTransition":
                    return await self._settle(target, deadline, step_s)
                if e.reason not in ("errorStreamInactive", "invalidTransition") or e.kind == CREDENTIAL:
                    raise
                last = e  # the stream is not active yet, or YouTube is between states: wait and retry
            if loop.time() + step_s > deadline:
                why = last.reason if last else self.status
                raise BroadcastError(f"liveBroadcasts.transition to {target}: still {why} after {wait_s:g} s "
                                     "(is the destination sending? YouTube needs an active stream)",
                                     REFUSED, reason=last.reason if last else None)
            await asyncio.sleep(step_s)

    async def _settle(self, target: str, deadline: float, step_s: float) -> str:
        """After the transition was accepted: wait (bounded) for testStarting/liveStarting to pass."""
        loop = asyncio.get_running_loop()
        while self.status in STARTING and loop.time() + step_s <= deadline:
            await asyncio.sleep(min(step_s, 0.5))
            await self.refresh()
        return self.status or target

    async def _transition(self, target: str) -> None:
        broadcast = await self._call("POST", "liveBroadcasts/transition", "liveBroadcasts.transition", WRITE_UNITS,
                                     {"broadcastStatus": target, "id": self.id, "part": "id,snippet,status"})
        self._take(broadcast)
        log.info("youtube %s: broadcast %s -> %s", self.config.name, self.id, self.status)

    # ---- title and description ----------------------------------------------------------------------

    async def apply(self, title: str, description: str) -> dict:
        """liveBroadcasts.update (snippet needs title and scheduledStartTime), then read back."""
        if self._scheduled is None:
            await self.refresh()
        body = {"id": self.id, "snippet": {"title": title[:100], "description": description[:5000],
                                           "scheduledStartTime": self._scheduled or _stamp(time.time())}}
        await self._call("PUT", "liveBroadcasts", "liveBroadcasts.update", WRITE_UNITS, {"part": "snippet"}, body)
        await self.refresh()
        return {"title": self.title, "description": self.description}


def _join(address: str, name: str) -> str:
    """Address + `/` + stream name, as YouTube documents it (`…/live2?backup=1/NAME` for the backup)."""
    return f"{address.rstrip('/')}/{name}"
