"""The poller's own duties: interval and jitter, backoff, health states logged once, no message twice."""

# ruff: noqa: F811 - the shared fixtures `rig` and `http` are imported, then asked for by name
from __future__ import annotations

import asyncio
import logging
import time

from streamctl.audience.models import Comment
from streamctl.audience.poller import Poller, Timing
from streamctl.audience.source import BLOCKED, FATAL, TRANSIENT, Batch, SourceError
from streamctl.events import CommentsFetched
from tests.audience_harness import Rig, http, rig  # noqa: F401 - fixtures


class ScriptedSource:
    """A stand-in platform adapter: each fetch takes the next scripted answer (a Batch or a SourceError)."""

    platform = "scripted"

    def __init__(self, script: list, name: str = "s"):
        self.name = name
        self.script = list(script)
        self.units = 0
        self.calls: list[float] = []
        self.closed = False

    def resume(self, cursor):
        self.resumed = cursor

    async def close(self):
        self.closed = True

    async def fetch(self) -> Batch:
        self.calls.append(time.monotonic())
        item = self.script.pop(0) if self.script else Batch()
        if isinstance(item, SourceError):
            raise item
        return item


def msg(pid: str, source: str = "s") -> Comment:
    return Comment(platform="scripted", source=source, platform_id=pid, author_name="A", author_id="a", text=pid,
                   published_at=time.time(), received_at=time.time())


async def test_failing_and_recovered_are_logged_once_each(rig, caplog):
    errors = [SourceError(f"HTTP 503 number {i}", TRANSIENT) for i in range(4)]
    source = ScriptedSource([Batch(comments=[msg("a")]), *errors, Batch(comments=[msg("b")])])
    rig.start(Poller(source, rig.bus, Timing(interval=0.01, backoff_max=0.05)))
    with caplog.at_level(logging.INFO, logger="streamctl.audience.poller"):
        await rig.until(lambda: rig.ids("s") == ["a", "b"], what="both stored")
    assert rig.states("s") == ["ok", "backoff", "ok"]
    lines = [r.getMessage() for r in caplog.records]
    assert sum("failing" in line for line in lines) == 1 and sum("recovered" in line for line in lines) == 1


async def test_backoff_doubles_up_to_its_ceiling(rig):
    source = ScriptedSource([SourceError("down", TRANSIENT)] * 6 + [Batch()])
    rig.start(Poller(source, rig.bus, Timing(interval=0.04, jitter=0.0, backoff_max=0.3)))
    await rig.until(lambda: len(source.calls) == 7, what="seven calls")
    gaps = [b - a for a, b in zip(source.calls, source.calls[1:], strict=False)]
    # Full jitter takes each wait from half to all of 0.04, 0.08, 0.16, 0.3, 0.3, 0.3.
    for gap, ceiling in zip(gaps, [0.04, 0.08, 0.16, 0.3, 0.3, 0.3], strict=False):
        assert ceiling * 0.5 - 0.01 <= gap <= ceiling + 0.1, gaps


async def test_waits_at_least_what_the_platform_asks_jitter_only_adds(rig):
    source = ScriptedSource([Batch(wait=0.15)] * 4)
    rig.start(Poller(source, rig.bus, Timing(interval=0.01, jitter=0.5)))
    await rig.until(lambda: len(source.calls) >= 4, what="four calls")
    gaps = [b - a for a, b in zip(source.calls, source.calls[1:], strict=False)]
    assert all(0.15 <= g <= 0.15 * 1.5 + 0.08 for g in gaps), gaps


async def test_a_message_seen_twice_is_published_once(rig):
    source = ScriptedSource([Batch(comments=[msg("a"), msg("b")], cursor="1"),
                             Batch(comments=[msg("b"), msg("c")], cursor="2"), Batch(cursor="2")])
    rig.start(Poller(source, rig.bus, Timing(interval=0.01)))
    await rig.until(lambda: rig.ids("s") == ["a", "b", "c"], what="three stored")
    await asyncio.sleep(0.1)
    published = [e for e in rig.drained() if isinstance(e, CommentsFetched)]
    assert [c.platform_id for e in published for c in e.comments] == ["a", "b", "c"]
    assert [e.cursor for e in published] == ["1", "2"]  # an unchanged cursor is not written again
    assert rig.store.get_cursor("s") == "2"


