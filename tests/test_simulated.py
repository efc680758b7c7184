"""The simulated audience: fake YouTube and Facebook on loopback, read by the real adapters through the service."""

from __future__ import annotations

import asyncio
import random
import socket
from urllib.parse import urlsplit

import pytest

from streamctl.audience.poller import Timing
from streamctl.audience.service import AudienceService
from streamctl.audience.simulated import QUESTIONS, Crowd, make_comment, viewer_curve
from streamctl.config import load_event
from streamctl.fakes.platforms import FakePlatforms
from streamctl.text import looks_like_question
from tests.audience_harness import Rig

TIMING = Timing(interval=0.1, jitter=0.1, backoff_max=0.5, viewers_every=0.2)


def event_file(write_event, tmp_path, extra: str = ""):
    return load_event(write_event(f"""
        [event]
        name = "Tổng duyệt"
        database = "{tmp_path / 'sim.db'}"

        [[audience]]
        name = "rehearsal"
        platform = "simulated"
        rate = 40
        seed = 7
        interval = 0.2
        {extra}
    """), environ={})


def test_comments_read_like_a_provincial_question_session():
    rng = random.Random(1)
    texts = [make_comment(rng)[1] for _ in range(400)]
    questions = [t for t in texts if looks_like_question(t)]
    assert 0.25 < len(questions) / len(texts) < 0.6
    joined = " ".join(texts)
    for topic in ("đường", "trường", "Bệnh viện", "đất", "ngập", "flooding", "repaired"):
        assert topic.lower() in joined.lower()
    assert all(looks_like_question(t.format(road="r", school="s", hospital="h", place="p")) for t in QUESTIONS)


def test_the_crowd_repeats_itself_like_a_real_audience():
    crowd = Crowd(random.Random(3))
    picks = [crowd.pick() for _ in range(559)]  # the comments of a real Q&A session
    accounts = {p.account_id for p in picks}
    assert 0.15 < len(accounts) / len(picks) < 0.7, len(accounts)
    busiest = max(picks.count(p) for p in set(picks))
    assert busiest >= 15  # a regular who types all session long
    for platform in ("youtube", "facebook"):
        theirs = [p for p in picks if p.platform == platform]
        assert len({p.account_id for p in theirs}) < len(theirs) / 1.5, platform
    # One person is one account on one platform; two people may show the same name.
    by_account = {}
    for p in crowd.people:
        assert by_account.setdefault(p.account_id, p) == p
    assert len({p.account_id for p in crowd.people}) == len(crowd.people)


def test_viewer_curve_ramps_up_then_holds():
    rng = random.Random(2)
    start, early, ramped, later = (viewer_curve(t, 3000, rng) for t in (0, 30, 120, 2000))
    assert 250 < start < 350 < early < 1500 < 2500 < ramped < 3500 and 2500 < later < 3500


async def test_rehearsal_audience_flows_through_the_real_adapters(tmp_path, write_event):
    async with Rig(tmp_path / "rig.db") as rig:
        service = AudienceService(event_file(write_event, tmp_path), rig.bus, rig.store, timing=TIMING)
        assert set(service.pollers) == {"rehearsal.youtube", "rehearsal.facebook"}
        task = asyncio.create_task(service.run())
        await rig.until(lambda: len(rig.ids("rehearsal.youtube")) >= 30 and len(rig.ids("rehearsal.facebook")) >= 30,
                        timeout=20, what="comments from both fakes")
        await rig.until(lambda: rig.store.latest_viewers()[1] > 0 and len(rig.store.latest_viewers()[0]) == 2,
                        what="viewer counts from both")
        sim = service.units["rehearsal"].simulation
        fakes = sim.server
        assert fakes is not None and fakes.youtube.calls("liveChat") > 0 and fakes.facebook.calls("/comments") > 0
        status = {s["name"]: s for s in service.sources_status()}
        assert status["rehearsal.youtube"]["state"] == "ok" and status["rehearsal.facebook"]["state"] == "ok"
        port = urlsplit(sim.root).port
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # Every typed comment that the adapters had read is stored once; the fakes are gone.
        stored = set(rig.ids("rehearsal.youtube")) | set(rig.ids("rehearsal.facebook"))
        assert stored <= set(fakes.youtube.published) | set(fakes.facebook.published)
        # Read back through the real adapters, commenters repeat on both platforms (the report's unique commenters).
        for source in ("rehearsal.youtube", "rehearsal.facebook"):
            row = rig.store.query_one("SELECT COUNT(*) AS n, COUNT(DISTINCT author_id) AS authors FROM comments"
                                      " WHERE source = ? AND author_id != ''", (source,))
            assert row["authors"] < row["n"], (source, dict(row))
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            pass


async def test_uses_fakes_served_elsewhere_when_given_api_base(tmp_path, write_event):
    async with FakePlatforms(youtube_interval_ms=100) as fakes, Rig(tmp_path / "rig.db") as rig:
        fakes.youtube.video_id, fakes.facebook.video_id = "simLive0001", "100000000000001"
        event = event_file(write_event, tmp_path, extra=f'api_base = "{fakes.url}"')
        service = AudienceService(event, rig.bus, rig.store, timing=TIMING)
        task = asyncio.create_task(service.run())
        await rig.until(lambda: len(rig.ids("rehearsal.youtube")) >= 3, timeout=20, what="comments")
        assert service.units["rehearsal"].simulation.server is None and len(fakes.youtube.published) >= 3
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
