"""The restream HTTP API over a real aiohttp server, a real restreamer and real receivers."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from streamctl.config import load_event
from streamctl.console import api_restream
from streamctl.console.app import error_middleware, identity_middleware
from streamctl.console.keys import CONTROLLER
from streamctl.events import Bus
from streamctl.restream.restreamer import Restreamer
from streamctl.store import Store

from .conftest import free_port
from .receivers import RtmpReceiver, make_media, wait_for
from .test_destinations import assert_continuous
from .test_restreamer import FAST, Running

SECRETS = ("a-key-secret-1", "c-key-secret-3")


@dataclass
class Event:
    """What the restream routes use of the controller: its store and its restreamer."""

    store: Store
    restreamer: Restreamer
    bus: Bus


@pytest.fixture
async def api(write_event, tmp_path, monkeypatch):
    rxs = {n: await RtmpReceiver(free_port()).start() for n in "abc"}
    monkeypatch.setenv("A_KEY", SECRETS[0])
    monkeypatch.setenv("C_KEY", SECRETS[1])
    media = make_media(tmp_path / "program.flv")
    path = write_event(f"""
        [event]
        name = "api"
        database = "api.db"
        [ingest]
        url = "{media}"
        [[destination]]
        name = "a"
        url = "{rxs['a'].url}"
        key_env = "A_KEY"
        [[destination]]
        name = "b"
        url = "{rxs['b'].url}"
    """)
    event = load_event(path)
    bus = Bus()
    holder = Event(Store(event.event.database), Restreamer(event, bus, timing=FAST), bus)
    app = web.Application(middlewares=[error_middleware, identity_middleware])
    app[CONTROLLER] = holder
    api_restream.setup(app)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        async with Running(holder.restreamer) as running:
            yield client, holder, rxs, running
    finally:
        await client.close()
        for rx in rxs.values():
            await rx.kill()
        holder.store.close()


async def test_control_one_destination_mid_stream_others_uninterrupted(api):
    client, holder, rxs, running = api
    op = {"Authorization": f"Bearer {holder.store.create_token('operator')}"}
    mod = {"Authorization": f"Bearer {holder.store.create_token('moderator')}"}
    bodies: list[str] = []

    async def call(method: str, url: str, status: int, **kw):
        response = await client.request(method, url, **kw)
        text = await response.text()
        bodies.append(text)
        assert response.status == status, text
        return await response.json() if response.content_type == "application/json" else text

    await wait_for(lambda: len(rxs["a"].video) > 30 and len(rxs["b"].video) > 30, 15, "a and b receiving")
    await call("GET", "/api/destinations", 401)
    await call("GET", "/api/destinations", 403, headers=mod)
    listed = (await call("GET", "/api/destinations", 200, headers=op))["destinations"]
    assert [d["name"] for d in listed] == ["a", "b"]
    assert listed[0]["url"] == rxs["a"].url + "/****"
    assert set(listed[0]["health"]) >= {"bitrate_kbps", "fps", "speed", "uptime_s", "reconnects", "last_error"}

    since = asyncio.get_running_loop().time()
    new = {"name": "c", "platform": "custom", "url": rxs["c"].url, "key_env": "C_KEY"}
    added = await call("POST", "/api/destinations", 201, headers=op, json=new)
    assert added["url"] == rxs["c"].url + "/****"
    await wait_for(lambda: len(rxs["c"].video) > 30, 10, "c receiving after the add")
    await call("POST", "/api/destinations", 409, headers=op, json=new)
    await call("POST", "/api/destinations/b/restart", 200, headers=op)
    await wait_for(lambda: rxs["b"].sessions == 2, 10, "b's second session after the restart")
    stopped = await call("POST", "/api/destinations/b/stop", 200, headers=op)
    assert stopped["state"] == "stopped"
    started = await call("POST", "/api/destinations/b/start", 200, headers=op)
    assert started["state"] in ("starting", "live")  # never still "stopped"
    await wait_for(lambda: rxs["b"].sessions == 3, 10, "b's third session after start")
    await call("DELETE", "/api/destinations/c", 200, headers=op)
    await call("DELETE", "/api/destinations/c", 404, headers=op)
    await call("POST", "/api/destinations/nope/start", 404, headers=op)
    await call("POST", "/api/destinations/a/explode", 404, headers=op)
    await asyncio.sleep(0.5)
    assert_continuous(rxs["a"], since, asyncio.get_running_loop().time())

    ingest = await call("GET", "/api/ingest", 200, headers=op)
    assert ingest["state"] == "live" and ingest["probe"]["video_codec"] == "h264"
    metrics = await call("GET", "/metrics", 200, headers=op)
    assert 'streamctl_destination_state{name="a",platform="custom",state="live"} 1' in metrics
    assert 'streamctl_ingest_state{state="live"} 1' in metrics
    assert "streamctl_processes " in metrics
    assert 'streamctl_ingest_on_air{input="primary"} 1' in metrics
    assert 'streamctl_ingest_on_air{input="slate"} 0' in metrics
    assert "streamctl_ingest_slate_on_air 0" in metrics and "streamctl_ingest_slate_total 0" in metrics

    actions = [r["action"] for r in holder.store.query("SELECT action FROM audit ORDER BY id")]
    assert actions == ["destination.add", "destination.restart", "destination.stop", "destination.start",
                       "destination.remove"]
    for text in bodies + [r["after"] or "" for r in holder.store.query("SELECT after FROM audit")]:
        assert not any(s in text for s in SECRETS)


async def test_bad_additions_say_what_is_wrong(api, monkeypatch):
    client, holder, rxs, running = api
    op = {"Authorization": f"Bearer {holder.store.create_token('operator')}"}
    monkeypatch.delenv("MISSING_KEY", raising=False)
    cases = [
        ("not json", "not JSON"),
        ([1, 2], "expected a JSON object"),
        ({"name": "x", "platform": "facebook", "url": "rtmp://live-api-s.facebook.com/rtmp/"}, "expected rtmps"),
        ({"name": "x", "url": rxs["c"].url, "key_env": "MISSING_KEY"}, "environment variable MISSING_KEY"),
        ({"name": "bad name!", "url": rxs["c"].url}, "destination.name"),
        ({"name": "x", "url": rxs["c"].url, "profile": "8k"}, "expected one of copy"),
        ({"name": "x", "url": rxs["c"].url, "colour": "red"}, "destination.colour: unknown key"),
    ]
    for body, expected in cases:
        kw = {"data": body} if isinstance(body, str) else {"json": body}
        response = await client.post("/api/destinations", headers=op, **kw)
        answer = await response.json()
        assert response.status == 400 and expected in answer["error"], (body, answer)
    assert [d["name"] for d in holder.restreamer.destinations()] == ["a", "b"]


async def test_a_key_is_replaced_while_running_and_only_that_destination_restarts(api, caplog):
    client, holder, rxs, running = api
    op = {"Authorization": f"Bearer {holder.store.create_token('operator')}"}
    new_key = "typed-" + secrets.token_hex(8)
    typed = "typed-c-" + secrets.token_hex(8)
    await wait_for(lambda: len(rxs["a"].video) > 30 and len(rxs["b"].video) > 30, 15, "a and b receiving")
    loop = asyncio.get_running_loop()
    since = loop.time()
    b_before = len(rxs["b"].video)

    response = await client.put("/api/destinations/a/key", headers=op, json={"key": new_key})
    answer = await response.text()
    assert response.status == 200, answer
    assert json.loads(answer)["url"] == rxs["a"].url + "/****"
    await wait_for(lambda: rxs["a"].sessions == 2, 10, "a's second session, with the new key")
    assert holder.restreamer.get("a").config.publish_url == rxs["a"].url + "/" + new_key
    await wait_for(lambda: len([f for f in rxs["a"].video if f.at > since]) > 30, 10, "a receiving again")
    until = loop.time()
    # b never noticed: one session, no hole, every frame of the window (30 fps).
    assert_continuous(rxs["b"], since, until)
    assert len(rxs["b"].video) - b_before >= 0.8 * (until - since) * 30

    # A destination added with a key typed in the console, no environment variable needed.
    response = await client.post("/api/destinations", headers=op,
                                 json={"name": "c", "url": rxs["c"].url, "key": typed})
    added = await response.text()
    assert response.status == 201, added
    await wait_for(lambda: len(rxs["c"].video) > 30, 10, "c receiving with the typed key")
    assert holder.restreamer.get("c").config.publish_url.endswith("/" + typed)

    bad = [({"key": ""}, "not a stream key"), ({"key": "two words"}, "not a stream key"), ({"key": 5}, "is a int"),
           ({}, "key: missing")]
    for body, expected in bad:
        response = await client.put("/api/destinations/b/key", headers=op, json=body)
        assert response.status == 400 and expected in (await response.json())["error"], body
    assert (await client.put("/api/destinations/nope/key", headers=op, json={"key": "abcd1234"})).status == 404
    mod = {"Authorization": f"Bearer {holder.store.create_token('moderator')}"}
    assert (await client.put("/api/destinations/b/key", headers=mod, json={"key": "abcd1234"})).status == 403
    both = {"name": "d", "url": rxs["c"].url, "key": "abcd1234", "key_env": "A_KEY"}
    response = await client.post("/api/destinations", headers=op, json=both)
    assert response.status == 400 and "expected one of them" in (await response.json())["error"]
    assert rxs["b"].sessions == 1

    listed = await (await client.get("/api/destinations", headers=op)).text()
    audit = str([dict(r) for r in holder.store.query("SELECT * FROM audit")])
    assert "destination.key" in audit
    for text in (answer, added, listed, audit, caplog.text):
        assert new_key not in text and typed not in text


async def test_the_ingest_switch_says_what_is_wrong_and_changes_nothing(api):
    client, holder, rxs, running = api
    op = {"Authorization": f"Bearer {holder.store.create_token('operator')}"}
    mod = {"Authorization": f"Bearer {holder.store.create_token('moderator')}"}
    await wait_for(lambda: holder.restreamer.ingest_status()["on_air"] == "primary", 15, "the program on air")
    cases = [
        (mod, {"to": "primary"}, 403, None),
        (op, None, 400, "error.body_empty"),
        (op, {"to": "slate"}, 400, "error.body_field"),
        (op, {"to": "backup"}, 409, "error.ingest_switch"),  # this event has no backup input
    ]
    for headers, body, status, key in cases:
        response = await client.post("/api/ingest/switch", headers=headers, json=body)
        answer = await response.json()
        assert response.status == status, answer
        assert key is None or answer["key"] == key, answer
    answer = await (await client.post("/api/ingest/switch", headers=op, json={"to": "primary"})).json()
    assert answer["on_air"] == "primary" and answer["switch"]["state"] == "primary"
    assert [r["action"] for r in holder.store.query("SELECT action FROM audit")] == ["ingest.switch"]
    ingest = await (await client.get("/api/ingest", headers=op)).json()
    assert [(i["role"], i["state"]) for i in ingest["inputs"]] == [("primary", "live")] and ingest["refused"] is None
