"""Platform accounts: `streamctl auth youtube|facebook` end to end against the fakes, Google tokens refreshed
before they expire (and after a 401) with no gap in chat, a revoked sign-in that says how to fix it,
Page-token expiry and Graph version warnings."""

# ruff: noqa: F811 - the shared fixtures `rig` and `http` are imported, then asked for by name
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import sys
import time
from datetime import date

import pytest

from streamctl.accounts import facebook as fbacc
from streamctl.accounts.google import REVOKED, CredentialError, GoogleCredentials
from streamctl.accounts.registry import Accounts
from streamctl.audience.poller import Poller
from streamctl.audience.youtube import YouTubeSource
from streamctl.events import Alert, CommentsFetched, SourceStateChanged
from streamctl.fakes.facebook_live import FakeFacebookLive
from streamctl.fakes.youtube_live import FakeYouTubeLive
from tests.audience_harness import FAST, Rig, audience, http, rig  # noqa: F401 - fixtures

from .console_harness import running_console
from .receivers import wait_for
from .test_broadcasts import FB_BROADCAST_EVENT, collect_alerts, write_creds, youtube_tables

pytestmark = pytest.mark.timeout(60)


async def run_cli(*args: str, env: dict | None = None, timeout: float = 30) -> tuple[int, str, str]:  # noqa: ASYNC109
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamctl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})})
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode(), err.decode()


# ---- streamctl auth youtube -------------------------------------------------------------------------


async def test_auth_youtube_runs_the_device_flow_and_writes_an_owner_only_authorized_user_file(tmp_path):
    async with FakeYouTubeLive() as yt:
        (tmp_path / "client.json").write_text(json.dumps(yt.client_secrets()))
        yt.oauth.device_script = ["authorization_pending", "slow_down", "ok"]
        code, out, err = await run_cli("auth", "youtube", "--client-secrets", str(tmp_path / "client.json"),
                                       "-o", str(tmp_path / "yt.json"))
        assert code == 0, err
        user_code = next(iter(yt.oauth.device_codes.values()), None) or out.split("the code ")[1].split()[0]
        assert "https://www.google.com/device" in out and user_code in out
        path = tmp_path / "yt.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        saved = json.loads(path.read_text())
        assert saved == {"type": "authorized_user", "client_id": yt.oauth.client_id,
                         "client_secret": yt.oauth.client_secret, "refresh_token": yt.oauth.refresh_token,
                         "token_uri": yt.url + "/token", "scopes": [yt.oauth.scope]}
        for secret in (yt.oauth.client_secret, yt.oauth.refresh_token):
            assert secret not in out and secret not in err
        polls = yt.oauth.device_polls
        assert len(polls) == 3
        assert polls[1] - polls[0] >= 0.9  # the interval it was given
        assert polls[2] - polls[1] >= 5.9  # slow_down: five more seconds
        # The file works: a token from it.
        accounts = Accounts()
        try:
            token = await accounts.google(path).token()
            assert yt.oauth.valid(token)
        finally:
            await accounts.close()


async def test_auth_youtube_says_what_to_do_when_the_sign_in_is_refused_and_writes_nothing(tmp_path):
    async with FakeYouTubeLive() as yt:
        (tmp_path / "client.json").write_text(json.dumps(yt.client_secrets()))
        yt.oauth.device_script = ["access_denied"]
        code, out, err = await run_cli("auth", "youtube", "--client-secrets", str(tmp_path / "client.json"),
                                       "-o", str(tmp_path / "yt.json"))
        assert code == 1 and "refused" in err and "Allow" in err
        assert not (tmp_path / "yt.json").exists()
        code, _, err = await run_cli("auth", "youtube", "--client-secrets", str(tmp_path / "none.json"),
                                     "-o", str(tmp_path / "yt.json"))
        assert code == 2 and "none.json: not found" in err and "TVs and Limited Input devices" in err


# ---- streamctl auth facebook ------------------------------------------------------------------------


