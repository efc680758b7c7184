"""The YouTube adapter against a fake YouTube Data API served on loopback, through the real poller and store.

Behaviour shared by both transports (streamList pushed, list polled) runs once per transport.
"""

# ruff: noqa: F811 - the shared fixtures `rig` and `http` are imported, then asked for by name
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from streamctl.audience.poller import Poller, Timing
from streamctl.audience.quota import QuotaPlanner
from streamctl.audience.source import Http
from streamctl.audience.youtube import YouTubeSource
from streamctl.events import CommentsFetched
from streamctl.fakes.youtube import FakeYouTube
from tests.audience_harness import FAST, Rig, audience, http, rig  # noqa: F401 - fixtures

TOKEN = "ya29.secret-token-value"
HOSTILE = [
    '<script>alert("x")</script><img src=x onerror=alert(1)>',
    "ctrl\x00\x01\x1b[31mred\x7f tab\tnewline\nend",
    "Cho hỏi đường Hạ Long khi nào sửa xong? 🙏🏽👨‍👩‍👧",
    "x" * 10_000,
]


LIST, STREAM = "/youtube/v3/liveChat/messages", "/youtube/v3/liveChat/messages/stream"
PATHS = {"poll": LIST, "stream": STREAM}


@pytest.fixture
async def fake():
    async with FakeYouTube(token=TOKEN, interval_ms=60) as yt:
        yield yt


@pytest.fixture(params=["poll", "stream"])
def transport(request) -> str:
    return request.param


def source(fake: FakeYouTube, http: Http, **options) -> YouTubeSource:
    cfg = audience("yt", "youtube", credential=TOKEN, video_id=fake.video_id, api_base=fake.url, **options)
    return YouTubeSource(cfg, http)


def asked(fake: FakeYouTube, path: str) -> list[dict]:
    """The query of every request to exactly this path (the stream's path extends the list's)."""
    return [q for _, p, q in fake.requests if p == path]


def published_ids(rig: Rig, name: str = "yt") -> list[str]:
    """Every comment id the poller published, in order, repeats included."""
    return [c.platform_id for e in rig.drained() if isinstance(e, CommentsFetched) and e.source == name
            for c in e.comments]


async def test_pages_all_message_kinds_and_stores_hostile_text_verbatim(fake, rig, http, transport):
    fake.page_size = 3  # force several pages (several streamed responses)
    fake.chunk_bytes = 97  # and streamed responses split across many chunks, mid-string and mid-emoji
    at = datetime(2024, 5, 1, 12, 0, 1, 123456, tzinfo=UTC).timestamp()
    styles = ["micro", "z", "milli", "offset"]
    ids = [fake.post_comment(f"<b>Viewer {i}</b>", text, at=at + i, time_style=styles[i % 4])
           for i, text in enumerate(HOSTILE)]
    paid = fake.super_chat("Donor", "great stream", "$5.00")
    fake.unknown("holographicCheerEvent")
    fake.unknown("pollEvent")
    rig.start(Poller(source(fake, http, transport=transport), rig.bus, FAST))
    await rig.until(lambda: len(rig.ids("yt")) == len(fake.published), what="every message stored")
    rows = rig.rows("yt")
    assert set(rows) == set(fake.published) == {*ids, paid}
    for i, text in enumerate(HOSTILE):
        assert rows[ids[i]]["text"] == text
        assert rows[ids[i]]["author_name"] == f"<b>Viewer {i}</b>"
        precise = styles[i % 4] in ("micro", "milli")
        assert rows[ids[i]]["published_at"] == pytest.approx(at + i, abs=1e-3 if precise else 1)
    assert rows[paid]["kind"] == "paid" and rows[paid]["amount"] == "$5.00" and rows[paid]["text"] == "great stream"
    if transport == "poll":
        assert len(asked(fake, LIST)) >= 2 and not asked(fake, STREAM)  # it followed the page tokens
    else:
        assert len(asked(fake, STREAM)) == 1 and not asked(fake, LIST)  # every page came down one connection


