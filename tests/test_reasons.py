"""Error texts, refused fields and broken platform rules become catalogue keys (reasons.py, console/issues.py),
and every key has its sentence in both languages."""

from __future__ import annotations

import re

import pytest

from streamctl.config import ConfigError, destination_from_api
from streamctl.console.i18n import LANGS, catalogue
from streamctl.console.issues import KINDS as ISSUE_KINDS
from streamctl.console.issues import issue_view
from streamctl.reasons import KEYS, RULES, reason_key, rule_view, with_reasons

# Texts as the adapters, ffmpeg and the platforms really word them (docs/platform-apis.md).
SEEN = [
    ("yt-main: ClientConnectorError: Cannot connect to host 127.0.0.1:9 ssl:default [Connect call failed "
     "('127.0.0.1', 9)]", "unreachable"),
    ("rtmp://127.0.0.1:1935/live2/****: Connection refused; retrying in 1.0 s", "unreachable"),
    ("Cannot connect to host nope.invalid:443 ssl:default [Name or service not known]", "dns"),
    ("Cannot connect to host a.example:443 ssl:True [SSLCertVerificationError: certificate verify failed]", "tls"),
    ("liveChatMessages.list: no answer within 10 s", "timeout"),
    ("liveChatMessages.list: HTTP 403 quotaExceeded: The request cannot be completed", "quota"),
    ("comments: HTTP 429 too many requests", "quota"),
    ("the Page token has expired or was revoked (code 190)", "auth"),
    ("refused 3 times in a row: Server error: Already publishing", "already_publishing"),
    ("refused 3 times in a row: Server error: Publish.Denied", "auth"),
    ("video abc123 not found (check video_id)", "not_found"),
    ("video abc123 is not live yet (no active live chat)", "not_live"),
    ("HTTP 503, not JSON: <html><title>503 Service Unavailable</title>", "server"),
    ("Broken pipe; retrying in 2.0 s", "reset"),
    ("waiting for the program (ingest lost)", "program_lost"),
    ("stream key expired at 2026-12-03 05:00:00 UTC, expected a fresh key from the platform", "key_expired"),
    ("no credential: set the environment variable named by credential_env", "no_credential"),
    ("TikTokLive is not installed: pip install 'streamctl[tiktok]'", "missing_extra"),
    ("internal error: KeyError: 'x'", "internal"),
    ("wrong stream key on app 'live'", "wrong_key"),
    ("app 'live2' is not 'live'", "wrong_app"),
    ("127.0.0.1:50312 is already publishing", "already_publishing"),
    ("something nobody foresaw", "other"),
]


@pytest.mark.parametrize(("text", "key"), SEEN)
def test_error_texts_map_to_the_reason_a_person_can_act_on(text, key):
    assert reason_key(text) == key


def test_no_error_has_no_reason_and_fields_get_their_key_beside_them():
    assert reason_key(None) is None and reason_key("") is None
    data = {"destinations": [{"name": "a", "health": {"last_error": "Broken pipe"}, "error": None}]}
    marked = with_reasons(data)
    assert marked["destinations"][0]["health"] == {"last_error": "Broken pipe", "last_error_key": "reset"}
    assert marked["destinations"][0]["error_key"] is None
    assert data["destinations"][0]["health"] == {"last_error": "Broken pipe"}  # the original is left alone


@pytest.mark.parametrize("lang", LANGS)
def test_every_reason_has_a_sentence_in_every_language(lang):
    messages = catalogue(lang)
    missing = [key for key in KEYS if f"reason.{key}" not in messages]
    assert missing == []
    assert all("{" not in messages[f"reason.{key}"] for key in KEYS)  # nothing to fill in: raw text stays out


def test_broken_platform_rules_become_keys_with_their_figures():
    from streamctl.restream.platforms import StreamFacts, rule_violations

    lines = rule_violations("youtube", StreamFacts(video_codec="vp6", audio_codec="mp3", keyframe_interval_s=8.0))
    views = [rule_view(line) for line in lines]
    assert [v["key"] for v in views] == ["rule.video_codec", "rule.audio_codec", "rule.keyframe"], lines
    assert views[0]["params"]["codec"] == "vp6" and views[2]["params"]["every"] == "8.0"
    nothing = rule_violations("facebook", StreamFacts(video_codec=None, audio_codec=None, keyframe_interval_s=None))
    assert [rule_view(line)["key"] for line in nothing] == ["rule.no_video", "rule.no_audio"]
    assert with_reasons({"rule_warnings": lines})["rule_keys"] == views


@pytest.mark.parametrize(("body", "field", "key", "params"), [
    ({"name": "x", "url": "rtmp://h/a", "key_env": "POLISH_NOT_SET"}, "key_env", "issue.env_unset",
     {"name": "POLISH_NOT_SET"}),
    ({"name": "x y", "url": "rtmp://h/a"}, "name", "issue.plain_name", {}),
    ({"name": "x", "platform": "zzz", "url": "rtmp://h/a"}, "platform", "issue.choice",
     {"choices": "youtube, facebook, tiktok, twitch, custom"}),
    ({"name": "x", "url": "ftp://h/a"}, "url", "issue.scheme", {"scheme": "ftp", "expected": "rtmp, rtmps, srt, file"}),
    ({"url": "rtmp://h/a"}, "name", "issue.missing", {}),
])
def test_a_refused_field_is_named_with_a_sentence_key(body, field, key, params):
    with pytest.raises(ConfigError) as refused:
        destination_from_api(body)
    views = [issue_view(line) for line in refused.value.issues]
    assert {"field": field, "key": key, "params": params} in views, views


@pytest.mark.parametrize("lang", LANGS)
def test_every_issue_and_rule_has_a_sentence_with_its_placeholders(lang):
    messages = catalogue(lang)
    for kind, _ in ISSUE_KINDS:
        assert f"issue.{kind}" in messages
    for kind, _ in RULES:
        assert f"rule.{kind}" in messages
    assert "issue.invalid" in messages and "rule.other" in messages
    assert set(re.findall(r"{(\w+)}", messages["issue.scheme"])) == {"scheme", "expected"}
