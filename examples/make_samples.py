"""Generate the two sample event databases and their reports (html, pdf, csv, json).

    python examples/make_samples.py [--out examples] [--no-reports]

Everything the running program writes goes through `streamctl.store.Store`'s own methods (add_comments,
add_viewers, log_destination_event, log_destination_health, log_ingest_event, set_hidden, set_meta), so
the samples have exactly the program's shape. Questions, audit rows and audience-source history are
inserted with SQL matching the schema (the store has no back-dating writer for them). The data are
seeded: running the script twice gives the same databases.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sqlite3
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from streamctl.audience.models import Comment, ViewerSample
from streamctl.report.cli import run_report
from streamctl.store import Store

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
POLL_S = 15.0
HEALTH_S = 5.0
MANUAL_EVERY_S = 900.0

FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô", "Dương", "Lý", "Phan", "Đinh")
MIDDLE = ("Văn", "Thị", "Minh", "Thu", "Đức", "Quốc", "Thanh", "Ngọc", "Hữu", "Hồng", "Xuân", "Kim")
GIVEN = ("Hùng", "Mai", "Tuấn", "Hà", "Anh", "Hương", "Bảo", "Tâm", "Cường", "Lan", "Dũng", "Linh", "Nam",
         "Thảo", "Sơn", "Trang", "Long", "Yến", "Phong", "Nga", "Khánh", "Hải", "Vân", "Quang")
PLACES = ("Hạ Long", "Cẩm Phả", "Uông Bí", "Móng Cái", "Đông Triều", "Quảng Yên", "Vân Đồn", "Tiên Yên", "Cô Tô",
          "Bình Liêu", "Hải Hà", "Đầm Hà", "Ba Chẽ", "Hoành Bồ")
MODERATORS = ("bt.lan", "bt.hoang", "bt.minh")


@dataclass
class Channel:
    """One platform channel: its audience figures and its restream destination."""

    name: str
    platform: str
    peak: int  # concurrent viewers at the event's peak
    views: int  # cumulative views at the end
    likes: int | None
    comments: int
    destination_platform: str
    bitrate_kbps: float = 6000.0
    manual: bool = False
    live_from_s: float = 0.0  # when its destination went live, seconds after the start
    outages: list[tuple[float, float, str]] = field(default_factory=list)  # (at_s, back_s, error)
    operator_stops: list[tuple[float, float]] = field(default_factory=list)  # (stop_s, start_s)


@dataclass
class Sample:
    """One sample event: what happened, shaped as the program records it."""

    slug: str
    name: str
    start: datetime
    duration_s: float
    channels: list[Channel]
    shape: list[tuple[float, float]]  # (fraction of the event, audience level 0..1), linearly interpolated
    bursts: list[tuple[float, float]]  # (fraction, strength): comment bursts (a hot question, the fireworks)
    chat: tuple[str, ...]
    asks: tuple[str, ...]
    ask_share: float  # share of comments that are questions
    ingest_losses: list[tuple[float, float, str]]
    source_failures: list[tuple[str, float, float, str]]  # (source, at_s, back_s, error)
    questions: dict
    paid: list[tuple[str, str, str]] = field(default_factory=list)  # (source, amount, text)
    seed: int = 1


QA_CHAT = (
    "Theo dõi phiên chất vấn từ {place}", "Đại biểu hỏi rất trúng vấn đề", "Mong lãnh đạo sở trả lời thẳng vào câu hỏi",
    "Đồng tình với ý kiến của đại biểu", "Hình ảnh rõ, âm thanh tốt", "Cử tri {place} rất quan tâm vấn đề này",
    "Cảm ơn Trung tâm Truyền thông tỉnh đã truyền hình trực tiếp", "Trả lời chưa thỏa đáng", "👍👍👍",
    "Rất mong tỉnh sớm có giải pháp", "Câu trả lời rõ ràng, cảm ơn giám đốc sở", "Người dân {place} đang theo dõi",
)
QA_ASKS = (
    "Xin hỏi giám đốc Sở Tài nguyên và Môi trường: việc cấp sổ đỏ cho các hộ ở {place} bao giờ mới xong?",
    "Cho tôi hỏi dự án nâng cấp đường tỉnh 342 qua {place} khi nào hoàn thành?",
    "Tại sao tiền đền bù giải phóng mặt bằng ở {place} đến nay vẫn chưa được chi trả?",
    "Đề nghị Sở Y tế cho biết khi nào bệnh viện tuyến huyện ở {place} có đủ thuốc bảo hiểm?",
    "Xin hỏi vì sao nước sạch ở {place} thường xuyên bị cắt vào mùa hè?",
    "Bao giờ trường mầm non ở {place} được xây thêm phòng học ạ?",
    "Thủ tục hành chính một cửa ở {place} còn chậm, tỉnh có giải pháp như thế nào?",
    "Việc xử lý ô nhiễm bụi than ở {place} có lộ trình cụ thể không?",
    "Cho hỏi chính sách hỗ trợ ngư dân sau bão ở {place} đã được giải ngân chưa?",
    "Xin hỏi khi nào có tuyến xe buýt từ trung tâm tới {place}?",
)
ANNIV_CHAT = (
    "Chúc mừng 60 năm thành lập tỉnh Quảng Ninh!", "Tự hào quê hương vùng mỏ 🇻🇳",
    "Xem từ {place}, chúc mừng Quảng Ninh",
    "Chương trình nghệ thuật rất hoành tráng", "Màn pháo hoa tuyệt đẹp 🎆", "Quảng Ninh ngày càng giàu đẹp",
    "Người con {place} xa quê đang theo dõi", "Âm thanh hình ảnh quá đẹp", "Tự hào là người Quảng Ninh ❤️",
    "Chúc Quảng Ninh phát triển hơn nữa", "Vùng mỏ anh hùng!", "Cả nhà đang xem trực tiếp ở {place}",
)
ANNIV_ASKS = (
    "Xin hỏi chương trình có phát lại trên kênh nào không?", "Bao giờ bắn pháo hoa ạ?",
    "Cho hỏi ca sĩ vừa hát bài gì vậy?", "Ở {place} có điểm bắn pháo hoa không?",
)
OFFICIALS = ("Giám đốc Sở Tài nguyên và Môi trường", "Giám đốc Sở Giao thông vận tải", "Giám đốc Sở Y tế",
             "Giám đốc Sở Giáo dục và Đào tạo", "Phó Chủ tịch UBND tỉnh", "Chủ tịch UBND TP Hạ Long")


def question_session() -> Sample:
    """A People's Council question session: ~26,000 views, 1,200 likes, 559 comments over ~2.5 h."""
    return Sample(
        slug="sample-question-session",
        name="Kỳ họp thứ 19 HĐND tỉnh khóa XIV — phiên chất vấn và trả lời chất vấn",
        start=datetime(2024, 7, 10, 8, 0, 0, tzinfo=TZ), duration_s=2.5 * 3600 + 7 * 60,
        channels=[
            Channel("facebook-qmg", "facebook", 820, 15_800, 820, 331, "facebook"),
            Channel("youtube-qmg", "youtube", 240, 4_100, 190, 118, "youtube"),
            Channel("youtube-qn", "youtube", 110, 1_900, 60, 44, "youtube",
                    outages=[(4360.0, 4401.0, "rtmps://a.rtmps.youtube.com/live2/****: Connection reset by peer")]),
            Channel("tiktok", "tiktok", 150, 2_600, 130, 66, "tiktok", bitrate_kbps=3000.0, live_from_s=290.0),
            Channel("zalo", "zalo", 90, 1_600, None, 0, "custom", manual=True, live_from_s=120.0),
        ],
        shape=[(0, 0.25), (0.06, 0.8), (0.2, 0.9), (0.35, 1.0), (0.5, 0.85), (0.62, 0.95), (0.8, 0.8), (0.95, 0.6),
               (1.0, 0.35)],
        bursts=[(0.18, 3.0), (0.36, 4.0), (0.64, 3.0), (0.83, 2.0)],
        chat=QA_CHAT, asks=QA_ASKS, ask_share=0.3,
        ingest_losses=[(6485.0, 6499.0, "no data from the switcher for 5 s")],
        source_failures=[("youtube-qn", 4370.0, 4430.0, "liveChatMessages.list: HTTP 503 backendError")],
        questions={"received": 55, "merged": 4, "dismissed": 9, "pending": 3, "approved_only": 15, "forwarded_only": 8,
                   "on_air_only": 1, "answered": 15},
        seed=559,
    )