async def test_gifts_and_fan_funding_are_paid_messages(fake, rig, http, transport):
    gift = fake.gift("Bà Tư", name="Hoa sen", jewels=50, combo=3)
    shown = fake.gift("Anh Ba", name="Sao", jewels=10, display="Anh Ba sent Sao")
    fund = fake.fan_funding("Chú Năm", "Cho hỏi khi nào sửa đường?", "₫50.000")
    rig.start(Poller(source(fake, http, transport=transport), rig.bus, FAST))
    await rig.until(lambda: len(rig.ids("yt")) == 3, what="all three stored")
    rows = rig.rows("yt")
    assert (rows[gift]["kind"], rows[gift]["amount"], rows[gift]["text"]) == ("paid", "50 jewels", "sent Hoa sen x3")
    assert (rows[shown]["kind"], rows[shown]["text"]) == ("paid", "Anh Ba sent Sao")
    assert (rows[fund]["kind"], rows[fund]["amount"]) == ("paid", "₫50.000")
    assert rows[fund]["text"] == "Cho hỏi khi nào sửa đường?" and rows[fund]["is_question"]


async def test_unknown_types_are_ignored_and_counted(fake, rig, http, transport):
    fake.post_comment("A", "hello")
    fake.unknown("holographicCheerEvent")
    fake.unknown("holographicCheerEvent")
    poller = Poller(source(fake, http, transport=transport), rig.bus, FAST)
    rig.start(poller)
    await rig.until(lambda: poller.ignored.get("holographicCheerEvent") == 2, what="ignored count")
    assert len(rig.ids("yt")) == 1
    assert poller.status()["ignored"] == {"holographicCheerEvent": 2}


async def test_deleted_and_retracted_messages_hide_the_original_and_bans_are_noted(fake, rig, http, transport):
    a = fake.post_comment("A", "spam spam")
    b = fake.post_comment("B", "oops, wrong chat")
    c = fake.post_comment("C", "a real question?")
    rig.start(Poller(source(fake, http, transport=transport), rig.bus, FAST))
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
        poller = Poller(source(fake, http, transport="poll"), rig.bus, Timing(interval=0.01, jitter=0.05))
        rig.start(poller)
        await rig.until(lambda: len(asked(fake, LIST)) >= 5, what="five polls")
        times = [t for t, path, _ in fake.requests if path == LIST]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert min(gaps) >= 0.25, gaps
        assert "backoff" not in rig.states("yt")
        assert poller.status()["interval_s"] == pytest.approx(0.25)


async def test_failures_back_off_then_recover_without_losing_messages(fake, rig, http, transport):
    fake.faults = ["503", "malformed", "rate"]
    first = fake.post_comment("A", "before")
    poller = Poller(source(fake, http, transport=transport), rig.bus, FAST)
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


async def test_expired_token_fails_the_source_with_an_alert_and_no_secret(fake, rig, http, transport):
    fake.token = "another-token"
    poller = Poller(source(fake, http, transport=transport), rig.bus, FAST, credential_env="YT_TOKEN")
    rig.start(poller)
    await rig.until(lambda: poller.state == "failed", what="failed")
    await rig.until(lambda: rig.alerts("yt"), what="alert")
    alert = rig.alerts("yt")[0]
    assert alert.level == "error" and "401" in alert.message and "YT_TOKEN" in alert.message
    assert TOKEN not in rig.every_text()


async def test_quota_exceeded_fails_with_an_alert(fake, rig, http, transport):
    fake.daily_quota = 12  # two list calls and a little
    fake.post_comment("A", "hi")
    poller = Poller(source(fake, http, transport=transport), rig.bus, FAST)
    rig.start(poller)
    await rig.until(lambda: poller.state == "failed", what="failed on quota")
    assert "quotaExceeded" in poller.error
    assert any("quota" in a.message for a in rig.alerts("yt"))


