"""Every figure of the report checked against a second, simpler computation over the fixture's known data."""

from __future__ import annotations

import sqlite3
import statistics
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from streamctl.report.figures import ReportError, build_report
from streamctl.store import Store

from .report_fixture import END, SECRET, T, write_fixture

HOLD_S = 300  # max(300 s, 5 x the 10-15 s polling interval) for the automatic sources


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def held_value(rows, t: int, manual: bool) -> int | None:
    """The count a source shows at second t: its latest sample, while that sample still holds."""
    latest = None
    for at, viewers, _, _ in rows:
        if at <= t:
            latest = (at, viewers)
    if latest is None or latest[1] is None:
        return None
    if not manual and t - latest[0] >= HOLD_S:
        return None
    return latest[1]


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    fx = write_fixture(tmp_path_factory.mktemp("report") / "event.db")
    return fx, build_report(fx.path)


@pytest.fixture(scope="module")
def per_second(known):
    """Each source's held count at every whole second of the event (the fixture's times are whole seconds)."""
    fx, _ = known
    return {name: [held_value(rows, t, name in fx.manual) for t in range(T, END)] for name, rows in fx.samples.items()}


def test_event_block_reads_meta_and_window(known):
    fx, report = known
    assert report["event"] == {
        "name": "Phiên chất vấn thử nghiệm", "started_at": iso(T), "ended_at": iso(END), "report_end": iso(END),
        "timezone": "Asia/Ho_Chi_Minh", "duration_s": 3600.0, "in_progress": False,
    }
    assert report["minutes"] == {"start": iso(T - T % 60), "count": 61}


def test_each_source_peak_mean_views_likes(known, per_second):
    fx, report = known
    platforms = {p["name"]: p for p in report["platforms"]}
    for name, rows in fx.samples.items():
        counted = [(at, v) for at, v, _, _ in rows if v is not None]
        peak = max(v for _, v in counted)
        held = [v for v in per_second[name] if v is not None]
        p = platforms[name]
        assert p["platform"] == fx.platform[name]
        assert p["manual"] == (name in fx.manual)
        assert p["peak_viewers"] == peak
        assert p["peak_at"] == iso(next(at for at, v in counted if v == peak))
        assert p["mean_viewers"] == pytest.approx(sum(held) / len(held), abs=0.051)
        assert p["reporting_s"] == len(held)
        assert p["views"] == next(v for _, _, _, v in reversed(rows) if v is not None)
        assert p["likes"] == next((lk for _, _, lk, _ in reversed(rows) if lk is not None), None)
    # The silent gap is not counted as reporting time: the mean is not the plain average either.
    fb_counts = [v for _, v, _, _ in fx.samples["fb"]]
    assert platforms["fb"]["reporting_s"] < 3600
    assert platforms["fb"]["mean_viewers"] != pytest.approx(sum(fb_counts) / len(fb_counts), abs=0.05)


def test_total_peak_is_the_peak_of_the_summed_series(known, per_second):
    fx, report = known
    sums = [sum(v for v in values if v is not None) for values in zip(*per_second.values(), strict=True)]
    active = [any(v is not None for v in values) for values in zip(*per_second.values(), strict=True)]
    peak = max(sums)
    total = report["total"]
    assert total["peak_viewers"] == peak
    assert total["peak_at"] == iso(T + sums.index(peak))
    assert total["peak_viewers"] < sum(p["peak_viewers"] for p in report["platforms"] if p["peak_viewers"])
    held = [s for s, a in zip(sums, active, strict=True) if a]
    assert total["mean_viewers"] == pytest.approx(sum(held) / len(held), abs=0.051)
    assert total["views"] == sum(rows[-1][3] for rows in fx.samples.values())
    assert total["views_manual"] == fx.samples["zalo"][-1][3]
    assert total["likes"] == fx.samples["fb"][-1][2]


def test_viewers_per_minute(known, per_second):
    fx, report = known
    base = T - T % 60
    platforms = {p["name"]: p for p in report["platforms"]}
    for m in range(report["minutes"]["count"]):
        seconds = [t - T for t in range(max(T, base + 60 * m), min(END, base + 60 * (m + 1)))]
        column = []
        for name, values in per_second.items():
            held = [values[s] for s in seconds if values[s] is not None]
            expected = sum(held) / len(held) if held else None
            assert platforms[name]["viewers_per_minute"][m] == pytest.approx(expected, abs=0.051), (name, m)
            column.append([values[s] for s in seconds])
        active = [sum(v for v in vs if v is not None) for vs in zip(*column, strict=True)
                  if any(v is not None for v in vs)]
        expected_total = sum(active) / len(active) if active else None
        assert report["total"]["viewers_per_minute"][m] == pytest.approx(expected_total, abs=0.051), m


