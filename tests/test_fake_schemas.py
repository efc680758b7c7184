"""The fakes speak the platforms' published schemas: every field the YouTube fake answers is in YouTube's discovery
document (shipped in google-api-python-client), every Facebook live-video field is in facebook-business's lists."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from streamctl.fakes.facebook_live import FakeFacebookLive
from streamctl.fakes.youtube_live import FakeYouTubeLive

googleapiclient = pytest.importorskip("googleapiclient", reason="pip install 'streamctl[test]'")
livevideo = pytest.importorskip("facebook_business.adobjects.livevideo")
page_module = pytest.importorskip("facebook_business.adobjects.page")

DISCOVERY = json.loads((Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" /
                        "youtube.v3.json").read_text(encoding="utf-8"))
SCHEMAS = DISCOVERY["schemas"]
PAGE_SOURCE = Path(page_module.__file__).read_text(encoding="utf-8")


def unknown_fields(value: object, schema: dict, where: str) -> list[str]:
    """Every key in `value` the discovery schema does not declare (following $ref, items, additionalProperties)."""
    if "$ref" in schema:
        return unknown_fields(value, SCHEMAS[schema["$ref"]], where)
    out = []
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, inner in value.items():
            if props is not None and key in props:
                out += unknown_fields(inner, props[key], f"{where}.{key}")
            elif extra is not None:
                out += unknown_fields(inner, extra, f"{where}.{key}")
            else:
                out.append(f"{where}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            out += unknown_fields(inner, schema.get("items", {}), f"{where}[{i}]")
    enum = schema.get("enum")
    if enum and isinstance(value, str) and value not in enum:
        out.append(f"{where} = {value!r} (not in the enum)")
    return out


def check(body: dict, schema: str) -> None:
    problems = unknown_fields(body, SCHEMAS[schema], schema)
    assert not problems, problems


def test_the_discovery_document_has_what_the_fakes_serve():
    methods = {m for r in ("liveBroadcasts", "liveStreams") for m in DISCOVERY["resources"][r]["methods"]}
    assert {"insert", "list", "update", "bind", "transition"} <= methods
    status = SCHEMAS["LiveBroadcastStatus"]["properties"]["lifeCycleStatus"]["enum"]
    assert {"created", "ready", "testing", "live", "complete", "testStarting", "liveStarting"} <= set(status)


async def test_youtube_broadcast_and_stream_answers_use_only_published_fields(tmp_path):
    async with FakeYouTubeLive() as yt, aiohttp.ClientSession() as http:
        async with http.post(yt.url + "/token", data={"grant_type": "refresh_token", "client_id": yt.oauth.client_id,
                                                      "client_secret": yt.oauth.client_secret,
                                                      "refresh_token": yt.oauth.refresh_token}) as r:
            token = (await r.json())["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        api = yt.url + "/youtube/v3"
        insert = {"snippet": {"title": "t", "scheduledStartTime": "2026-12-03T08:00:00.000Z"},
                  "status": {"privacyStatus": "unlisted"},
                  "contentDetails": {"enableAutoStart": False, "latencyPreference": "low",
                                     "monitorStream": {"enableMonitorStream": True}}}
        check(insert, "LiveBroadcast")  # what we send, too
        async with http.post(api + "/liveBroadcasts", params={"part": "snippet,status,contentDetails"},
                             json=insert, headers=auth) as r:
            broadcast = await r.json()
        check(broadcast, "LiveBroadcast")
        stream_body = {"snippet": {"title": "s"},
                       "cdn": {"ingestionType": "rtmp", "resolution": "variable", "frameRate": "variable"},
                       "contentDetails": {"isReusable": True}}
        check(stream_body, "LiveStream")
        async with http.post(api + "/liveStreams", params={"part": "snippet,cdn,contentDetails,status"},
                             json=stream_body, headers=auth) as r:
            stream = await r.json()
        check(stream, "LiveStream")
        async with http.post(api + "/liveBroadcasts/bind", params={"id": broadcast["id"], "streamId": stream["id"],
                                                                   "part": "id,snippet,contentDetails,status"},
                             headers=auth) as r:
            check(await r.json(), "LiveBroadcast")
        async with http.get(api + "/liveBroadcasts", params={"id": broadcast["id"],
                                                             "part": "id,snippet,status,contentDetails,statistics"},
                            headers=auth) as r:
            check(await r.json(), "LiveBroadcastListResponse")
        yt.health_override, yt.issues_override = "bad", [{"type": "videoBitrateLow", "severity": "error",
                                                          "reason": "r", "description": "d"}]
        async with http.get(api + "/liveStreams", params={"id": stream["id"], "part": "id,cdn,status"},
                            headers=auth) as r:
            streams = await r.json()
        check(streams, "LiveStreamListResponse")
        assert set(streams["items"][0]["cdn"]["ingestionInfo"]) == set(SCHEMAS["IngestionInfo"]["properties"])
        async with http.post(api + "/liveBroadcasts/transition", params={"id": broadcast["id"],
                                                                         "broadcastStatus": "live", "part": "status"},
                             headers=auth) as r:
            error = await r.json()
        assert r.status == 403 and error["error"]["errors"][0]["reason"] == "errorStreamInactive"
        async with http.put(api + "/liveBroadcasts", params={"part": "snippet"}, headers=auth,
                            json={"id": broadcast["id"], "snippet": {"title": "n", "scheduledStartTime": "x"}}) as r:
            check(await r.json(), "LiveBroadcast")
        async with http.get(api + "/liveBroadcasts", params={"id": broadcast["id"], "part": "snippet"},
                            headers={"Authorization": "Bearer ya29.nope"}) as r:
            assert r.status == 401 and (await r.json())["error"]["errors"][0]["reason"] == "authError"


async def test_facebook_live_video_answers_use_only_the_sdk_s_fields():
    video_fields = {v for k, v in vars(livevideo.LiveVideo.Field).items() if not k.startswith("_")}
    async with FakeFacebookLive() as fb, aiohttp.ClientSession() as http:
        params = {"title": "t", "description": "d", "status": "LIVE_NOW", "enable_backup_ingest": "true",
                  "access_token": fb.token}
        # What we send is what the SDK's Page.create_live_video takes.
        create = PAGE_SOURCE[PAGE_SOURCE.index("def create_live_video"):]
        create = create[:create.index("enums = {")]
        for name in ("title", "description", "status", "enable_backup_ingest"):
            assert f"'{name}'" in create, name
        assert "LIVE_NOW" in vars(livevideo.LiveVideo.Status).values()
        async with http.post(f"{fb.api_base}/{fb.page_id}/live_videos", data=params) as r:
            created = await r.json()
        # The create answer: the id plus the documented stream URLs (secondary ones only with backup ingest).
        assert set(created) - video_fields <= {"stream_secondary_urls", "secure_stream_secondary_urls"}
        assert {"id", "stream_url", "secure_stream_url"} <= set(created)
        async with http.get(f"{fb.api_base}/{created['id']}", params={
                "fields": "status,ingest_streams{is_master,stream_health,stream_id},title,description,permalink_url,"
                          "live_views", "access_token": fb.token}) as r:
            video = await r.json()
        assert set(video) <= video_fields, set(video) - video_fields
        assert video["ingest_streams"] == []  # nothing published yet (test_broadcasts checks them while live)
        async with http.post(f"{fb.api_base}/{fb.page_id}/live_videos", data={**params, "access_token": "bad"}) as r:
            error = (await r.json())["error"]
        assert r.status == 400 and error["code"] == 190 and error["type"] == "OAuthException"
        fb.create_faults = ["368"]
        async with http.post(f"{fb.api_base}/{fb.page_id}/live_videos", data=params) as r:
            assert (await r.json())["error"]["code"] == 368
        async with http.get(f"{fb.api_base}/debug_token", params={"input_token": fb.token,
                                                                   "access_token": fb.token}) as r:
            data = (await r.json())["data"]
        assert data["is_valid"] is True and data["type"] == "PAGE" and "expires_at" in data