async def test_fatal_errors_stop_the_source_and_blocked_ones_alert_once_until_recovered(rig):
    fatal = ScriptedSource([SourceError("cannot work as configured", FATAL)], name="f")
    poller = Poller(fatal, rig.bus, Timing(interval=0.01))
    task = rig.start(poller)
    await asyncio.wait_for(task, 5)
    assert poller.state == "failed" and len(fatal.calls) == 1 and fatal.closed
    blocked = ScriptedSource([SourceError("the token was refused", BLOCKED)] * 3 + [Batch()], name="b")
    p2 = Poller(blocked, rig.bus, Timing(interval=0.01, backoff_max=0.05), credential_env="TOKEN_ENV")
    rig.start(p2)
    await rig.until(lambda: len(blocked.calls) >= 4 and p2.state == "ok", what="recovered")
    await rig.until(lambda: rig.states("b") == ["failed", "ok"], what="failed, then ok")
    alerts = rig.alerts("b")
    assert [(a.code, a.level, a.resolved) for a in alerts] == [
        ("audience.blocked", "error", False), ("audience.blocked", "info", True)]  # once, then its recovery
    assert "TOKEN_ENV" in alerts[0].message and "/api/audience/b/credential" in alerts[0].params["fix"]


async def test_status_reports_health(rig):
    source = ScriptedSource([Batch(comments=[msg("a")]), SourceError("HTTP 502", TRANSIENT)])
    poller = Poller(source, rig.bus, Timing(interval=0.02, backoff_max=5))
    rig.start(poller)
    await rig.until(lambda: poller.state == "backoff", what="backoff")
    status = poller.status()
    assert status["state"] == "backoff" and status["error"] == "HTTP 502" and status["fetched"] == 1
    assert status["last_ok"].endswith("Z") and status["last_message_at"] and status["quota"] is None


async def test_a_source_failing_raises_one_alert_and_one_recovery_not_one_per_retry(rig):
    errors = [SourceError(f"HTTP 50{i}", TRANSIENT) for i in range(6)]
    source = ScriptedSource([Batch(comments=[msg("a", "f")]), *errors, Batch(comments=[msg("b", "f")])], name="f")
    poller = Poller(source, rig.bus, Timing(interval=0.01, backoff_max=0.02, failing_after=3))
    rig.start(poller)
    await rig.until(lambda: rig.ids("f") == ["a", "b"], what="recovered")
    await rig.until(lambda: len(rig.alerts("f")) == 2, what="the recovery alert")
    failing, recovered = rig.alerts("f")
    assert (failing.code, failing.level, failing.resolved) == ("audience.failing", "warning", False)
    assert failing.params["platform"] == "scripted" and failing.params["failures"] == 3
    assert (recovered.code, recovered.resolved) == ("audience.failing", True)
    # A hiccup shorter than `failing_after` calls is not news.
    brief = ScriptedSource([SourceError("HTTP 502", TRANSIENT)] * 2 + [Batch(comments=[msg("c", "h")])], name="h")
    rig.start(Poller(brief, rig.bus, Timing(interval=0.01, backoff_max=0.02, failing_after=3)))
    await rig.until(lambda: rig.ids("h") == ["c"], what="read after two failures")
    assert rig.alerts("h") == [] and "backoff" in rig.states("h")


async def test_a_new_failure_after_a_recovery_is_alerted_again(rig):
    down = [SourceError("HTTP 503", TRANSIENT)] * 3
    source = ScriptedSource([*down, Batch(comments=[msg("a", "t")]), *down, Batch(comments=[msg("b", "t")])], name="t")
    rig.start(Poller(source, rig.bus, Timing(interval=0.01, backoff_max=0.02, failing_after=3)))
    await rig.until(lambda: rig.ids("t") == ["a", "b"], what="both outages over")
    await rig.until(lambda: len(rig.alerts("t")) == 4, what="two alerts, two recoveries")
    raised, resolved = ("audience.failing", False), ("audience.failing", True)
    assert [(a.code, a.resolved) for a in rig.alerts("t")] == [raised, resolved, raised, resolved]


async def test_the_quota_planner_raises_quota_low_once(rig):
    from streamctl.audience.quota import QuotaPlanner

    class Spender(ScriptedSource):
        async def fetch(self) -> Batch:
            self.units += 950 if not self.calls else 1  # the first call leaves under a tenth of the day's units
            return await super().fetch()

    planner = QuotaPlanner(daily=1000, planned_s=3600, started_at=time.time(), min_interval_s=0.01)
    source = Spender([Batch(comments=[msg(str(i), "q")]) for i in range(3)], name="q")
    rig.start(Poller(source, rig.bus, Timing(interval=0.01), planner=planner))
    await rig.until(lambda: rig.ids("q") == ["0"], what="the first poll")
    await rig.until(lambda: rig.alerts("q"), what="the quota warning")
    await asyncio.sleep(0.1)
    lows = [a for a in rig.alerts("q") if a.code == "quota.low"]
    assert len(lows) == 1 and lows[0].level == "warning" and lows[0].params["daily"] == 1000
    assert "quota" in lows[0].params["detail"].lower()