async def test_auth_facebook_exchanges_a_user_token_for_the_page_token_and_shows_its_expiry(tmp_path):
    async with FakeFacebookLive() as fb:
        code, out, err = await run_cli("auth", "facebook", "--page", fb.page_id, "--user-token-env", "FB_USER",
                                       "-o", str(tmp_path / "fb.json"), "--api-base", fb.api_base,
                                       env={"FB_USER": fb.user_token})
        assert code == 0, err
        path = tmp_path / "fb.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        saved = json.loads(path.read_text())
        assert saved["access_token"] == fb.token and saved["page_id"] == fb.page_id
        assert saved["expires_at"] == 0 and saved["data_access_expires_at"] > time.time()
        assert "never expires" in out and fb.page_name in out
        assert fb.token not in out + err and fb.user_token not in out + err
        assert any(p.endswith("/debug_token") for _, p, _ in fb.requests)
        # A user token Facebook refuses (code 190): a clear error, no file.
        code, out, err = await run_cli("auth", "facebook", "--page", fb.page_id, "--user-token-env", "FB_USER",
                                       "-o", str(tmp_path / "bad.json"), "--api-base", fb.api_base,
                                       env={"FB_USER": "EAA-expired"})
        assert code == 1 and "#190" in err and "make a new one" in err and "EAA-expired" not in err
        assert not (tmp_path / "bad.json").exists()


async def test_check_warns_of_a_page_token_that_expires_within_seven_days(tmp_path, write_event):
    soon = time.time() + 3 * 86400
    creds = {"type": "facebook_page", "page_id": "1", "page_name": "P", "access_token": "EAAPageToken12345",
             "expires_at": soon, "data_access_expires_at": 0, "api_base": "https://graph.facebook.com/v20.0"}
    (tmp_path / "fb.json").write_text(json.dumps(creds))
    path = write_event(FB_BROADCAST_EVENT)
    code, out, err = await run_cli("check", str(path), "--probe-timeout", "0.5")
    assert "credential.expiring" in err and "the Page token for P expires at" in err
    assert "streamctl auth facebook" in err
    assert "Graph API v20.0 ended on 2026-09-24" in err and "v26.0" in err
    assert "EAAPageToken12345" not in out + err


def test_graph_versions_warn_within_thirty_days_of_their_end():
    assert fbacc.version_warning("https://graph.facebook.com/v21.0", today=date(2026, 12, 1)) is None
    warning = fbacc.version_warning("https://graph.facebook.com/v21.0/", today=date(2027, 1, 1))
    assert warning == "Graph API v21.0 ends on 2027-01-21 (20 days): set api_base to https://graph.facebook.com/v26.0"
    assert "ended on" in fbacc.version_warning("https://graph.facebook.com/v21.0", today=date(2027, 2, 1))
    assert fbacc.version_warning("https://graph.facebook.com/v26.0", today=date(2030, 1, 1)) is None  # not announced
    assert fbacc.version_warning("http://127.0.0.1:9/fb", today=date(2030, 1, 1)) is None
    assert fbacc.default_api_base() == "https://graph.facebook.com/v26.0"


# ---- tokens refreshed while the chat flows ----------------------------------------------------------


@contextlib.asynccontextmanager
async def chat_with_account(tmp_path, rig, http, transport: str = "poll", **fake):
    """A live fake chat read by a real poller whose YouTube source signs with a credentials file."""
    async with FakeYouTubeLive(interval_ms=60, live=True, **fake) as yt:
        yt.video_id, yt.chat_id = "vidLive0001", "KicKChatLive"
        path = tmp_path / "yt.json"
        path.write_text(json.dumps(yt.authorized_user()))
        accounts = Accounts()
        try:
            cfg = audience("yt", "youtube", video_id=yt.video_id, api_base=yt.url, transport=transport)
            poller = Poller(YouTubeSource(cfg, http, signer=accounts.google(path)), rig.bus, FAST)
            rig.start(poller)
            yield yt, poller, path
        finally:
            await accounts.close()


@pytest.mark.parametrize("transport", ["poll", "stream"])
async def test_tokens_that_expire_every_few_seconds_are_refreshed_before_expiry_with_no_gap_in_chat(
        tmp_path, rig, http, transport):
    """Access tokens living 3 s over 9 s of chat: several refreshes, every message stored, none late."""
    async with chat_with_account(tmp_path, rig, http, transport, token_lifetime_s=3.0) as (yt, _, _):
        posted: dict[str, float] = {}
        started = time.monotonic()
        while time.monotonic() - started < 9:
            msg = yt.post_comment("An", f"m{len(posted)}")
            posted[msg] = time.time()
            await asyncio.sleep(0.25)
        await rig.until(lambda: set(rig.ids("yt")) >= set(posted), timeout=5, what="every message")
        changes = [e for e in rig.drained() if isinstance(e, SourceStateChanged)]  # before the fake goes away
    assert yt.oauth.refreshes >= 3, yt.oauth.refreshes
    fetched_at: dict[str, float] = {}
    for event in rig.drained():
        if isinstance(event, CommentsFetched):
            for c in event.comments:
                fetched_at.setdefault(c.platform_id, c.received_at)
    lag = max(fetched_at[m] - at for m, at in posted.items())
    assert lag < 1.5, f"a message waited {lag:.2f} s: a gap in chat"
    states = [e.state for e in changes]
    assert "backoff" not in states and "failed" not in states, [e.error for e in changes]


