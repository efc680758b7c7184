"""The YouTube quota planner: an interval that lasts the planned event, the budget shown, warnings given once."""

from __future__ import annotations

from datetime import datetime

import pytest

from streamctl.audience.quota import LIST_COST, QUOTA_ZONE, VIDEOS_COST, QuotaPlanner, quota_day, seconds_to_reset

NOON = datetime(2024, 5, 1, 12, 0, tzinfo=QUOTA_ZONE).timestamp()  # far from the Pacific midnight reset


def units_needed(plan_interval: float, viewers_every: float, seconds: float) -> float:
    return seconds * (LIST_COST / plan_interval + VIDEOS_COST / viewers_every)


def test_three_hour_event_on_the_default_quota_never_runs_dry():
    planner = QuotaPlanner(daily=10_000, planned_s=3 * 3600, started_at=NOON)
    plan = planner.plan(NOON)
    # 5-second polling would need 10,800 units: the planner must pick something slower, but not absurdly.
    assert 5.0 < plan.interval_s < 7.0
    assert units_needed(plan.interval_s, plan.viewers_every_s, 3 * 3600) <= 10_000
    assert plan.runs_out_at is None and not plan.short


def test_short_event_polls_at_the_fastest_allowed():
    planner = QuotaPlanner(daily=10_000, planned_s=1800, started_at=NOON, min_interval_s=2.0)
    assert planner.plan(NOON).interval_s == 2.0


def test_replans_from_what_is_left_and_stretches_when_units_were_spent():
    planner = QuotaPlanner(daily=10_000, planned_s=3 * 3600, started_at=NOON)
    before = planner.plan(NOON).interval_s
    planner.spend(5_000, NOON + 600)  # something else ate half the budget
    after = planner.plan(NOON + 600)
    assert after.interval_s > before * 1.5
    left = planner.left(NOON + 600)
    assert units_needed(after.interval_s, after.viewers_every_s, 3 * 3600 - 600) <= left


def test_warns_once_when_the_plan_cannot_last_and_when_little_is_left():
    planner = QuotaPlanner(daily=300, planned_s=10 * 3600, started_at=NOON)
    plan = planner.plan(NOON)
    assert plan.short and plan.runs_out_at is not None and plan.runs_out_at < planner.ends_at
    first = planner.warnings(NOON)
    assert len(first) == 1 and "run out" in first[0] and "planned_hours" in first[0]
    assert planner.warnings(NOON + 1) == []
    planner.spend(280, NOON + 2)
    low = planner.warnings(NOON + 2)
    assert len(low) == 1 and "20 of 300" in low[0]


def test_status_shows_the_budget():
    planner = QuotaPlanner(daily=10_000, planned_s=2 * 3600, started_at=NOON)
    planner.spend(105, NOON)
    status = planner.status(NOON + 5, interval_s=4.0)
    assert status["used"] == 105 and status["left"] == 9_895 and status["daily"] == 10_000
    assert status["interval_s"] == 4.0 and status["planned_end_at"] == pytest.approx(NOON + 7200)


def test_the_ledger_starts_again_at_pacific_midnight():
    late = datetime(2024, 5, 1, 23, 59, 30, tzinfo=QUOTA_ZONE).timestamp()
    planner = QuotaPlanner(daily=10_000, planned_s=3600, started_at=late)
    planner.spend(9_000, late)
    assert planner.left(late) == 1_000
    assert seconds_to_reset(late) == pytest.approx(30)
    assert quota_day(late + 60) == "2024-05-02"
    assert planner.left(late + 60) == 10_000


def test_planning_never_looks_past_the_reset():
    late = datetime(2024, 5, 1, 23, 0, tzinfo=QUOTA_ZONE).timestamp()
    planner = QuotaPlanner(daily=10_000, planned_s=5 * 3600, started_at=late, min_interval_s=1.0)
    # Only one hour until the refill: 10,000 units for one hour allows fast polling.
    assert planner.plan(late).interval_s < 2.5
