"""The Twitch adapter: IRC chat over a real local websocket server, Helix viewers from a fake on loopback."""

# ruff: noqa: F811 - the shared fixtures `rig` and `http` are imported, then asked for by name
from __future__ import annotations

import asyncio
import json
import re

import pytest

from streamctl.audience.poller import Poller
from streamctl.audience.source import Http
from streamctl.audience.twitch import TwitchSource, parse_line
from streamctl.events import CommentsHidden
from streamctl.fakes.twitch import FakeTwitch
from tests.audience_harness import FAST, Rig, audience, http, rig  # noqa: F401 - fixtures

TOKEN = "twitch-app-token-secret"


@pytest.fixture
async def fake():
    async with FakeTwitch(token=TOKEN, client_id="cid-1", ping_every=0.1) as tw:
        yield tw


def source(fake: FakeTwitch, http: Http) -> TwitchSource:
    cfg = audience("tw", "twitch", credential=TOKEN, channel=fake.channel, client_id="cid-1", api_base=fake.helix,
                   irc_url=fake.irc_url)
    return TwitchSource(cfg, http)


def test_parses_tags_prefix_and_trailing_text():
    line = (r"@badge-info=;badges=broadcaster/1;display-name=Người\sXem;id=885196de;mod=0;tmi-sent-ts=1643904084794"
            r";system-msg=a\:b\\c :lovingt3s!lovingt3s@lovingt3s.tmi.twitch.tv PRIVMSG #lovingt3s :hello :) there")
    tags, prefix, command, params = parse_line(line)
    assert tags["display-name"] == "Người Xem" and tags["system-msg"] == "a;b\\c" and tags["badge-info"] == ""
    assert prefix.startswith("lovingt3s!") and command == "PRIVMSG"
    assert params == ["#lovingt3s", "hello :) there"]


async def test_joins_anonymously_and_stores_chat_with_tags(fake, rig, http):
    rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: fake.joined, what="joined")
    sent = fake.received[:4]
    assert sent[0] == "CAP REQ :twitch.tv/tags twitch.tv/commands"
    assert re.fullmatch(r"NICK justinfan\d+", sent[2]) and sent[3] == f"JOIN #{fake.channel}"
    a = await fake.say("viewer1", "Khi nào sửa cầu? <script>alert(1)</script> 🌊", display="Viewer One; \\o/")
    b = await fake.say("cheerer", "cheer100 great", bits=100)
    c = await fake.say("emoter", "\x01ACTION waves\x01")
    await rig.until(lambda: rig.ids("tw") == [a, b, c], what="three stored")
    rows = rig.rows("tw")
    assert rows[a]["author_name"] == "Viewer One; \\o/"
    assert rows[a]["text"] == "Khi nào sửa cầu? <script>alert(1)</script> 🌊" and rows[a]["is_question"]
    assert rows[b]["kind"] == "paid" and rows[b]["amount"] == "100 bits"
    assert rows[c]["text"] == "waves"


async def test_answers_ping_with_pong(fake, rig, http):
    rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: fake.pongs >= 3, what="three PONGs")
    assert all(line == "PONG :tmi.twitch.tv" for line in fake.received if line.startswith("PONG"))


async def test_deleted_messages_hide_and_timeouts_are_noted(fake, rig, http):
    rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: fake.joined, what="joined")
    a = await fake.say("spammer", "buy followers")
    await rig.until(lambda: rig.ids("tw") == [a], what="stored")
    await fake.clear_message(a)
    await fake.timeout_user("spammer", 600)
    await rig.until(lambda: rig.rows("tw")[a]["hidden"], what="hidden")
    await rig.until(lambda: len(rig.ids("tw")) == 2, what="timeout noted")
    note = list(rig.rows("tw").values())[1]
    assert note["kind"] == "banned" and note["author_name"] == "spammer" and "600" in note["text"]


