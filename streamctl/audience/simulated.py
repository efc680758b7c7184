"""A rehearsal audience: comments typed into local fake YouTube and Facebook APIs, read by the real adapters.

The `simulated` source starts the fakes on loopback port 0 (or uses `api_base` where the demo serves them),
runs the real YouTube and Facebook adapters against them as `NAME.youtube` and `NAME.facebook`, and a
generator types Vietnamese and English comments (questions about roads, schools, hospitals, land and
flooding, and chatter), in bursts, while the viewer count follows a curve. The comments come from a crowd
of a few hundred people, each watching on one platform under one account, a few of whom type far more
than the rest: unique commenters are a fraction of the comments, as in a real session.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
from dataclasses import dataclass

import aiohttp

from ..config import AudienceConfig
from ..fakes.platforms import SIM_TOKEN, FakePlatforms, facebook_base, youtube_base
from .facebook import FacebookSource
from .source import Http
from .youtube import YouTubeSource

log = logging.getLogger(__name__)

VIDEO_ID = "simLive0001"
LIVE_VIDEO_ID = "100000000000001"
PLACES = ("Hạ Long", "Cẩm Phả", "Uông Bí", "Móng Cái", "Đông Triều", "Quảng Yên", "Vân Đồn", "Tiên Yên",
          "Bãi Cháy", "Hoành Bồ")
ROADS = ("Quốc lộ 18", "đường tỉnh 342", "đường Trần Quốc Nghiễn", "cầu Bang", "đường ven biển Hạ Long – Cẩm Phả")
SCHOOLS = ("Tiểu học Cao Xanh", "THCS Hồng Hải", "THPT Bãi Cháy", "Mầm non Hoa Hồng")
HOSPITALS = ("Bệnh viện Đa khoa tỉnh", "Bệnh viện Bãi Cháy", "Trung tâm Y tế Vân Đồn")
NAMES = ("Nguyễn Văn An", "Trần Thị Bích", "Lê Hoàng Nam", "Phạm Minh Tuấn", "Hoàng Thu Trang", "Vũ Đức Thắng",
         "Đỗ Ngọc Lan", "Bùi Quang Huy", "Ngô Thị Mai", "Đặng Văn Hải", "Dương Thị Hoa", "Lý Văn Phúc",
         "John Carter", "Emily Nguyen", "Hạnh Phạm", "Minh Anh")
QUESTIONS = (
    "Cho hỏi khi nào {road} được sửa xong ạ? Đi lại rất khó khăn.",
    "Xin hỏi đại biểu: trường {school} thiếu phòng học, bao giờ tỉnh xây thêm?",
    "{hospital} quá tải, người bệnh phải nằm ghép, tỉnh có kế hoạch gì không?",
    "Đề nghị làm rõ việc thu hồi đất ở {place}, giá bồi thường bao nhiêu một mét vuông?",
    "Mỗi lần mưa lớn {place} lại ngập sâu, khi nào có hệ thống thoát nước mới?",
    "Tại sao dự án nâng cấp {road} chậm tiến độ hai năm nay?",
    "Học sinh ở {place} phải đi học xa hơn 10 km, tỉnh có hỗ trợ xe đưa đón không?",
    "Người dân {place} đã chờ cấp sổ đỏ 3 năm, bao giờ mới được giải quyết?",
    "When will {road} be repaired?",
    "How many new classrooms will {school} get this year?",
    "Why is the waiting time at {hospital} so long?",
    "What compensation will families in {place} receive for the land?",
    "What is the province doing about flooding in {place}?",
)
CHATTER = (
    "Cảm ơn HĐND tỉnh đã tổ chức phiên chất vấn!", "Xem từ {place} 👋", "Âm thanh hơi nhỏ ạ",
    "Đồng ý với ý kiến của đại biểu", "Rất thiết thực 👍", "Great session, thanks!", "Hello from {place}",
    "👍👍👍", "Mong các cấp quan tâm hơn nữa", "Hình ảnh rõ nét",
)


FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đỗ", "Bùi", "Ngô", "Đặng", "Dương", "Lý", "Phan", "Trịnh")
MIDDLE = ("Văn", "Thị", "Minh", "Thu", "Đức", "Ngọc", "Quang", "Hoàng", "Thanh", "")
GIVEN = ("An", "Bích", "Nam", "Tuấn", "Trang", "Thắng", "Lan", "Huy", "Mai", "Hải", "Hoa", "Phúc", "Hạnh", "Anh",
         "Dũng", "Hương", "Long", "Linh", "Sơn", "Yến", "Khoa", "Thảo", "Quân", "Nhung")
CROWD = 400  # people who may comment during a rehearsal
ZIPF_S = 1.1  # how unevenly they type: the busiest few write a good share of all comments


def comment_text(rng: random.Random) -> str:
    """One comment: a question about local life two times in five, chatter otherwise."""
    template = rng.choice(QUESTIONS) if rng.random() < 0.4 else rng.choice(CHATTER)
    return template.format(road=rng.choice(ROADS), school=rng.choice(SCHOOLS), hospital=rng.choice(HOSPITALS),
                           place=rng.choice(PLACES))


def make_comment(rng: random.Random) -> tuple[str, str]:
    """One author name and one comment."""
    return rng.choice(NAMES), comment_text(rng)


@dataclass(frozen=True)
class Commenter:
    """One person in the audience: the name they show, the platform they watch on, their account id there."""

    name: str
    platform: str  # "youtube" or "facebook"
    account_id: str


class Crowd:
    """The people who comment, and who types next (a few regulars often, most once or twice)."""

    def __init__(self, rng: random.Random, size: int = CROWD, youtube_share: float = 0.55):
        self.rng = rng
        self.people: list[Commenter] = []
        for n in range(size):
            name = NAMES[n] if n < len(NAMES) else " ".join(
                part for part in (rng.choice(FAMILY), rng.choice(MIDDLE), rng.choice(GIVEN)) if part)
            platform = "youtube" if rng.random() < youtube_share else "facebook"
            digest = hashlib.sha256(f"{n}:{name}".encode()).hexdigest()
            # Two people may show the same name; their accounts differ, as on the platforms.
            account = "UC" + digest[:22] if platform == "youtube" else str(100000000000000 + int(digest[:12], 16))
            self.people.append(Commenter(name, platform, account))
        rng.shuffle(self.people)
        self.weights = [1.0 / (rank + 1) ** ZIPF_S for rank in range(size)]

    def pick(self) -> Commenter:
        return self.rng.choices(self.people, weights=self.weights)[0]


def viewer_curve(elapsed: float, peak: int, rng: random.Random) -> int:
    """Viewers after `elapsed` seconds: a tenth at once, a two-minute ramp, then a plateau that breathes."""
    ramp = min(1.0, elapsed / 120.0)
    level = peak * (0.1 + 0.9 * (3 * ramp**2 - 2 * ramp**3))
    level *= 1 + 0.08 * math.sin(elapsed / 90.0)
    level *= 1 + rng.uniform(-0.03, 0.03)
    return max(0, round(level))


class Simulation:
    """The fakes, the two real adapters reading them, and the generator typing into them."""

    def __init__(self, config: AudienceConfig, http: Http):
        self.name = config.name
        self.root: str | None = config.options.api_base
        self.rate = config.options.rate
        self.rng = random.Random(config.options.seed)
        self.peak = 3000
        self.server: FakePlatforms | None = None
        interval = config.interval or 1.0
        self.youtube = YouTubeSource(AudienceConfig(
            name=f"{self.name}.youtube", platform="youtube", credential=SIM_TOKEN, interval=interval,
            options={"video_id": VIDEO_ID, "api_base": youtube_base(self.root or "http://127.0.0.1:9")}), http)
        self.facebook = FacebookSource(AudienceConfig(
            name=f"{self.name}.facebook", platform="facebook", credential=SIM_TOKEN, interval=interval,
            options={"live_video_id": LIVE_VIDEO_ID, "api_base": facebook_base(self.root or "http://127.0.0.1:9")}),
            http)
        self.interval = interval
        self.crowd = Crowd(self.rng)
        self.typed = 0

    @property
    def sources(self) -> tuple[YouTubeSource, FacebookSource]:
        """The two sources that read the simulated audience, each run by its own poller."""
        return self.youtube, self.facebook

    async def start(self) -> None:
        """Serve the fakes in-process unless `api_base` says where they already run."""
        if self.root is None:
            self.server = FakePlatforms(youtube_interval_ms=round(self.interval * 1000))
            self.server.youtube.video_id, self.server.facebook.video_id = VIDEO_ID, LIVE_VIDEO_ID
            self.root = await self.server.start()
            # The adapters were made before the port was known.
            self.youtube.api = youtube_base(self.root)
            self.facebook.api = facebook_base(self.root)
            log.info("%s: fake YouTube and Facebook at %s", self.name, self.root)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()

    async def run(self) -> None:
        """Type comments and move viewer counts until cancelled."""
        started = time.monotonic()
        next_viewers = 0.0
        next_burst = started + self.rng.uniform(20, 40)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while True:
                at = time.monotonic()
                if at >= next_viewers:
                    total = viewer_curve(at - started, self.peak, self.rng)
                    await self._post(session, "/yt/_fake/viewers", {"viewers": round(total * 0.6)})
                    await self._post(session, "/fb/_fake/viewers", {"viewers": total - round(total * 0.6)})
                    next_viewers = at + 2.0
                count = 1
                if at >= next_burst:  # a hot question on air: many type at once
                    count = self.rng.randint(6, 15)
                    next_burst = at + self.rng.uniform(40, 80)
                for _ in range(count):
                    who = self.crowd.pick()
                    path = "/yt/_fake/comments" if who.platform == "youtube" else "/fb/_fake/comments"
                    await self._post(session, path, {"author": who.name, "author_id": who.account_id,
                                                     "text": comment_text(self.rng)})
                    self.typed += 1
                await asyncio.sleep(self.rng.expovariate(self.rate))

    async def _post(self, session: aiohttp.ClientSession, path: str, body: dict) -> None:
        try:
            async with session.post(self.root.rstrip("/") + path, json=body) as resp:
                await resp.read()
        except (aiohttp.ClientError, TimeoutError) as e:
            log.debug("%s: could not reach the fakes: %s", self.name, e)
