"""The recorder end to end: audience events on the real bus become rows in real SQLite, then are published on."""

from __future__ import annotations

import asyncio
import time

import pytest

from streamctl.audience.models import Comment, ViewerSample
from streamctl.events import (
    Bus,
    CommentsFetched,
    CommentsHidden,
    CommentsStored,
    SourceStateChanged,
    ViewersSampled,
    ViewersStored,
)
from streamctl.recorder import Recorder
from streamctl.store import Store
from tests.audience_harness import until


def comment(pid: str, text: str = "hello", source: str = "yt") -> Comment:
    at = time.time()
    return Comment(platform="youtube", source=source, platform_id=pid, author_name="A", author_id="a", text=text,
                   published_at=at, received_at=at)


@pytest.fixture
async def running(tmp_path):
    store = Store(tmp_path / "rec.db")
    bus = Bus()
    recorder = Recorder(store, bus)
    out = bus.subscribe(CommentsStored, CommentsHidden, ViewersStored, maxsize=100_000, name="test")
    task = asyncio.create_task(recorder.run())
    yield store, bus, out, recorder
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    store.close()


async def next_event(out, kind):
    async with asyncio.timeout(5):
        while True:
            event = await out.get()
            if isinstance(event, kind):
                return event


async def test_stores_then_publishes_only_new_comments_with_their_cursor(running):
    store, bus, out, _ = running
    await bus.publish(CommentsFetched("yt", "youtube", (comment("m1", "Khi nào sửa đường?"), comment("m2")), "tok-1"))
    stored = await next_event(out, CommentsStored)
    assert [c["text"] for c in stored.comments] == ["Khi nào sửa đường?", "hello"]
    assert stored.comments[0]["is_question"] and stored.comments[0]["id"] < stored.comments[1]["id"]
    assert store.get_cursor("yt") == "tok-1"
    # The same page again (a restart re-reading it) with one new message: only that one is published.
    await bus.publish(CommentsFetched("yt", "youtube", (comment("m2"), comment("m3")), "tok-2"))
    stored = await next_event(out, CommentsStored)
    assert [c["text"] for c in stored.comments] == ["hello"] and len(stored.comments) == 1
    assert store.get_cursor("yt") == "tok-2"
    assert [r["platform_id"] for r in store.query("SELECT platform_id FROM comments ORDER BY id")] == [
        "m1", "m2", "m3"]


async def test_same_id_in_two_sources_is_two_comments(running):
    store, bus, out, _ = running
    await bus.publish(CommentsFetched("yt-a", "youtube", (comment("same", source="yt-a"),)))
    await bus.publish(CommentsFetched("yt-b", "youtube", (comment("same", source="yt-b"),)))
    await next_event(out, CommentsStored)
    await next_event(out, CommentsStored)
    assert store.query_one("SELECT COUNT(*) AS n FROM comments")["n"] == 2


async def test_platform_deletions_hide_the_original(running):
    store, bus, out, _ = running
    await bus.publish(CommentsFetched("yt", "youtube", (comment("m1"), comment("m2"))))
    stored = await next_event(out, CommentsStored)
    await bus.publish(CommentsFetched("yt", "youtube", (), "tok", deleted_ids=("m1", "unknown-id")))
    hidden = await next_event(out, CommentsHidden)
    assert hidden.ids == (stored.comments[0]["id"],) and hidden.by == "platform"
    assert [c["hidden"] for c in store.comments()] == [True, False]


async def test_viewer_samples_are_stored_and_totalled(running):
    store, bus, out, _ = running
    now = time.time()
    await bus.publish(ViewersSampled(ViewerSample("yt", "youtube", now, 1200)))
    await bus.publish(ViewersSampled(ViewerSample("zalo", "zalo", now, 80, manual=True)))
    await next_event(out, ViewersStored)
    latest = await next_event(out, ViewersStored)
    assert latest.total == 1280
    assert {s["name"]: s["manual"] for s in latest.sources} == {"yt": False, "zalo": True}


async def test_a_burst_waits_rather_than_drops(running):
    store, bus, out, _ = running
    for i in range(2000):  # far more than the recorder's queue holds: publishers must wait, nothing lost
        await bus.publish(CommentsFetched("yt", "youtube", (comment(f"b{i}"),), f"c{i}"))
    await until(lambda: store.query_one("SELECT COUNT(*) AS n FROM comments")["n"] == 2000, 20, "all stored")
    assert store.get_cursor("yt") == "c1999"


async def test_source_states_are_kept_for_the_report(running):
    store, bus, _, _ = running
    await bus.publish(SourceStateChanged("yt", "youtube", "backoff", "HTTP 503"))
    await until(lambda: store.query("SELECT * FROM source_events"), 5, "the state stored")
    row = store.query_one("SELECT source, state, error FROM source_events")
    assert tuple(row) == ("yt", "backoff", "HTTP 503")


async def test_drain_stores_what_is_still_queued(tmp_path):
    store = Store(tmp_path / "drain.db")
    bus = Bus()
    recorder = Recorder(store, bus)  # subscribed, but not running: events wait in its queue
    await bus.publish(CommentsFetched("yt", "youtube", (comment("late"),), "last-cursor"))
    await recorder.drain()
    assert [c["text"] for c in store.comments()] == ["hello"] and store.get_cursor("yt") == "last-cursor"
    store.close()
