"""Error texts become a catalogue key (reasons.py), and every key has its sentence in both languages."""

from __future__ import annotations

import pytest

from streamctl.console.i18n import LANGS, catalogue
from streamctl.reasons import KEYS, reason_key, with_reasons

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
    ("refused 3 times in a row: Server error: Already publishing", "auth"),
    ("video abc123 not found (check video_id)", "not_found"),
    ("video abc123 is not live yet (no active live chat)", "not_live"),
    ("HTTP 503, not JSON: <html><title>503 Service Unavailable</title>", "server"),
    ("Broken pipe; retrying in 2.0 s", "reset"),
    ("waiting for the program (ingest lost)", "program_lost"),
    ("stream key expired at 2026-12-03 05:00:00 UTC, expected a fresh key from the platform", "key_expired"),
    ("no credential: set the environment variable named by credential_env", "no_credential"),
    ("TikTokLive is not installed: pip install 'streamctl[tiktok]'", "missing_extra"),
    ("internal error: KeyError: 'x'", "internal"),
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
