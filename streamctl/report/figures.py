"""Every number of the post-event report, computed from the event database alone.

Definitions (the report's footnotes repeat them):

- **Event window**: `meta.started_at` to `meta.ended_at`. A missing start is the first recorded moment; a
  missing end (event still running, or the process was killed) is `now` when the caller gives one (the live
  console page), else the last recorded moment.
- **A source's viewer series** is a step function: each sample's count holds until the source's next sample,
  but an automatic source that falls silent stops counting after `hold_limit` = max(300 s, 5 x its median
  sampling interval): it was no longer reporting. A manual figure (typed in by the operator) holds until the
  next manual figure or the end of the event. A sample without a count (`viewers` NULL) ends the hold.
- **Mean viewers** of a source is time-weighted over the time its series holds a value (clipped to the
  window); with no held time (one sample at the very end) it is the plain average of its counts.
- **Peak viewers** of a source is its largest sample, `peak_at` the first time it was reached.
- **The total's peak** is the peak of the summed series: at every sample moment, the sum of every source's
  latest sample still held (never the sum of the peaks). The total's mean is the integral of that sum over
  the time at least one source was reporting, divided by that time.
- **Per-minute series** cover the event window in whole wall-clock minutes; a source's minute value is its
  time-weighted mean over the part of the minute it reported (None when it did not report); the total's is the
  summed integral over the part of the minute any source reported.
- **Views and likes** of a source are its last reported non-empty counters; the total sums the sources that
  report them. Manual sources are marked `manual`.
- **Comments** are messages of kind `comment` or `paid` (membership notices, deletion markers and system lines
  are not), hidden ones included (`hidden` counts them). Unique authors are distinct author ids (the name when
  a platform gives no id) per source; in total, distinct (platform, author): one person on two YouTube channels
  counts once. Per-minute counts use `published_at`; comments outside the window count in totals only.
- **Questions**: `received` every question row (merged duplicates included); `approved` questions that reached
  approved or any later stage (approved_at, forwarded_at, on_air_at or answered_at set: forwarding without an
  explicit approve still means a moderator accepted it); `forwarded` reached forwarded or later (forwarded_at,
  on_air_at or answered_at); `on_air` on_air_at or answered_at; `answered` answered_at set; `dismissed` in state
  dismissed now (a restored question is not). `median_answer_s`: median of answered_at - asked_at.
- **Destinations**: `uptime_s` time in state live, clipped to the window; `live_ratio` = uptime_s / window
  length. A **reconnect** is a return to live after an earlier live period of the same destination with no
  operator stop in between (live -> backoff/starting/failed -> live). An **outage** (incident) opens when a
  destination enters backoff or failed and closes at the next live (recovered), an operator stop, or the end.
"""

from __future__ import annotations

import re
import sqlite3
import statistics
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..events import now as wall_clock
from ..redact import mask_url, redact
from ..states import DESTINATION_DOWN, SOURCE_DOWN, SOURCE_END, IngestState
from ..store import iso

REPORT_VERSION = 1
HOLD_MIN_S = 300.0
HOLD_FACTOR = 5.0
COMMENT_KINDS = ("comment", "paid")
REQUIRED_TABLES = {"meta", "comments", "viewers", "questions", "audit", "destination_events",
                   "destination_health", "ingest_events", "source_events"}
# Platforms in the order a reader expects them; others follow alphabetically.
PLATFORM_ORDER = ("facebook", "youtube", "tiktok", "twitch", "zalo", "weibo", "website")
_URL = re.compile(r"\b(?:rtmps?|srt|https?|rtsp)://[^\s'\"<>]+")


class ReportError(Exception):
    """The database cannot be reported on; the message says why, for the command line."""


# ---- reading the database -------------------------------------------------------------------------