async def test_end_of_chat_ends_the_source_cleanly_and_viewers_drop_to_zero(fake, rig, http, transport):
    fake.set_viewers(1234)
    a = fake.post_comment("A", "last words")
    poller = Poller(source(fake, http, transport=transport), rig.bus, FAST)
    task = rig.start(poller)
    await rig.until(lambda: rig.store.latest_viewers()[1] == 1234, what="viewers")
    fake.end()
    await asyncio.wait_for(task, 5)  # the poller returns by itself
    assert poller.state == "ended" and rig.ids("yt") == [a]
    assert any(a.level == "info" and "ended" in a.message for a in rig.alerts("yt"))
    await rig.until(lambda: rig.store.latest_viewers()[1] == 0, what="viewers at zero after the end")


async def test_finds_the_chat_from_the_video_and_waits_until_live(fake, rig, http, transport):
    fake.live = False
    poller = Poller(source(fake, http, transport=transport), rig.bus, FAST)
    rig.start(poller)
    await rig.until(lambda: poller.state == "waiting", what="waiting")
    fake.live = True
    a = fake.post_comment("A", "we are live")
    await rig.until(lambda: rig.ids("yt") == [a], what="stored once live")
    assert poller.state == "ok"


async def test_restart_resumes_from_the_stored_page_token(fake, rig, http, transport):
    first = [fake.post_comment("A", f"m{i}") for i in range(5)]
    task = rig.start(Poller(source(fake, http, transport=transport), rig.bus, FAST))
    await rig.until(lambda: rig.ids("yt") == first, what="first five")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    fake.recent = 2  # a restart that forgot its token would get only the last two
    later = [fake.post_comment("B", f"n{i}") for i in range(5)]
    before = len(asked(fake, PATHS[transport]))
    rig.start(Poller(source(fake, http, transport=transport), rig.bus, FAST))
    await rig.until(lambda: rig.ids("yt") == first + later, what="resumed")
    resumed = asked(fake, PATHS[transport])[before]
    assert resumed.get("pageToken"), "the restarted poller must pass the stored page token"
    await asyncio.sleep(0.2)
    assert published_ids(rig) == first + later  # nothing published twice across the restart


async def test_quota_ledger_counts_every_call_survives_a_restart_and_shows_the_budget(fake, rig, http, transport):
    fake.post_comment("A", "hi")
    planner = QuotaPlanner(daily=1_000_000, planned_s=3 * 3600, started_at=datetime.now(UTC).timestamp(),
                           min_interval_s=0.05)
    fake.stream_faults = ["ok", "close", "close", "ok"]  # the server ends the array twice: three connections
    poller = Poller(source(fake, http, transport=transport), rig.bus, FAST, planner=planner)
    task = rig.start(poller)
    for i in range(3):
        fake.post_comment("B", f"more {i}")
        await asyncio.sleep(0.1)
    await rig.until(lambda: len(asked(fake, PATHS[transport])) >= 3 and planner.used >= 16
                    and len(rig.ids("yt")) == 4, what="some units spent")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    # 5 units a poll or a connection, 1 a videos.list: our ledger is the platform's (one call may be in flight).
    chat_calls, video_calls = len(asked(fake, PATHS[transport])), len(asked(fake, "/youtube/v3/videos"))
    assert 5 * chat_calls + video_calls == fake.used and fake.used - 5 <= planner.used <= fake.used
    if transport == "stream":
        assert chat_calls == 3 and not asked(fake, LIST)
    quota = poller.status()["quota"]
    assert quota["daily"] == 1_000_000 and quota["used"] + quota["left"] == 1_000_000 and quota["interval_s"] > 0
    used = planner.used
    again = QuotaPlanner(daily=1_000_000, planned_s=3 * 3600, started_at=planner.started_at)
    Poller(source(fake, http), rig.bus, FAST, planner=again).resume(rig.store.get_cursor("yt"))
    assert again.used >= used - 6  # what was booked with the last stored cursor
    assert fake.used >= again.used


# ---- streamList only: the wire format, its breakages, and falling back to polling ------------------------


