"""The YouTube quota planner: picks the polling interval so the planned event never runs out of units."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

# YouTube's quota day ends at midnight Pacific time.
QUOTA_ZONE = ZoneInfo("America/Los_Angeles")
LIST_COST = 5  # liveChatMessages.list
VIDEOS_COST = 1  # videos.list
RESERVE = 0.03  # kept back for retries, errors (every call costs) and the chat-id look-up
OVERRUN_S = 1800.0  # when the event runs past its planned end, plan for another half hour at a time
MAX_INTERVAL_S = 120.0
WARN_LEFT = 0.10  # warn when less than this share of the day's quota is left


def quota_day(at: float) -> str:
    """The quota day (Pacific date) that `at` falls in."""
    return datetime.fromtimestamp(at, QUOTA_ZONE).date().isoformat()


def seconds_to_reset(at: float) -> float:
    """Seconds from `at` until the next Pacific midnight, when YouTube refills the quota."""
    local = datetime.fromtimestamp(at, QUOTA_ZONE)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), QUOTA_ZONE)
    return max(1.0, midnight.timestamp() - at)


@dataclass
class QuotaPlan:
    """The planner's answer for now: the interval to poll at and when the units would run out."""

    interval_s: float
    viewers_every_s: float
    runs_out_at: float | None  # None: the rest of the plan fits
    short: bool  # True when even the slowest allowed polling cannot last until the planned end


class QuotaPlanner:
    """Keeps the day's ledger of units and plans the interval from what is left and the time to go."""

    def __init__(self, daily: int, planned_s: float, started_at: float, min_interval_s: float = 1.0,
                 viewers_every_s: float = 15.0, used: int = 0, day: str | None = None):
        if daily <= 0:
            raise ValueError("daily quota must be positive")
        self.daily = daily
        self.planned_s = max(60.0, planned_s)
        self.started_at = started_at
        self.min_interval_s = min_interval_s
        self.viewers_every_s = viewers_every_s
        self.day = day or quota_day(started_at)
        self.used = used
        self.warned: set[str] = set()
        self.reserved: dict[str, float] = {}  # units per second other calls of the channel take (health polls)

    def reserve(self, what: str, units_per_s: float) -> None:
        """Keep units back for a steady stream of other calls (the broadcast's health polling)."""
        self.reserved[what] = max(0.0, units_per_s)

    @property
    def ends_at(self) -> float:
        return self.started_at + self.planned_s

    def left(self, at: float) -> int:
        self._roll(at)
        return max(0, self.daily - self.used)

    def spend(self, units: int, at: float) -> None:
        self._roll(at)
        self.used += units

    def _roll(self, at: float) -> None:
        day = quota_day(at)
        if day != self.day:
            self.day, self.used = day, 0
            self.warned.clear()

    def plan(self, at: float) -> QuotaPlan:
        """The slowest-needed interval: polls spread evenly so `left` lasts until the planned end."""
        left = self.left(at) * (1 - RESERVE)
        remaining = self.ends_at - at
        if remaining <= 0:
            remaining = OVERRUN_S
        remaining = min(remaining, seconds_to_reset(at))  # the quota refills at midnight anyway

        background = sum(self.reserved.values())

        def rate(interval: float) -> float:  # units per second at this interval
            viewers_every = max(self.viewers_every_s, interval)
            return LIST_COST / interval + VIDEOS_COST / viewers_every + background

        lo, hi = self.min_interval_s, MAX_INTERVAL_S
        short = remaining * rate(hi) > left
        if remaining * rate(lo) <= left:
            interval = lo
        elif short:
            interval = hi
        else:
            for _ in range(40):  # rate() falls as the interval grows: bisect for the fastest that fits
                mid = (lo + hi) / 2
                lo, hi = (lo, mid) if remaining * rate(mid) <= left else (mid, hi)
            interval = hi
        burn = rate(interval)
        runs_out = at + left / burn if left < remaining * burn or short else None
        return QuotaPlan(interval_s=round(interval, 3), viewers_every_s=max(self.viewers_every_s, interval),
                         runs_out_at=runs_out, short=short)

    def warnings(self, at: float) -> list[str]:
        """Warnings not given yet today: the plan cannot last, or little is left."""
        out = []
        plan = self.plan(at)
        if plan.short and "short" not in self.warned:
            self.warned.add("short")
            hours = (plan.runs_out_at - at) / 3600 if plan.runs_out_at else 0
            out.append(f"YouTube quota will run out in about {hours:.1f} h, before the planned end, "
                       f"even polling every {plan.interval_s:g} s: raise daily_quota or shorten planned_hours")
        if self.left(at) < self.daily * WARN_LEFT and "low" not in self.warned:
            self.warned.add("low")
            out.append(f"YouTube quota low: {self.left(at)} of {self.daily} units left today")
        return out

    def status(self, at: float, interval_s: float | None = None) -> dict:
        """The budget as /api/audience shows it."""
        plan = self.plan(at)
        return {"used": self.used, "left": self.left(at), "daily": self.daily,
                "interval_s": interval_s if interval_s is not None else plan.interval_s,
                "runs_out_at": plan.runs_out_at, "planned_end_at": self.ends_at}
