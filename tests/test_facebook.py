"""The Facebook adapter against a fake Graph API on loopback, through the real poller, recorder and store."""

# ruff: noqa: F811 - the shared fixtures `rig` and `http` are imported, then asked for by name
from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import pytest

from streamctl.audience.facebook import SWEEP_PAGES, FacebookSource
from streamctl.audience.poller import Poller
from streamctl.audience.source import RATE_LIMITED, Http, SourceError
from streamctl.events import CommentsFetched
from streamctl.fakes.facebook import FakeFacebook
from tests.audience_harness import FAST, Rig, audience, http, rig  # noqa: F401 - fixtures

TOKEN = "EAAB-page-token-secret"


@pytest.fixture
async def fake():
    async with FakeFacebook(token=TOKEN) as fb:
        yield fb


def source(fake: FakeFacebook, http: Http) -> FacebookSource:
    cfg = audience("fb", "facebook", credential=TOKEN, live_video_id=fake.video_id, api_base=fake.api_base)
    return FacebookSource(cfg, http)


async def test_pages_back_through_everything_unfiltered_in_the_order_typed(fake, rig, http):
    base = datetime(2018, 8, 30, 18, 47, 2, tzinfo=UTC).timestamp()
    for i in range(250):
        fake.post_comment(f"Người xem {i}", f"bình luận {i}", at=base + i, low_quality=(i % 7 == 0))
    anonymous = fake.post_comment(None, "no profile shown", at=base + 300)
    reply = fake.post_comment("Replier", "<i>a reply</i> & <script>x()</script>", at=base + 301,
                              reply_to=fake.published[0])
    rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: len(rig.ids("fb")) == len(fake.published), what="all comments")
    assert rig.ids("fb") == fake.published  # low-quality ones and replies too, oldest first
    rows = rig.rows("fb")
    assert rows[anonymous]["author_name"] == "" and rows[anonymous]["text"] == "no profile shown"
    assert rows[reply]["text"] == "<i>a reply</i> & <script>x()</script>"
    assert rows[fake.published[5]]["published_at"] == base + 5  # "+0000" times
    _, _, query = next(r for r in fake.requests if r[1].endswith("/comments"))
    assert query["order"] == "reverse_chronological" and query["filter"] == "stream"
    assert query["live_filter"] == "no_filter"


async def test_stops_paging_at_known_comments(fake, rig, http):
    for i in range(150):
        fake.post_comment("A", f"old {i}")
    rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: len(rig.ids("fb")) == 150, what="history")
    fresh = fake.post_comment("B", "new one?")
    await rig.until(lambda: rig.ids("fb")[-1] == fresh, what="new one")
    await asyncio.sleep(0.3)
    later = [q for _, path, q in fake.requests[-5:] if path.endswith("/comments")]
    assert later and all("after" not in q for q in later)  # one page per poll once caught up


@pytest.mark.parametrize("code", ["4", "17", "32", "613"])
async def test_rate_limit_codes_back_off_and_lose_nothing(fake, rig, http, code):
    first = fake.post_comment("A", "one")
    fake.faults = [code, code]
    poller = Poller(source(fake, http), rig.bus, FAST)
    rig.start(poller)
    await rig.until(lambda: rig.ids("fb") == [first], what="stored after rate limits")
    assert "backoff" in rig.states("fb") and poller.state == "ok"
    assert fake.calls("/comments") >= 3


@pytest.mark.parametrize("header", ["X-Business-Use-Case-Usage", "x-business-use-case-usage"])
async def test_rate_limit_waits_as_long_as_facebook_says(fake, http, header):
    fake.faults = ["17"]
    fake.usage_headers = {header: json.dumps(  # header names are case-insensitive (proxies lower-case them)
        {"1234": [{"type": "pages", "call_count": 100, "total_cputime": 10, "total_time": 10,
                   "estimated_time_to_regain_access": 2}]})}
    with pytest.raises(SourceError) as caught:
        await source(fake, http).fetch()
    assert caught.value.kind == RATE_LIMITED and caught.value.retry_after == 120


async def test_expired_token_alerts_the_operator(fake, rig, http):
    fake.faults = ["190"]
    poller = Poller(source(fake, http), rig.bus, FAST, credential_env="FB_PAGE_TOKEN")
    rig.start(poller)
    await rig.until(lambda: rig.alerts("fb"), what="alert")
    alert = rig.alerts("fb")[0]
    assert alert.level == "error" and "190" in alert.message and "FB_PAGE_TOKEN" in alert.message
    assert "failed" in rig.states("fb")
    assert TOKEN not in rig.every_text()


async def test_broadcast_end_takes_one_last_poll_then_ends(fake, rig, http):
    fake.set_viewers(42)
    poller = Poller(source(fake, http), rig.bus, FAST)
    task = rig.start(poller)
    await rig.until(lambda: rig.store.latest_viewers()[1] == 42, what="live_views")
    last = fake.post_comment("A", "cảm ơn")
    fake.end()
    await asyncio.wait_for(task, 5)
    assert poller.state == "ended" and last in rig.ids("fb")
    assert rig.store.latest_viewers()[1] == 0


async def test_code_100_after_the_video_is_gone_ends_the_source(fake, rig, http):
    a = fake.post_comment("A", "hi")
    poller = Poller(source(fake, http), rig.bus, FAST)
    task = rig.start(poller)
    await rig.until(lambda: rig.ids("fb") == [a], what="first")
    fake.gone = True
    await asyncio.wait_for(task, 5)
    assert poller.state == "ended"