def open_database(path: Path) -> sqlite3.Connection:
    """A read-only connection to an event database, or ReportError when it is not one."""
    if not path.is_file():
        raise ReportError(f"{path}: no such file")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        db.row_factory = sqlite3.Row
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as e:
        what = "not a streamctl event database" if "not a database" in str(e) else "cannot open it"
        raise ReportError(f"{path}: {what} ({e})") from None
    missing = REQUIRED_TABLES - tables
    if missing:
        db.close()
        raise ReportError(f"{path}: not a streamctl event database (missing tables: {', '.join(sorted(missing))})")
    return db


def clean_error(text: str | None) -> str | None:
    """An error message fit to print: publish URLs shown without their keys, known secrets masked."""
    if not text:
        return text
    return redact(_URL.sub(lambda m: mask_url(m.group(0)), text))


@dataclass(frozen=True)
class Window:
    """The event window and its whole-minute axis for the per-minute series."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def axis_start(self) -> float:
        return float(int(self.start // 60) * 60)

    @property
    def minutes(self) -> int:
        return max(1, int(-(-(self.end - self.axis_start) // 60)))

    def minute(self, t: float) -> int:
        return int((t - self.axis_start) // 60)


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _data_span(db: sqlite3.Connection) -> tuple[float | None, float | None]:
    """First and last recorded moment over every history table."""
    parts = " UNION ALL ".join(
        f"SELECT MIN({col}) AS lo, MAX({col}) AS hi FROM {table}"  # noqa: S608 - names are ours
        for table, col in (("viewers", "at"), ("comments", "published_at"), ("destination_events", "at"),
                           ("destination_health", "at"), ("ingest_events", "at"), ("questions", "asked_at"))
    )
    row = db.execute(f"SELECT MIN(lo), MAX(hi) FROM ({parts})").fetchone()  # noqa: S608
    return row[0], row[1]


def event_info(db: sqlite3.Connection, now: float | None) -> tuple[dict, Window]:
    """The event block of the report and its window."""
    meta = {r["key"]: r["value"] for r in db.execute("SELECT key, value FROM meta")}
    tz = meta.get("timezone") or "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        tz = "UTC"
    first, last = _data_span(db)
    started = _parse_time(meta.get("started_at"))
    ended = _parse_time(meta.get("ended_at"))
    in_progress = ended is None
    start = started if started is not None else first
    end = ended if ended is not None else (now if now is not None else last)
    if start is None:
        start = end if end is not None else (now or 0.0)
    if end is None or end < start:
        end = start
    window = Window(start, end)
    info = {
        "name": meta.get("event_name") or path_name(db),
        "started_at": iso(start),
        "ended_at": None if in_progress else iso(end),
        "report_end": iso(end),
        "timezone": tz,
        "duration_s": round(window.duration, 1),
        "in_progress": in_progress,
    }
    return info, window


def path_name(db: sqlite3.Connection) -> str:
    """The database file's stem: the event's name when the database never recorded one."""
    row = db.execute("PRAGMA database_list").fetchone()
    return Path(row["file"]).stem if row and row["file"] else "event"


# ---- viewers ----------------------------------------------------------------------------------------


@dataclass
class Series:
    """One source's viewer samples and what follows from them."""

    name: str
    platform: str
    manual: bool
    times: list[float]
    counts: list[int | None]
    views: int | None
    likes: int | None

    def hold_limit(self) -> float:
        if self.manual:
            return float("inf")
        gaps = [b - a for a, b in zip(self.times, self.times[1:], strict=False) if b > a]
        return max(HOLD_MIN_S, HOLD_FACTOR * statistics.median(gaps)) if gaps else HOLD_MIN_S

    def steps(self, window: Window) -> list[tuple[float, float, int]]:
        """(start, stop, count) intervals the counts hold, clipped to the window."""
        limit = self.hold_limit()
        out = []
        n = len(self.times)
        for i, (at, count) in enumerate(zip(self.times, self.counts, strict=True)):
            if count is None:
                continue
            stop = min(self.times[i + 1] if i + 1 < n else window.end, at + limit, window.end)
            start = max(at, window.start)
            if stop > start:
                out.append((start, stop, count))
        return out


