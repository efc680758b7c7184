"""Broadcasts through the platforms' APIs, end to end: a running event (testsrc program, real ffmpeg outputs)
creates the broadcast on a fake YouTube / Facebook served on loopback, publishes to the RTMP ingest the fake
hands out, goes live, reads the broadcast's chat, watches the platform's health, and ends it."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace

import pytest

from streamctl.broadcasts.manager import BroadcastTiming
from streamctl.events import Alert
from streamctl.fakes.facebook_live import FakeFacebookLive
from streamctl.fakes.youtube_live import FakeYouTubeLive

from .console_harness import running_console
from .receivers import wait_for

pytestmark = pytest.mark.timeout(90)

FAST = BroadcastTiming(health_every_s=0.5, health_alert_s=2.0, retry_s=0.5, retry_cap_s=2.0, go_live_wait_s=25.0,
                       step_s=0.3, expiry_every_s=3600.0)


def fast(timing: BroadcastTiming = FAST):
    def prepare(controller) -> None:
        controller.broadcasts.timing = timing
    return prepare


def youtube_tables(fake: FakeYouTubeLive, creds: str, name: str = "yt-qmg") -> str:
    return f"""
        [ingest]
        url = "testsrc"

        [[destination]]
        name = "{name}"
        platform = "youtube"
        broadcast = "create"
        credentials_file = "{creds}"
        title = "Kỳ họp HĐND tỉnh — phiên chất vấn"
        description = "Trực tiếp"
        privacy = "unlisted"
        api_base = "{fake.url}"
        url = "rtmp://placeholder.invalid/live2"
        """


def facebook_tables(fake: FakeFacebookLive, creds: str, name: str = "fb-qmg", backup: bool = False) -> str:
    return f"""
        [ingest]
        url = "testsrc"

        [[destination]]
        name = "{name}"
        platform = "facebook"
        broadcast = "create"
        credentials_file = "{creds}"
        title = "Phiên chất vấn"
        page_id = "{fake.page_id}"
        api_base = "{fake.api_base}"
        backup = {'true' if backup else 'false'}
        """


# An event whose Facebook destination's live video streamctl makes (the credentials in fb.json).
FB_BROADCAST_EVENT = """
    [event]
    name = "x"
    [ingest]
    url = "testsrc"
    [[destination]]
    name = "fb"
    platform = "facebook"
    broadcast = "create"
    credentials_file = "fb.json"