async def test_garbage_answers_are_transient(fake, rig, http):
    fake.faults = ["503", "malformed"]
    a = fake.post_comment("A", "hi")
    poller = Poller(source(fake, http), rig.bus, FAST)
    rig.start(poller)
    await rig.until(lambda: rig.ids("fb") == [a], what="stored")
    assert rig.states("fb").count("backoff") == 1


async def test_restart_resumes_after_the_stored_watermark(fake, rig, http):
    first = [fake.post_comment("A", f"m{i}") for i in range(120)]
    task = rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: rig.ids("fb") == first, what="first run")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    later = [fake.post_comment("B", f"n{i}") for i in range(3)]
    seen = len(fake.requests)
    rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: rig.ids("fb") == first + later, what="resumed")
    resumed = [q for _, path, q in fake.requests[seen:] if path.endswith("/comments")]
    assert "after" not in resumed[0]  # the watermark stopped it on the first page


# ---- comments approved late keep their old created_time and surface below the ones already fetched ------


def polls(fake: FakeFacebook, since: int = 0) -> list[int]:
    """Pages read by each poll after request `since`: a poll starts with a request without `after`."""
    pages: list[int] = []
    for _, path, query in fake.requests[since:]:
        if path.endswith("/comments"):
            if "after" not in query:
                pages.append(0)
            if pages:
                pages[-1] += 1
    return pages


def published_ids(rig: Rig) -> list[str]:
    return [c.platform_id for e in rig.drained() if isinstance(e, CommentsFetched) for c in e.comments]


async def test_a_comment_approved_long_after_it_was_typed_is_stored_exactly_once(fake, rig, http):
    now = time.time()
    history = [fake.post_comment(f"Người {i}", f"ý kiến {i}", at=now - 3000 + 10 * i) for i in range(300)]
    late = fake.post_comment("Chờ duyệt", "held for review, typed 25 minutes ago", at=now - 1500, held=True)
    fb = source(fake, http)
    fb.sweep_every = 0.5
    rig.start(Poller(fb, rig.bus, FAST))
    await rig.until(lambda: len(rig.ids("fb")) == 300, what="history")
    fresh = [fake.post_comment("Mới", f"new {i}") for i in range(3)]
    await rig.until(lambda: rig.ids("fb")[-3:] == fresh, what="new ones")
    loaded = len(fake.requests)
    fake.approve(late)  # 150 comments are newer: it lands on the second page, below known territory
    await rig.until(lambda: late in rig.ids("fb"), timeout=5, what="the late approval")
    await asyncio.sleep(1.2)  # two more sweeps: nothing arrives twice
    ids = rig.ids("fb")
    assert sorted(ids) == sorted(history + fresh + [late]) and len(ids) == len(set(ids))
    assert published_ids(rig).count(late) == 1 and len(published_ids(rig)) == len(ids)
    pages = polls(fake, loaded)
    # Plain polls read one page; the sweeps stop 30 minutes back (page 3), never the whole history (page 4).
    assert pages.count(1) >= len(pages) - 4 and max(pages) <= 3, pages


async def test_a_comment_approved_soon_after_is_caught_by_every_poll(fake, rig, http):
    now = time.time()
    before = [fake.post_comment("A", f"m{i}", at=now - 60 + i) for i in range(20)]
    soon = fake.post_comment("B", "typed before the newest, approved later", at=now - 50, held=True)
    fb = source(fake, http)
    fb.sweep_every = 3600  # no sweep: the overlap alone must find it
    rig.start(Poller(fb, rig.bus, FAST))
    await rig.until(lambda: rig.ids("fb") == before, what="first")
    fake.approve(soon)
    await rig.until(lambda: soon in rig.ids("fb"), what="caught by a plain poll")
    assert sorted(rig.ids("fb")) == sorted(before + [soon]) and published_ids(rig).count(soon) == 1


async def test_plain_polls_read_one_page_and_sweeps_are_capped_however_long_the_history(fake, rig, http):
    now = time.time()
    for i in range(3000):  # one comment a second for 50 minutes: thirty pages
        fake.post_comment("A", f"m{i}", at=now - 3000 + i)
    fb = source(fake, http)
    fb.sweep_every = 0.3
    rig.start(Poller(fb, rig.bus, FAST))
    await rig.until(lambda: len(rig.ids("fb")) == 3000, timeout=20, what="history")
    loaded = len(fake.requests)
    for i in range(10):
        fake.post_comment("B", f"n{i}")
        await asyncio.sleep(0.1)
    await rig.until(lambda: len(rig.ids("fb")) == 3010, what="new ones")
    await asyncio.sleep(0.3)
    pages = polls(fake, loaded)
    assert set(pages) == {1, SWEEP_PAGES}, pages  # a sweep reads SWEEP_PAGES, never the thirty
    assert pages.count(SWEEP_PAGES) <= 2 + 1.5 / 0.3, pages


async def test_approvals_made_while_stopped_are_found_by_the_sweep_on_restart(fake, rig, http):
    now = time.time()
    first = [fake.post_comment("A", f"m{i}", at=now - 600 + i) for i in range(150)]
    late = fake.post_comment("B", "held, approved while streamctl was down", at=now - 580, held=True)
    task = rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: rig.ids("fb") == first, what="first run")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    fake.approve(late)
    rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: late in rig.ids("fb"), what="found after the restart")
    ids = rig.ids("fb")
    assert sorted(ids) == sorted(first + [late]) and len(ids) == len(set(ids))