def anniversary() -> Sample:
    """An anniversary ceremony: ~628,000 views and nearly 11,000 concurrent viewers at the peak."""
    return Sample(
        slug="sample-anniversary",
        name="Lễ kỷ niệm 60 năm thành lập tỉnh Quảng Ninh (30/10/1963 – 30/10/2023)",
        start=datetime(2023, 10, 30, 19, 30, 0, tzinfo=TZ), duration_s=2 * 3600 + 44 * 60,
        channels=[
            Channel("facebook-qmg", "facebook", 6_000, 352_000, 27_400, 4_650, "facebook"),
            Channel("youtube-qmg", "youtube", 1_920, 118_000, 6_900, 1_480, "youtube"),
            Channel("youtube-qn", "youtube", 680, 41_000, 1_800, 390, "youtube"),
            Channel("tiktok", "tiktok", 1_460, 86_000, 5_100, 1_240, "tiktok", bitrate_kbps=3000.0, live_from_s=60.0,
                    outages=[(2710.0, 2838.0, "rtmp://push-rtmp-l11-va01.tiktokcdn.com/game/****: Broken pipe")]),
            Channel("zalo", "zalo", 690, 31_000, None, 0, "custom", manual=True, live_from_s=45.0,
                    operator_stops=[(5410.0, 5440.0)]),
        ],
        shape=[(0, 0.3), (0.05, 0.55), (0.2, 0.7), (0.4, 0.8), (0.55, 0.9), (0.68, 1.0), (0.72, 0.97), (0.85, 0.7),
               (0.95, 0.5), (1.0, 0.3)],
        bursts=[(0.05, 2.0), (0.4, 2.0), (0.69, 5.0), (0.97, 2.0)],
        chat=ANNIV_CHAT, asks=ANNIV_ASKS, ask_share=0.02,
        ingest_losses=[(4321.0, 4329.0, "no data from the switcher for 5 s")],
        source_failures=[("tiktok", 2730.0, 2870.0, "sign server: HTTP 429 rate limited")],
        questions={"received": 14, "merged": 0, "dismissed": 9, "pending": 3, "approved_only": 2, "forwarded_only": 0,
                   "on_air_only": 0, "answered": 0},
        paid=[("youtube-qmg", "₫50.000", "Chúc mừng quê hương 60 năm!"),
              ("youtube-qmg", "₫20.000", "Tự hào Quảng Ninh"),
              ("youtube-qmg", "$5.00", "Greetings from Quảng Ninh people in Sydney"),
              ("youtube-qn", "₫100.000", "Chúc Quảng Ninh mãi vững bước")],
        seed=628,
    )