"""


def write_creds(tmp, data: dict, name: str) -> str:
    path = tmp / name
    path.write_text(json.dumps(data), encoding="utf-8")
    path.chmod(0o600)
    return name


def page_creds(fake: FakeFacebookLive) -> dict:
    return {"type": "facebook_page", "page_id": fake.page_id, "page_name": fake.page_name,
            "access_token": fake.token, "expires_at": 0, "data_access_expires_at": 0, "api_base": fake.api_base}


async def destination(op, name: str) -> dict:
    status, body = await op.call("GET", "/api/destinations")
    assert status == 200
    return next(d for d in body["destinations"] if d["name"] == name)


async def until_destination(op, name: str, predicate, within: float, what: str) -> dict:
    seen: dict = {}
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        seen = await destination(op, name)
        if predicate(seen):
            return seen
        await asyncio.sleep(0.25)
    raise AssertionError(f"{what}: not within {within:g} s; last seen {json.dumps(seen)[:600]}")


async def comment_texts(op, source: str) -> list[str]:
    status, body = await op.call("GET", "/api/comments?limit=500")
    assert status == 200
    return [c["text"] for c in body["comments"] if c["source"] == source]


def alerts_of(controller, code: str) -> list[Alert]:
    return [a for a in controller.test_alerts if a.code == code]


def collect_alerts(timing: BroadcastTiming = FAST):
    """Shorten the timing and keep every Alert the bus carries, for the test to look at."""
    def prepare(controller) -> None:
        controller.broadcasts.timing = timing
        controller.test_alerts = []
        sub = controller.bus.subscribe(Alert, maxsize=1000, name="test.alerts")

        async def keep() -> None:
            async for event in sub:
                controller.test_alerts.append(event)

        controller.extra_tasks.append(("test.alerts", keep))
    return prepare


async def test_youtube_broadcast_is_created_published_to_taken_live_read_and_ended(tmp_path):
    async with FakeYouTubeLive() as yt:
        creds = write_creds(tmp_path, yt.authorized_user(), "yt.json")
        async with running_console(tmp_path, tables=youtube_tables(yt, creds), prepare=collect_alerts()) as console:
            op = await console.client("op")
            # Made through the API, published to the ingest address it handed out, previewed (testing).
            dest = await until_destination(op, "yt-qmg", lambda d: d["state"] == "live"
                                           and (d["broadcast"] or {}).get("status") == "testing", 30,
                                           "live on the fake's ingest and in testing")
            broadcast_id = dest["broadcast"]["id"]
            assert dest["broadcast"]["watch_url"] == f"https://www.youtube.com/watch?v={broadcast_id}"
            assert yt.ingest.publishers, "ffmpeg publishes to the fake's RTMP ingest"
            name = yt.streams[next(iter(yt.streams))]["cdn"]["ingestionInfo"]["streamName"]
            assert name not in json.dumps(dest), "the stream name is a key: never shown"
            inserted = dict(yt.writes)["liveBroadcasts.insert"]
            assert inserted["contentDetails"]["enableAutoStart"] is False
            assert inserted["status"]["privacyStatus"] == "unlisted"
            assert inserted["snippet"]["title"] == "Kỳ họp HĐND tỉnh — phiên chất vấn"
            assert yt.calls_to("liveStreams.insert") == 1 and yt.calls_to("liveBroadcasts.bind") == 1
            # The platform's own view, beside ours.
            dest = await until_destination(op, "yt-qmg", lambda d: (d["platform_health"] or {}).get("status")
                                           == "good", 10, "platform health good")
            assert dest["platform_health"]["issues"] == [] and dest["platform_health"]["at"]

            status, live = await op.call("POST", "/api/destinations/yt-qmg/go_live")
            assert status == 200, live
            assert live["broadcast"]["status"] == "live"
            assert yt.broadcasts[broadcast_id]["status"]["lifeCycleStatus"] == "live"
            status, again = await op.call("POST", "/api/destinations/yt-qmg/go_live")
            assert status == 200 and again["broadcast"]["status"] == "live"  # redundant: still fine

            # The broadcast's chat is read by the audience source of the same name (no video id configured).
            yt.post_comment("Nguyễn Văn An", "Cho hỏi về dự án đường ven biển?")
            await wait_for(lambda: console.controller.store.query_one(
                "SELECT COUNT(*) AS n FROM comments WHERE source = 'yt-qmg'")["n"] == 1, 15, "chat stored")
            assert await comment_texts(op, "yt-qmg") == ["Cho hỏi về dự án đường ven biển?"]

            status, metrics = await op.page("/metrics")
            assert 'streamctl_destination_platform_health{name="yt-qmg",platform="youtube",status="good"} 1' \
                in metrics
            assert f'streamctl_destination_broadcast_info{{name="yt-qmg",platform="youtube",id="{broadcast_id}",' \
                   'status="live"} 1' in metrics

            # Every call was booked in the channel's quota ledger (insert, stream, bind, transitions 50 each).
            status, audience = await op.call("GET", "/api/audience")
            quota = next(s for s in audience["sources"] if s["name"] == "yt-qmg")["quota"]
            assert quota["used"] >= 5 * 50 and quota["used"] <= yt.used

            status, ended = await op.call("POST", "/api/destinations/yt-qmg/end")
            assert status == 200, ended
            assert ended["broadcast"]["status"] == "complete"
            assert yt.broadcasts[broadcast_id]["status"]["lifeCycleStatus"] == "complete"
            assert not alerts_of(console.controller, "broadcast.failed")


async def test_facebook_live_video_is_created_published_to_read_and_ended(tmp_path):
    async with FakeFacebookLive() as fb:
        creds = write_creds(tmp_path, page_creds(fb), "fb.json")
        async with running_console(tmp_path, tables=facebook_tables(fb, creds, backup=True),
                                   prepare=collect_alerts()) as console:
            op = await console.client("op")
            dest = await until_destination(op, "fb-qmg", lambda d: d["state"] == "live"
                                           and (d["platform_health"] or {}).get("status") == "good", 30,
                                           "live with a master ingest stream")
            video_id = dest["broadcast"]["id"]
            created = dict(fb.writes)["live_videos.create"]
            assert created["status"] == "LIVE_NOW" and created["enable_backup_ingest"] == "true"
            assert created["title"] == "Phiên chất vấn"
            assert dest["broadcast"]["status"] == "LIVE"
            # The backup ingest URL is kept on the destination's config for the backup output.
            config = console.controller.restreamer.get("fb-qmg").config
            assert config.backup_url and config.backup_url.endswith(fb.videos[video_id]["_backup_key"])
            assert fb.videos[video_id]["_backup_key"] not in json.dumps(dest)

            # The fake's ingest_streams while we publish use only the SDK's LiveVideoInputStream fields.
            from facebook_business.adobjects.livevideoinputstream import LiveVideoInputStream
            sdk_fields = {v for k, v in vars(LiveVideoInputStream.Field).items() if not k.startswith("_")}
            streams = fb._ingest_streams(fb.videos[video_id])
            assert streams and all(set(s) <= sdk_fields for s in streams)
            assert [s["is_master"] for s in streams] == [True, False] or [s["is_master"] for s in streams] == [True]
            status, live = await op.call("POST", "/api/destinations/fb-qmg/go_live")
            assert status == 200 and live["broadcast"]["status"] == "LIVE"

            fb.post_comment("Trần Thị Bình", "Xin hỏi lịch tiếp dân?")
            await wait_for(lambda: console.controller.store.query_one(
                "SELECT COUNT(*) AS n FROM comments WHERE source = 'fb-qmg'")["n"] == 1, 15, "comment stored")
            fb.set_viewers(321)
            status, viewers = await op.call("GET", "/api/viewers")
            await wait_for(lambda: any(s["name"] == "fb-qmg" and s["viewers"] == 321 for s in
                                       console.controller.store.latest_viewers()[0]), 15, "live_views stored")

            status, ended = await op.call("POST", "/api/destinations/fb-qmg/end")
            assert status == 200 and ended["broadcast"]["status"] == "VOD"
            assert fb.videos[video_id]["_status"] == "ENDED"


async def test_a_restart_mid_event_reuses_the_same_broadcast(tmp_path):
    async with FakeYouTubeLive() as yt:
        creds = write_creds(tmp_path, yt.authorized_user(), "yt.json")
        tables = youtube_tables(yt, creds)
        async with running_console(tmp_path, tables=tables, prepare=fast()) as console:
            op = await console.client("op")
            first = await until_destination(op, "yt-qmg", lambda d: d["state"] == "live"
                                            and (d["broadcast"] or {}).get("id"), 30, "live")
        publishes = yt.ingest.counters["publishes_total"]
        async with running_console(tmp_path, users=(), tables=tables, prepare=fast()) as console:
            op = await console.client()
            await op.sign_in("op", "correct horse battery")
            again = await until_destination(op, "yt-qmg", lambda d: d["state"] == "live"
                                            and (d["broadcast"] or {}).get("id"), 30, "live again")
        assert again["broadcast"]["id"] == first["broadcast"]["id"]
        assert len(yt.broadcasts) == 1 and len(yt.streams) == 1
        assert yt.calls_to("liveBroadcasts.insert") == 1 and yt.calls_to("liveBroadcasts.bind") == 1
        assert yt.ingest.counters["publishes_total"] > publishes  # published again, to the same stream


async def test_platform_saying_no_data_while_we_send_raises_platform_health_and_its_recovery(tmp_path):
    async with FakeYouTubeLive() as yt:
        creds = write_creds(tmp_path, yt.authorized_user(), "yt.json")
        async with running_console(tmp_path, tables=youtube_tables(yt, creds), prepare=collect_alerts()) as console:
            op = await console.client("op")
            await until_destination(op, "yt-qmg", lambda d: d["state"] == "live"
                                    and (d["platform_health"] or {}).get("status") == "good", 30, "good")
            yt.health_override = "noData"
            yt.issues_override = []
            started = time.monotonic()
            await wait_for(lambda: alerts_of(console.controller, "platform.health"), 10, "platform.health alert")
            took = time.monotonic() - started
            alert = alerts_of(console.controller, "platform.health")[0]
            assert alert.level == "error" and not alert.resolved and alert.params["status"] == "noData"
            assert FAST.health_alert_s <= took < FAST.health_alert_s + 5
            assert (await destination(op, "yt-qmg"))["state"] == "live"  # ours says live: the platform disagrees
            # A bad stream with its configuration issues is shown as the platform says it.
            yt.health_override, yt.issues_override = "bad", [
                {"type": "videoBitrateLow", "severity": "error", "reason": "Low bitrate",
                 "description": "The stream's current bitrate is lower than the recommended bitrate."}]
            dest = await until_destination(op, "yt-qmg", lambda d: d["platform_health"]["status"] == "bad", 10,
                                           "bad with issues")
            assert [i["type"] for i in dest["platform_health"]["issues"]] == ["videoBitrateLow"]
            yt.health_override = None
            await wait_for(lambda: any(a.resolved for a in alerts_of(console.controller, "platform.health")), 10,
                           "platform.health resolved")
            assert len([a for a in alerts_of(console.controller, "platform.health") if not a.resolved]) == 1
        # Kept for the report: its destination table has the platform's view beside ours.
        from streamctl.report.figures import build_report
        report = build_report(tmp_path / "event.db")
        view = next(d for d in report["destinations"] if d["name"] == "yt-qmg")["platform_view"]
        assert view["worst"] == "noData" and "videoBitrateLow" in view["issues"] and view["bad_s"] >= 2
        assert 0 < view["good_share"] < 1


async def test_facebook_without_a_master_stream_raises_platform_health(tmp_path):
    async with FakeFacebookLive() as fb:
        creds = write_creds(tmp_path, page_creds(fb), "fb.json")
        async with running_console(tmp_path, tables=facebook_tables(fb, creds), prepare=collect_alerts()) as console:
            op = await console.client("op")
            await until_destination(op, "fb-qmg", lambda d: (d["platform_health"] or {}).get("status") == "good",
                                    30, "good")
            fb.health_override = "no_master"
            await wait_for(lambda: alerts_of(console.controller, "platform.health"), 10, "platform.health alert")
            dest = await destination(op, "fb-qmg")
            assert [i["type"] for i in dest["platform_health"]["issues"]] == ["noMasterStream"]


async def test_event_title_and_description_are_applied_to_every_broadcast_and_read_back(tmp_path):
    async with FakeYouTubeLive() as yt, FakeFacebookLive() as fb:
        yt_creds = write_creds(tmp_path, yt.authorized_user(), "yt.json")
        fb_creds = write_creds(tmp_path, page_creds(fb), "fb.json")
        tables = youtube_tables(yt, yt_creds) + facebook_tables(fb, fb_creds).split("[ingest]")[1].split(
            'url = "testsrc"', 1)[1]
        async with running_console(tmp_path, tables=tables, prepare=fast()) as console:
            op = await console.client("op")
            for name in ("yt-qmg", "fb-qmg"):
                await until_destination(op, name, lambda d: (d["broadcast"] or {}).get("id"), 30, f"{name} made")
            status, info = await op.call("PATCH", "/api/event", {"title": "Phiên chất vấn — buổi chiều",
                                                                 "description": "Kỳ họp thứ 21"})
            assert status == 200, info
            assert {p["destination"]: p["state"] for p in info["platforms"]} == {"yt-qmg": "ok", "fb-qmg": "ok"}
            assert all(p["title"] == "Phiên chất vấn — buổi chiều" for p in info["platforms"])
            yt_broadcast = next(iter(yt.broadcasts.values()))
            assert yt_broadcast["snippet"]["title"] == "Phiên chất vấn — buổi chiều"
            assert yt_broadcast["snippet"]["description"] == "Kỳ họp thứ 21"
            assert next(iter(fb.videos.values()))["title"] == "Phiên chất vấn — buổi chiều"
            status, read = await op.call("GET", "/api/event")
            assert read["title"] == "Phiên chất vấn — buổi chiều" and read["description"] == "Kỳ họp thứ 21"
            status, bad = await op.call("PATCH", "/api/event", {"title": ""})
            assert status == 400 and "title" in bad["error"]
            status, bad = await op.call("PATCH", "/api/event", {"colour": "red"})
            assert status == 400
            mod = await console.client("mod1")
            status, _ = await mod.call("PATCH", "/api/event", {"title": "x"})
            assert status == 403


async def test_a_channel_without_live_streaming_is_an_alert_that_says_what_to_do(tmp_path):
    async with FakeYouTubeLive() as yt:
        yt.live_streaming_enabled = False
        creds = write_creds(tmp_path, yt.authorized_user(), "yt.json")
        async with running_console(tmp_path, tables=youtube_tables(yt, creds), prepare=collect_alerts()) as console:
            op = await console.client("op")
            await wait_for(lambda: alerts_of(console.controller, "broadcast.failed"), 10, "broadcast.failed")
            alert = alerts_of(console.controller, "broadcast.failed")[0]
            assert "liveStreamingNotEnabled" in alert.message and "youtube.com/features" in alert.message
            dest = await destination(op, "yt-qmg")
            assert dest["broadcast"]["status"] == "failed" and dest["state"] == "stopped"
            status, body = await op.call("POST", "/api/destinations/yt-qmg/go_live")
            assert status == 409 and "not ready" in body["error"]
            yt.live_streaming_enabled = True  # enabled meanwhile: the next try makes it
            await until_destination(op, "yt-qmg", lambda d: d["state"] == "live", 30, "made on a later try")
            assert any(a.resolved for a in alerts_of(console.controller, "broadcast.failed"))


async def test_go_live_waits_for_an_inactive_stream_and_retries_youtube_s_transient_refusals(tmp_path):
    async with FakeYouTubeLive() as yt:
        creds = write_creds(tmp_path, yt.authorized_user(), "yt.json")
        tables = youtube_tables(yt, creds).replace('url = "rtmp://placeholder.invalid/live2"',
                                                   'url = "rtmp://placeholder.invalid/live2"\nautostart = false')
        async with running_console(tmp_path, tables=tables, prepare=fast()) as console:
            op = await console.client("op")
            await until_destination(op, "yt-qmg", lambda d: (d["broadcast"] or {}).get("status") == "ready", 30,
                                    "made, not started")
            yt.transition_faults = ["invalidTransition"]  # YouTube between states once

            async def start_later() -> None:
                await asyncio.sleep(1.0)
                await op.call("POST", "/api/destinations/yt-qmg/start")

            starter = asyncio.create_task(start_later())
            status, live = await op.call("POST", "/api/destinations/yt-qmg/go_live")
            await starter
            assert status == 200, live
            assert live["broadcast"]["status"] == "live"
            refused = [q for _, p, q in yt.requests if p.endswith("/transition")]
            assert len(refused) >= 2  # errorStreamInactive / invalidTransition were waited out


def test_destination_keys_for_broadcasts_are_checked(tmp_path, write_event):
    from streamctl.config import ConfigError, load_event

    path = write_event("""
        [event]
        name = "x"
        [ingest]
        url = "testsrc"
        [[destination]]
        name = "yt"
        platform = "youtube"
        broadcast = "create"
        privacy = "secret"
        [[destination]]
        name = "tt"
        platform = "tiktok"
        url = "rtmp://push.example/game"
        broadcast = "create"
        [[destination]]
        name = "fb"
        platform = "facebook"
        broadcast = "create"
        credentials_file = "missing.json"
    """)
    with pytest.raises(ConfigError) as e:
        load_event(path)
    text = "\n".join(e.value.issues)
    assert "destination \"yt\": privacy: 'secret' is not known, expected one of public, unlisted, private" in text
    assert "destination \"yt\": credentials_file: missing" in text
    assert "destination \"tt\": broadcast: is for youtube or facebook destinations, not tiktok" in text
    assert "destination \"fb\": credentials_file:" in text and "streamctl auth facebook" in text
    (tmp_path / "fb.json").write_text("{}")
    good = write_event(FB_BROADCAST_EVENT + "    backup = true\n", name="good.toml")
    dest = load_event(good).destinations[0]
    assert dest.broadcast == "create" and dest.url == "" and dest.backup and dest.backup_url is None
    assert replace(dest, url="rtmp://x/y").url == "rtmp://x/y"


async def test_a_page_token_that_expires_within_a_week_is_a_credential_expiring_warning_while_running(tmp_path):
    async with FakeFacebookLive() as fb:
        creds = write_creds(tmp_path, {**page_creds(fb), "expires_at": time.time() + 2 * 86400}, "fb.json")
        async with running_console(tmp_path, tables=facebook_tables(fb, creds), prepare=collect_alerts()) as console:
            await wait_for(lambda: alerts_of(console.controller, "credential.expiring"), 20, "credential.expiring")
            alert = alerts_of(console.controller, "credential.expiring")[0]
            assert alert.level == "warning" and "streamctl auth facebook" in alert.message
            assert alert.params["platform"] == "facebook" and fb.token not in json.dumps(alert.params)