async def test_stream_pushes_each_message_down_one_connection_as_it_is_typed(tmp_path, http):
    # A 5-second polling interval: anything faster than that was pushed, not polled.
    async with FakeYouTube(token=TOKEN, interval_ms=5000) as fake, Rig(tmp_path / "s.db") as rig:
        rig.start(Poller(source(fake, http), rig.bus, FAST))  # transport defaults to "stream"
        await rig.until(lambda: fake.streams_open == 1, what="the stream open")
        for i in range(5):
            typed = fake.post_comment("A", f"câu {i}")
            await rig.until(lambda t=typed: t in rig.ids("yt"), timeout=1.0, what=f"comment {i} pushed")
        assert len(asked(fake, STREAM)) == 1 and not asked(fake, LIST)
        assert "backoff" not in rig.states("yt")


async def test_a_connection_dropped_mid_response_resumes_from_the_last_complete_one(fake, rig, http):
    first = [fake.post_comment("A", f"m{i}") for i in range(3)]
    fake.stream_faults = ["ok", "drop"]  # the second response is cut in half, the connection aborted
    rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: rig.ids("yt") == first, what="the first response stored")
    token = rig.store.get_cursor("yt")
    later = [fake.post_comment("B", f"n{i}") for i in range(2)]
    await rig.until(lambda: rig.ids("yt") == first + later, what="the cut response fetched again")
    streams = asked(fake, STREAM)
    assert len(streams) == 2 and streams[1]["pageToken"] == token  # resumed after the last stored response
    assert published_ids(rig) == first + later  # half a response was never published
    states = rig.states("yt")
    assert states.count("backoff") == 1 and states[-1] == "ok", states


async def test_garbage_between_responses_is_transient_and_loses_nothing(fake, rig, http):
    a = fake.post_comment("A", "one")
    fake.stream_faults = ["ok", "garbage"]
    poller = Poller(source(fake, http), rig.bus, FAST)
    rig.start(poller)
    await rig.until(lambda: rig.ids("yt") == [a], what="first")
    b = fake.post_comment("B", "two")
    await rig.until(lambda: rig.ids("yt") == [a, b], what="second after garbage")
    assert len(asked(fake, STREAM)) == 2 and poller.source.streaming  # reconnected; never gave up streaming
    errors = rig.store.query("SELECT error FROM source_events WHERE source = 'yt' AND state = 'backoff'")
    assert "between responses" in errors[0]["error"] and "resuming" in errors[0]["error"]


async def test_a_stalled_stream_is_reopened_from_the_last_token(fake, rig, http):
    a = fake.post_comment("A", "before the stall")
    fake.stream_faults = ["ok", "stall"]  # after the first response the connection stays open and silent
    yt = source(fake, http)
    yt.stall_s = 0.3
    rig.start(Poller(yt, rig.bus, FAST))
    await rig.until(lambda: rig.ids("yt") == [a], what="first")
    b = fake.post_comment("B", "typed during the stall")
    await rig.until(lambda: rig.ids("yt") == [a, b], timeout=3, what="delivered after reconnecting")
    streams = asked(fake, STREAM)
    assert len(streams) == 2 and streams[1]["pageToken"]
    assert "backoff" not in rig.states("yt")  # a quiet connection is reopened, not counted as a failure


async def test_the_server_closing_the_array_is_a_clean_reconnect(fake, rig, http):
    a = fake.post_comment("A", "one")
    fake.stream_faults = ["ok", "close"]
    rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: rig.ids("yt") == [a], what="first")
    b = fake.post_comment("B", "two")
    await rig.until(lambda: rig.ids("yt") == [a, b], what="second on a new connection")
    assert len(asked(fake, STREAM)) == 2 and "backoff" not in rig.states("yt")


@pytest.mark.parametrize("signal", ["offlineAt", "chatEndedEvent", "liveChatEnded"])
async def test_every_end_signal_ends_the_source_cleanly(fake, rig, http, transport, signal):
    a = fake.post_comment("A", "last words")
    poller = Poller(source(fake, http, transport=transport), rig.bus, FAST)
    task = rig.start(poller)
    await rig.until(lambda: rig.ids("yt") == [a], what="stored")
    if signal == "offlineAt":
        fake.end(chat_ended_event=False)
    elif signal == "chatEndedEvent":
        fake.end(offline=False)
    elif transport == "stream":
        fake.stream_faults = ["error:liveChatEnded"]  # sent inside the open array
        fake.post_comment("B", "never delivered: the error replaces its response")
    else:
        fake.end_told = True  # the next poll answers 403 liveChatEnded
    await asyncio.wait_for(task, 5)
    assert poller.state == "ended" and rig.ids("yt") == [a]
    assert not rig.alerts("yt") or all(x.level == "info" for x in rig.alerts("yt"))