async def test_a_refused_access_token_is_refreshed_and_the_call_made_again(tmp_path, rig, http):
    async with chat_with_account(tmp_path, rig, http) as (yt, _, _):
        first = yt.post_comment("An", "before")
        await rig.until(lambda: first in rig.ids("yt"), what="first")
        for token in list(yt.oauth.issued):
            yt.oauth.issued[token] = time.time() - 1  # revoked early by Google: the next call gets 401
        second = yt.post_comment("An", "after")
        await rig.until(lambda: second in rig.ids("yt"), what="after the 401")
    assert yt.oauth.refreshes == 2
    assert not [e for e in rig.drained() if isinstance(e, Alert)]


async def test_a_revoked_refresh_token_is_an_alert_that_names_the_fix(tmp_path, rig, http):
    async with FakeYouTubeLive() as gone:
        refresh_token = gone.oauth.refresh_token
    async with chat_with_account(tmp_path, rig, http) as (yt, poller, path):
        yt.oauth.revoke()
        await rig.until(lambda: any(isinstance(e, Alert) for e in rig.drained()), what="an alert")
        await asyncio.sleep(0.3)
    alerts = [e for e in rig.drained() if isinstance(e, Alert)]
    assert len(alerts) == 1, alerts  # once, not per retry
    alert = alerts[0]
    assert alert.level == "error" and alert.code == "audience.blocked"
    assert "invalid_grant" in alert.message and "streamctl auth youtube" in alert.message
    assert "streamctl auth youtube" in alert.params["fix"]
    assert str(path) in alert.message
    assert poller.state == "failed"
    assert refresh_token not in alert.message and refresh_token not in json.dumps(alert.params)


async def test_a_revoked_sign_in_for_a_destination_is_a_credential_alert(tmp_path):
    async with FakeYouTubeLive() as yt:
        yt.oauth.revoke()
        creds = write_creds(tmp_path, yt.authorized_user(), "yt.json")
        async with running_console(tmp_path, tables=youtube_tables(yt, creds), prepare=collect_alerts()) as console:
            await wait_for(lambda: [a for a in console.controller.test_alerts if a.code == "credential.revoked"],
                           10, "credential.revoked")
            alert = next(a for a in console.controller.test_alerts if a.code == "credential.revoked")
            assert alert.level == "error" and "streamctl auth youtube" in alert.message
            assert console.controller.audience.pollers["yt-qmg"].state == "waiting"  # for the broadcast, not failing


async def test_credentials_refresh_once_for_many_callers_and_honour_token_uri(tmp_path):
    async with FakeYouTubeLive(token_lifetime_s=60) as yt:
        data = yt.authorized_user()
        path = tmp_path / "yt.json"
        path.write_text(json.dumps(data))
        accounts = Accounts()
        try:
            creds = accounts.google(path)
            assert accounts.google(str(path)) is creds  # one object per file
            tokens = await asyncio.gather(*(creds.token() for _ in range(10)))
            assert len(set(tokens)) == 1 and yt.oauth.refreshes == 1
            path.write_text(json.dumps({**data, "token_uri": yt.url + "/nowhere"}))
            other = GoogleCredentials.from_file(path, accounts.session)
            with pytest.raises(CredentialError) as e:
                await other.token()
            assert e.value.kind != REVOKED and "/nowhere" in str(e.value)
        finally:
            await accounts.close()


async def test_static_credentials_keep_working(rig, http):
    async with FakeYouTubeLive(interval_ms=60, live=True, token="AIzaStaticKey123") as yt:
        yt.video_id, yt.chat_id = "vidLive0001", "KicKChatLive"
        cfg = audience("yt", "youtube", credential="AIzaStaticKey123", video_id=yt.video_id, api_base=yt.url,
                       transport="poll")
        rig.start(Poller(YouTubeSource(cfg, http), rig.bus, FAST))
        msg = yt.post_comment("An", "key")
        await rig.until(lambda: msg in rig.ids("yt"), what="read with an API key")
        assert any(q.get("key") == "AIzaStaticKey123" for _, p, q in yt.requests if p.endswith("/messages"))
