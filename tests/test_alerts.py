"""The alert desk (alerts.py) and its API: one alert per failure, recoveries, the store, a restart, languages."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace

from streamctl.alerts import CODES, AlertDesk, alert_text
from streamctl.config import load_event
from streamctl.console.i18n import LANGS, catalogue
from streamctl.events import Alert, AlertStored, Bus
from streamctl.redact import register_secret
from streamctl.restream.restreamer import Restreamer
from streamctl.restream.rtmp_server import RtmpServer
from streamctl.store import Store

from .conftest import free_port
from .console_harness import running_console
from .receivers import RtmpReceiver, wait_for
from .test_restreamer import FAST, Running
from .test_ws import next_event, silence, socket

# What each code's sentence may name beside {source}: the params its publishers send.
PARAMS = {"address": "127.0.0.1:50000", "app": "live", "reason": "wrong stream key", "platform": "youtube",
          "error": "Connection refused", "problem": "keyframes every 4 s", "detail": "quota at 80 %",
          "path": "/srv/archive", "seconds": 5, "db": -50, "speed": 0.8, "free_mb": 12}


async def desk_with(store: Store) -> tuple[AlertDesk, Bus]:
    bus = Bus()
    return AlertDesk(store, bus), bus


async def test_repeats_count_up_one_alert_and_a_recovery_closes_it(tmp_path):
    store = Store(tmp_path / "a.db")
    desk, bus = await desk_with(store)
    with bus.subscribe(AlertStored, name="test") as told:
        for _ in range(4):
            await desk.take(Alert("warning", "fb-main", "retrying", code="destination.backoff",
                                  params={"platform": "facebook", "error": "Connection refused"}))
        await desk.take(Alert("warning", "yt-main", "retrying", code="destination.backoff",
                              params={"platform": "youtube", "error": "x"}))
        rows = store.alerts()
        assert [(r["source"], r["count"]) for r in rows] == [("fb-main", 4), ("yt-main", 1)]
        assert store.unacknowledged_alerts() == 2

        await desk.take(Alert("info", "fb-main", "live again", code="destination.backoff", resolved=True))
        rows = store.alerts()
        assert [(r["source"], r["recovery"], r["resolved_at"] is not None) for r in rows] == [
            ("fb-main", False, True), ("yt-main", False, False), ("fb-main", True, True)]
        assert store.unacknowledged_alerts() == 2  # a recovery is news, not a problem to acknowledge
        # A recovery with nothing open records nothing (every start of a destination says "live").
        assert await desk.take(Alert("info", "tt", "live", code="destination.backoff", resolved=True)) == []
        # The same failure again after its recovery is a new alert.
        await desk.take(Alert("warning", "fb-main", "retrying", code="destination.backoff",
                              params={"platform": "facebook", "error": "y"}))
        assert len(store.alerts()) == 4
        events = [told.get_nowait() for _ in range(told.queue.qsize())]
    assert len(events) == 4 + 1 + 2 + 1
    last = events[-1]
    assert last.unacknowledged == 3 and last.alert["count"] == 1
    assert set(last.alert["texts"]) == set(LANGS)
    assert last.alert["texts"]["vi"].startswith("fb-main (facebook) mất kết nối")
    assert last.alert["texts"]["en"].startswith("fb-main (facebook) lost its connection")
    store.close()


async def test_texts_follow_the_reader_and_unknown_codes_fall_back_to_the_english_message(tmp_path):
    store = Store(tmp_path / "a.db")
    desk, _ = await desk_with(store)
    key = "live_" + secrets.token_hex(8)
    register_secret(key)
    await desk.take(Alert("error", "hall", f"refused rtmp://x/live/{key}", code="ingest.refused",
                          params={"address": "10.0.0.7:51000", "app": "live", "reason": "wrong stream key"}))
    await desk.take(Alert("error", "hall", f"something new with {key}", code="nobody.knows"))
    await desk.take(Alert("error", "hall", "params missing", code="destination.failed"))
    vi, en = desk.alerts("vi"), desk.alerts("en")
    # The refusal's reason in the reader's words, not the log's English.
    assert vi[0]["text"].startswith("Bộ phát ở 10.0.0.7:51000 bị từ chối (sai khóa luồng:")
    assert en[0]["text"].startswith("A publisher at 10.0.0.7:51000 was refused (wrong stream key:")
    assert vi[1]["text"] == en[1]["text"] == "something new with ****"
    assert vi[2]["text"] == "params missing"  # a sentence that cannot be filled says what the log says
    assert all(key not in str(a) for a in vi + en)
    assert set(vi[0]) >= {"id", "at", "level", "code", "source", "text", "acknowledged_by"}
    store.close()


def test_every_code_has_both_sentences_in_every_language_and_they_fill_in():
    for lang in LANGS:
        messages = catalogue(lang)
        for code in CODES:
            for recovery in (False, True):
                key = f"alert.{code}" + (".resolved" if recovery else "")
                assert key in messages, (lang, key)
                text = alert_text({"code": code, "recovery": recovery, "source": "src-1", "params": PARAMS,
                                   "message": "ENGLISH LOG LINE"}, lang)
                assert text != "ENGLISH LOG LINE" and "{" not in text, (lang, key, text)
    # Each problem sentence says what to do, not only what happened: it is longer than a headline.
    assert all(len(catalogue("en")[f"alert.{code}"]) > 60 for code in CODES)


async def test_alerts_survive_a_restart_and_the_next_run_closes_what_recovered(tmp_path):
    store = Store(tmp_path / "a.db")
    desk, _ = await desk_with(store)
    await desk.take(Alert("warning", "fb", "retrying", code="destination.backoff", params={"platform": "fb"}))
    first = store.alerts()[0]
    desk.acknowledge(first["id"], "op")
    store.close()

    store = Store(tmp_path / "a.db")
    desk, _ = await desk_with(store)
    assert [(a["code"], a["acknowledged_by"]) for a in desk.alerts("en")] == [("destination.backoff", "op")]
    await desk.take(Alert("info", "fb", "live", code="destination.backoff", resolved=True))
    assert [a["recovery"] for a in desk.alerts("en")] == [False, True]
    store.close()


async def test_the_api_lists_in_the_readers_language_and_acknowledges(tmp_path):
    async with running_console(tmp_path) as console:
        desk = console.controller.alerts
        await desk.take(Alert("error", "yt-main", "quota", code="quota.low",
                              params={"platform": "youtube", "detail": "80 % used"}))
        await desk.take(Alert("warning", "hall", "lost", code="ingest.lost"))
        op, mod = await console.client("op"), await console.client("mod1")
        assert (await mod.call("GET", "/api/alerts"))[0] == 403
        status, answer = await op.call("GET", "/api/alerts")
        assert status == 200 and answer["unacknowledged"] == 2
        first, second = answer["alerts"]
        assert first["text"].startswith("Hạn mức API của yt-main (youtube) sắp hết: 80 % used")
        status, answer = await op.call("GET", f"/api/alerts?after={first['id']}&lang=en")
        assert [a["id"] for a in answer["alerts"]] == [second["id"]]
        assert answer["alerts"][0]["text"].startswith("The program feed (hall) is lost")
        assert (await op.call("GET", "/api/alerts?after=soon"))[0] == 400

        status, acked = await op.call("POST", f"/api/alerts/{first['id']}/ack")
        assert status == 200 and acked["acknowledged_by"] == "op"
        assert (await op.call("POST", f"/api/alerts/{first['id']}/ack", csrf=False))[0] == 403
        assert (await op.call("POST", "/api/alerts/99999/ack"))[0] == 404
        assert (await op.call("GET", "/api/alerts"))[1]["unacknowledged"] == 1
        # The top bar's count is in every page an operator opens.
        status, text = await op.page("/moderate")
        assert status == 200 and '"alerts_unacknowledged": 1' in text


async def test_a_dead_receiver_raises_one_backoff_alert_and_its_return_resolves_it(tmp_path, monkeypatch):
    """Real ffmpeg against a closed port: four retries, one alert; the receiver comes up, the alert closes."""
    port = free_port()
    monkeypatch.setenv("ALERT_TEST_KEY", "k-" + secrets.token_hex(6))
    receiver = RtmpReceiver(port)
    tables = f"""
        [ingest]
        url = "testsrc"
        [[destination]]
        name = "dead-end"
        url = "{receiver.url}"
        key_env = "ALERT_TEST_KEY"
        """
    async with running_console(tmp_path, tables=tables) as console:
        store = console.controller.store
        dest = console.controller.restreamer.get("dead-end")
        await wait_for(lambda: dest.reconnects >= 2, 30, "two retries against the closed port")
        await asyncio.sleep(0.2)
        backoffs = [a for a in store.alerts() if a["code"] == "destination.backoff"]
        assert len(backoffs) == 1 and backoffs[0]["source"] == "dead-end" and backoffs[0]["resolved_at"] is None
        await receiver.start()
        try:
            await wait_for(lambda: dest.state == "live", 30, "live once the receiver listens")
            await wait_for(lambda: len(store.alerts()) == 2, 5, "the recovery stored")
        finally:
            await receiver.kill()
        closed, recovery = store.alerts()
        assert closed["resolved_at"] is not None and recovery["recovery"] and recovery["level"] == "info"
        assert "k-" not in str(store.alerts())


async def refusing_platform(monkeypatch) -> tuple[RtmpServer, str, str]:
    """A platform that checks the key (our RTMP server) and a testsrc event whose "fb-page" has the wrong one.

    Returns the started server, the right key and the event's tables.
    """
    right = "right-" + secrets.token_hex(6)
    monkeypatch.setenv("ALERT_WRONG_KEY", "wrong-" + secrets.token_hex(6))
    platform = RtmpServer.receiver(app="live", key=right)
    await platform.start()
    tables = f"""
        [ingest]
        url = "testsrc"
        [[destination]]
        name = "fb-page"
        platform = "custom"
        url = "{platform.url}"
        key_env = "ALERT_WRONG_KEY"
        """
    return platform, right, tables


async def test_a_refused_key_is_replaced_from_the_console_and_the_alert_closes(tmp_path, monkeypatch):
    """A platform that refuses the key (our RTMP server checking it): backoff alert, a new key typed, live."""
    platform, right, tables = await refusing_platform(monkeypatch)
    try:
        async with running_console(tmp_path, tables=tables) as console:
            store = console.controller.store
            dest = console.controller.restreamer.get("fb-page")
            await wait_for(lambda: store.alerts(), 30, "the backoff alert after the refusal")
            (alert,) = store.alerts()
            assert (alert["code"], alert["source"], alert["level"]) == ("destination.backoff", "fb-page", "warning")
            op = await console.client("op")
            status, answer = await op.call("PUT", "/api/destinations/fb-page/key", {"key": right})
            assert status == 200 and right not in str(answer)
            await wait_for(lambda: dest.state == "live", 20, "live with the right key")
            await wait_for(lambda: len(store.alerts()) == 2, 5, "the recovery")
            assert platform.counters["refused_total"] >= 1 and platform.publisher is not None
            status, listed = await op.call("GET", "/api/alerts?lang=en")
            assert [a["text"] for a in listed["alerts"]][-1] == "fb-page is live again."
    finally:
        await platform.close()


async def test_pages_get_each_alert_live_in_both_languages_the_raw_event_only_operators(tmp_path):
    async with running_console(tmp_path) as console:
        op, mod = await console.client("op"), await console.client("mod1")
        op_ws, mod_ws = await socket(op), await socket(mod)
        try:
            await console.controller.bus.publish(Alert("error", "hall", "lost", code="ingest.lost"))
            stored = await next_event(op_ws, lambda e: e["type"] == "AlertStored")
            assert stored["unacknowledged"] == 1 and stored["alert"]["code"] == "ingest.lost"
            assert stored["alert"]["texts"]["en"].startswith("The program feed (hall) is lost")
            assert stored["alert"]["texts"]["vi"].startswith("Mất tín hiệu chương trình (hall)")
            seen = [e["type"] for e in await silence(mod_ws)]
            assert "AlertStored" in seen and "Alert" not in seen  # moderators' toasts read the stored sentence
        finally:
            await op_ws.close()
            await mod_ws.close()


async def test_a_key_refused_again_and_again_raises_backoff_once_then_failed(write_event, tmp_path, monkeypatch):
    """Real ffmpeg against a platform refusing the key: one backoff alert for all the retries, then failed."""
    platform, _right, tables = await refusing_platform(monkeypatch)
    path = write_event(f'[event]\nname = "refused"\ndatabase = "{tmp_path / "r.db"}"\n' + tables)
    bus = Bus()
    timing = replace(FAST, refused_limit=3)
    restreamer = Restreamer(load_event(path), bus, timing=timing)
    try:
        with bus.subscribe(Alert, name="test.alerts") as seen:
            async with Running(restreamer):
                dest = restreamer.get("fb-page")
                await wait_for(lambda: dest.state == "failed", 30, "failed after three refusals")
            alerts = [seen.get_nowait() for _ in range(seen.queue.qsize())]
        mine = [(a.code, a.level, a.resolved) for a in alerts if a.source == "fb-page"]
        assert mine == [("destination.backoff", "warning", False), ("destination.failed", "error", False)], mine
        assert "refused 3 times in a row" in alerts[-1].params["error"]
        assert platform.counters["refused_total"] == 3
    finally:
        await platform.close()
