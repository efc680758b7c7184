"""The audience routes, through a real running Controller whose sources read fake platforms on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import pytest

from streamctl.audience.webhook import sign
from streamctl.config import load_event
from streamctl.controller import Controller
from streamctl.events import SourceStateChanged
from streamctl.fakes.facebook import FakeFacebook
from streamctl.fakes.youtube import FakeYouTube
from tests.conftest import free_port

YT_TOKEN, FB_TOKEN, HOOK_SECRET = "ya29.api-test-secret", "EAAB-api-test-secret", "hook-secret-value"
ENV = {"YT_TOKEN": YT_TOKEN, "FB_TOKEN": FB_TOKEN, "HOOK_SECRET": HOOK_SECRET}


@dataclass
class Running:
    controller: Controller
    url: str
    youtube: FakeYouTube
    facebook: FakeFacebook
    session: aiohttp.ClientSession
    tokens: dict[str, str]

    async def call(self, method: str, path: str, role: str | None = "operator", **kw) -> tuple[int, dict]:
        headers = dict(kw.pop("headers", {}))
        if role:
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        async with self.session.request(method, self.url + path, headers=headers, **kw) as resp:
            text = await resp.text()
            for secret in ENV.values():
                assert secret not in text
            return resp.status, json.loads(text) if text else {}

    async def hook(self, body: bytes, source: str = "zalo-bridge", signature: str | None = "good"):
        headers = {"Content-Type": "application/json"}
        if signature == "good":
            headers["X-Signature-256"] = sign(HOOK_SECRET, body)
        elif signature is not None:
            headers["X-Signature-256"] = signature
        return await self.call("POST", f"/api/webhook/{source}", role=None, data=body, headers=headers)

    async def until(self, check, timeout: float = 10.0, what: str = "condition"):  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while True:
            result = await check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)


@asynccontextmanager
async def running(tmp_path, write_event):
    async with FakeYouTube(token=YT_TOKEN, interval_ms=100) as yt, FakeFacebook(token=FB_TOKEN) as fb:
        path = write_event(f"""
            [event]
            name = "Phiên chất vấn"
            database = "{tmp_path / 'event.db'}"

            [console]
            listen = "127.0.0.1:{free_port()}"

            [[audience]]
            name = "youtube-qn"
            platform = "youtube"
            video_id = "{yt.video_id}"
            credential_env = "YT_TOKEN"
            api_base = "{yt.url}"
            interval = 0.2
            daily_quota = 1000000
            planned_hours = 2

            [[audience]]
            name = "facebook-qmg"
            platform = "facebook"
            live_video_id = "{fb.video_id}"
            credential_env = "FB_TOKEN"
            api_base = "{fb.api_base}"
            interval = 0.2

            [[audience]]
            name = "zalo-bridge"
            platform = "webhook"
            secret_env = "HOOK_SECRET"
            label = "zalo"

            [[audience]]
            name = "weibo-count"
            platform = "manual"
            label = "weibo"
        """)
        controller = Controller(load_event(path, environ=ENV))
        stop = asyncio.Event()
        task = asyncio.create_task(controller.run(stop))
        await asyncio.wait_for(controller.started.wait(), 10)
        tokens = {role: controller.store.create_token(role) for role in ("operator", "moderator", "official")}
        async with aiohttp.ClientSession() as session:
            try:
                yield Running(controller, controller.console_url, yt, fb, session, tokens)
            finally:
                stop.set()
                await asyncio.wait_for(task, 20)


async def test_sources_health_needs_the_operator(tmp_path, write_event):
    async with running(tmp_path, write_event) as r:
        assert (await r.call("GET", "/api/audience", role=None))[0] == 401
        assert (await r.call("GET", "/api/audience", role="moderator"))[0] == 403
        r.youtube.post_comment("A", "xin chào")

        async def youtube_ok():
            _, body = await r.call("GET", "/api/audience")
            sources = {s["name"]: s for s in body["sources"]}
            return sources if sources["youtube-qn"]["comments"] == 1 else None

        sources = await r.until(youtube_ok, what="youtube ok with one comment")
        assert set(sources) == {"youtube-qn", "facebook-qmg", "zalo-bridge", "weibo-count"}
        yt = sources["youtube-qn"]
        assert yt["state"] == "ok" and yt["platform"] == "youtube" and yt["error"] is None
        assert yt["last_ok"].endswith("Z") and yt["last_message_at"]
        assert yt["quota"]["daily"] == 1_000_000 and yt["quota"]["used"] > 0 and yt["quota"]["interval_s"] >= 0.2
        assert sources["facebook-qmg"]["quota"] is None
        assert sources["zalo-bridge"]["state"] == "waiting"


async def test_merged_comments_with_paging_filters_and_search(tmp_path, write_event):
    async with running(tmp_path, write_event) as r:
        r.youtube.post_comment("Trần Thị Bích", "Đường Hạ Long khi nào sửa xong?")
        r.facebook.post_comment("Lê Nam", "Cảm ơn HĐND tỉnh")
        r.facebook.post_comment("<script>x</script>", "<img src=x onerror=alert(1)>")

        async def three():
            _, body = await r.call("GET", "/api/comments", role="moderator")
            return body if len(body["comments"]) == 3 else None

        body = await r.until(three, what="three comments")
        first = body["comments"][0]
        assert set(first) >= {"id", "platform", "source", "author", "text", "published_at", "received_at", "hidden",
                              "is_question"}
        ids = [c["id"] for c in body["comments"]]
        assert ids == sorted(ids) and body["next_after"] == ids[-1]
        assert {c["text"] for c in body["comments"]} >= {"<img src=x onerror=alert(1)>"}
        _, page = await r.call("GET", f"/api/comments?after={ids[0]}&limit=1", role="moderator")
        assert [c["id"] for c in page["comments"]] == [ids[1]] and page["next_after"] == ids[1]
        _, fb = await r.call("GET", "/api/comments?platform=facebook", role="moderator")
        assert {c["platform"] for c in fb["comments"]} == {"facebook"} and len(fb["comments"]) == 2
        _, found = await r.call("GET", "/api/comments?q=ha%20long", role="moderator")
        assert [c["author"] for c in found["comments"]] == ["Trần Thị Bích"]
        _, questions = await r.call("GET", "/api/comments?questions=1", role="moderator")
        assert [c["is_question"] for c in questions["comments"]] == [True]
        _, empty = await r.call("GET", f"/api/comments?after={ids[-1]}", role="moderator")
        assert empty == {"comments": [], "next_after": ids[-1]}
        for bad in ("after=-1", "limit=0", "limit=5000", "after=abc"):
            status, err = await r.call("GET", f"/api/comments?{bad}", role="moderator")
            assert status == 400 and bad.split("=")[0] in err["error"]
        assert (await r.call("GET", "/api/comments", role="official"))[0] == 403


async def test_signed_webhook_stores_once_and_refuses_bad_input(tmp_path, write_event):
    async with running(tmp_path, write_event) as r:
        ours = json.dumps({"id": "z-1", "author": "Cô Hạnh", "text": "Xin hỏi về đất ở Hoành Bồ?",
                           "published_at": "2024-05-01T12:00:00+0700"}).encode()
        assert (await r.hook(ours)) == (200, {"accepted": 1, "new": 1, "viewers": 0})
        assert (await r.hook(ours))[1]["new"] == 0  # a retry by the bridge
        ssn = json.dumps([{"chatname": "Bạn đọc", "chatmessage": "<b>Bao giờ</b> có đường mới?", "userid": "u7",
                           "timestamp": 1714539600000, "type": "weibo", "chatimg": "x.png"},
                          {"chatname": "Bạn đọc", "chatmessage": "không id, không giờ"}]).encode()
        assert (await r.hook(ssn))[1]["new"] == 2
        assert (await r.hook(ssn))[1]["new"] == 0  # derived ids are stable
        assert (await r.hook(ours, signature=None))[0] == 401
        assert (await r.hook(ours, signature="sha256=" + "0" * 64))[0] == 401
        assert (await r.hook(ours + b" ", signature=sign(HOOK_SECRET, ours)))[0] == 401  # over the raw body
        status, err = await r.hook(b"{not json")
        assert status == 400 and "JSON" in err["error"]
        status, err = await r.hook(json.dumps([{"author": "x"}]).encode())
        assert status == 400 and "messages[0].text" in err["error"]
        assert (await r.hook(ours, source="youtube-qn"))[0] == 404

        async def stored():
            _, body = await r.call("GET", "/api/comments?platform=zalo", role="moderator")
            return body["comments"] if len(body["comments"]) == 3 else None

        rows = await r.until(stored, what="three webhook comments (platform from the label)")
        assert rows[0]["published_at"] == "2024-05-01T05:00:00.000Z"
        assert rows[1]["text"] == "<b>Bao giờ</b> có đường mới?" and rows[1]["author"] == "Bạn đọc"
        counts = {s["name"]: s["comments"] for s in (await r.call("GET", "/api/audience"))[1]["sources"]}
        assert counts["zalo-bridge"] == 3


async def test_manual_and_bridged_viewer_counts(tmp_path, write_event):
    async with running(tmp_path, write_event) as r:
        r.youtube.set_viewers(1000)
        status, body = await r.call("POST", "/api/viewers/weibo-count", json={"viewers": 120, "likes": 40})
        assert status == 200 and body["manual"] is True and body["platform"] == "weibo"
        update = json.dumps({"event": "viewer_updates", "meta": {"zalo": 75}}).encode()
        assert (await r.hook(update))[1]["viewers"] == 1

        async def total():
            _, body = await r.call("GET", "/api/viewers", role="moderator")
            return body if body["total"] == 1000 + 120 + 75 else None

        body = await r.until(total, what="viewers total")
        by_name = {s["name"]: s for s in body["sources"]}
        assert by_name["weibo-count"]["manual"] is True and by_name["weibo-count"]["viewers"] == 120
        assert by_name["youtube-qn"]["manual"] is False and by_name["zalo-bridge.zalo"]["viewers"] == 75
        for bad in ({"viewers": -1}, {"viewers": "many"}, {"viewers": True}, {}, {"viewers": 1, "fans": 2}):
            status, err = await r.call("POST", "/api/viewers/weibo-count", json=bad)
            assert status == 400 and err["error"]
        assert (await r.call("POST", "/api/viewers/weibo-count", data=b"nope"))[0] == 400
        assert (await r.call("POST", "/api/viewers/youtube-qn", json={"viewers": 5}))[0] == 409
        assert (await r.call("POST", "/api/viewers/nobody", json={"viewers": 5}))[0] == 404
        assert (await r.call("POST", "/api/viewers/weibo-count", role="moderator", json={"viewers": 5}))[0] == 403


@pytest.mark.parametrize("path", ["/api/audience", "/api/viewers", "/api/comments"])
async def test_routes_refuse_without_credentials(tmp_path, write_event, path):
    async with running(tmp_path, write_event) as r:
        assert (await r.call("GET", path, role=None))[0] == 401


# ---- changes while running: one source restarts alone ------------------------------------------------

NEW_YT_TOKEN = "ya29.replaced-while-running-secret"


def stored(r: Running, source: str) -> list[str]:
    return [row["text"] for row in r.controller.store.query(
        "SELECT text FROM comments WHERE source = ? ORDER BY id", (source,))]


async def test_a_refused_token_is_replaced_while_running_and_the_other_source_never_pauses(tmp_path, write_event):
    async with running(tmp_path, write_event) as r:
        r.youtube.post_comment("A", "trước khi token hết hạn")
        r.facebook.post_comment("F", "facebook một")
        await r.until(sync(lambda: stored(r, "youtube-qn") and stored(r, "facebook-qmg")), what="both reading")
        facebook = r.controller.audience.pollers["facebook-qmg"]
        since = facebook.since
        r.youtube.token = NEW_YT_TOKEN  # the platform stops taking the old token (expired, revoked)
        r.youtube.stream_faults = ["drop"]  # and the open stream breaks: the reconnect is refused (401)
        r.youtube.post_comment("B", "trong lúc bị chặn")

        async def blocked():
            _, body = await r.call("GET", "/api/audience")
            return next(s for s in body["sources"] if s["name"] == "youtube-qn")["state"] == "failed"

        await r.until(blocked, what="youtube blocked")
        r.facebook.post_comment("F", "facebook hai")
        status, body = await r.call("PUT", "/api/audience/youtube-qn/credential", json={"credential": NEW_YT_TOKEN})
        assert status == 200 and body["credential"] == "replaced" and NEW_YT_TOKEN not in json.dumps(body)
        r.youtube.post_comment("C", "sau khi thay token")
        await r.until(sync(lambda: len(stored(r, "youtube-qn")) == 3), what="comments flow again")
        assert stored(r, "youtube-qn") == ["trước khi token hết hạn", "trong lúc bị chặn", "sau khi thay token"]
        await r.until(sync(lambda: len(stored(r, "facebook-qmg")) == 2), what="facebook kept reading")
        # The other source was never restarted nor paused.
        assert r.controller.audience.pollers["facebook-qmg"] is facebook and facebook.since == since
        assert facebook.state == "ok"
        codes = [(a["code"], a["source"]) for a in r.controller.store.alerts()]
        assert ("audience.blocked", "youtube-qn") in codes
        blocked_alert = next(a for a in r.controller.store.alerts() if a["code"] == "audience.blocked")
        assert blocked_alert["resolved_at"]  # the recovery closed it
        # Never echoed back, anywhere a person looks.
        for path in ("/api/audience", "/api/audit", "/api/alerts"):
            status, body = await r.call("GET", path)
            assert status == 200 and NEW_YT_TOKEN not in json.dumps(body), path
        audit = r.controller.store.audit_log()
        assert audit[0]["action"] == "source.credential" and audit[0]["target_id"] == "youtube-qn"


async def test_a_source_is_disabled_and_enabled_while_running_and_loses_nothing(tmp_path, write_event):
    async with running(tmp_path, write_event) as r:
        r.youtube.post_comment("A", "một")
        await r.until(sync(lambda: stored(r, "youtube-qn") == ["một"]), what="reading")
        events = r.controller.bus.subscribe(maxsize=1000, name="test")
        status, body = await r.call("PATCH", "/api/audience/youtube-qn", json={"enabled": False})
        assert status == 200 and body["source"]["state"] == "disabled" and body["source"]["enabled"] is False
        told = [e for e in _drain(events) if isinstance(e, SourceStateChanged) and e.name == "youtube-qn"]
        assert told[-1].state == "disabled" and told[-1].status["enabled"] is False  # the pages learn it at once
        asked = len(r.youtube.requests)
        r.youtube.post_comment("B", "hai, while it is off")
        r.facebook.post_comment("F", "facebook goes on")
        await r.until(sync(lambda: stored(r, "facebook-qmg") == ["facebook goes on"]), what="facebook")
        await asyncio.sleep(0.5)
        assert stored(r, "youtube-qn") == ["một"] and len(r.youtube.requests) == asked  # nothing asked of YouTube
        _, listed = await r.call("GET", "/api/audience")
        assert {s["name"]: s["state"] for s in listed["sources"]}["youtube-qn"] == "disabled"
        status, body = await r.call("PATCH", "/api/audience/youtube-qn", json={"enabled": True})
        assert status == 200 and body["source"]["enabled"] is True
        await r.until(sync(lambda: stored(r, "youtube-qn") == ["một", "hai, while it is off"]),
                      what="resumed from where it stopped")


async def test_the_video_id_is_replaced_while_running(tmp_path, write_event):
    async with running(tmp_path, write_event) as r:
        r.youtube.post_comment("A", "buổi một")
        await r.until(sync(lambda: stored(r, "youtube-qn") == ["buổi một"]), what="reading")
        # The broadcast was made again: a new video and chat; the old one is gone.
        r.youtube.video_id, r.youtube.chat_id = "vidNEW00002", "KicKGFVDbmV3Q2hhdA"
        r.youtube.post_comment("B", "buổi hai")
        status, body = await r.call("PATCH", "/api/audience/youtube-qn", json={"video_id": "vidNEW00002"})
        assert status == 200 and body["source"]["settings"]["video_id"] == "vidNEW00002"
        await r.until(sync(lambda: "buổi hai" in stored(r, "youtube-qn")), what="the new chat read")
        audit = r.controller.store.audit_log()[0]
        assert audit["action"] == "source.change" and audit["before"]["settings"]["video_id"] != "vidNEW00002"


@pytest.mark.parametrize(("method", "path", "body", "status", "words"), [
    ("PATCH", "/api/audience/youtube-qn", {"vidoe_id": "x"}, 400, "vidoe_id: unknown key"),
    ("PATCH", "/api/audience/youtube-qn", {"video_id": 5}, 400, "video_id: 5 is a int, expected a string"),
    ("PATCH", "/api/audience/youtube-qn", {"transport": "carrier-pigeon"}, 400, "expected one of stream, poll"),
    ("PATCH", "/api/audience/youtube-qn", {"credential_env": "OTHER"}, 400, "cannot be changed while running"),
    ("PATCH", "/api/audience/youtube-qn", {"enabled": "no"}, 400, "enabled: 'no' is a str, expected true or false"),
    ("PATCH", "/api/audience/youtube-qn", {"interval": 0.01}, 400, "interval: 0.01 is out of range"),
    ("PATCH", "/api/audience/youtube-qn", {}, 400, "expected an object with the keys to change"),
    ("PATCH", "/api/audience/nobody", {"enabled": False}, 404, "no audience source named 'nobody'"),
    ("PUT", "/api/audience/youtube-qn/credential", {"credential": ""}, 400, "credential: missing"),
    ("PUT", "/api/audience/youtube-qn/credential", {"token": "x"}, 400, "credential: missing"),
    ("PUT", "/api/audience/youtube-qn/credential", {"credential": "two words"}, 400, "spaces or control"),
    ("PUT", "/api/audience/weibo-count/credential", {"credential": "x"}, 409, "takes no credential"),
    ("PUT", "/api/audience/nobody/credential", {"credential": "x"}, 404, "no audience source"),
])
async def test_bad_changes_get_a_clear_error_and_change_nothing(tmp_path, write_event, method, path, body, status,
                                                                words):
    async with running(tmp_path, write_event) as r:
        before = r.controller.audience.pollers["youtube-qn"]
        got, answer = await r.call(method, path, json=body)
        assert got == status and words in answer["error"], answer
        assert r.controller.audience.pollers["youtube-qn"] is before  # not restarted
        assert (await r.call(method, path, role="moderator", json=body))[0] == 403


async def test_garbage_bodies_are_refused(tmp_path, write_event):
    async with running(tmp_path, write_event) as r:
        for path, method in (("/api/audience/youtube-qn", "PATCH"), ("/api/audience/youtube-qn/credential", "PUT")):
            status, answer = await r.call(method, path, data=b"{not json", headers={"Content-Type": "application/json"})
            assert status == 400 and answer["key"].startswith("error.body"), answer


def _drain(subscription) -> list:
    out = []
    while not subscription.queue.empty():
        out.append(subscription.get_nowait())
    return out


def sync(condition):
    """A plain condition as `Running.until` asks for one."""
    async def check() -> bool:
        return bool(condition())
    return check
