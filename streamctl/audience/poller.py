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
from ..states import SOURCE_FAILING, SOURCE_NEXT, may_change
from ..states import SourceState as S
from ..store import iso
from .models import ViewerSample
from .quota import QuotaPlanner, seconds_to_reset
from .source import (
    BLOCKED,
    FATAL,
    QUOTA,
    RATE_LIMITED,
    WAITING,
    Batch,
    PolledSource,
    PushedSource,
    Source,
    SourceError,
    ViewerSource,
)

log = logging.getLogger(__name__)

# Source states, as /api/audience and SourceStateChanged show them (their home is streamctl/states.py).
STARTING, OK, WAITING_STATE, BACKOFF, FAILED, ENDED, STOPPED, DISABLED = (
    S.STARTING, S.OK, S.WAITING, S.BACKOFF, S.FAILED, S.ENDED, S.STOPPED, S.DISABLED)
FAILING_STATES = SOURCE_FAILING
SEEN_IDS = 20000  # recent message ids remembered per source, so replays are never published twice
# Alert codes this poller raises (catalogue `alert.<code>` and `alert.<code>.resolved` in web/i18n).
FAILING, BLOCKED_ALERT, QUOTA_LOW = "audience.failing", "audience.blocked", "quota.low"
LEVELS = ("info", "warning", "error")


