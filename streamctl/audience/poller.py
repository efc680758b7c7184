"""The poller: owns interval, jitter, backoff and health of one audience source; the adapter only fetches."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..events import Alert, Bus, CommentsFetched, SourceStateChanged, ViewersSampled, now
from ..redact import redact
from ..store import iso
from .models import ViewerSample
from .quota import QuotaPlanner, seconds_to_reset
from .source import BLOCKED, FATAL, QUOTA, RATE_LIMITED, WAITING, Batch, Source, SourceError

log = logging.getLogger(__name__)

# Source states, as /api/audience and SourceStateChanged show them.
STARTING, OK, WAITING_STATE, BACKOFF, FAILED, ENDED, STOPPED = (
    "starting", "ok", "waiting", "backoff", "failed", "ended", "stopped")
FAILING_STATES = (BACKOFF, FAILED)
SEEN_IDS = 20000  # recent message ids remembered per source, so replays are never published twice


@dataclass(frozen=True)
class Timing:
    """How often a source is polled and how it backs off; tests use fast ones."""

    interval: float = 5.0  # between fetches, unless the platform or the quota planner asks for more
    jitter: float = 0.1  # up to this share is added to every wait (never subtracted: YouTube punishes early polls)
    backoff_max: float = 60.0
    viewers_every: float | None = None  # default: three intervals, between 0.5 and 30 s
    rate_limit_max: float = 3600.0

    @property
    def viewers(self) -> float:
        if self.viewers_every is not None:
            return self.viewers_every
        return min(30.0, max(0.5, 3 * self.interval))


class Poller:
    """Runs one source: its fetch (or listen) loop and its viewer-sample loop, with health and backoff."""

    def __init__(self, source: Source, bus: Bus, timing: Timing | None = None,
                 planner: QuotaPlanner | None = None, credential_env: str | None = None):
        self.source = source
        self.bus = bus
        self.timing = timing or Timing()
        self.planner = planner
        self.credential_env = credential_env
        self.state = STARTING
        self.since = now()
        self.last_ok: float | None = None
        self.last_message_at: float | None = None
        self.error: str | None = None
        self.fetched = 0
        self.ignored: dict[str, int] = {}
        self.viewers: ViewerSample | None = None
        self.interval_s: float | None = None
        self._errors: dict[str, SourceError] = {}  # channel -> its current error
        self._ended = False
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._cursor: str | None = None  # the adapter's position
        self._stored_cursor: str | None = None  # what was last handed to the recorder
        self._units_seen = 0
        self._alerted: set[str] = set()
        self._tasks: dict[str, asyncio.Task] = {}

    @property
    def name(self) -> str:
        return self.source.name

    # ---- cursor (the adapter's position, plus the quota ledger where there is one) ----------------

    def resume(self, stored: str | None) -> None:
        """Restore the adapter's position (and the day's quota use) from the store's cursor."""
        self._stored_cursor = stored
        cursor = stored
        if self.planner is not None and stored and stored.startswith("{"):
            try:
                packed = json.loads(stored)
                cursor = packed.get("c")
                q = packed.get("q") or {}
                if isinstance(q.get("used"), int) and isinstance(q.get("day"), str):
                    self.planner.day, self.planner.used = q["day"], q["used"]
            except (ValueError, AttributeError):
                cursor = None
        self._cursor = cursor
        self.source.resume(cursor)

    def _packed_cursor(self) -> str | None:
        if self.planner is None:
            return self._cursor
        return json.dumps({"c": self._cursor, "q": {"day": self.planner.day, "used": self.planner.used}})

    # ---- running ------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled or the source ends; the source is closed on the way out."""
        source = self.source
        try:
            async with asyncio.TaskGroup() as tg:
                if hasattr(source, "listen") and getattr(source, "streaming", True):
                    self._tasks["comments"] = tg.create_task(self._listen(), name=f"{self.name}.listen")
                elif hasattr(source, "fetch"):
                    self._tasks["comments"] = tg.create_task(
                        self._loop("comments", source.fetch, self._comments_wait), name=f"{self.name}.comments")
                if hasattr(source, "sample"):
                    self._tasks["viewers"] = tg.create_task(
                        self._loop("viewers", source.sample, self._viewers_wait), name=f"{self.name}.viewers")
                if not self._tasks:
                    self._set_state_nowait(WAITING_STATE)  # pushed to (webhook, manual): nothing to fetch
                    await asyncio.Event().wait()
        finally:
            await source.close()
            if self.state not in (ENDED, FAILED):
                self._set_state_nowait(STOPPED)

    async def _loop(self, channel: str, call: Callable[[], Awaitable[Batch]],
                    wait: Callable[[Batch], float]) -> None:
        failures = 0
        while True:
            try:
                batch = await call()
            except SourceError as e:
                failures += 1
                if await self._failed(channel, e, failures):
                    return
                continue
            await self._account()
            failures = 0
            await self.deliver(batch, channel)
            if batch.ended:
                if channel == "comments":
                    await self._finish()
                return
            await asyncio.sleep(wait(batch))

    async def _failed(self, channel: str, error: SourceError, failures: int) -> bool:
        """After a failed call: count its quota, report it, wait; True when the source must stop for good."""
        await self._account()
        await self._trouble(channel, error)
        if error.kind == FATAL:
            await self._stop_all()
            return True
        await asyncio.sleep(self._error_wait(error, failures))
        return False

    async def _listen(self) -> None:
        failures = 0
        while True:
            opened = time.monotonic()
            try:
                # aclosing: a cancelled poller releases the connection now, not when the GC finds the stream.
                async with contextlib.aclosing(self.source.listen()) as stream:
                    async for batch in stream:
                        failures = 0
                        await self._account()
                        await self.deliver(batch, "comments")
                        if batch.ended:
                            await self._finish()
                            return
            except SourceError as e:
                failures += 1
                if await self._failed("comments", e, failures):
                    return
                continue
            await self._account()
            if not getattr(self.source, "streaming", True):
                # The platform cannot push here (YouTube without streamList): poll the same source instead.
                await self._alert("warning", f"{self.name}: pushed chat is not available, polling instead")
                await self._loop("comments", self.source.fetch, self._comments_wait)
                return
            # Closed by the platform (or asked to reconnect, as Twitch does before a restart): not a failure.
            # Connections are never opened faster than the poll interval would poll: each may cost quota.
            await asyncio.sleep(max(0.0, self._comments_wait(Batch()) - (time.monotonic() - opened)))

    async def _finish(self) -> None:
        """The chat is over: no more viewer samples, and a last one of zero so no count lingers in totals."""
        await self._stop_all()
        if self.viewers is not None and self.viewers.viewers:
            self.viewers = ViewerSample(self.name, self.source.platform, now(), 0)
            await self.bus.publish(ViewersSampled(self.viewers))

    async def _stop_all(self) -> None:
        for task in self._tasks.values():
            if task is not asyncio.current_task():
                task.cancel()

    # ---- waits --------------------------------------------------------------------------------------

    def _jittered(self, seconds: float) -> float:
        return seconds * (1 + random.uniform(0, self.timing.jitter))

    def _comments_wait(self, batch: Batch) -> float:
        interval = self.timing.interval
        if self.planner is not None:
            interval = max(interval, self.planner.plan(now()).interval_s)
        if batch.wait is not None:
            interval = max(interval, batch.wait)
        self.interval_s = interval
        return self._jittered(interval)

    def _viewers_wait(self, batch: Batch) -> float:
        every = self.timing.viewers
        if self.planner is not None:
            every = max(every, self.planner.plan(now()).viewers_every_s)
        return self._jittered(every)

    def _error_wait(self, e: SourceError, failures: int) -> float:
        base = max(0.05, self.timing.interval)
        exp = min(self.timing.backoff_max, base * 2 ** min(failures - 1, 20))
        if e.kind == WAITING:
            return self._jittered(self.timing.interval)
        if e.kind == BLOCKED:
            return self._jittered(self.timing.backoff_max)
        if e.kind == QUOTA:
            return seconds_to_reset(now()) + random.uniform(1, 60)
        delay = exp * random.uniform(0.5, 1.0)
        if e.kind == RATE_LIMITED and e.retry_after:
            delay = max(delay, min(e.retry_after, self.timing.rate_limit_max))
        return delay

    # ---- what came in -------------------------------------------------------------------------------

    def _fresh(self, platform_id: str) -> bool:
        if platform_id in self._seen:
            return False
        self._seen[platform_id] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        return True

    async def deliver(self, batch: Batch, channel: str = "push") -> int:
        """Publish what a fetch or a push brought (never the same message twice); returns the new count."""
        comments = tuple(c for c in batch.comments if self._fresh(c.platform_id))
        if batch.cursor is not None:
            self._cursor = batch.cursor
        cursor = self._packed_cursor()
        if comments or batch.deleted_ids or cursor != self._stored_cursor:
            await self.bus.publish(CommentsFetched(self.name, self.source.platform, comments, cursor,
                                                   tuple(batch.deleted_ids)))
            self._stored_cursor = cursor
        if batch.viewers is not None:
            self.viewers = batch.viewers
            await self.bus.publish(ViewersSampled(batch.viewers))
        for kind, count in batch.ignored.items():
            self.ignored[kind] = self.ignored.get(kind, 0) + count
        at = now()
        if comments:
            self.fetched += len(comments)
            self.last_message_at = at
        self.last_ok = at
        self._errors.pop(channel, None)
        if batch.ended and channel != "viewers":
            self._ended = True
            await self._alert("info", f"{self.name}: the live chat has ended", key="ended")
        await self._refresh_state()
        return len(comments)

    async def _account(self) -> None:
        """Book the quota units the adapter spent, and warn once when the budget is in danger."""
        spent = self.source.units - self._units_seen
        self._units_seen = self.source.units
        if self.planner is None or spent <= 0:
            return
        at = now()
        self.planner.spend(spent, at)
        for message in self.planner.warnings(at):
            await self._alert("warning", f"{self.name}: {message}")

    async def _trouble(self, channel: str, e: SourceError) -> None:
        self._errors[channel] = e
        if e.kind in (BLOCKED, QUOTA, FATAL):
            hint = ""
            if e.kind == BLOCKED and self.credential_env and "token" in str(e).lower():
                hint = f" (check {self.credential_env})"
            code = "quota.low" if e.kind == QUOTA else "audience.blocked"
            await self._alert("error", f"{self.name}: {e}{hint}", key=f"{e.kind}:{e}", code=code,
                              params={"error": redact(str(e))})
        await self._refresh_state()

    async def _alert(self, level: str, message: str, key: str | None = None, code: str = "general",
                     params: dict | None = None) -> None:
        key = key or message
        if key in self._alerted:
            return
        self._alerted.add(key)
        await self.bus.publish(Alert(level, self.name, redact(message), code=code, params=params or {}))

    # ---- state --------------------------------------------------------------------------------------

    def _derive(self) -> tuple[str, str | None]:
        if self._ended:
            return ENDED, None
        errors = list(self._errors.values())
        latest = str(errors[-1]) if errors else None
        if any(e.kind in (BLOCKED, QUOTA, FATAL) for e in errors):
            return FAILED, latest
        if errors and all(e.kind == WAITING for e in errors):
            return WAITING_STATE, latest
        if errors:
            return BACKOFF, latest
        return (OK if self.last_ok is not None else STARTING), None

    async def _refresh_state(self) -> None:
        state, error = self._derive()
        if state == self.state and error == self.error:
            return
        old = self.state
        self._change(state, error)
        if state != old:
            await self.bus.publish(SourceStateChanged(self.name, self.source.platform, state, error, self.status()))

    def _set_state_nowait(self, state: str) -> None:
        if state == self.state:
            return
        self._change(state, self.error if state == FAILED else None)
        try:
            self.bus.publish_nowait(SourceStateChanged(self.name, self.source.platform, state, self.error,
                                                       self.status()))
        except asyncio.QueueFull:
            pass  # shutting down with the history queue full: the state is still shown

    def _change(self, state: str, error: str | None) -> None:
        old = self.state
        if state in FAILING_STATES and old not in FAILING_STATES:
            log.warning("%s failing: %s", self.name, redact(error or state))
        elif state == OK and old in FAILING_STATES:
            log.info("%s recovered", self.name)
        if state != old:
            self.since = now()
        self.state, self.error = state, error
        if state == OK:
            self._alerted = {k for k in self._alerted if not k.startswith((BLOCKED, QUOTA))}

    def status(self) -> dict:
        """This source's health, as an /api/audience item (the service adds stored comment counts)."""
        at = now()
        quota = None
        if self.planner is not None:
            quota = self.planner.status(at, self.interval_s)
            quota["runs_out_at"] = iso(quota["runs_out_at"])
            quota["planned_end_at"] = iso(quota["planned_end_at"])
        return {
            "name": self.name, "platform": self.source.platform, "state": self.state, "since": iso(self.since),
            "last_ok": iso(self.last_ok), "last_message_at": iso(self.last_message_at), "error": self.error,
            "quota": quota, "fetched": self.fetched, "ignored": dict(self.ignored),
            "viewers": self.viewers.viewers if self.viewers else None, "interval_s": self.interval_s,
        }
