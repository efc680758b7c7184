"""`streamctl check` on event files: every kind of mistake gives `file: key: what is wrong, what was expected`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from streamctl.cli import main
from streamctl.config import ConfigError, destination_from_api, load_event

GOOD_EVENT = """
[event]
name = "Kỳ họp"
[ingest]
url = "rtmp://0.0.0.0:1935/live"
"""
SECRET = "fb-secret-key-98765"

# (what is wrong, the file's text after [event], the key the message must name, words it must contain)
CASES = [
    ("misspelt top-level key", '[evnt]\nname = "x"', "evnt", 'unknown key, did you mean "event"? (expected one of'),
    ("unknown top-level key", '[colour]\nname = "x"', "colour", "unknown key, expected one of"),
    ("event name not text", "", "event.name", "is a int, expected a string"),
    ("bad time zone", "", "event.timezone", "not a known time zone"),
    ("ingest scheme", '[ingest]\nurl = "ftp://x/y"', "ingest.url", "unknown scheme, expected rtmp://"),
    ("ingest file missing", '[ingest]\nurl = "nothing-here.mp4"', "ingest.url", "does not exist"),
    ("listen without app", '[ingest]\nurl = "rtmp://0.0.0.0:1935"', "ingest.url", "has no app path"),
    ("destination without ingest", '[[destination]]\nname = "a"\nurl = "rtmp://h/app"', "ingest", "missing"),
    ("unknown platform", '[[destination]]\nname = "a"\nplatform = "myspace"\nurl = "rtmp://h/a"',
     'destination "a": platform', "expected one of youtube"),
    ("facebook over plain rtmp", '[[destination]]\nname = "fb"\nplatform = "facebook"\n'
     'url = "rtmp://live-api-s.facebook.com:80/rtmp/"', 'destination "fb": url', "expected rtmps for facebook"),
    ("missing key variable", '[[destination]]\nname = "a"\nurl = "rtmp://h/app"\nkey_env = "NOT_SET_KEY"',
     'destination "a": key_env', "environment variable NOT_SET_KEY is not set"),
    ("key variable name", '[[destination]]\nname = "a"\nurl = "rtmp://h/app"\nkey_env = "my key"',
     'destination "a": key_env', "is not an environment variable name"),
    ("tiktok needs a url", '[[destination]]\nname = "tt"\nplatform = "tiktok"', 'destination "tt": url',
     "missing, expected a string"),
    ("unknown profile", '[[destination]]\nname = "a"\nurl = "rtmp://h/app"\nprofile = "4k"',
     'destination "a": profile', "expected one of copy"),
    ("url without host", '[[destination]]\nname = "a"\nurl = "rtmp:///app"', 'destination "a": url', "has no host"),
    ("autostart not boolean", '[[destination]]\nname = "a"\nurl = "rtmp://h/app"\nautostart = "yes"',
     'destination "a": autostart', "expected true or false"),
    ("duplicate names", '[[destination]]\nname = "a"\nurl = "rtmp://h/app"\n[[destination]]\nname = "a"\n'
     'url = "rtmp://h2/app"', 'destination "a": name', "is used twice"),
    ("bad name", '[[destination]]\nname = "a b/c"\nurl = "rtmp://h/app"', "destination[0].name",
     "is not a plain name"),
    ("destination not a table list", 'destination = "rtmp://h/app"', "destination", "expected [[destination]]"),
    ("console listen", '[console]\nlisten = "8080"', "console.listen", "is not host:port"),
    ("archive segment", '[archive]\npath = "rec"\nsegment_s = 1', "archive.segment_s", "out of range"),
    ("audience platform", '[[audience]]\nname = "z"\nplatform = "zalo"', 'audience "z": platform',
     "expected one of youtube"),
    ("empty video id", '[[audience]]\nname = "y"\nplatform = "youtube"\nvideo_id = ""\ncredential_env = "YT"',
     'audience "y": video_id', "is empty, expected a string"),
    ("audience field missing", '[[audience]]\nname = "y"\nplatform = "youtube"\ncredential_env = "YT"',
     'audience "y": video_id', "missing"),
]


def run_check(path, capsys) -> tuple[int, str, str]:
    try:
        code = main(["check", str(path), "--probe-timeout", "0.5"])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(("what", "body", "key", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_event_files(write_event, capsys, monkeypatch, what, body, key, words):
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    event = '[event]\nname = 5\n' if what == "event name not text" else '[event]\nname = "x"\n'
    if what == "bad time zone":
        event += 'timezone = "Mars/Olympus"\n'
    if body and "[ingest]" not in body and what != "destination without ingest" and "destination" in body:
        event += '[ingest]\nurl = "rtmp://0.0.0.0:1935/live"\n'
    # Bare keys belong to the top level only before the first table.
    text = body + "\n" + event if body and not body.startswith("[") else event + body + "\n"
    path = write_event(text)
    code, out, err = run_check(path, capsys)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert lines, "no message"
    for line in lines:
        assert re.match(rf'^{re.escape(str(path))}: (\S+|(destination|audience) "[^"]+"(: \S+)?): .+', line), line
        assert "Traceback" not in line
    mine = [line for line in lines if line.startswith(f"{path}: {key}: ")]
    assert mine and words in mine[0], lines


def test_many_mistakes_are_all_reported_at_once(write_event, capsys):
    path = write_event('[event]\nname = 1\ntimezone = "Nowhere/Else"\n[console]\nlisten = "x"\nport = 9\n')
    code, _, err = run_check(path, capsys)
    keys = [line.split(": ")[1] for line in err.strip().splitlines()]
    assert code == 2 and keys == ["event.name", "event.timezone", "console.port", "console.listen"]


def test_not_toml_not_utf8_not_there(write_event, tmp_path, capsys):
    broken = write_event("[event\nname = 'x'\n", name="broken.toml")
    assert run_check(broken, capsys)[0] == 2
    latin = tmp_path / "latin.toml"
    latin.write_bytes('[event]\nname = "Kỳ họp"\n'.encode("utf-16"))
    code, _, err = run_check(latin, capsys)
    assert code == 2 and "not UTF-8, expected a UTF-8 TOML file" in err
    code, _, err = run_check(tmp_path / "absent.toml", capsys)
    assert code == 2 and "file not found, expected an event file" in err


def test_keys_never_appear_in_check_output(write_event, capsys, monkeypatch):
    monkeypatch.setenv("FB_KEY", SECRET)
    path = write_event(GOOD_EVENT + f'[[destination]]\nname = "fb"\nplatform = "facebook"\n'
                       f'url = "rtmp://live-api-s.facebook.com/rtmp/{SECRET}"\nkey_env = "FB_KEY"\n')
    code, out, err = run_check(path, capsys)
    assert code == 2 and SECRET not in out + err and "rtmp://live-api-s.facebook.com/rtmp/****" in err


def test_a_good_file_passes_and_lists_masked_destinations(write_event, capsys, monkeypatch):
    monkeypatch.setenv("YT_KEY", "yt-secret-key-4321")
    path = write_event(GOOD_EVENT.replace("rtmp://0.0.0.0:1935/live", "rtmp://127.0.0.1:1/live") +
                       '[[destination]]\nname = "yt"\nplatform = "youtube"\nkey_env = "YT_KEY"\n')
    code, out, err = run_check(path, capsys)
    assert code == 0, err
    assert "destination yt: youtube rtmps://a.rtmps.youtube.com/live2/**** profile=copy" in out
    assert "yt-secret-key-4321" not in out + err


TIKTOK_EVENT = '[event]\nname = "x"\n[[audience]]\nname = "tt"\nplatform = "tiktok"\nunique_id = "@qmg"\n'


def test_check_says_what_to_install_when_a_source_needs_a_missing_library(write_event, capsys, monkeypatch):
    path = write_event(TIKTOK_EVENT)
    assert run_check(path, capsys)[0] == 0  # installed here (the test extra has it)
    monkeypatch.setitem(sys.modules, "TikTokLive", None)  # how Python marks a module as not importable
    code, _out, err = run_check(path, capsys)
    assert code == 2
    hint = "tiktok needs `pip install 'streamctl[tiktok]'` (the TikTokLive library)"
    assert err.strip() == f'{path}: audience "tt": {hint}'
    path.write_text(TIKTOK_EVENT + "enabled = false\n", encoding="utf-8")
    assert run_check(path, capsys)[0] == 0  # a disabled source will not run: nothing to install yet


def test_audience_options_are_typed_and_checked_key_by_key(write_event):
    path = write_event('[event]\nname = "x"\n[[audience]]\nname = "yt"\nplatform = "youtube"\n'
                       'video_id = "v1"\ncredential_env = "YT_TOKEN"\nplanned_hours = 3\n')
    options = load_event(path, environ={"YT_TOKEN": "t"}).audience[0].options
    assert (options.video_id, options.planned_hours, options.daily_quota) == ("v1", 3.0, 10_000)
    assert (options.transport, options.api_base) == ("stream", "https://www.googleapis.com")
    path.write_text(path.read_text() + 'daily_quota = "lots"\napi_base = "googleapis.com"\ntransport = 5\n')
    with pytest.raises(ConfigError) as caught:
        load_event(path, environ={"YT_TOKEN": "t"})
    assert caught.value.issues == [
        f"{path}: audience \"yt\": api_base: 'googleapis.com' is not a URL, expected http(s)://host/path",
        f"{path}: audience \"yt\": daily_quota: 'lots' is a str, expected a whole number",
        f"{path}: audience \"yt\": transport: 5 is a int, expected a string",
    ]


def test_comments_only_event_needs_no_ingest(write_event):
    path = write_event('[event]\nname = "x"\n[[audience]]\nname = "m"\nplatform = "manual"\n')
    event = load_event(path)
    assert event.ingest is None and event.destinations == () and len(event.audience) == 1


def test_real_command_exits_2_without_traceback(write_event):
    path = write_event('[event]\nname = "x"\n[[destination]]\nname = "a"\nplatform = "facebook"\n'
                       'url = "rtmp://live-api-s.facebook.com/rtmp/"\n[ingest]\nurl = "testsrc"\n')
    done = subprocess.run([sys.executable, "-m", "streamctl", "check", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{path}: destination \"a\": url: 'rtmp://live-api-s.facebook.com/rtmp/' uses rtmp, expected rtmps" \
        in done.stderr


def test_api_destinations_are_checked_like_the_file():
    with pytest.raises(ConfigError) as caught:
        destination_from_api({"name": "x", "platform": "facebook", "url": "rtmp://h/rtmp/"}, environ={})
    assert caught.value.issues[0].startswith("request: destination.url: ")
    dest = destination_from_api({"name": "yt", "platform": "youtube", "key_env": "K"}, environ={"K": "abcd1234"})
    assert dest.publish_url == "rtmps://a.rtmps.youtube.com/live2/abcd1234"
    assert dest.display_url == "rtmps://a.rtmps.youtube.com/live2/****"


def test_a_broken_ingest_is_reported_once_not_as_missing(write_event, capsys):
    path = write_event('[event]\nname = "x"\n[ingest]\nurl = 5\n[[destination]]\nname = "a"\nurl = "rtmp://h/app"\n'
                       '[archive]\npath = "rec"\n')
    code, _, err = run_check(path, capsys)
    assert code == 2 and err.strip().splitlines() == [f"{path}: ingest.url: 5 is a int, expected a string"]


@pytest.mark.parametrize(("url", "kind", "kept"), [
    ("rtmp://0.0.0.0:1935/live", "rtmp_listen", "rtmp://0.0.0.0:1935/live"),
    ("rtmp://127.0.0.1:1935/live", "rtmp_listen", "rtmp://127.0.0.1:1935/live"),
    ("rtmp://127.0.0.1:1935/live/cam?listen=0", "pull", "rtmp://127.0.0.1:1935/live/cam"),
    ("rtmp://192.0.2.7/live/cam", "pull", "rtmp://192.0.2.7/live/cam"),
    ("rtmp://192.0.2.7:1935/live?listen=1", "rtmp_listen", "rtmp://192.0.2.7:1935/live"),
    ("srt://0.0.0.0:9000?mode=listener", "srt_listen", "srt://0.0.0.0:9000?mode=listener"),
    ("https://cdn.example/program.m3u8", "pull", "https://cdn.example/program.m3u8"),
    ("testsrc", "testsrc", "testsrc"),
])
def test_ingest_kind_follows_the_address_and_listen_overrides_it(write_event, url, kind, kept):
    event = load_event(write_event(f'[event]\nname = "x"\n[ingest]\nurl = "{url}"\n'))
    assert (event.ingest.kind, event.ingest.url) == (kind, kept)


def test_youtube_transport_must_be_stream_or_poll(write_event, monkeypatch):
    monkeypatch.setenv("YT_TOKEN", "ya29.secret-token")
    path = write_event("""
        [event]
        name = "x"
        [[audience]]
        name = "yt"
        platform = "youtube"
        video_id = "abc"
        credential_env = "YT_TOKEN"
        transport = "push"
    """)
    with pytest.raises(ConfigError) as caught:
        load_event(path)
    assert caught.value.issues == [
        f"{path}: audience \"yt\": transport: 'push' is not known, expected one of stream, poll"]


def test_ingest_slate_is_on_by_default_and_its_keys_are_checked(write_event):
    default = load_event(write_event(GOOD_EVENT)).ingest
    assert default.slate is True and default.slate_text.startswith("Chương trình sẽ tiếp tục")
    custom = load_event(write_event(GOOD_EVENT + 'slate = false\nslate_text = "Nghỉ giải lao\\nBreak"\n')).ingest
    assert (custom.slate, custom.slate_text) == (False, "Nghỉ giải lao\nBreak")
    path = write_event(GOOD_EVENT + f'slate = "yes"\nslate_text = "{"x" * 201}"\n')
    with pytest.raises(ConfigError) as caught:
        load_event(path)
    assert caught.value.issues == [
        f"{path}: ingest.slate: 'yes' is a str, expected true or false",
        f"{path}: ingest.slate_text: '{'x' * 56}... is too long or has control characters, expected at most 200 "
        "characters of text (new lines allowed)",
    ]
    path = write_event(GOOD_EVENT + 'slate_text = ""\n')
    with pytest.raises(ConfigError) as caught:
        load_event(path)
    assert caught.value.issues == [f"{path}: ingest.slate_text: is empty, expected a string"]


LISTENING = """
    [event]
    name = "x"
    [ingest]
    url = "rtmp://0.0.0.0:1935/live"
