"""The YouTube adapter against a fake YouTube Data API served on loopback, through the real poller and store."""

# ruff: noqa: F811 - the shared fixtures `rig` and `http` are imported, then asked for by name
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from streamctl.audience.poller import Poller, Timing
from streamctl.audience.quota import QuotaPlanner
from streamctl.audience.source import Http
from streamctl.audience.youtube import YouTubeSource
from streamctl.fakes.youtube import FakeYouTube
from tests.audience_harness import FAST, Rig, audience, http, rig  # noqa: F401 - fixtures

TOKEN = "ya29.secret-token-value"
HOSTILE = [
    '<script>alert("x")</script><img src=x onerror=alert(1)>',
    "ctrl\x00\x01\x1b[31mred\x7f tab\tnewline\nend",
    "Cho hỏi đường Hạ Long khi nào sửa xong? 🙏🏽👨‍👩‍👧",
    "x" * 10_000,
]


@pytest.fixture
async def fake():
    async with FakeYouTube(token=TOKEN, interval_ms=60) as yt:
        yield yt


def source(fake: FakeYouTube, http: Http, **options) -> YouTubeSource:
    cfg = audience("yt", "youtube", credential=TOKEN, video_id=fake.video_id, api_base=fake.url, **options)
    return YouTubeSource(cfg, http)


async def test_pages_all_message_kinds_and_stores_hostile_text_verbatim(fake, rig, http):
    fake.page_size = 3  # force several pages
    at = datetime(2024, 5, 1, 12, 0, 1, 123456, tzinfo=UTC).timestamp()
    styles = ["micro", "z", "milli", "offset"]
    ids = [fake.post_comment(f"<b>Viewer {i}</b>", text, at=at + i, time_style=styles[i % 4])
           for i, text in enumerate(HOSTILE)]
    paid = fake.super_chat("Donor", "great stream", "$5.00")
    fake.unknown("holographicCheerEvent")
    fake.unknown("pollEvent")
    rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: len(rig.ids("yt")) == len(fake.published), what="every message stored")
    rows = rig.rows("yt")
    assert set(rows) == set(fake.published) == {*ids, paid}
    for i, text in enumerate(HOSTILE):
        assert rows[ids[i]]["text"] == text
        assert rows[ids[i]]["author_name"] == f"<b>Viewer {i}</b>"
        precise = styles[i % 4] in ("micro", "milli")
        assert rows[ids[i]]["published_at"] == pytest.approx(at + i, abs=1e-3 if precise else 1)
    assert rows[paid]["kind"] == "paid" and rows[paid]["amount"] == "$5.00" and rows[paid]["text"] == "great stream"
    assert fake.calls("liveChat") >= 2  # it followed the page tokens


async def test_unknown_types_are_ignored_and_counted(fake, rig, http):
    fake.post_comment("A", "hello")
    fake.unknown("holographicCheerEvent")
    fake.unknown("holographicCheerEvent")
    poller = Poller(source(fake, http), rig.bus, FAST)
    rig.start(poller)
    await rig.until(lambda: poller.ignored.get("holographicCheerEvent") == 2, what="ignored count")
    assert len(rig.ids("yt")) == 1
    assert poller.status()["ignored"] == {"holographicCheerEvent": 2}


async def test_deleted_and_retracted_messages_hide_the_original_and_bans_are_noted(fake, rig, http):
    a = fake.post_comment("A", "spam spam")
    b = fake.post_comment("B", "oops, wrong chat")
    c = fake.post_comment("C", "a real question?")
    rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: len(rig.ids("yt")) == 3, what="three stored")
    fake.delete(a)
    fake.retract(b)
    ban = fake.ban("Spammer", temporary_s=300)
    await rig.until(lambda: rig.rows("yt")[a]["hidden"] and rig.rows("yt")[b]["hidden"], what="hidden")
    rows = rig.rows("yt")
    assert not rows[c]["hidden"]
    assert rows[a]["hidden_by"] == "platform"
    await rig.until(lambda: ban in rig.rows("yt"), what="ban noted")
    note = rig.rows("yt")[ban]
    assert note["kind"] == "banned" and note["author_name"] == "Spammer" and "300" in note["text"]


async def test_never_polls_before_the_advised_interval(tmp_path, http):
    async with FakeYouTube(token=TOKEN, interval_ms=250) as fake, Rig(tmp_path / "i.db") as rig:
        fake.post_comment("A", "hi")
        poller = Poller(source(fake, http), rig.bus, Timing(interval=0.01, jitter=0.05))
        rig.start(poller)
        await rig.until(lambda: fake.calls("liveChat") >= 5, what="five polls")
        times = [t for t, path, _ in fake.requests if "liveChat" in path]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert min(gaps) >= 0.25, gaps
        assert "backoff" not in rig.states("yt")
        assert poller.status()["interval_s"] == pytest.approx(0.25)