def _load_series(db: sqlite3.Connection) -> list[Series]:
    series: dict[str, Series] = {}
    for r in db.execute("SELECT source, platform, at, viewers, likes, views, manual FROM viewers"
                        " ORDER BY source, at, id"):
        s = series.get(r["source"])
        if s is None:
            s = series[r["source"]] = Series(r["source"], r["platform"], False, [], [], None, None)
        s.manual = s.manual or bool(r["manual"])
        s.times.append(r["at"])
        s.counts.append(r["viewers"])
        if r["views"] is not None:
            s.views = r["views"]
        if r["likes"] is not None:
            s.likes = r["likes"]
    return list(series.values())


def _spread(steps: list[tuple[float, float, float]], window: Window) -> tuple[list[float], list[float]]:
    """Per axis minute: the integral of the steps' values and the time they cover."""
    area = [0.0] * window.minutes
    cover = [0.0] * window.minutes
    base = window.axis_start
    last = window.minutes - 1
    for start, stop, value in steps:
        t = start
        while t < stop:
            m = min(window.minute(t), last)
            edge = stop if m == last else min(stop, base + 60.0 * (m + 1))
            if edge <= t:  # pragma: no cover - float guard, the axis is whole minutes
                break
            area[m] += value * (edge - t)
            cover[m] += edge - t
            t = edge
    return area, cover


