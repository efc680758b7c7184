"""The TikTok adapter through the real TikTokLive library (only its network edges faked), the poller and the store."""

# ruff: noqa: F811 - the shared fixtures `rig` and `http` are imported, then asked for by name
from __future__ import annotations

import asyncio
import sys
import warnings

import pytest
from TikTokLive import TikTokLiveClient
from TikTokLive.events import CommentEvent

from streamctl.audience.poller import Poller
from streamctl.audience.source import FATAL, SourceError
from streamctl.audience.tiktok import INSTALL_HINT, TikTokSource, library_client
from streamctl.events import CommentsFetched
from streamctl.fakes.tiktok import (
    DROP,
    OFFLINE,
    FakeTikTok,
    UserNotFoundError,
    comment,
    garbage,
    gift,
    likes,
    live_end,
    rate_limited,
    viewers,
)
from tests.audience_harness import FAST, Rig, audience, http, rig, until  # noqa: F401 - fixtures


def poller(rig: Rig, fake: FakeTikTok | None, key: str | None = "sign-key") -> Poller:
    cfg = audience("tt", "tiktok", credential=key, unique_id="baoquangninh")
    return Poller(TikTokSource(cfg, client_factory=fake.factory if fake else None), rig.bus, FAST)


def msg_id(frame) -> str:
    return str(frame.msg_id)


async def test_the_fake_hands_out_the_librarys_own_client_and_events():
    fake = FakeTikTok([[comment("Lan", "xin chào", handle="lan.qn", user_id=42)]])
    client = fake.factory("@qmg", None)
    assert type(client) is TikTokLiveClient
    got: list = []
    client.add_listener(CommentEvent, got.append)
    await client.start(fetch_room_info=False)
    await until(lambda: got, timeout=5, what="the comment emitted")
    await client.disconnect()
    await client.web.close()
    event = got[0]
    assert type(event) is CommentEvent and event.content == "xin chào"
    assert (event.user.nickname, event.user.display_id, event.user.id) == ("Lan", "lan.qn", 42)


async def test_comments_viewers_and_likes(rig):
    c1 = comment("Hùng <b>", "Cho hỏi bao giờ có nước sạch? <script>1</script> 💧", handle="hung.hl", user_id=11)
    fake = FakeTikTok([[c1, likes(340, count=5), viewers(812, total_user=5400), gift()]])
    p = poller(rig, fake)
    rig.start(p)
    await rig.until(lambda: rig.store.latest_viewers()[1] == 812, what="viewers")
    await rig.until(lambda: p.ignored.get("GiftEvent") == 1, what="gift counted as ignored")
    row = rig.rows("tt")[msg_id(c1)]
    assert row["text"] == "Cho hỏi bao giờ có nước sạch? <script>1</script> 💧" and row["author_name"] == "Hùng <b>"
    assert row["author_id"] == "11" and row["is_question"]
    sample = rig.store.latest_viewers()[0][0]
    assert sample["likes"] == 340 and sample["views"] == 5400
    assert fake.unique_ids == ["@baoquangninh"] and fake.api_keys == ["sign-key"]


async def test_a_commenter_without_a_nickname_is_stored_with_the_handle(rig):
    anonymous = comment("", "ai trả lời?", handle="nguoixem_99", user_id=77)
    fake = FakeTikTok([[anonymous]])
    rig.start(poller(rig, fake))
    await rig.until(lambda: rig.ids("tt") == [msg_id(anonymous)], what="stored")
    row = rig.rows("tt")[msg_id(anonymous)]
    assert row["author_name"] == "@nguoixem_99" and row["author_id"] == "77"


async def test_the_comment_time_is_tiktoks_own(rig):
    dated = comment("A", "lúc 9 giờ", at_ms=1_796_000_000_123)
    fake = FakeTikTok([[dated]])
    rig.start(poller(rig, fake))
    await rig.until(lambda: rig.ids("tt") == [msg_id(dated)], what="stored")
    assert rig.rows("tt")[msg_id(dated)]["published_at"] == pytest.approx(1_796_000_000.123)


