"""The account and token housekeeping commands (cli.py), run as a user types them, against a running console."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import pytest

from streamctl.console.accounts import authenticate
from streamctl.store import Store

from .acceptance_helpers import cli
from .console_harness import PASSWORD, running_console

NEW_PASSWORD = "a new password for lan"


def event_file(write_event):
    return str(write_event("""
        [event]
        name = "Thử"
        timezone = "Asia/Ho_Chi_Minh"
        database = "e.db"
    """))


def users_in(tmp_path) -> list[str]:
    store = Store(tmp_path / "e.db")
    try:
        return [r["username"] for r in store.query("SELECT username FROM users")]
    finally:
        store.close()


async def test_user_add_without_a_terminal_says_to_use_password_stdin(tmp_path, write_event):
    event = event_file(write_event)
    for command in (("user", "add", "lan", "--role", "moderator"), ("user", "passwd", "lan")):
        result = await cli(*command, "--event", event)  # standard input is /dev/null: no terminal
        assert result.code == 2, result
        assert "Traceback" not in result.err and "--password-stdin" in result.err, result.err
        assert "no terminal" in result.err
    assert users_in(tmp_path) == []


async def test_users_are_listed_given_new_passwords_and_removed(tmp_path, write_event):
    event = event_file(write_event)
    for name, role in (("lan", "moderator"), ("chair", "official")):
        made = await cli("user", "add", name, "--role", role, "--event", event, "--password-stdin", stdin=PASSWORD)
        assert made.code == 0, made.err
    listed = await cli("user", "list", "--event", event)
    assert listed.code == 0, listed.err
    rows = [line.split() for line in listed.out.splitlines()]
    assert rows[0][:3] == ["name", "role", "language"]
    assert [r[:3] for r in rows[1:]] == [["chair", "official", "vi"], ["lan", "moderator", "vi"]]
    assert PASSWORD not in listed.out and "scrypt" not in listed.out

    changed = await cli("user", "passwd", "lan", "--event", event, "--password-stdin", stdin=NEW_PASSWORD)
    assert changed.code == 0, changed.err
    store = Store(tmp_path / "e.db")
    try:
        assert authenticate(store, "lan", NEW_PASSWORD) and authenticate(store, "lan", PASSWORD) is None
    finally:
        store.close()
    short = await cli("user", "passwd", "lan", "--event", event, "--password-stdin", stdin="short")
    assert short.code == 2 and "8 to 1024 characters" in short.err
    unknown = await cli("user", "passwd", "nobody", "--event", event, "--password-stdin", stdin=NEW_PASSWORD)
    assert unknown.code == 2 and "no user 'nobody'" in unknown.err and "Traceback" not in unknown.err

    removed = await cli("user", "remove", "lan", "--event", event)
    assert removed.code == 0, removed.err
    assert users_in(tmp_path) == ["chair"]
    again = await cli("user", "remove", "lan", "--event", event)
    assert again.code == 2 and "no user 'lan'" in again.err


async def test_token_list_shows_what_each_token_is_but_never_the_token(tmp_path, write_event):
    event = event_file(write_event)
    empty = await cli("token", "list", "--event", event)
    assert empty.code == 0 and "no tokens" in empty.out
    made = [await cli("token", "create", "--role", role, "--label", label, "--event", event)
            for role, label in (("overlay", "OBS máy 2"), ("operator", "stream deck"))]
    tokens = [m.out.strip() for m in made]
    assert all(m.code == 0 for m in made) and all(t.startswith("sct_") for t in tokens)
    listed = await cli("token", "list", "--event", event)
    assert listed.code == 0, listed.err
    assert not [t for t in tokens if t in listed.out or t[-12:] in listed.out]
    lines = listed.out.splitlines()
    assert re.match(r"id\s+role\s+label\s+created \(Asia/Ho_Chi_Minh\)\s+last used\s+state", lines[0]), lines[0]
    assert re.match(r"1\s+overlay\s+OBS máy 2\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+never\s+active$", lines[1]), lines[1]
    assert re.match(r"2\s+operator\s+stream deck\s+.*never\s+active$", lines[2]), lines[2]

    revoked = await cli("token", "revoke", "1", "--event", event)
    assert revoked.code == 0, revoked.err
    assert re.search(r"^1\s+overlay.*revoked$", (await cli("token", "list", "--event", event)).out, re.M)
    for bad in ("1", "99"):
        refused = await cli("token", "revoke", bad, "--event", event)
        assert refused.code == 2 and "Traceback" not in refused.err, refused
    store = Store(tmp_path / "e.db")
    try:
        assert store.token_role(tokens[0]) is None and store.token_role(tokens[1]) == "operator"
    finally:
        store.close()


async def closed_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> float:
    """Read the socket until the server closes it; how long that took."""
    started = time.monotonic()
    async with asyncio.timeout(seconds):
        async for msg in ws:
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
    return time.monotonic() - started


async def test_revoking_a_token_or_removing_a_user_ends_their_access_at_once(tmp_path):
    async with running_console(tmp_path) as console:
        event = str(tmp_path / "event.toml")
        made = await cli("token", "create", "--role", "operator", "--label", "script", "--event", event)
        token = made.out.strip()
        bearer = {"Authorization": f"Bearer {token}"}
        script = await console.client()
        assert (await script.call("GET", "/api/destinations", headers=bearer))[0] == 200
        listed = await cli("token", "list", "--event", event)
        assert re.search(r"^1\s+operator\s+script\s+\S+ \S+\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+active$", listed.out, re.M), \
            listed.out  # used once: "last used" has a time now
        token_ws = await script.session.ws_connect(f"{console.url}/ws", headers=bearer)
        moderator = await console.client("mod1")
        session_ws = await moderator.session.ws_connect(f"{console.url}/ws", headers={"Origin": console.origin})

        overlay = (await cli("token", "create", "--role", "overlay", "--event", event)).out.strip()
        overlay_ws = await script.session.ws_connect(f"{console.url}/ws/overlay?token={overlay}")
        assert (await cli("token", "revoke", "1", "--event", event)).code == 0
        assert (await script.call("GET", "/api/destinations", headers=bearer))[0] == 401
        assert await closed_within(token_ws, 5) < 3, "the revoked token's websocket stayed open"
        assert token_ws.close_code == 4401
        assert not session_ws.closed and not overlay_ws.closed
        assert (await cli("token", "revoke", "2", "--event", event)).code == 0
        assert await closed_within(overlay_ws, 5) < 3, "the revoked overlay token's socket stayed open"
        async with script.session.get(f"{console.url}/overlay/question?token={overlay}") as page:
            assert page.status == 401 and "<body></body>" in await page.text()

        assert (await cli("user", "remove", "mod1", "--event", event)).code == 0
        assert (await moderator.call("GET", "/api/comments"))[0] == 401
        assert await closed_within(session_ws, 5) < 3, "the removed user's websocket stayed open"
        status, _ = await moderator.page("/moderate")
        assert status in (302, 303), status


@pytest.mark.parametrize("command", [("user", "list"), ("token", "list")])
async def test_housekeeping_names_a_missing_event_file_cleanly(tmp_path, command):
    result = await cli(*command, "--event", str(tmp_path / "missing.toml"))
    assert result.code == 2 and "Traceback" not in result.err and "missing.toml" in result.err, result
