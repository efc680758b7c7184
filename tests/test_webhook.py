"""The signed webhook's checks and parsing: signatures, our shape and SSN's, stable ids, every time format."""

from __future__ import annotations

import json

import pytest

from streamctl.audience.webhook import WebhookError, WebhookSource, sign
from tests.audience_harness import audience

SECRET = "whsec-test-value"


def hook(label: str | None = None) -> WebhookSource:
    options = {"secret_env": "HOOK_SECRET"} | ({"label": label} if label else {})
    return WebhookSource(audience("bridge", "webhook", credential=SECRET, **options))


def accept(source: WebhookSource, payload: object):
    body = json.dumps(payload, ensure_ascii=False).encode()
    return source.accept(body, sign(SECRET, body))


@pytest.mark.parametrize("stamp", ["2024-05-01T05:00:00Z", "2024-05-01T05:00:00+00:00", "2024-05-01T12:00:00+0700",
                                   "2024-05-01T05:00:00.000Z", "2024-05-01T05:00:00.123456789+00:00",
                                   "2024-05-01 05:00:00Z", 1714539600, 1714539600000, "1714539600000"])
def test_every_time_format(stamp):
    [batch] = accept(hook(), {"id": "1", "author": "A", "text": "x", "published_at": stamp})
    assert batch.comments[0].published_at == pytest.approx(1714539600.0, abs=0.2)


@pytest.mark.parametrize("stamp", ["yesterday", "2024-13-01T00:00:00Z", "2024-05-01T05:00:00+25:00x", True, [1]])
def test_bad_times_are_refused_with_the_field_named(stamp):
    with pytest.raises(WebhookError) as caught:
        accept(hook(), {"id": "1", "text": "x", "published_at": stamp})
    assert caught.value.status == 400 and "published_at" in str(caught.value)


def test_signature_checks():
    source = hook()
    body = b'{"id": "1", "text": "hi"}'
    for header in (None, "", "sha256=deadbeef", sign("other-secret", body), sign(SECRET, body + b"\n")):
        with pytest.raises(WebhookError) as caught:
            source.accept(body, header)
        assert caught.value.status == 401 and SECRET not in str(caught.value)
    assert source.accept(body, sign(SECRET, body).upper().replace("SHA256=", "sha256="))[0].comments


def test_without_a_secret_nothing_is_accepted():
    source = WebhookSource(audience("bridge", "webhook", secret_env="HOOK_SECRET"))
    with pytest.raises(WebhookError) as caught:
        source.accept(b"{}", sign("", b"{}"))
    assert caught.value.status == 401 and "HOOK_SECRET" in str(caught.value)


def test_hostile_text_is_kept_verbatim():
    texts = ["<script>alert(1)</script>", "\x00\x07\x1b[2J nul and escape", "😀" * 500, "y" * 10_000,
             "Đường  Hạ Long\r\n\t?"]
    [batch] = accept(hook(), [{"author": "<img src=x>", "text": t} for t in texts])
    assert [c.text for c in batch.comments] == texts
    assert batch.comments[0].author_name == "<img src=x>"


def test_social_stream_ninja_shape():
    [batch] = accept(hook(), {"chatname": "Bạn đọc", "chatmessage": "Hỏi về lũ?", "userid": 42, "type": "zalo",
                              "timestamp": 1714539600000, "hasDonation": "50.000đ", "chatimg": "a.png"})
    c = batch.comments[0]
    assert (c.author_name, c.author_id, c.text, c.platform) == ("Bạn đọc", "42", "Hỏi về lũ?", "zalo")
    assert c.kind == "paid" and c.amount == "50.000đ"
    assert hook(label="website").parse({"chatmessage": "x", "type": "zalo"})[0].comments[0].platform == "website"


def test_derived_ids_are_stable_and_distinct():
    one = {"author": "A", "text": "same words", "timestamp": 1714539600000}
    first = accept(hook(), one)[0].comments[0].platform_id
    assert accept(hook(), one)[0].comments[0].platform_id == first
    assert accept(hook(), one | {"text": "other words"})[0].comments[0].platform_id != first
    assert accept(hook(), one | {"timestamp": 1714539601000})[0].comments[0].platform_id != first
    assert accept(hook(), one | {"id": 77})[0].comments[0].platform_id == "77"


@pytest.mark.parametrize("payload, field", [
    ([], "no messages"), ("text", "message"), ([1], "messages[0]"), ({"author": "x"}, "message.text"),
    ({"text": 5}, "message.text"), ({"text": "x", "author": {"n": 1}}, "message.author"),
    ({"text": "x", "id": ""}, "message.id"), ([{"text": "x"}] * 1001, "at most 1000"),
    ({"event": "viewer_updates", "meta": {"youtube": -5}}, "meta.youtube"),
])
def test_malformed_bodies_name_what_is_wrong(payload, field):
    with pytest.raises(WebhookError) as caught:
        accept(hook(), payload)
    assert caught.value.status == 400 and field in str(caught.value)


def test_viewer_updates_become_one_sample_per_platform():
    batches = accept(hook(), {"event": "viewer_updates", "meta": {"youtube": 815, "TikTok": 90}})
    samples = {b.viewers.source: b.viewers for b in batches}
    assert samples["bridge.youtube"].viewers == 815 and samples["bridge.tiktok"].platform == "tiktok"
    assert not any(s.manual for s in samples.values())