def _union(intervals: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """The union of intervals, as (start, stop, 1) pieces."""
    merged: list[list[float]] = []
    for start, stop, _ in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return [(a, b, 1) for a, b in merged]


def _ratio(area: float, cover: float) -> float | None:
    return round(area / cover, 1) if cover > 0 else None


def _per_minute(area: list[float], cover: list[float]) -> list[float | None]:
    return [_ratio(a, c) for a, c in zip(area, cover, strict=True)]


def _source_viewers(s: Series, window: Window) -> dict:
    counted = [(t, c) for t, c in zip(s.times, s.counts, strict=True) if c is not None]
    steps = s.steps(window)
    held = sum(b - a for a, b, _ in steps)
    if held > 0:
        mean = sum((b - a) * v for a, b, v in steps) / held
    elif counted:
        mean = sum(c for _, c in counted) / len(counted)
    else:
        mean = None
    peak_at, peak = None, None
    for t, c in counted:
        if peak is None or c > peak:
            peak_at, peak = t, c
    area, cover = _spread(steps, window)
    return {
        "peak_viewers": peak, "peak_at": iso(peak_at), "mean_viewers": None if mean is None else round(mean, 1),
        "samples": len(s.times), "reporting_s": round(held, 1), "views": s.views, "likes": s.likes,
        "viewers_per_minute": _per_minute(area, cover), "_steps": steps, "_area": area,
    }


def _total_peak(series: list[Series]) -> tuple[int | None, float | None]:
    """The peak of the summed series: at each sample moment, every source's latest sample still held."""
    moments = sorted({t for s in series for t, c in zip(s.times, s.counts, strict=True)})
    if not moments:
        return None, None
    prepared = [(s.times, s.counts, s.hold_limit()) for s in series]
    best, best_at = None, None
    for t in moments:
        total, seen = 0, False
        for times, counts, limit in prepared:
            i = bisect_right(times, t) - 1
            if i < 0 or counts[i] is None or t - times[i] > limit:
                continue
            total += counts[i]
            seen = True
        if seen and (best is None or total > best):
            best, best_at = total, t
    return best, best_at


def viewer_figures(db: sqlite3.Connection, window: Window) -> tuple[dict[str, dict], dict]:
    """Per source (by name) and total viewer figures."""
    series = _load_series(db)
    per_source = {s.name: {"name": s.name, "platform": s.platform, "manual": s.manual, **_source_viewers(s, window)}
                  for s in series}
    peak, peak_at = _total_peak(series)
    all_steps = [step for p in per_source.values() for step in p.pop("_steps")]
    union = _union(all_steps)
    covered = sum(b - a for a, b, _ in union)
    integral = sum((b - a) * v for a, b, v in all_steps)
    _, union_cover = _spread(union, window)
    minute_area = [0.0] * window.minutes
    for p in per_source.values():
        minute_area = [a + b for a, b in zip(minute_area, p.pop("_area"), strict=True)]
    reporting_views = [s for s in series if s.views is not None]
    reporting_likes = [s for s in series if s.likes is not None]
    total = {
        "peak_viewers": peak, "peak_at": iso(peak_at),
        "mean_viewers": round(integral / covered, 1) if covered > 0 else None,
        "views": sum(s.views for s in reporting_views) if reporting_views else None,
        "views_manual": sum(s.views for s in reporting_views if s.manual) if reporting_views else None,
        "likes": sum(s.likes for s in reporting_likes) if reporting_likes else None,
        "likes_manual": sum(s.likes for s in reporting_likes if s.manual) if reporting_likes else None,
        "viewers_per_minute": _per_minute(minute_area, union_cover),
    }
    return per_source, total


# ---- comments ---------------------------------------------------------------------------------------

_AUTHOR = "CASE WHEN author_id != '' THEN 'i:' || author_id ELSE 'n:' || author_name END"
_KINDS = "kind IN ('comment', 'paid')"


def comment_figures(db: sqlite3.Connection, window: Window) -> tuple[dict[str, dict], dict, list[dict]]:
    """Per source and total comment figures, and the paid messages."""
    per_source: dict[str, dict] = {}
    for r in db.execute(
        f"SELECT source, MAX(platform) AS platform, COUNT(*) AS n, COUNT(DISTINCT {_AUTHOR}) AS authors,"  # noqa: S608
        f" SUM(kind = 'paid') AS paid, SUM(hidden) AS hidden FROM comments WHERE {_KINDS} GROUP BY source"
    ):
        per_source[r["source"]] = {"name": r["source"], "platform": r["platform"], "comments": r["n"],
                                   "unique_authors": r["authors"], "paid": r["paid"], "hidden": r["hidden"],
                                   "comments_per_minute": [0] * window.minutes}
    total_minutes = [0] * window.minutes
    for r in db.execute(
        f"SELECT source, CAST((published_at - ?) / 60 AS INTEGER) AS m, COUNT(*) AS n FROM comments"  # noqa: S608
        f" WHERE {_KINDS} AND published_at >= ? AND published_at <= ? GROUP BY source, m",
        (window.axis_start, window.start, window.end),
    ):
        m = min(r["m"], window.minutes - 1)
        per_source[r["source"]]["comments_per_minute"][m] += r["n"]
        total_minutes[m] += r["n"]
    row = db.execute(
        f"SELECT COUNT(*) AS n, SUM(kind = 'paid') AS paid, SUM(hidden) AS hidden,"  # noqa: S608
        f" (SELECT COUNT(*) FROM (SELECT DISTINCT platform, {_AUTHOR} FROM comments WHERE {_KINDS})) AS authors"
        f" FROM comments WHERE {_KINDS}"
    ).fetchone()
    total = {"comments": row["n"], "unique_authors": row["authors"], "paid": row["paid"] or 0,
             "hidden": row["hidden"] or 0, "comments_per_minute": total_minutes}
    paid = [
        {"author": r["author_name"], "platform": r["platform"], "source": r["source"], "amount": r["amount"],
         "text": r["text"], "published_at": iso(r["published_at"])}
        for r in db.execute("SELECT * FROM comments WHERE kind = 'paid' ORDER BY published_at, id")
    ]
    return per_source, total, paid


# ---- questions --------------------------------------------------------------------------------------


def question_figures(db: sqlite3.Connection) -> dict:
    """The question funnel, the median time to an answer, and the answered questions."""
    rows = db.execute("SELECT * FROM questions ORDER BY id").fetchall()
    answerers = {r["target_id"]: r["actor"] for r in db.execute(
        "SELECT target_id, actor FROM audit WHERE target_type = 'question' AND action IN ('answered', 'answer')"
        " ORDER BY id")}

    def reached(row: sqlite3.Row, *stages: str) -> bool:
        return any(row[f"{stage}_at"] is not None for stage in stages)

    answered = [r for r in rows if r["answered_at"] is not None]
    waits = [r["answered_at"] - r["asked_at"] for r in answered]
    by_source: dict[str, int] = {}
    for r in rows:
        by_source[r["source"]] = by_source.get(r["source"], 0) + 1
    return {
        "received": len(rows),
        "approved": sum(reached(r, "approved", "forwarded", "on_air", "answered") for r in rows),
        "forwarded": sum(reached(r, "forwarded", "on_air", "answered") for r in rows),
        "on_air": sum(reached(r, "on_air", "answered") for r in rows),
        "answered": len(answered),
        "dismissed": sum(r["state"] == "dismissed" for r in rows),
        "pending": sum(r["state"] == "pending" and r["merged_into"] is None for r in rows),
        "merged": sum(r["merged_into"] is not None for r in rows),
        "median_answer_s": round(statistics.median(waits), 1) if waits else None,
        "by_source": by_source,
        "answered_list": [
            {"id": r["id"], "text": r["text"], "author": r["author"], "platform": r["platform"],
             "source": r["source"], "asked_at": iso(r["asked_at"]), "answered_at": iso(r["answered_at"]),
             "answer_s": round(r["answered_at"] - r["asked_at"], 1),
             "answered_by": r["answered_by"] or answerers.get(str(r["id"])), "merged_count": r["merged_count"]}
            for r in sorted(answered, key=lambda r: (r["answered_at"], r["id"]))
        ],
    }


def moderation_figures(db: sqlite3.Connection) -> list[dict]:
    """Who did how much moderation work (from the audit log)."""
    return [{"actor": r["actor"], "actions": r["n"]} for r in db.execute(
        "SELECT actor, COUNT(*) AS n FROM audit GROUP BY actor ORDER BY n DESC, actor")]


# ---- stream health ----------------------------------------------------------------------------------


def _intervals(changes: list[tuple[float, str]], window: Window) -> list[tuple[float, float, str]]:
    """(start, stop, state) pieces of a state history, clipped to the window."""
    out = []
    for i, (at, state) in enumerate(changes):
        stop = changes[i + 1][0] if i + 1 < len(changes) else window.end
        a, b = max(at, window.start), min(stop, window.end)
        if b > a:
            out.append((a, b, state))
    return out


def _outages(kind: str, name: str, changes: list[tuple[float, str, str | None]], down: tuple[str, ...],
             closing: tuple[str, ...], window: Window, up: tuple[str, ...] | None = None) -> list[dict]:
    """Incidents: from entering a down state until an `up` state (recovered; None: any state neither down nor
    closing), a closing state (ended without recovery), or the window's end."""
    out: list[dict] = []
    current: dict | None = None
    for at, state, error in changes:
        if state in down:
            if current is None:
                current = {"kind": kind, "name": name, "at": at, "error": clean_error(error), "state": state}
            else:
                current["state"] = state
                current["error"] = current["error"] or clean_error(error)
        elif current is not None and (state in closing or up is None or state in up):
            current.update(until=at, recovered=state not in closing)
            out.append(current)
            current = None
    if current is not None:
        current.update(until=None, recovered=False)
        out.append(current)
    for o in out:
        stop = o["until"] if o["until"] is not None else window.end
        o["duration_s"] = round(max(0.0, stop - o["at"]), 1)
        o["at"], o["until"] = iso(o["at"]), iso(o["until"])
    return out


def _minute_means(points: list[tuple[float, float]], window: Window) -> list[float | None]:
    """Per axis minute, the plain mean of the point samples that fall in it."""
    sums = [0.0] * window.minutes
    counts = [0] * window.minutes
    for t, value in points:
        if window.start <= t <= window.end:
            m = min(window.minute(t), window.minutes - 1)
            sums[m] += value
            counts[m] += 1
    return [round(s / n, 1) if n else None for s, n in zip(sums, counts, strict=True)]


def destination_figures(db: sqlite3.Connection, window: Window) -> tuple[list[dict], list[dict]]:
    """Per destination: time live, share of the event, reconnects, bitrate; and their incidents."""
    events: dict[str, list[sqlite3.Row]] = {}
    for r in db.execute("SELECT * FROM destination_events ORDER BY at, id"):
        events.setdefault(r["name"], []).append(r)
    health: dict[str, list[tuple[float, float]]] = {}
    for r in db.execute("SELECT name, at, bitrate_kbps FROM destination_health WHERE bitrate_kbps IS NOT NULL"
                        " ORDER BY name, at"):
        health.setdefault(r["name"], []).append((r["at"], r["bitrate_kbps"]))
    from ..broadcasts.records import platform_view_of

    platform = platform_view_of(db, window.start, window.end)
    out, incidents = [], []
    for name in sorted(set(events) | set(health), key=lambda n: (_platform_rank(_dest_platform(events, n)), n)):
        rows = events.get(name, [])
        changes = [(r["at"], r["new"]) for r in rows]
        pieces = _intervals(changes, window)
        uptime = sum(b - a for a, b, s in pieces if s == "live")
        reconnects, been_live, stopped = 0, False, False
        for _, state in changes:
            if state == "live":
                reconnects += been_live and not stopped
                been_live, stopped = True, False
            elif state == "stopped":
                stopped = True
        outages = _outages("destination", name, [(r["at"], r["new"], r["error"]) for r in rows], DESTINATION_DOWN,
                           ("stopped",), window, up=("live",))
        incidents += outages
        samples = health.get(name, [])
        out.append({
            "name": name, "platform": _dest_platform(events, name),
            "uptime_s": round(uptime, 1),
            "live_ratio": round(uptime / window.duration, 4) if window.duration > 0 else None,
            "reconnects": reconnects,
            "outages": len(outages),
            "first_live_at": iso(next((at for at, s in changes if s == "live"), None)),
            "last_state": changes[-1][1] if changes else None,
            "bitrate_mean_kbps": round(sum(b for _, b in samples) / len(samples), 1) if samples else None,
            "bitrate_per_minute": _minute_means(samples, window) if samples else [],
            "states": [{"from": iso(a), "to": iso(b), "state": s} for a, b, s in pieces],
            # What the platform itself said it received while we were live (None: it was not asked).
            "platform_view": platform.get(name),
        })
    return out, incidents


def _dest_platform(events: dict[str, list[sqlite3.Row]], name: str) -> str:
    rows = events.get(name)
    return rows[-1]["platform"] if rows else "custom"


def _platform_rank(platform: str) -> tuple[int, str]:
    return (PLATFORM_ORDER.index(platform) if platform in PLATFORM_ORDER else len(PLATFORM_ORDER), platform)


def ingest_figures(db: sqlite3.Connection, window: Window) -> tuple[dict, list[dict]]:
    """The program feed: time live, losses, which input was on air when, and the incidents (losses, backup spells)."""
    rows = db.execute("SELECT at, state, error FROM ingest_events ORDER BY at, id").fetchall()
    changes = [(r["at"], r["state"]) for r in rows]
    pieces = _intervals(changes, window)
    # After a loss the listener may wait for the switcher again: the outage lasts until the feed is live.
    incidents = _outages("ingest", "ingest", [(r["at"], r["state"], r["error"]) for r in rows], (IngestState.LOST,),
                         ("stopped",), window, up=("live",))
    # Which input the program carried when (primary, backup, slate); each spell on the backup is an incident too.
    switches: list[tuple[float, str, str | None]] = []
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ingest_switches'").fetchone():
        for r in db.execute("SELECT at, on_air, reason FROM ingest_switches ORDER BY at, id"):
            if not switches or switches[-1][1] != (r["on_air"] or "none"):  # a handback keeps who is on air
                switches.append((r["at"], r["on_air"] or "none", r["reason"]))
    on_air = _intervals([(at, who) for at, who, _ in switches], window)
    backup = _outages("ingest_backup", "ingest", switches, ("backup",), (), window)
    return {
        "on_air": [{"from": iso(a), "to": iso(b), "input": s} for a, b, s in on_air],
        "backup_s": round(sum(b - a for a, b, s in on_air if s == "backup"), 1),
        "live_s": round(sum(b - a for a, b, s in pieces if s == "live"), 1),
        "lost": len(incidents),
        "lost_s": round(sum(i["duration_s"] for i in incidents), 1),
        "states": [{"from": iso(a), "to": iso(b), "state": s} for a, b, s in pieces],
    }, incidents + backup


def source_incidents(db: sqlite3.Connection, window: Window) -> list[dict]:
    """Audience sources that failed (and whether they recovered)."""
    by_source: dict[str, list[tuple[float, str, str | None]]] = {}
    for r in db.execute("SELECT at, source, state, error FROM source_events ORDER BY at, id"):
        by_source.setdefault(r["source"], []).append((r["at"], r["state"], r["error"]))
    out = []
    for name, changes in sorted(by_source.items()):
        out += _outages("source", name, changes, SOURCE_DOWN, SOURCE_END, window)
    return out


# ---- the whole report -------------------------------------------------------------------------------


def compute(db: sqlite3.Connection, now: float | None = None) -> dict:
    """The report as a JSON-ready dict (field meanings in this module's docstring)."""
    event, window = event_info(db, now)
    viewers, total = viewer_figures(db, window)
    comments, comment_total, paid = comment_figures(db, window)
    questions = question_figures(db)
    destinations, dest_incidents = destination_figures(db, window)
    ingest, ingest_incidents = ingest_figures(db, window)
    incidents = sorted(dest_incidents + ingest_incidents + source_incidents(db, window),
                       key=lambda i: (i["at"], i["kind"], i["name"]))
    no_viewers = {"manual": False, "peak_viewers": None, "peak_at": None, "mean_viewers": None, "samples": 0,
                  "reporting_s": 0.0, "views": None, "likes": None, "viewers_per_minute": [None] * window.minutes}
    no_comments = {"comments": 0, "unique_authors": 0, "paid": 0, "hidden": 0,
                   "comments_per_minute": [0] * window.minutes}
    platforms = []
    for name in set(viewers) | set(comments):
        platform = (viewers.get(name) or comments[name])["platform"]
        platforms.append({**no_viewers, **no_comments, **viewers.get(name, {}), **comments.get(name, {}),
                          "name": name, "platform": platform, "questions": questions["by_source"].get(name, 0)})
    platforms.sort(key=lambda p: (_platform_rank(p["platform"]), p["name"]))
    return {
        "report": {"version": REPORT_VERSION, "generated_at": iso(wall_clock())},
        "event": event,
        "minutes": {"start": iso(window.axis_start), "count": window.minutes},
        "platforms": platforms,
        "total": {**total, **comment_total},
        "questions": questions,
        "paid_messages": paid,
        "moderation": moderation_figures(db),
        "destinations": destinations,
        "ingest": ingest,
        "incidents": incidents,
    }


def build_report(path: Path, now: float | None = None) -> dict:
    """Open the database read-only, compute the report, close it."""
    db = open_database(path)
    try:
        return compute(db, now)
    except sqlite3.DatabaseError as e:
        raise ReportError(f"{path}: cannot read the event database ({e})") from None
    finally:
        db.close()