@dataclass(frozen=True)
class Timing:
    """How often a source is polled and how it backs off; tests use fast ones."""

    interval: float = 5.0  # between fetches, unless the platform or the quota planner asks for more
    jitter: float = 0.1  # up to this share is added to every wait (never subtracted: YouTube punishes early polls)
    backoff_max: float = 60.0
    viewers_every: float | None = None  # default: three intervals, between 0.5 and 30 s
    rate_limit_max: float = 3600.0
    failing_after: int = 3  # failed calls in a row before `audience.failing` is raised (one hiccup is not news)

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
        self._alerted: set[str] = set()  # keys of one-off notices already given (ended, polling instead)
        self._open: dict[str, Alert] = {}  # code -> the alert raised and not yet resolved
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

    def take_over(self, previous: Poller, keep_position: bool) -> None:
        """Continue where `previous` (the same source before a change) stopped: its open alerts, the ids seen,
        the day's quota use, and its position unless the source now reads another video's chat."""
        self._open = dict(previous._open)
        self._seen = previous._seen
        self.fetched, self.last_message_at = previous.fetched, previous.last_message_at
        if self.planner is not None and previous.planner is not None:
            self.planner.day, self.planner.used = previous.planner.day, previous.planner.used
        self._cursor = previous._cursor if keep_position else None
        self._stored_cursor = previous._stored_cursor
        self.source.resume(self._cursor)

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
                if isinstance(source, PushedSource) and source.streaming:
                    self._tasks["comments"] = tg.create_task(self._listen(source), name=f"{self.name}.listen")
                elif isinstance(source, PolledSource):
                    self._tasks["comments"] = tg.create_task(
                        self._loop("comments", source.fetch, self._comments_wait), name=f"{self.name}.comments")
                if isinstance(source, ViewerSource):
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
        await self._trouble(channel, error, failures)
        if error.kind == FATAL:
            await self._stop_all()
            return True
        await asyncio.sleep(self._error_wait(error, failures))
        return False

    async def _listen(self, source: PushedSource) -> None:
        failures = 0
        while True:
            opened = time.monotonic()
            try:
                # aclosing: a cancelled poller releases the connection now, not when the GC finds the stream.
                async with contextlib.aclosing(source.listen()) as stream:
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
            if not source.streaming and isinstance(source, PolledSource):
                # The platform cannot push here (YouTube without streamList): poll the same source instead.
                await self._alert("info", f"{self.name}: pushed chat is not available, polling instead",
                                  code="audience.polling")
                await self._loop("comments", source.fetch, self._comments_wait)
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

    async def deliver(self, batch: Batch, channel: str = "push", receipts: list | None = None) -> int:
        """Publish what a fetch or a push brought (never the same message twice); returns the new count.

        With `receipts` (a sender that acknowledges only what is stored), every comment is published, even one
        seen before (its first copy may not be on disk yet; the store keeps one), and each event's receipt is
        appended for the caller to await.
        """
        comments = tuple(c for c in batch.comments if receipts is not None or self._fresh(c.platform_id))
        if batch.cursor is not None:
            self._cursor = batch.cursor
        cursor = self._packed_cursor()
        loop = asyncio.get_running_loop()

        def receipt() -> asyncio.Future | None:
            if receipts is None:
                return None
            receipts.append(loop.create_future())
            return receipts[-1]

        if comments or batch.deleted_ids or batch.cleared_before is not None or cursor != self._stored_cursor:
            await self.bus.publish(CommentsFetched(self.name, self.source.platform, comments, cursor,
                                                   tuple(batch.deleted_ids), batch.cleared_before,
                                                   receipt=receipt()))
            self._stored_cursor = cursor
        if batch.viewers is not None:
            self.viewers = batch.viewers
            await self.bus.publish(ViewersSampled(batch.viewers, receipt=receipt()))
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
            await self._alert("info", f"{self.name}: the live chat has ended", key="ended", code="audience.ended")
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
            left = self.planner.left(at)
            await self._raise(QUOTA_LOW, "warning", f"{self.name}: {message}",
                              {"left": left, "daily": self.planner.daily, "detail": message})

    async def _trouble(self, channel: str, e: SourceError, failures: int) -> None:
        """Record a failed call; raise the alert it calls for (each once, until the source recovers)."""
        self._errors[channel] = e
        error = str(e)
        if e.kind == QUOTA:
            params = {"detail": error, "left": 0, "daily": self.planner.daily if self.planner else None}
            await self._raise(QUOTA_LOW, "error", f"{self.name}: {error}; polling resumes after the "
                                                  "Pacific midnight reset", params)
        elif e.kind in (BLOCKED, FATAL):
            fix = self._fix(e)
            detail = f"{error} ({fix})"
            await self._raise(BLOCKED_ALERT, "error", f"{self.name}: {detail}", {"detail": detail, "fix": fix})
        elif e.kind != WAITING and failures >= self.timing.failing_after:
            await self._raise(FAILING, "warning", f"{self.name}: failing: {error}; retrying with backoff",
                              {"detail": error, "failures": failures})
        await self._refresh_state()

    def _fix(self, e: SourceError) -> str:
        """What the operator can do about a blocked source, in words for the log and the alert's params."""
        text = str(e).lower()
        if "streamctl auth" in text:  # a saved sign-in (credentials_file) that the platform no longer takes
            return "sign in again with `streamctl auth youtube` (the message names the file) and restart"
        if self.credential_env and any(w in text for w in ("token", "401", "403", "credential", "auth", "190")):
            return (f"replace the token: PUT /api/audience/{self.name}/credential, or set "
                    f"{self.credential_env} and restart")
        if e.kind == FATAL:
            return "fix what the message names; the source stays stopped until it is changed"
        return f"check the source's ids and settings: PATCH /api/audience/{self.name}"

    async def _raise(self, code: str, level: str, message: str, params: dict) -> None:
        """Publish an alert unless the same code is already open at this level or above."""
        opened = self._open.get(code)
        if opened is not None and LEVELS.index(opened.level) >= LEVELS.index(level):
            return
        params = {"platform": self.source.platform, **params}
        alert = Alert(level, self.name, redact(message), code=code,
                      params={k: redact(v) if isinstance(v, str) else v for k, v in params.items()})
        self._open[code] = alert
        await self.bus.publish(alert)

    async def _resolve(self, code: str, message: str) -> None:
        if self._open.pop(code, None) is not None:
            await self.bus.publish(Alert("info", self.name, redact(message), code=code, resolved=True,
                                         params={"platform": self.source.platform}))

    async def close_alerts(self, why: str) -> None:
        """Resolve every open alert of this source (it was disabled or replaced)."""
        for code in list(self._open):
            await self._resolve(code, f"{self.name}: {why}")

    async def _alert(self, level: str, message: str, code: str, key: str | None = None) -> None:
        """A one-off notice (chat ended, polling instead): given once, never resolved."""
        key = key or message
        if key in self._alerted:
            return
        self._alerted.add(key)
        await self.bus.publish(Alert(level, self.name, redact(message), code=code,
                                     params={"platform": self.source.platform}))

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
        if state == OK:
            await self._resolve(FAILING, f"{self.name}: recovered")
            await self._resolve(BLOCKED_ALERT, f"{self.name}: accepted again")
            if self._open.get(QUOTA_LOW) is not None and self._open[QUOTA_LOW].level == "error":
                await self._resolve(QUOTA_LOW, f"{self.name}: quota available again")

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
            if not may_change(SOURCE_NEXT, old, state):
                log.warning("%s: unexpected change %s -> %s", self.name, old, state)
            self.since = now()
        self.state, self.error = state, error

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