class Writer:
    """Writes one sample event into a fresh database through the store."""

    def __init__(self, sample: Sample, path: Path):
        self.s = sample
        self.rng = random.Random(sample.seed)
        self.t0 = sample.start.timestamp()
        self.t1 = self.t0 + sample.duration_s
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        self.store = Store(path)
        self.path = path

    def level(self, t: float) -> float:
        """The audience level (0..1) at time t, from the sample's shape."""
        x = min(1.0, max(0.0, (t - self.t0) / self.s.duration_s))
        for (x0, y0), (x1, y1) in zip(self.s.shape, self.s.shape[1:], strict=False):
            if x <= x1:
                return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
        return self.s.shape[-1][1]

    def write(self) -> None:
        s = self.s
        self.store.set_meta("event_name", s.name)
        self.store.set_meta("timezone", "Asia/Ho_Chi_Minh")
        self.store.set_meta("started_at", datetime.fromtimestamp(self.t0, UTC).isoformat())
        self.store.set_meta("ended_at", datetime.fromtimestamp(self.t1, UTC).isoformat())
        self.ingest()
        for channel in s.channels:
            self.destination(channel)
            self.viewers(channel)
        comment_ids = {channel.name: self.comments(channel) for channel in s.channels if channel.comments}
        self.sources()
        self.moderation(comment_ids)
        self.store.close()
        # A single file to commit: no -wal/-shm beside it, and readers need no write access.
        with sqlite3.connect(self.path) as db:
            db.execute("PRAGMA journal_mode=DELETE")
            db.execute("VACUUM")

    def ingest(self) -> None:
        probe = {"video": {"codec": "h264", "width": 1920, "height": 1080, "fps": 30.0, "bitrate_kbps": 6000},
                 "audio": {"codec": "aac", "sample_rate": 48000, "channels": 2}}
        self.store.log_ingest_event(self.t0 - 240, "waiting", None, {})
        self.store.log_ingest_event(self.t0 - 180, "live", None, probe)
        for at, back, error in self.s.ingest_losses:
            self.store.log_ingest_event(self.t0 + at, "lost", error, {})
            self.store.log_ingest_event(self.t0 + back, "live", None, probe)
        self.store.log_ingest_event(self.t1 + 20, "waiting", None, {})

    def destination(self, c: Channel) -> None:
        """State history (through backoff on each outage) and 5-second health samples while live."""
        log = self.store.log_destination_event
        name, platform = c.name, c.destination_platform
        up = self.t0 + c.live_from_s
        log(up - 2.1, name, platform, "stopped", "starting", None)
        log(up, name, platform, "starting", "live", None)
        live_spans, live_from = [], up
        breaks = [(self.t0 + a, self.t0 + b, e, "outage") for a, b, e in c.outages]
        breaks += [(self.t0 + a, self.t0 + b, None, "stop") for a, b in c.operator_stops]
        for at, back, error, kind in sorted(breaks):
            live_spans.append((live_from, at))
            if kind == "outage":
                log(at, name, platform, "live", "backoff", error)
                t, wait = at, 2.0
                while t + wait + 3 < back:  # the supervisor retries with a growing backoff
                    t += wait
                    log(t, name, platform, "backoff", "starting", None)
                    log(t + 1.5, name, platform, "starting", "backoff", error)
                    t, wait = t + 1.5, min(wait * 2, 30.0)
                log(back - 2.0, name, platform, "backoff", "starting", None)
            else:
                log(at, name, platform, "live", "stopped", None)
                log(back - 2.0, name, platform, "stopped", "starting", None)
            log(back, name, platform, "starting", "live", None)
            live_from = back
        live_spans.append((live_from, self.t1))
        log(self.t1 + 5, name, platform, "live", "stopped", None)
        for a, b in live_spans:
            t = a + HEALTH_S
            while t < b:
                bitrate = c.bitrate_kbps * (1 + self.rng.gauss(0, 0.03))
                self.store.log_destination_health(t, name, {"bitrate_kbps": round(bitrate, 1), "fps": 30.0,
                                                            "speed": round(1 + self.rng.gauss(0, 0.004), 3)})
                t += HEALTH_S

    def viewers(self, c: Channel) -> None:
        """Concurrent viewers every poll (manual: every quarter hour), views and likes growing to their totals."""
        step = MANUAL_EVERY_S if c.manual else POLL_S
        times = []
        t = self.t0 + (c.live_from_s if c.manual else 20.0 + self.rng.random() * 5)
        while t <= self.t1:
            times.append(t)
            t += step
        weights = [self.level(t) for t in times]
        grown, total_weight = 0.0, sum(weights)
        for t, w in zip(times, weights, strict=True):
            grown += w
            share = grown / total_weight
            count = round(c.peak * w * (1 + self.rng.gauss(0, 0.015)))
            self.store.add_viewers(ViewerSample(
                c.name, c.platform, t, count, likes=None if c.likes is None else round(c.likes * share),
                views=round(c.views * share), manual=c.manual))

    def _comment_times(self, count: int) -> list[float]:
        minutes = int(self.s.duration_s // 60)
        weights = []
        for m in range(minutes):
            x = m / minutes
            burst = sum(strength * math.exp(-((x - at) * 60) ** 2) for at, strength in self.s.bursts)
            weights.append(self.level(self.t0 + m * 60) * (1 + burst))
        picked = self.rng.choices(range(minutes), weights, k=count)
        return sorted(self.t0 + m * 60 + self.rng.random() * 60 for m in picked)

    def comments(self, c: Channel) -> list[int]:
        """The channel's comments, stored in poll-sized batches with their cursor, as the recorder does."""
        rng = self.rng
        authors = [f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
                   for _ in range(max(3, int(c.comments * 0.62)))]
        ids = {a: self._author_id(c.platform, i) for i, a in enumerate(authors)}
        paid = [p for p in self.s.paid if p[0] == c.name]
        batch: list[Comment] = []
        batch_no, stored = -1, []
        times = self._comment_times(c.comments)
        paid_at = {round(len(times) * (i + 1) / (len(paid) + 1)): p for i, p in enumerate(paid)}
        for i, published in enumerate(times):
            # A few regulars write many comments; most people write one or two.
            author = authors[min(int(rng.paretovariate(1.6)) - 1, len(authors) - 1)] if rng.random() < 0.35 \
                else rng.choice(authors)
            pool = self.s.asks if rng.random() < self.s.ask_share else self.s.chat
            text = rng.choice(pool).format(place=rng.choice(PLACES))
            kind, amount = "comment", None
            if i in paid_at:
                kind, amount, text = "paid", paid_at[i][1], paid_at[i][2]
            received = published + 2 + rng.random() * 12
            poll = int((received - self.t0) // POLL_S)
            if poll != batch_no and batch:
                stored += self._store_batch(c, batch, batch_no)
                batch = []
            batch_no = poll
            batch.append(Comment(c.platform, c.name, f"{c.name}-{i:06d}", author, ids[author], text, published,
                                 received, kind=kind, amount=amount))
        if batch:
            stored += self._store_batch(c, batch, batch_no)
        return stored

    def _store_batch(self, c: Channel, batch: list[Comment], poll: int) -> list[int]:
        new, _ = self.store.add_comments(c.name, batch, cursor=f"{c.name}:page:{poll}")
        return [n["id"] for n in new]

    def _author_id(self, platform: str, i: int) -> str:
        if platform == "youtube":
            return "UC" + "".join(self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
                                  for _ in range(22))
        return str(10_000_000_000 + self.rng.randrange(10**9) * 7 + i)

    def sources(self) -> None:
        """Audience-source history: polling from the start, the sample's failures and recoveries."""
        rows = [(self.t0 + 20, c.name, c.platform, "manual" if c.manual else "polling", None) for c in self.s.channels]
        for name, at, back, error in self.s.source_failures:
            platform = next(c.platform for c in self.s.channels if c.name == name)
            rows += [(self.t0 + at, name, platform, "backoff", error),
                     (self.t0 + back, name, platform, "polling", None)]
        rows += [(self.t1 + 30, c.name, c.platform, "ended", None) for c in self.s.channels]
        with self.store.transaction() as db:
            db.executemany("INSERT INTO source_events (at, source, platform, state, error) VALUES (?,?,?,?,?)",
                           sorted(rows))

    def moderation(self, comment_ids: dict[str, list[int]]) -> None:
        """Questions through their workflow, hidden spam, and the audit trail of every moderator action."""
        rng, plan = self.rng, self.s.questions
        hidden = []
        for ids in comment_ids.values():
            hidden += rng.sample(ids, k=min(2, len(ids)))
        for cid in hidden:
            self.store.set_hidden([cid], True, by=rng.choice(MODERATORS))
        with self.store.transaction() as db:
            for cid in hidden:
                at = db.execute("SELECT received_at FROM comments WHERE id = ?", (cid,)).fetchone()[0] + 40
                self._audit(db, at, "hide", "comment", cid, {"hidden": False}, {"hidden": True})
            candidates = db.execute("SELECT * FROM comments WHERE is_question = 1 AND kind = 'comment' AND hidden = 0"
                                    " ORDER BY published_at").fetchall()
            picked = sorted(rng.sample(list(candidates), k=min(plan["received"], len(candidates))),
                            key=lambda r: r["published_at"])
            self._questions(db, picked, plan)

    def _questions(self, db: sqlite3.Connection, rows: list, plan: dict) -> None:
        rng = self.rng
        fates = (["answered"] * plan["answered"] + ["on_air"] * plan["on_air_only"]
                 + ["forwarded"] * plan["forwarded_only"] + ["approved"] * plan["approved_only"]
                 + ["dismissed"] * plan["dismissed"] + ["merged"] * plan["merged"] + ["pending"] * plan["pending"])
        fates += ["pending"] * (len(rows) - len(fates))
        rng.shuffle(fates)
        # Officials answer one question at a time, so on-air slots follow each other.
        next_slot = self.t0 + 15 * 60
        first_id = None
        for order, (row, fate) in enumerate(zip(rows, fates, strict=False), start=1):
            asked = row["published_at"]
            created = row["received_at"] + 1
            stamps = dict.fromkeys(("approved_at", "forwarded_at", "on_air_at", "answered_at", "dismissed_at"))
            text = row["text"].removeprefix("Xin hỏi ").removeprefix("Cho tôi hỏi ").removeprefix("Cho hỏi ")
            text = text[:1].upper() + text[1:]
            answered_by = None
            if fate in ("approved", "forwarded", "on_air", "answered"):
                stamps["approved_at"] = created + rng.uniform(40, 240)
            if fate in ("forwarded", "on_air", "answered"):
                stamps["forwarded_at"] = stamps["approved_at"] + rng.uniform(60, 420)
            if fate in ("on_air", "answered"):
                stamps["on_air_at"] = max(stamps["forwarded_at"] + rng.uniform(90, 600), next_slot)
                stamps["answered_at"] = stamps["on_air_at"] + rng.uniform(150, 420) if fate == "answered" else None
                next_slot = (stamps["answered_at"] or stamps["on_air_at"] + 300) + rng.uniform(20, 90)
                if stamps["answered_at"] and stamps["answered_at"] > self.t1 - 60:
                    stamps["answered_at"] = None
                answered_by = rng.choice(OFFICIALS) if stamps["answered_at"] else None
            if fate == "dismissed":
                stamps["dismissed_at"] = created + rng.uniform(30, 300)
            state = {"merged": "pending"}.get(fate, fate)
            if fate in ("answered", "on_air") and stamps["answered_at"] is None:
                state = "on_air"
            last = max([created] + [v for v in stamps.values() if v])
            qid = db.execute(
                "INSERT INTO questions (comment_id, text, original_text, author, platform, source, state, ord,"
                " merged_into, merged_count, asked_at, created_at, updated_at, approved_at, forwarded_at, on_air_at,"
                " answered_at, dismissed_at, answered_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                (row["id"], text, row["text"], row["author_name"], row["platform"], row["source"], state, float(order),
                 first_id if fate == "merged" else None, 1, asked, created, last, stamps["approved_at"],
                 stamps["forwarded_at"], stamps["on_air_at"], stamps["answered_at"], stamps["dismissed_at"],
                 answered_by),
            ).fetchone()[0]
            if fate == "merged" and first_id is not None:
                db.execute("UPDATE questions SET merged_count = merged_count + 1 WHERE id = ?", (first_id,))
                self._audit(db, created + 60, "merge", "question", qid, None, {"into": first_id})
            first_id = first_id or qid
            if text != row["text"]:
                self._audit(db, created + 20, "edit", "question", qid, {"text": row["text"]}, {"text": text})
            for stage, action in (("approved_at", "approve"), ("forwarded_at", "forward"), ("on_air_at", "on_air"),
                                  ("answered_at", "answered"), ("dismissed_at", "dismiss")):
                if stamps[stage]:
                    self._audit(db, stamps[stage], action, "question", qid, None, {"state": action})

    def _audit(self, db: sqlite3.Connection, at: float, action: str, target_type: str, target_id: int,
               before: dict | None, after: dict | None) -> None:
        db.execute("INSERT INTO audit (at, actor, action, target_type, target_id, before, after)"
                   " VALUES (?,?,?,?,?,?,?)",
                   (at, self.rng.choice(MODERATORS), action, target_type, str(target_id),
                    json.dumps(before, ensure_ascii=False) if before else None,
                    json.dumps(after, ensure_ascii=False) if after else None))


def make(sample: Sample, out: Path, reports: bool) -> Path:
    """Write one sample database (and its reports) into `out`."""
    path = out / f"{sample.slug}.db"
    Writer(sample, path).write()
    if reports:
        for fmt in ("json", "csv", "html", "pdf"):
            code = run_report(path, fmt, str(out / f"{sample.slug}.{fmt}"), lang="vi")
            if code:
                raise SystemExit(code)
        if run_report(path, "pdf", str(out / f"{sample.slug}.en.pdf"), lang="en"):
            raise SystemExit(1)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--no-reports", action="store_true", help="write the databases only")
    args = parser.parse_args(argv)
    for sample in (question_session(), anniversary()):
        print(make(sample, args.out, not args.no_reports), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