def test_comments_counts_authors_paid_hidden_and_per_minute(known):
    fx, report = known
    messages = [c for c in fx.comments if c.kind in ("comment", "paid")]
    platforms = {p["name"]: p for p in report["platforms"]}
    for source in ("fb", "yt", "yt2"):
        mine = [c for c in messages if c.source == source]
        assert platforms[source]["comments"] == len(mine)
        assert platforms[source]["unique_authors"] == len({c.author_id or c.author_name for c in mine})
        assert platforms[source]["paid"] == sum(c.kind == "paid" for c in mine)
    assert platforms["yt2"]["peak_viewers"] is None and platforms["zalo"]["comments"] == 0
    total = report["total"]
    assert total["comments"] == len(messages) == 120 + 90 + 10 + 2
    assert total["unique_authors"] == len({(c.platform, c.author_id or c.author_name) for c in messages})
    assert total["paid"] == 1 and total["hidden"] == len(fx.hidden_ids) == 3
    per_minute = defaultdict(int)
    for c in messages:
        if T <= c.published_at <= END:
            per_minute[int((c.published_at - (T - T % 60)) // 60)] += 1
    assert total["comments_per_minute"] == [per_minute[m] for m in range(61)]
    assert sum(total["comments_per_minute"]) == len(messages) - 1  # the early bird counts in totals only
    assert report["paid_messages"] == [{"author": "Sponsor", "platform": "youtube", "source": "yt",
                                        "amount": "$5.00", "text": "Great!", "published_at": iso(T + 1234)}]


def test_question_funnel_median_and_answered_list(known):
    fx, report = known
    qs = fx.questions
    q = report["questions"]
    assert q["received"] == len(qs) == 11
    assert q["approved"] == sum(bool(x["approved"] or x["forwarded"] or x["on_air"] or x["answered"]) for x in qs) == 8
    assert q["forwarded"] == sum(bool(x["forwarded"] or x["on_air"] or x["answered"]) for x in qs) == 5
    assert q["on_air"] == 4
    assert q["answered"] == sum(x["answered"] is not None for x in qs) == 3
    assert q["dismissed"] == sum(x["state"] == "dismissed" for x in qs) == 2
    assert q["merged"] == 1 and q["pending"] == 1
    waits = [x["answered"] - x["asked"] for x in qs if x["answered"]]
    assert q["median_answer_s"] == statistics.median(waits) == 900
    assert [(a["text"], a["answered_by"], a["answer_s"]) for a in q["answered_list"]] == [
        ("Câu hỏi số 1?", "Giám đốc Sở Y tế", 600.0), ("Câu hỏi số 2?", "bt.lan", 950.0),
        ("Câu hỏi số 3?", "Chủ tịch UBND", 900.0)]
    assert q["answered_list"][0]["author"] == "Người hỏi 1" and q["answered_list"][0]["platform"] == "facebook"


def test_destinations_uptime_ratio_reconnects_and_incidents(known):
    fx, report = known
    dests = {d["name"]: d for d in report["destinations"]}
    for name, rows in fx.destination_events.items():
        live_seconds = 0
        for t in range(T, END):
            state = None
            for at, _, new, _ in rows:
                if at <= t:
                    state = new
            live_seconds += state == "live"
        assert dests[name]["uptime_s"] == live_seconds
        assert dests[name]["live_ratio"] == pytest.approx(live_seconds / 3600, abs=1e-4)
    assert dests["d1"]["reconnects"] == 1  # the return after the operator's stop is not a reconnect
    assert dests["d2"]["reconnects"] == 0 and dests["d2"]["uptime_s"] == 0
    assert dests["d1"]["bitrate_mean_kbps"] == pytest.approx(statistics.mean(b for _, b in fx.health["d1"]), abs=0.051)
    incidents = [(i["kind"], i["name"], i["at"], i["until"], i["duration_s"], i["recovered"])
                 for i in report["incidents"]]
    assert incidents == [
        ("destination", "d2", iso(T + 20), None, 3580.0, False),
        ("ingest", "ingest", iso(T + 500), iso(T + 530), 30.0, True),
        ("destination", "d1", iso(T + 1000), iso(T + 1016), 16.0, True),
    ]
    d1_error = next(i["error"] for i in report["incidents"] if i["name"] == "d1")
    assert SECRET not in d1_error and "rtmps://a.rtmps.youtube.com/live2/****" in d1_error
    assert report["ingest"]["lost"] == 1 and report["ingest"]["lost_s"] == 30.0
    assert report["ingest"]["live_s"] == 3600 - 30


def test_a_running_event_is_reported_up_to_now(tmp_path):
    fx = write_fixture(tmp_path / "live.db")
    with sqlite3.connect(fx.path) as db:
        db.execute("UPDATE meta SET value = '' WHERE key = 'ended_at'")
    live = build_report(fx.path, now=T + 1800)
    assert live["event"]["in_progress"] and live["event"]["ended_at"] is None
    assert live["event"]["duration_s"] == 1800.0 and live["minutes"]["count"] == 31
    # Without `now` (the command line after a crash) the window ends at the last recorded moment.
    after_crash = build_report(fx.path)
    assert after_crash["event"]["report_end"] == iso(max(at for rows in fx.samples.values() for at, *_ in rows))


def test_an_empty_event_has_a_report(tmp_path):
    store = Store(tmp_path / "empty.db")
    store.set_meta("event_name", "Nothing happened")
    store.close()
    report = build_report(tmp_path / "empty.db")
    assert report["event"]["name"] == "Nothing happened"
    assert report["platforms"] == [] and report["destinations"] == [] and report["incidents"] == []
    assert report["total"]["peak_viewers"] is None and report["total"]["comments"] == 0
    assert report["questions"]["received"] == 0 and report["questions"]["median_answer_s"] is None


@pytest.mark.parametrize("content", [b"just some text, not a database at all\n" * 20, None])
def test_other_files_are_refused_with_a_reason(tmp_path, content):
    path = tmp_path / "other.db"
    if content is None:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    else:
        path.write_bytes(content)
    with pytest.raises(ReportError, match="not a streamctl event database"):
        build_report(path)
    with pytest.raises(ReportError, match="no such file"):
        build_report(tmp_path / "missing.db")