async def test_failures_back_off_then_recover_without_losing_messages(fake, rig, http):
    fake.faults = ["503", "malformed", "rate"]
    first = fake.post_comment("A", "before")
    poller = Poller(source(fake, http), rig.bus, FAST)
    rig.start(poller)
    await rig.until(lambda: rig.ids("yt") == [first], what="stored after faults")
    second = fake.post_comment("B", "after")
    await rig.until(lambda: rig.ids("yt") == [first, second], what="second")
    states = rig.states("yt")
    # One change each way, not one per failure (the viewer samples may have made it "ok" first).
    assert states.count("backoff") == 1 and states[-1] == "ok", states
    rows = rig.store.query("SELECT state, error FROM source_events WHERE source = 'yt' AND state = 'backoff'")
    assert "503" in rows[0]["error"] and "Service Unavailable" in rows[0]["error"] and "<" not in rows[0]["error"]
    assert poller.status()["error"] is None and poller.status()["last_ok"]


async def test_expired_token_fails_the_source_with_an_alert_and_no_secret(fake, rig, http):
    fake.token = "another-token"
    poller = Poller(source(fake, http), rig.bus, FAST, credential_env="YT_TOKEN")
    rig.start(poller)
    await rig.until(lambda: poller.state == "failed", what="failed")
    await rig.until(lambda: rig.alerts("yt"), what="alert")
    alert = rig.alerts("yt")[0]
    assert alert.level == "error" and "401" in alert.message and "YT_TOKEN" in alert.message
    assert TOKEN not in rig.every_text()


async def test_quota_exceeded_fails_with_an_alert(fake, rig, http):
    fake.daily_quota = 12  # two list calls and a little
    fake.post_comment("A", "hi")
    poller = Poller(source(fake, http), rig.bus, FAST)
    rig.start(poller)
    await rig.until(lambda: poller.state == "failed", what="failed on quota")
    assert "quotaExceeded" in poller.error
    assert any("quota" in a.message for a in rig.alerts("yt"))


async def test_end_of_chat_ends_the_source_cleanly_and_viewers_drop_to_zero(fake, rig, http):
    fake.set_viewers(1234)
    a = fake.post_comment("A", "last words")
    poller = Poller(source(fake, http), rig.bus, FAST)
    task = rig.start(poller)
    await rig.until(lambda: rig.store.latest_viewers()[1] == 1234, what="viewers")
    fake.end()
    await asyncio.wait_for(task, 5)  # the poller returns by itself
    assert poller.state == "ended" and rig.ids("yt") == [a]
    assert any(a.level == "info" and "ended" in a.message for a in rig.alerts("yt"))
    await rig.until(lambda: rig.store.latest_viewers()[1] == 0, what="viewers at zero after the end")


async def test_finds_the_chat_from_the_video_and_waits_until_live(fake, rig, http):
    fake.live = False
    poller = Poller(source(fake, http), rig.bus, FAST)
    rig.start(poller)
    await rig.until(lambda: poller.state == "waiting", what="waiting")
    fake.live = True
    a = fake.post_comment("A", "we are live")
    await rig.until(lambda: rig.ids("yt") == [a], what="stored once live")
    assert poller.state == "ok"


async def test_restart_resumes_from_the_stored_page_token(fake, rig, http):
    first = [fake.post_comment("A", f"m{i}") for i in range(5)]
    task = rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: rig.ids("yt") == first, what="first five")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    later = [fake.post_comment("B", f"n{i}") for i in range(5)]
    calls_before = fake.calls("liveChat")
    rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: rig.ids("yt") == first + later, what="resumed")
    resumed = [q for _, path, q in fake.requests if "liveChat" in path][calls_before]
    assert resumed.get("pageToken"), "the restarted poller must pass the stored page token"


async def test_quota_ledger_survives_a_restart_and_shows_the_budget(fake, rig, http):
    fake.post_comment("A", "hi")
    planner = QuotaPlanner(daily=1_000_000, planned_s=3 * 3600, started_at=datetime.now(UTC).timestamp(),
                           min_interval_s=0.05)
    poller = Poller(source(fake, http), rig.bus, FAST, planner=planner)
    task = rig.start(poller)
    await rig.until(lambda: planner.used >= 20, what="some units spent")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    quota = poller.status()["quota"]
    assert quota["daily"] == 1_000_000 and quota["used"] + quota["left"] == 1_000_000 and quota["interval_s"] > 0
    used = planner.used
    again = QuotaPlanner(daily=1_000_000, planned_s=3 * 3600, started_at=planner.started_at)
    Poller(source(fake, http), rig.bus, FAST, planner=again).resume(rig.store.get_cursor("yt"))
    assert again.used >= used - 6  # what was booked with the last stored cursor
    assert fake.used >= again.used