async def test_replays_after_a_reconnect_are_stored_and_published_once(rig):
    a, b, c = comment("A", "một"), comment("B", "hai"), comment("C", "ba")
    replay_a = comment("A", "một", msg_id=a.msg_id)
    replay_b = comment("B", "hai", msg_id=b.msg_id)
    fake = FakeTikTok([[a, b, DROP], [replay_a, replay_b, c]])
    rig.start(poller(rig, fake))
    await rig.until(lambda: len(rig.ids("tt")) == 3, what="three stored")
    await asyncio.sleep(0.1)
    assert rig.ids("tt") == [msg_id(m) for m in (a, b, c)]
    published = [x.platform_id for e in rig.drained() if isinstance(e, CommentsFetched) for x in e.comments]
    assert sorted(published) == sorted(rig.ids("tt"))  # nothing published twice either
    assert fake.connects == 2


async def test_live_end_ends_the_source_through_the_librarys_control_message(rig):
    fake = FakeTikTok([[comment("A", "tạm biệt"), live_end()]])
    p = poller(rig, fake)
    task = rig.start(p)
    await asyncio.wait_for(task, 5)
    assert p.state == "ended" and len(rig.ids("tt")) == 1
    assert fake.connects == 1 and fake.current.disconnects >= 1 and not fake.current.open


async def test_offline_waits_and_sign_server_limits_back_off(rig):
    late = comment("A", "live now")
    fake = FakeTikTok([[OFFLINE], [rate_limited(retry_after=0)], [late]])
    p = poller(rig, fake)
    rig.start(p)
    await rig.until(lambda: rig.ids("tt") == [msg_id(late)], what="stored once live")
    states = rig.states("tt")
    assert states[:2] == ["waiting", "backoff"] and states[-1] == "ok", states
    assert fake.connects == 3


async def test_an_unknown_account_blocks_the_source_with_an_alert(rig):
    fake = FakeTikTok([[UserNotFoundError("baoquangninh", "no such account")]])
    p = poller(rig, fake)
    rig.start(p)
    await rig.until(lambda: p.state == "failed", what="blocked")
    assert "UserNotFoundError" in p.error
    assert [a.code for a in rig.alerts("tt")] == ["audience.blocked"]


async def test_a_live_push_after_connecting(rig):
    fake = FakeTikTok()
    rig.start(poller(rig, fake))
    await rig.until(lambda: fake.current is not None and fake.current.open, what="connected")
    x = comment("X", "pushed")
    await fake.push(x, viewers(3))
    await rig.until(lambda: rig.ids("tt") == [msg_id(x)], what="pushed stored")
    await rig.until(lambda: rig.store.latest_viewers()[1] == 3, what="viewers")


async def test_a_broken_frame_is_skipped_by_the_library_and_loses_nothing_after_it(rig):
    after = comment("B", "still here")
    empty = garbage(payload=b"\xff\xff\xff\xff\x0f")  # parses into a CommentEvent with nothing in it
    fake = FakeTikTok([[garbage(), garbage("WebcastNoSuchMessage"), empty, after]])
    p = poller(rig, fake)
    rig.start(p)
    await rig.until(lambda: rig.ids("tt") == [msg_id(after)], what="the comment after the garbage")
    assert p.state == "ok" and fake.connects == 1
    assert p.ignored == {"CommentEvent without text or author": 1}


async def test_stopping_disconnects_through_the_library_without_cancelling_its_connect(rig):
    fake = FakeTikTok([[comment("A", "hi")]])
    p = poller(rig, fake)
    task = rig.start(p)
    await rig.until(lambda: len(rig.ids("tt")) == 1, what="stored")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a never-awaited coroutine would be a RuntimeWarning here
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert fake.current.disconnects >= 1 and not fake.current.open
    assert fake.clients[0]._event_loop_task is None  # the library's loop has finished and been released


def test_the_real_client_takes_the_sign_server_key_for_itself_only():
    client = library_client("@qmg", "sign-key-1")
    other = library_client("@other", None)
    assert client.web._tiktok_signer.sign_api_key == "sign-key-1"
    assert other.web._tiktok_signer.sign_api_key != "sign-key-1"
    assert client.unique_id == "qmg"


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
