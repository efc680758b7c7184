"""Accounts (console/accounts.py) and sign-in, sessions, CSRF and limits (console/auth.py) on a real console."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from urllib.parse import unquote

import pytest

from streamctl.console.accounts import add_user, authenticate, hash_password, verify_password
from streamctl.console.auth import LoginLimiter
from streamctl.store import Store

from .console_harness import PASSWORD, running_console


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "a.db")
    yield s
    s.close()


def test_passwords_are_salted_scrypt_hashes(store):
    add_user(store, "lan", "moderator", PASSWORD)
    add_user(store, "minh", "moderator", PASSWORD)
    hashes = [r["password_hash"] for r in store.query("SELECT password_hash FROM users ORDER BY id")]
    assert hashes[0] != hashes[1]  # per-user salt
    scheme, n, r, p, _salt, _digest = hashes[0].split("$")
    assert scheme == "scrypt" and int(n) >= 2**14 and int(r) >= 8 and int(p) >= 1
    assert PASSWORD not in hashes[0]
    assert verify_password(PASSWORD, hashes[0]) and not verify_password(PASSWORD + "x", hashes[0])
    assert not verify_password(PASSWORD, "md5$abc") and not verify_password(PASSWORD, "garbage")
    assert authenticate(store, "lan", PASSWORD)["role"] == "moderator"
    assert authenticate(store, "lan", "wrong password") is None
    assert authenticate(store, "nobody", PASSWORD) is None
    assert hash_password("x") != hash_password("x")


@pytest.mark.parametrize(("args", "message"), [
    (("bad name!", "moderator", PASSWORD), "user name"),
    (("", "moderator", PASSWORD), "user name"),
    (("ok", "admin", PASSWORD), "role 'admin'"),
    (("ok", "overlay", PASSWORD), "role 'overlay'"),
    (("ok", "moderator", "short"), "8 to 1024 characters"),
    (("ok", "moderator", PASSWORD, "fr"), "language 'fr'"),
])
def test_bad_accounts_are_refused_clearly(store, args, message):
    with pytest.raises(ValueError, match=message):
        add_user(store, *args)
    assert store.query("SELECT * FROM users") == []


def test_a_user_exists_once(store):
    add_user(store, "lan", "official", PASSWORD)
    with pytest.raises(ValueError, match="already exists"):
        add_user(store, "lan", "moderator", PASSWORD)


def test_user_add_command_creates_an_account(tmp_path, write_event):
    event = write_event("""
        [event]
        name = "Thử"
        timezone = "Asia/Ho_Chi_Minh"
        database = "e.db"
    """)
    run = subprocess.run([sys.executable, "-m", "streamctl", "user", "add", "hoa", "--role", "moderator",
                          "--event", str(event), "--password-stdin", "--lang", "en"],
                         input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert PASSWORD not in run.stdout + run.stderr
    store = Store(tmp_path / "e.db")
    try:
        assert authenticate(store, "hoa", PASSWORD) == {"id": 1, "username": "hoa", "role": "moderator", "lang": "en"}
    finally:
        store.close()
    again = subprocess.run([sys.executable, "-m", "streamctl", "user", "add", "hoa", "--role", "moderator",
                            "--event", str(event), "--password-stdin"],
                           input="short\n", capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "8 to 1024 characters" in again.stderr


def test_the_limiter_counts_failures_per_name_and_address():
    clock = [1000.0]
    limiter = LoginLimiter(per_name=3, per_address=5, window_s=60, clock=lambda: clock[0])
    for _ in range(3):
        assert limiter.retry_after("lan", "10.0.0.1") == 0
        limiter.failed("lan", "10.0.0.1")
    assert 59 < limiter.retry_after("LAN", "10.0.0.2") <= 60  # per name, whatever the address
    assert limiter.retry_after("minh", "10.0.0.1") == 0
    limiter.failed("minh", "10.0.0.1")
    limiter.failed("hai", "10.0.0.1")
    assert limiter.retry_after("someone", "10.0.0.1") > 0  # per address, whatever the name
    clock[0] += 61
    assert limiter.retry_after("lan", "10.0.0.1") == 0


async def test_sign_in_sets_a_strict_httponly_session_and_goes_to_the_role_page(tmp_path):
    async with running_console(tmp_path) as console:
        client = await console.client()
        response = await client.sign_in("mod1", PASSWORD)
        assert response.status == 302 and response.headers["Location"] == "/moderate"
        cookie = next(v for k, v in response.headers.items() if k == "Set-Cookie" and "streamctl_session=" in v)
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        status, _ = await client.page("/moderate")
        assert status == 200
        for name, home in (("op", "/operate"), ("chair", "/official")):
            other = await console.client()
            assert (await other.sign_in(name, PASSWORD)).headers["Location"] == home


async def test_wrong_password_and_forged_forms_are_refused(tmp_path):
    async with running_console(tmp_path) as console:
        client = await console.client()
        response = await client.sign_in("mod1", "hunter2-not-the-password")
        assert response.status == 401
        assert "hunter2" not in await response.text()  # the form comes back without the password
        status, text = await client.page("/moderate")
        assert status == 302
        # No login token (a form posted from another site), or another site's Origin.
        async with client.session.post(f"{console.url}/login", data={"username": "mod1", "password": PASSWORD},
                                       headers={"Origin": console.origin}, allow_redirects=False) as r:
            assert r.status == 403
        response = await client.sign_in("mod1", PASSWORD, origin="http://evil.example")
        assert response.status == 403


async def test_a_script_without_origin_signs_in_with_the_forms_token(tmp_path):
    """curl or requests send no Origin or Referer: the form's token is enough, another site's Referer is not."""
    async with running_console(tmp_path) as console:
        client = await console.client()

        async def post(headers: dict, with_token: bool = True) -> int:
            async with client.session.get(f"{console.url}/login") as r:
                token = re.search(r'name="csrf_token" value="([^"]+)"', await r.text()).group(1)
            form = {"username": "mod1", "password": PASSWORD, **({"csrf_token": token} if with_token else {})}
            async with client.session.post(f"{console.url}/login", data=form, headers=headers,
                                           allow_redirects=False) as r:
                return r.status

        assert await post({}, with_token=False) == 403
        assert await post({"Referer": "http://evil.example/page"}) == 403
        assert await post({}) == 302
        status, _ = await client.page("/moderate")
        assert status == 200


async def test_sign_in_is_rate_limited(tmp_path):
    async with running_console(tmp_path) as console:
        client = await console.client()
        for _ in range(5):
            assert (await client.sign_in("mod2", "guessing")).status == 401
        blocked = await client.sign_in("mod2", PASSWORD)  # even the right password waits now
        assert blocked.status == 429 and int(blocked.headers["Retry-After"]) > 0
        assert (await client.sign_in("mod1", PASSWORD)).status == 302  # another account is not locked out


async def test_next_goes_back_to_the_page_but_never_off_site(tmp_path):
    async with running_console(tmp_path) as console:
        client = await console.client()
        async with client.session.get(f"{console.url}/official", allow_redirects=False) as r:
            assert unquote(r.headers["Location"]) == "/login?next=/official"
        for target, expected in (("/official", "/official"), ("//evil.example/x", "/moderate"),
                                 ("https://evil.example/", "/moderate"), ("/\\evil.example", "/moderate")):
            client = await console.client()
            async with client.session.get(f"{console.url}/login", params={"next": target}) as r:
                text = await r.text()
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)
            nxt = html.unescape(re.search(r'name="next" value="([^"]*)"', text).group(1))
            async with client.session.post(f"{console.url}/login", allow_redirects=False,
                                           data={"username": "mod1", "password": PASSWORD, "csrf_token": csrf,
                                                 "next": target}, headers={"Origin": console.origin}) as r:
                assert r.status == 302 and r.headers["Location"] == expected, (target, nxt)


async def test_sign_out_ends_the_session(tmp_path):
    async with running_console(tmp_path) as console:
        client = await console.client("mod1")
        status, _ = await client.call("POST", "/logout", csrf=False)
        assert status == 403  # sign-out is a state change too: no token, no sign-out
        async with client.session.post(f"{console.url}/logout", data={"csrf_token": client.csrf},
                                       headers={"Origin": console.origin}, allow_redirects=False) as r:
            assert r.status == 302
        assert (await client.call("GET", "/api/questions"))[0] == 401
        assert console.controller.store.query("SELECT * FROM sessions") == []


async def test_expired_sessions_no_longer_count(tmp_path):
    async with running_console(tmp_path) as console:
        client = await console.client("mod1")
        assert (await client.call("GET", "/api/questions"))[0] == 200
        with console.controller.store.transaction() as db:
            db.execute("UPDATE sessions SET expires_at = 0")
        assert (await client.call("GET", "/api/questions"))[0] == 401


async def test_bearer_tokens_work_without_csrf_and_cookies_need_it(tmp_path):
    async with running_console(tmp_path) as console:
        (c,) = await console.feed("Chúc mừng")
        token = console.controller.store.create_token("moderator", "stream deck")
        bot = await console.client()
        status, body = await bot.call("POST", "/api/questions", {"comment_id": c["id"]}, origin=None,
                                      headers={"Authorization": f"Bearer {token}"})
        assert status == 201, body
        mod = await console.client("mod1")
        qid = body["question"]["id"]
        assert (await mod.call("POST", f"/api/questions/{qid}/approve", csrf=False))[0] == 403
        assert (await mod.call("POST", f"/api/questions/{qid}/approve", origin=None))[0] == 403
        assert (await mod.call("POST", f"/api/questions/{qid}/approve", origin="http://evil.example"))[0] == 403
        status, body = await mod.call("POST", f"/api/questions/{qid}/approve")
        assert status == 200 and body["question"]["state"] == "approved"
        bad = await console.client()
        assert (await bad.call("GET", "/api/questions", headers={"Authorization": "Bearer nope"}))[0] == 401


async def test_the_language_is_remembered_per_user(tmp_path):
    async with running_console(tmp_path) as console:
        client = await console.client("mod1")
        _, text = await client.page("/moderate")
        assert 'lang="vi"' in text and "Bình luận" in text
        async with client.session.post(f"{console.url}/account/lang", allow_redirects=False,
                                       data={"csrf_token": client.csrf, "lang": "en", "next": "/moderate"},
                                       headers={"Origin": console.origin}) as r:
            assert r.status == 302 and r.headers["Location"] == "/moderate"
        _, text = await client.page("/moderate")
        assert 'lang="en"' in text and "Comments" in text
        assert console.controller.store.query_one("SELECT lang FROM users WHERE username='mod1'")["lang"] == "en"