async def test_a_clearchat_without_a_user_hides_every_earlier_message_of_the_channel(fake, rig, http):
    rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: fake.joined, what="joined")
    a = await fake.say("one", "first")
    b = await fake.say("two", "second")
    await rig.until(lambda: rig.ids("tw") == [a, b], what="stored")
    await asyncio.sleep(0.002)  # Twitch stamps in milliseconds
    await fake.clear_chat()
    await rig.until(lambda: len(rig.ids("tw")) == 3, what="clear noted")
    await asyncio.sleep(0.002)
    c = await fake.say("three", "after the clear")
    await rig.until(lambda: len(rig.ids("tw")) == 4, what="later message")
    rows = rig.rows("tw")
    assert rows[a]["hidden"] and rows[b]["hidden"] and not rows[c]["hidden"]
    notice = next(r for r in rows.values() if r["platform_id"].startswith("clearchat:all:"))
    assert notice["kind"] == "system" and not notice["hidden"] and "cleared" in notice["text"]
    hidden = [e for e in rig.drained() if isinstance(e, CommentsHidden)]
    assert sorted(i for e in hidden for i in e.ids) == sorted([rows[a]["id"], rows[b]["id"]])


@pytest.mark.parametrize(("notice", "kind"), [("sub", "member"), ("resub", "member"), ("subgift", "member"),
                                              ("raid", "system"), ("announcement", "system"),
                                              ("somethingnew", "system")])
async def test_usernotices_keep_their_kind(fake, rig, http, notice, kind):
    rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: fake.joined, what="joined")
    mid = await fake.notice(notice, "ban_mai", f"ban_mai: {notice}", text="chào cả nhà")
    await rig.until(lambda: rig.ids("tw") == [mid], what="stored")
    row = rig.rows("tw")[mid]
    assert row["kind"] == kind and json.loads(row["extra"])["notice"] == notice
    assert row["text"] == f"ban_mai: {notice} chào cả nhà" and row["author_name"] == "ban_mai"


async def test_reconnects_when_asked_and_stores_replays_once(fake, rig, http):
    poller = Poller(source(fake, http), rig.bus, FAST)
    rig.start(poller)
    await rig.until(lambda: fake.joined, what="joined")
    a = await fake.say("one", "before")
    await rig.until(lambda: rig.ids("tw") == [a], what="first")
    await fake.reconnect()
    await rig.until(lambda: fake.connections == 2 and fake.joined, what="joined again")
    await fake.say("one", "before", msg_id=a)  # a replay of the same message
    b = await fake.say("two", "after")
    await rig.until(lambda: rig.ids("tw") == [a, b], what="after reconnect")
    await fake.drop()
    await rig.until(lambda: fake.connections == 3 and fake.joined, what="joined after a drop")
    c = await fake.say("three", "still here")
    await rig.until(lambda: rig.ids("tw") == [a, b, c], what="after drop")
    assert "backoff" not in rig.states("tw")


async def test_viewer_count_from_helix_and_zero_when_offline(fake, rig, http):
    fake.set_viewers(1490)
    rig.start(Poller(source(fake, http), rig.bus, FAST))
    await rig.until(lambda: rig.store.latest_viewers()[1] == 1490, what="viewers")
    fake.end()
    await rig.until(lambda: rig.store.latest_viewers()[1] == 0, what="offline")


async def test_helix_rate_limit_backs_off_and_bad_token_alerts(fake, rig, http):
    fake.faults = ["429"]
    fake.set_viewers(5)
    poller = Poller(source(fake, http), rig.bus, FAST, credential_env="TWITCH_TOKEN")
    rig.start(poller)
    await rig.until(lambda: rig.store.latest_viewers()[1] == 5, what="viewers after 429")
    assert "backoff" in rig.states("tw")
    fake.token = "rotated"
    await rig.until(lambda: poller.state == "failed", what="failed on 401")
    assert any("401" in a.message and "TWITCH_TOKEN" in a.message for a in rig.alerts("tw"))
    assert TOKEN not in rig.every_text()