# Chat errors as the list answers them (plain) and the stream answers them (array-wrapped at connect):
# the state they lead to, and whether the operator is alerted.
CHAT_ERRORS = {"rate": ("backoff", False), "disabled": ("failed", True), "forbidden": ("failed", True),
               "notfound": ("failed", True), "quota": ("failed", True), "auth": ("failed", True)}


@pytest.mark.parametrize("fault", sorted(CHAT_ERRORS))
async def test_chat_errors_behave_the_same_on_both_transports(fake, rig, http, transport, fault):
    state, alerted = CHAT_ERRORS[fault]
    a = fake.post_comment("A", "hi")
    fake.faults = [fault]
    poller = Poller(source(fake, http, transport=transport), rig.bus, FAST)
    rig.start(poller)
    if fault == "quota":  # nothing to do but wait for the Pacific midnight
        await rig.until(lambda: poller.state == "failed", what="failed on quota")
        calls = len(asked(fake, PATHS[transport]))
        await asyncio.sleep(0.3)
        assert len(asked(fake, PATHS[transport])) == calls == 1 and "quotaExceeded" in poller.error
    else:
        await rig.until(lambda: rig.ids("yt") == [a], what="stored once the error has passed")
    assert rig.states("yt")[:2] in ([state, "ok"], ["ok", state], [state]), rig.states("yt")  # viewers: ok first?
    assert bool(rig.alerts("yt")) == alerted
    if transport == "stream":
        assert poller.source.streaming and not asked(fake, LIST)  # an API error is not a reason to poll


async def test_errors_inside_an_open_stream_behave_like_the_list_errors(fake, rig, http):
    a = fake.post_comment("A", "hi")
    fake.stream_faults = ["ok", "error:rateLimitExceeded", "ok", "error:quotaExceeded"]
    poller = Poller(source(fake, http), rig.bus, FAST)
    rig.start(poller)
    await rig.until(lambda: rig.ids("yt") == [a], what="first")
    b = fake.post_comment("B", "after a rate limit")
    await rig.until(lambda: rig.ids("yt") == [a, b], what="resumed after the rate limit")
    assert rig.states("yt")[-2:] == ["backoff", "ok"] and not rig.alerts("yt")
    fake.post_comment("C", "the quota is gone")
    await rig.until(lambda: poller.state == "failed", what="quota")
    assert "quotaExceeded" in poller.error and any("quota" in x.message for x in rig.alerts("yt"))


@pytest.mark.parametrize("mode", ["404", "405", "501", "html"])
async def test_falls_back_to_polling_when_the_stream_endpoint_is_missing(fake, rig, http, mode):
    fake.stream_mode = mode
    a = fake.post_comment("A", "hi")
    poller = Poller(source(fake, http), rig.bus, FAST)
    rig.start(poller)
    await rig.until(lambda: rig.ids("yt") == [a], what="stored by polling")
    b = fake.post_comment("B", "polled too")
    await rig.until(lambda: rig.ids("yt") == [a, b], what="second")
    assert len(asked(fake, STREAM)) == 1 and len(asked(fake, LIST)) >= 2 and not poller.source.streaming
    assert "backoff" not in rig.states("yt") and poller.state == "ok"
    assert [(x.level, x.code) for x in rig.alerts("yt")] == [("info", "audience.polling")]
    assert "polling" in rig.alerts("yt")[0].message


async def test_an_unknown_transport_stops_the_source_with_a_clear_error(fake, rig, http):
    poller = Poller(source(fake, http, transport="carrier-pigeon"), rig.bus, FAST)
    task = rig.start(poller)
    await asyncio.wait_for(task, 5)
    assert poller.state == "failed" and "transport 'carrier-pigeon' is unknown, expected stream or poll" in poller.error
    assert not fake.requests