"""


def test_check_reports_placeholders_by_entry_name_and_nothing_else(write_event, capsys, monkeypatch):
    path = write_event(LISTENING + """
        [[destination]]
        name = "zalo"
        url = "rtmp://live.zalo.example/live"
        [[destination]]
        name = "own"
        url = "rtmps://ingest.example.com/app"
        [[audience]]
        name = "yt"
        platform = "youtube"
        video_id = "REPLACE_WITH_VIDEO_ID"
        credential_env = "YT_TOKEN"
        api_base = "https://api.invalid"
        [[audience]]
        name = "fb"
        platform = "facebook"
        live_video_id = "…"
        credential_env = "FB_TOKEN"
        """)
    monkeypatch.setenv("YT_TOKEN", "yt-placeholder-token")
    monkeypatch.setenv("FB_TOKEN", "fb-placeholder-token")
    code, out, err = run_check(path, capsys)
    assert code == 2 and "ok" not in out
    keys = [line[len(str(path)) + 2:].split(": '")[0].split(": …")[0] for line in err.strip().splitlines()]
    assert keys == ['destination "zalo": url', 'destination "own": url', 'audience "yt": video_id',
                    'audience "yt": api_base', 'audience "fb": live_video_id'], err
    assert "live.zalo.example, a placeholder host" in err and "'REPLACE_WITH_VIDEO_ID' is a placeholder" in err


def test_a_misspelt_key_is_one_problem_with_the_right_key_suggested(write_event, capsys, monkeypatch):
    monkeypatch.setenv("FB_MISSPELT_KEY", "fb-misspelt-key")
    monkeypatch.setenv("YT_MISSPELT", "yt-misspelt-token")
    path = write_event(LISTENING + """
        [[destination]]
        name = "facebook-qmg"
        platfrom = "facebook"
        key_env = "FB_MISSPELT_KEY"
        [[audience]]
        nmae = "yt"
        platfrom = "youtube"
        vidoe_id = "abc"
        credential_env = "YT_MISSPELT"
        [console]
        lisen = "127.0.0.1:8080"
        """)
    code, _, err = run_check(path, capsys)
    assert code == 2
    assert [line.split(" (expected one of ")[0] for line in err.strip().splitlines()] == [
        f'{path}: destination "facebook-qmg": platfrom: unknown key, did you mean "platform"?',
        f'{path}: audience "yt": nmae: unknown key, did you mean "name"?',
        f'{path}: audience "yt": platfrom: unknown key, did you mean "platform"?',
        f'{path}: audience "yt": vidoe_id: unknown key, did you mean "video_id"?',
        f'{path}: console.lisen: unknown key, did you mean "listen"?',
    ]


def test_the_shipped_example_fails_check_only_on_what_must_be_filled_in(capsys, monkeypatch):
    """The example is a template: with every secret set, check names exactly its placeholders, nothing else."""
    example = Path(__file__).resolve().parents[1] / "examples" / "hdnd-question-session.toml"
    for name in re.findall(r'_env = "([A-Z_]+)"', example.read_text(encoding="utf-8")):
        monkeypatch.setenv(name, f"example-secret-{name.lower()}")
    code, out, err = run_check(example, capsys)
    assert code == 2 and "ok:" not in out
    assert err.strip().splitlines() == [
        f"{example}: destination \"zalo\": url: 'rtmp://live.zalo.example/live' points at live.zalo.example, a "
        "placeholder host that does not exist, expected the platform's real address",
        f"{example}: audience \"youtube-qmg\": video_id: 'REPLACE_WITH_VIDEO_ID' is a placeholder, "
        "expected the real value",
        f"{example}: audience \"facebook-qmg\": live_video_id: 'REPLACE_WITH_LIVE_VIDEO_ID' is a placeholder, "
        "expected the real value",
    ]


def test_a_change_from_the_console_is_checked_like_the_file_and_a_new_video_drops_its_old_chat_id(write_event):
    from streamctl.config import audience_from_api

    path = write_event('[event]\nname = "x"\n[[audience]]\nname = "yt"\nplatform = "youtube"\n'
                       'video_id = "v1"\nlive_chat_id = "chat-of-v1"\ncredential_env = "YT_TOKEN"\n')
    current = load_event(path, environ={"YT_TOKEN": "t"}).audience[0]
    changed = audience_from_api(current, {"video_id": "v2", "interval": 3})
    assert (changed.options.video_id, changed.options.live_chat_id, changed.interval) == ("v2", None, 3.0)
    assert changed.credential == "t" and changed.options.transport == "stream"
    both = audience_from_api(current, {"video_id": "v2", "live_chat_id": "chat-of-v2"})
    assert both.options.live_chat_id == "chat-of-v2"
    assert audience_from_api(current, {"enabled": False}).options == current.options
    with pytest.raises(ConfigError) as caught:
        audience_from_api(current, {"video_id": "", "credential_env": "X", "colour": "red"})
    assert caught.value.issues == [
        "request: credential_env: cannot be changed while running, expected PUT /api/audience/yt/credential "
        "to replace the secret",
        "request: colour: unknown key, expected one of api_base, credentials_file, daily_quota, enabled, interval, "
        "live_chat_id, planned_hours, transport, video_id",
        "request: video_id: is empty, expected a string",
    ]


def test_a_backup_ingest_has_its_own_form_and_key_and_a_failback(write_event, monkeypatch):
    monkeypatch.setenv("BACKUP_PASS", "backup-pass-phrase")
    event = load_event(write_event("""
        [event]
        name = "x"
        [ingest]
        url = "rtmp://0.0.0.0:1935/live"
        backup_url = "srt://0.0.0.0:9001?mode=listener"
        backup_key_env = "BACKUP_PASS"
        failback = "manual"
        failback_after_s = 4
    """))
    backup = event.ingest.backup
    assert (backup.kind, backup.key, backup.slate) == ("srt_listen", "backup-pass-phrase", False)
    assert (event.ingest.failback, event.ingest.failback_after_s) == ("manual", 4.0)
    plain = load_event(write_event('[event]\nname = "x"\n[ingest]\nurl = "testsrc"\n', name="plain.toml"))
    assert (plain.ingest.backup, plain.ingest.failback, plain.ingest.failback_after_s) == (None, "auto", 10.0)


def test_backup_ingest_mistakes_name_the_key(write_event, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    path = write_event("""
        [event]
        name = "x"
        [ingest]
        url = "rtmp://0.0.0.0:1935/live"
        backup_url = "rtmp://0.0.0.0/live"
        backup_key_env = "NO_SUCH_KEY"
        failback = "sometimes"
        failback_after_s = -1
    """)
    with pytest.raises(ConfigError) as caught:
        load_event(path)
    assert caught.value.issues == [
        f"{path}: ingest.backup_key_env: environment variable NO_SUCH_KEY is not set, expected it to hold the secret",
        f"{path}: ingest.failback: 'sometimes' is not known, expected \"auto\" or \"manual\"",
        f"{path}: ingest.failback_after_s: -1 is out of range, expected 0 to 3600 seconds",
        f"{path}: ingest.backup_url: 'rtmp://0.0.0.0/live' listens on the same port as ingest.url, expected another "
        "port for the backup encoder",
    ]
    lone = write_event('[event]\nname = "x"\n[ingest]\nurl = "testsrc"\nfailback = "manual"\n', name="lone.toml")
    with pytest.raises(ConfigError) as caught:
        load_event(lone)
    assert caught.value.issues == [f"{lone}: ingest.backup_url: missing, expected a backup input since "
                                   "backup_key_env or failback is set"]
