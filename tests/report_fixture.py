"""A small event database with known numbers, written through the store, for the report's tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from streamctl.audience.models import Comment, ViewerSample
from streamctl.store import Store

T = 1_720_573_217  # 2024-07-10 01:00:17 UTC: deliberately not on a whole minute
END = T + 3600
NAME = "Phiên chất vấn <thử nghiệm> & \"kiểm tra\""
HOSTILE_TEXT = "<script>alert('x')</script> =HYPERLINK(\"http://evil.example\")"
HOSTILE_AUTHOR = "@SUM(1+1)<b>"
FORMULAS = ("=1+2", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tTAB", "\rCR")
SECRET = "SECRETKEY-abc123"


@dataclass
class Fixture:
    """What was written, kept in plain Python so tests can recompute every figure their own way."""

    path: Path
    samples: dict[str, list[tuple[int, int | None, int | None, int | None]]] = field(default_factory=dict)
    manual: set[str] = field(default_factory=set)
    platform: dict[str, str] = field(default_factory=dict)
    comments: list[Comment] = field(default_factory=list)
    hidden_ids: list[str] = field(default_factory=list)
    questions: list[dict] = field(default_factory=list)
    destination_events: dict[str, list[tuple[int, str, str, str | None]]] = field(default_factory=dict)
    health: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    ingest: list[tuple[int, str]] = field(default_factory=list)


def _viewer_samples() -> dict[str, list[tuple[int, int | None, int | None, int | None]]]:
    """(at, viewers, likes, views) per source: regular polls, a silent gap, a hidden count, a manual figure."""
    fb = [(T + 3 + 10 * i, 100 + (i * 37) % 250, i, 10 * i) for i in range(180)]  # until T+1793
    # Then 907 s of silence, and polls again.
    fb += [(T + 2700 + 10 * i, 150 + (i * 29) % 400, 200 + i, 2000 + 10 * i) for i in range(89)]
    yt = [(T + 5 + 15 * i, 200 + (i * 53) % 300, None, 5000 + i) for i in range(239)]
    yt[60] = (yt[60][0], None, None, None)  # the platform hid the count once
    zalo = [(T + 60, 500, None, 1000), (T + 1500, 800, None, 4000), (T + 3000, 650, None, 9000)]
    return {"fb": fb, "yt": yt, "zalo": zalo}


def write_fixture(path: Path, hostile: bool = False) -> Fixture:
    """Write the known event into a new database at `path`."""
    fx = Fixture(path)
    store = Store(path)
    store.set_meta("event_name", NAME if hostile else "Phiên chất vấn thử nghiệm")
    store.set_meta("timezone", "Asia/Ho_Chi_Minh")
    store.set_meta("started_at", datetime.fromtimestamp(T, UTC).isoformat())
    store.set_meta("ended_at", datetime.fromtimestamp(END, UTC).isoformat())

    fx.samples = _viewer_samples()
    fx.manual = {"zalo"}
    fx.platform = {"fb": "facebook", "yt": "youtube", "yt2": "youtube", "zalo": "zalo"}
    for source, rows in fx.samples.items():
        for at, viewers, likes, views in rows:
            store.add_viewers(ViewerSample(source, fx.platform[source], float(at), viewers, likes, views,
                                           manual=source in fx.manual))

    def comment(source: str, n: int, author: str, author_id: str, at: int, text: str = "xin chào",
                kind: str = "comment", amount: str | None = None) -> Comment:
        return Comment(fx.platform[source], source, f"{source}-{n}", author, author_id, text, float(at),
                       float(at + 3), kind=kind, amount=amount)

    people = [("An", "fb-1"), ("Bình", "fb-2"), ("Chi", "fb-3"), ("Dũng", "")]
    fx.comments = [comment("fb", i, *people[i % 4], at=T + 40 + 13 * i) for i in range(120)]
    fx.comments += [comment("yt", i, f"Viewer {i % 9}", f"UC{i % 9}", at=T + 100 + 29 * i) for i in range(90)]
    # UC1 also writes on the second channel: the same person, counted once in total.
    fx.comments += [comment("yt2", i, f"Viewer {i % 2}", f"UC{i % 2}", at=T + 200 + 300 * i) for i in range(10)]
    fx.comments += [
        comment("fb", 900, "Early bird", "fb-9", at=T - 120),  # before the start: totals only
        comment("yt", 901, "Sponsor", "UC77", at=T + 1234, text="Great!", kind="paid", amount="$5.00"),
        comment("yt", 902, "Channel", "UC78", at=T + 1300, text="New member", kind="member"),
        comment("yt", 903, "YouTube", "", at=T + 1301, text="Chat paused", kind="system"),
    ]
    if hostile:
        fx.comments.append(comment("fb", 950, HOSTILE_AUTHOR, "fb-66", T + 2500, HOSTILE_TEXT, "paid", "=1+1"))
        fx.comments += [comment("fb", 960 + i, f, f"fb-f{i}", T + 2600 + i, f, "paid", "1") for i, f in
                        enumerate(FORMULAS)]
    new, _ = store.add_comments("fb", [c for c in fx.comments if c.source == "fb"], cursor="c1")
    new += store.add_comments("yt", [c for c in fx.comments if c.source == "yt"])[0]
    new += store.add_comments("yt2", [c for c in fx.comments if c.source == "yt2"])[0]
    by_pid = {c["id"]: c for c in new}
    hide = [cid for cid, c in by_pid.items() if c["author"] == "Bình"][:3]
    store.set_hidden(hide, True, by="moderator")
    fx.hidden_ids = [by_pid[cid]["id"] for cid in hide]

    _questions(store, fx, hostile)
    _stream_history(store, fx)
    store.close()
    return fx


def _questions(store: Store, fx: Fixture, hostile: bool) -> None:
    """Questions in every state; stamps in seconds after T (None: never reached)."""
    plan = [
        # state, asked, approved, forwarded, on_air, answered, dismissed, merged_into, answered_by
        ("answered", 100, 160, 300, 600, 700, None, None, "Giám đốc Sở Y tế"),
        ("answered", 150, None, 200, 800, 1100, None, None, None),  # forwarded without an explicit approve
        ("answered", 400, 420, 500, 1200, 1300, None, None, "Chủ tịch UBND"),
        ("on_air", 500, 550, 560, 1400, None, None, None, None),
        ("forwarded", 600, 650, 700, None, None, None, None, None),
        ("approved", 700, 720, None, None, None, None, None, None),
        ("dismissed", 800, None, None, None, None, 830, None, None),
        ("dismissed", 810, 820, None, None, None, 900, None, None),  # approved, then dismissed
        ("pending", 900, None, None, None, None, None, None, None),
        ("pending", 950, None, None, None, None, None, 1, None),  # merged into the first
        ("approved", 1000, 1010, None, None, None, 1005, None, None),  # dismissed, then restored
    ]
    with store.transaction() as db:
        for i, (state, *stamps, merged_into, by) in enumerate(plan, start=1):
            asked, approved, forwarded, on_air, answered, dismissed = (None if s is None else float(T + s)
                                                                       for s in stamps)
            text = HOSTILE_TEXT if hostile and i == 1 else f"Câu hỏi số {i}?"
            author = HOSTILE_AUTHOR if hostile and i == 1 else f"Người hỏi {i}"
            db.execute(
                "INSERT INTO questions (text, original_text, author, platform, source, state, ord, merged_into,"
                " asked_at, created_at, updated_at, approved_at, forwarded_at, on_air_at, answered_at, dismissed_at,"
                " answered_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (text, text, author, "facebook", "fb", state, float(i), merged_into, asked, asked, asked,
                 approved, forwarded, on_air, answered, dismissed, by))
            fx.questions.append({"state": state, "asked": asked, "approved": approved, "forwarded": forwarded,
                                 "on_air": on_air, "answered": answered, "dismissed": dismissed,
                                 "merged_into": merged_into, "answered_by": by, "text": text, "author": author})
        # Who clicked "answered" for the question whose answerer was not typed in.
        db.execute("INSERT INTO audit (at, actor, action, target_type, target_id) VALUES (?,?,?,?,?)",
                   (float(T + 1100), "bt.lan", "answered", "question", "2"))


def _stream_history(store: Store, fx: Fixture) -> None:
    """Destination states (a reconnect, an operator stop, a destination that never went live), health, ingest."""
    url = f"rtmps://a.rtmps.youtube.com/live2/{SECRET}"
    fx.destination_events = {
        "d1": [(T, "stopped", "starting", None), (T + 2, "starting", "live", None),
               (T + 1000, "live", "backoff", f"{url}: Connection reset by peer"),
               (T + 1004, "backoff", "starting", None), (T + 1006, "starting", "backoff", f"{url}: refused"),
               (T + 1014, "backoff", "starting", None), (T + 1016, "starting", "live", None),
               (T + 2000, "live", "stopped", None), (T + 2100, "stopped", "starting", None),
               (T + 2102, "starting", "live", None)],
        "d2": [(T + 10, "stopped", "starting", None), (T + 20, "starting", "failed", "HTTP 403 key expired")],
    }
    for name, rows in fx.destination_events.items():
        for at, old, new, error in rows:
            store.log_destination_event(float(at), name, "youtube" if name == "d1" else "tiktok", old, new, error)
    fx.health = {"d1": [(T + 5 * k, 4000.0 + (k % 3) * 100) for k in range(1, 700)]}
    for name, rows in fx.health.items():
        for at, bitrate in rows:
            store.log_destination_health(float(at), name, {"bitrate_kbps": bitrate, "fps": 30.0, "speed": 1.0})
    fx.ingest = [(T - 100, "live"), (T + 500, "lost"), (T + 505, "waiting"), (T + 530, "live")]
    for at, state in fx.ingest:
        store.log_ingest_event(float(at), state, "no data" if state == "lost" else None, {})


# A three-hour evening session that ends exactly on a round hour, 03:00 in Asia/Ho_Chi_Minh.
LONG_START = 1_720_544_400  # 2024-07-09 17:00:00 UTC, midnight in Asia/Ho_Chi_Minh
LONG_END = LONG_START + 3 * 3600


def write_long_event(path: Path, outages: int = 0) -> None:
    """A big three-hour event (six-figure counts, `outages` ingest losses) whose axis ends on its last tick."""
    store = Store(path)
    store.set_meta("event_name", "Kỳ họp thứ mười lăm HĐND tỉnh khóa XIV — phiên chất vấn và trả lời chất vấn")
    store.set_meta("timezone", "Asia/Ho_Chi_Minh")
    store.set_meta("started_at", datetime.fromtimestamp(LONG_START, UTC).isoformat())
    store.set_meta("ended_at", datetime.fromtimestamp(LONG_END, UTC).isoformat())
    for i in range(0, 3 * 3600, 30):
        for source, platform, base in (("facebook-fanpage-tinh", "facebook", 6200),
                                       ("youtube-kenh-1", "youtube", 3900), ("youtube-kenh-2", "youtube", 900)):
            store.add_viewers(ViewerSample(source, platform, float(LONG_START + i + 5), base + (i * 7) % 1300,
                                           120_000 + i, 628_000 + i * 3))
    comments = [Comment("facebook", "facebook-fanpage-tinh", f"c{n}", f"Người xem {n % 180}", f"fb-{n % 180}",
                        "Cho hỏi khi nào sửa đường?", float(LONG_START + 20 + 7 * n), float(LONG_START + 23 + 7 * n))
                for n in range(1500)]
    store.add_comments("facebook-fanpage-tinh", comments)
    store.log_ingest_event(float(LONG_START), "live", None, {})
    for k in range(outages):
        at = LONG_START + 600 + k * 120
        store.log_ingest_event(float(at), "lost", "no data", {})
        store.log_ingest_event(float(at + 20), "live", None, {})
    store.log_destination_event(float(LONG_START), "facebook-fanpage-tinh", "facebook", "stopped", "live", None)
    store.close()
