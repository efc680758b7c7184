"""The websocket hub (console/ws.py) and the overlay socket (console/overlays.py) on a real running console."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from streamctl.audience.models import ViewerSample
from streamctl.events import Alert, DestinationHealth, ViewersSampled
from streamctl.redact import register_secret

from .console_harness import Client, running_console


async def socket(client: Client, path: str = "/ws", origin: str | None = "same", **kw):
    origin = client.console.origin if origin == "same" else origin
    return await client.session.ws_connect(f"{client.console.url}{path}", origin=origin, **kw)


async def next_event(ws, want=lambda e: True, within: float = 5.0) -> dict:
    """The next message matching `want` (others are skipped)."""
    async with asyncio.timeout(within):
        while True:
            event = json.loads((await ws.receive()).data)
            if want(event):
                return event


async def silence(ws, within: float = 0.3) -> list[dict]:
    """Whatever arrives within `within` seconds."""
    got = []
    try:
        async with asyncio.timeout(within):
            while True:
                got.append(json.loads((await ws.receive()).data))
    except TimeoutError:
        return got


def of_type(kind: str):
    return lambda e: e["type"] == kind


async def test_every_moderator_sees_every_change_at_once(tmp_path):
    async with running_console(tmp_path) as console:
        mod1, mod2 = await console.client("mod1"), await console.client("mod2")
        ws1, ws2 = await socket(mod1), await socket(mod2)
        (q,) = await console.feed_questions("Bao giờ có đèn tín hiệu ở ngã tư?")
        for ws in (ws1, ws2):
            comment = await next_event(ws, of_type("CommentsStored"))
            assert comment["comments"][0]["text"] == "Bao giờ có đèn tín hiệu ở ngã tư?"
            created = await next_event(ws, of_type("QuestionChanged"))
            assert (created["question"]["id"], created["action"]) == (q["id"], "create")
        status, _ = await mod1.call("POST", f"/api/questions/{q['id']}/lock")
        assert status == 200
        seen = await next_event(ws2, of_type("QuestionChanged"))
        assert seen["question"]["locked_by"] == "mod1" and seen["by"] == "mod1"
        status, _ = await mod1.call("POST", f"/api/questions/{q['id']}/edit", {"text": "Khi nào lắp đèn tín hiệu?"})
        assert status == 200
        seen = await next_event(ws2, lambda e: e["type"] == "QuestionChanged" and e["action"] == "edit")
        assert seen["question"]["text"] == "Khi nào lắp đèn tín hiệu?" and seen["question"]["locked_by"] is None
        status, _ = await mod2.call("POST", f"/api/questions/{q['id']}/hide")
        assert status == 404
        status, _ = await mod2.call("POST", f"/api/comments/{q['comment_id']}/hide")
        assert status == 200
        hidden = await next_event(ws1, of_type("CommentsHidden"))
        assert hidden["ids"] == [q["comment_id"]] and hidden["by"] == "mod2"
        status, _ = await mod2.call("POST", "/api/notes", {"platform": "youtube", "author_id": "a-x", "note": "spam"})
        assert status == 200
        note = await next_event(ws1, of_type("AuthorNoted"))
        assert (note["note"], note["by"]) == ("spam", "mod2")
        await ws1.close()
        await ws2.close()


async def test_officials_get_only_their_queue(tmp_path):
    async with running_console(tmp_path) as console:
        chair, mod = await console.client("chair"), await console.client("mod1")
        ws = await socket(chair)
        (q,) = await console.feed_questions("Secret pending text?")
        first = await next_event(ws)
        assert first == {"type": "QuestionChanged", "question": {"id": q["id"], "state": "hidden"},
                         "action": "create", "by": None}
        await mod.call("POST", f"/api/questions/{q['id']}/forward")
        forwarded = await next_event(ws)
        assert forwarded["question"]["state"] == "forwarded" and forwarded["question"]["text"] == "Secret pending text?"
        await console.controller.bus.publish(Alert("warning", "youtube", "quota low"))
        await console.controller.bus.publish(DestinationHealth("fb", {"fps": 30}))
        await console.feed("more chatter")
        assert await silence(ws) == []  # comments, alerts and stream health are not for the hall screen
        await ws.close()


async def test_sockets_need_a_session_from_our_own_origin_or_a_token(tmp_path):
    async with running_console(tmp_path) as console:
        anonymous = await console.client()
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await socket(anonymous)
        assert e.value.status == 401
        mod = await console.client("mod1")
        for origin in ("http://evil.example", None):
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                await socket(mod, origin=origin)
            assert e.value.status == 403
        token = console.controller.store.create_token("operator")
        script = await console.client()
        ws = await socket(script, origin=None, headers={"Authorization": f"Bearer {token}"})
        await console.controller.bus.publish(Alert("info", "test", "hello"))
        assert (await next_event(ws))["message"] == "hello"
        await ws.close()


async def test_closed_sockets_unsubscribe(tmp_path):
    async with running_console(tmp_path) as console:
        bus = console.controller.bus
        before = bus.subscribers
        mod = await console.client("mod1")
        sockets = [await socket(mod) for _ in range(3)]
        await console.feed("ping")  # each socket is subscribed once it receives
        for ws in sockets:
            await next_event(ws, of_type("CommentsStored"))
        assert bus.subscribers == before + 3
        for ws in sockets:
            await ws.close()
        async with asyncio.timeout(5):
            # The hub unsubscribes in its handler's finally, once the server has seen the close.
            while bus.subscribers != before:  # noqa: ASYNC110
                await asyncio.sleep(0.01)


async def test_health_is_throttled_and_secrets_are_masked(tmp_path):
    async with running_console(tmp_path) as console:
        op = await console.client("op")
        ws = await socket(op)
        for fps in range(10):
            await console.controller.bus.publish(DestinationHealth("youtube-main", {"fps": fps}))
        register_secret("live_sk_abcdef123456")
        await console.controller.bus.publish(Alert("error", "fb", "rtmps://x/rtmp/live_sk_abcdef123456 refused"))
        got = await silence(ws, 0.5)
        health = [e for e in got if e["type"] == "DestinationHealth"]
        assert [h["health"]["fps"] for h in health] == [0]
        (alert,) = [e for e in got if e["type"] == "Alert"]
        assert "live_sk_abcdef123456" not in alert["message"] and "****" in alert["message"]
        await ws.close()


async def test_the_overlay_socket_pushes_the_on_air_question_and_viewers(tmp_path):
    async with running_console(tmp_path) as console:
        token = console.controller.store.create_token("overlay")
        client, mod = await console.client(), await console.client("mod1")
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await socket(client, "/ws/overlay?token=wrong")
        first, second = await console.feed_questions("Câu hỏi A?", "Câu hỏi B?")
        for q in (first, second):
            await mod.call("POST", f"/api/questions/{q['id']}/forward")
        await mod.call("POST", f"/api/questions/{first['id']}/on_air")
        ws = await socket(client, f"/ws/overlay?token={token}")
        snapshot = await next_event(ws)
        assert snapshot["type"] == "snapshot" and snapshot["on_air"]["text"] == "Câu hỏi A?"
        assert set(snapshot["on_air"]) == {"id", "text", "author", "platform", "merged_count"}
        await mod.call("POST", f"/api/questions/{second['id']}/on_air")
        pushed = await next_event(ws)
        assert pushed == {"type": "on_air", "question": {**pushed["question"], "text": "Câu hỏi B?"}}
        await mod.call("POST", f"/api/questions/{second['id']}/answered")
        assert await next_event(ws) == {"type": "on_air", "question": None}
        await console.controller.bus.publish(ViewersSampled(ViewerSample("yt", "youtube", 1.0, 1234)))
        assert await next_event(ws) == {"type": "viewers", "total": 1234}
        await ws.close()


async def test_audience_text_reaches_pages_as_typed_but_our_keys_never_do(tmp_path):
    async with running_console(tmp_path) as console:
        mod = await console.client("mod1")
        ws = await socket(mod)
        register_secret("live_sk_zyxw98765")
        typed = "Xem tại https://baoquangninh.vn/tin?token=abc&a=1 nhé"
        leaked = "key là live_sk_zyxw98765 phải không?"
        await console.feed(typed, leaked)
        got = [e for e in await silence(ws, 0.5) if e["type"] == "CommentsStored"]
        texts = [c["text"] for e in got for c in e["comments"]]
        assert typed in texts
        assert "key là **** phải không?" in texts and not any("live_sk_zyxw98765" in t for t in texts)
        await ws.close()
