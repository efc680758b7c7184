"""The TikTok adapter, fed TikTokLive-shaped events at the library boundary, through the real poller and store."""

# ruff: noqa: F811 - the shared fixtures `rig` and `http` are imported, then asked for by name
from __future__ import annotations

import asyncio
import sys

import pytest

from streamctl.audience.poller import Poller
from streamctl.audience.source import FATAL, SourceError
from streamctl.audience.tiktok import INSTALL_HINT, TikTokSource
from streamctl.events import CommentsFetched
from streamctl.fakes.tiktok import (
    DisconnectEvent,
    FakeTikTok,
    GiftEvent,
    LikeEvent,
    LiveEndEvent,
    RoomUserSeqEvent,
    SignatureRateLimitError,
    User,
    UserOfflineError,
    comment,
)
from tests.audience_harness import FAST, Rig, audience, http, rig  # noqa: F401 - fixtures


def poller(rig: Rig, fake: FakeTikTok | None, key: str | None = "sign-key") -> Poller:
    cfg = audience("tt", "tiktok", credential=key, unique_id="baoquangninh")
    return Poller(TikTokSource(cfg, client_factory=fake.factory if fake else None), rig.bus, FAST)


async def test_comments_viewers_and_likes(rig):
    c1 = comment("Hùng <b>", "Cho hỏi bao giờ có nước sạch? <script>1</script> 💧", user_id=11)
    fake = FakeTikTok([[c1, LikeEvent(User(12, "x"), count=5, total=340), RoomUserSeqEvent(812, total_user=5400),
                        GiftEvent(User(13, "y"))]])
    p = poller(rig, fake)
    rig.start(p)
    await rig.until(lambda: rig.store.latest_viewers()[1] == 812, what="viewers")
    await rig.until(lambda: p.ignored.get("GiftEvent") == 1, what="gift ignored")
    row = rig.rows("tt")[str(c1.common.msg_id)]
    assert row["text"] == "Cho hỏi bao giờ có nước sạch? <script>1</script> 💧" and row["author_name"] == "Hùng <b>"
    assert row["published_at"] == pytest.approx(c1.common.create_time / 1000)
    assert row["is_question"]
    sample = rig.store.latest_viewers()[0][0]
    assert sample["likes"] == 340 and sample["views"] == 5400
    assert fake.unique_ids == ["@baoquangninh"] and fake.api_keys == ["sign-key"]


async def test_replays_after_a_reconnect_are_stored_and_published_once(rig):
    a, b, c = comment("A", "một"), comment("B", "hai"), comment("C", "ba")
    replay_a = comment("A", "một", msg_id=a.common.msg_id)
    replay_b = comment("B", "hai", msg_id=b.common.msg_id)
    fake = FakeTikTok([[a, b, DisconnectEvent()], [replay_a, replay_b, c]])
    rig.start(poller(rig, fake))
    await rig.until(lambda: len(rig.ids("tt")) == 3, what="three stored")
    await asyncio.sleep(0.1)
    assert rig.ids("tt") == [str(m.common.msg_id) for m in (a, b, c)]
    published = [x.platform_id for e in rig.drained() if isinstance(e, CommentsFetched) for x in e.comments]
    assert sorted(published) == sorted(rig.ids("tt"))  # nothing published twice either
    assert fake.connects == 2


async def test_live_end_ends_the_source(rig):
    fake = FakeTikTok([[comment("A", "tạm biệt"), LiveEndEvent()]])
    p = poller(rig, fake)
    task = rig.start(p)
    await asyncio.wait_for(task, 5)
    assert p.state == "ended" and len(rig.ids("tt")) == 1


async def test_offline_waits_and_sign_server_limits_back_off(rig):
    late = comment("A", "live now")
    fake = FakeTikTok([[UserOfflineError("not live")], [SignatureRateLimitError(retry_after=0)], [late]])
    p = poller(rig, fake)
    rig.start(p)
    await rig.until(lambda: rig.ids("tt") == [str(late.common.msg_id)], what="stored once live")
    states = rig.states("tt")
    assert states[:2] == ["waiting", "backoff"] and states[-1] == "ok", states
    assert fake.connects == 3


async def test_a_live_push_after_connecting(rig):
    fake = FakeTikTok()
    rig.start(poller(rig, fake))
    await rig.until(lambda: fake.current is not None, what="connected")
    x = comment("X", "pushed")
    await fake.push(x, RoomUserSeqEvent(3))
    await rig.until(lambda: rig.ids("tt") == [str(x.common.msg_id)], what="pushed stored")


async def test_without_the_library_the_source_fails_with_a_clear_error(rig, monkeypatch):
    monkeypatch.setitem(sys.modules, "TikTokLive", None)  # what Python does when a package is missing
    p = poller(rig, None)
    task = rig.start(p)
    await asyncio.wait_for(task, 5)
    assert p.state == "failed" and p.error == INSTALL_HINT
    assert any(INSTALL_HINT in a.message for a in rig.alerts("tt"))
    with pytest.raises(SourceError) as caught:
        async for _ in TikTokSource(audience("t2", "tiktok", unique_id="x")).listen():
            pass
    assert caught.value.kind == FATAL
