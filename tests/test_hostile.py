"""The console against hostile clients: every route and every kind of bad credential, path traversal, oversized
bodies, thousands of idle websockets, slowloris (console/limits.py, console/auth.py)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import resource
import secrets
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from streamctl.config import load_event
from streamctl.console.accounts import add_user
from streamctl.console.app import make_app
from streamctl.console.auth import SESSION_COOKIE, create_session
from streamctl.console.limits import Limits
from streamctl.controller import Controller
from streamctl.store import Store

from .conftest import LOOPBACK, free_port
from .console_harness import PASSWORD, USERS, running, running_console, write_event

# Routes anyone may call; each checks what it needs itself (a signature, an overlay token, a form token).
PUBLIC = {
    ("GET", "/healthz"), ("GET", "/"), ("GET", "/login"), ("POST", "/login"), ("GET", "/favicon.ico"),
    ("GET", "/static/{filename}"), ("GET", "/overlay/assets/{filename}"),
    ("GET", "/overlay/{name}"), ("GET", "/ws/overlay"), ("POST", "/api/webhook/{source}"),
    ("POST", "/logout"), ("POST", "/account/lang"),
}
# Guarded routes that check the role inside (pages redirect to the sign-in page instead of answering 401).
PAGE_ROLES = {("GET", "/moderate"): "moderator", ("GET", "/official"): "official", ("GET", "/operate"): "operator",
              ("GET", "/report"): "official", ("GET", "/ws"): "official"}
# Someone who may not do what the role requires (None: every signed-in role may).
WRONG = {"operator": "mod1", "moderator": "chair", "official": None}


def all_routes(controller) -> list[tuple[str, str, str]]:
    """(method, template, concrete path) of every route of the console app, all areas, new ones included."""
    found = []
    for route in make_app(controller).router.routes():
        info = route.resource.get_info() if route.resource else {}
        template = info.get("formatter") or info.get("path") or (info.get("prefix", "") + "/{filename}")
        if route.method == "HEAD":
            continue
        path = re.sub(r"{(\w+)(:[^}]*)?}", lambda m: {"verb": "hide", "action": "approve", "filename": "x.js",
                                                     "name": "question"}.get(m.group(1), "1"), template)
        found.append((route.method, template, path))
    return found


def required_role(controller, method: str, template: str) -> str | None:
    for route in make_app(controller).router.routes():
        info = route.resource.get_info() if route.resource else {}
        if route.method == method and (info.get("formatter") or info.get("path")) == template:
            role = getattr(route.handler, "required_role", None)
            if role is not None:
                return role
    return PAGE_ROLES.get((method, template))


def refused(status: int, location: str | None) -> bool:
    """Turned away: not signed in, not allowed, or sent to the sign-in page."""
    return status in (401, 403) or (status in (302, 303) and (location or "").startswith("/login"))


async def test_every_route_refuses_signed_out_wrong_role_overlay_forged_expired_and_revoked_credentials(tmp_path):
    async with running_console(tmp_path) as console:
        store = console.controller.store
        routes = all_routes(console.controller)
        assert len(routes) > 40
        overlay_token = store.create_token("overlay", "obs")
        revoked = store.create_token("operator", "lost laptop")
        store.revoke_token(store.tokens()[-1]["id"])
        op_id = store.query_one("SELECT id FROM users WHERE username = 'op'")["id"]
        expired = create_session(store, op_id)
        with store.transaction() as db:
            db.execute("UPDATE sessions SET expires_at = 1")  # every session so far: long past
        signed_in = {name: await console.client(name) for name in ("op", "mod1", "chair")}
        hostile = {
            "signed out": {},
            "forged session": {"Cookie": f"{SESSION_COOKIE}={secrets.token_urlsafe(32)}"},
            "expired session": {"Cookie": f"{SESSION_COOKIE}={expired}"},
            "revoked token": {"Authorization": f"Bearer {revoked}"},
            "made-up token": {"Authorization": f"Bearer {secrets.token_urlsafe(24)}"},
            "overlay token": {"Authorization": f"Bearer {overlay_token}"},
            "overlay token in the query": {},  # ?token= only opens overlays, never the API or pages
        }
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as raw:
            for method, template, path in routes:
                public = (method, template) in PUBLIC
                role = required_role(console.controller, method, template)
                assert public or role, f"{method} {template}: neither public nor guarded; add it to PUBLIC or guard it"
                if public:
                    continue
                for who, headers in hostile.items():
                    url = f"{console.url}{path}" + (f"?token={overlay_token}" if who.endswith("query") else "")
                    async with raw.request(method, url, json={} if method != "GET" else None, allow_redirects=False,
                                           headers={**headers, "Origin": console.url}) as r:
                        assert refused(r.status, r.headers.get("Location")), (who, method, path, r.status)
                wrong = WRONG[role if role in WRONG else "operator"]
                if wrong is not None:
                    client = signed_in[wrong]
                    async with client.session.request(method, f"{console.url}{path}", allow_redirects=False,
                                                      json={} if method != "GET" else None,
                                                      headers={"Origin": console.url, "X-CSRF-Token": client.csrf}
                                                      ) as r:
                        assert r.status == 403, (wrong, method, path, r.status)
            # The public ones hold nothing for the hostile either: overlays and their socket want a real token.
            for path in ("/overlay/question", "/overlay/viewers", "/ws/overlay"):
                for token in ("", secrets.token_urlsafe(24), revoked):
                    async with raw.get(f"{console.url}{path}?token={token}") as r:
                        assert r.status == 401, (path, token)
            async with raw.post(f"{console.url}/api/webhook/nothing", data=b"[]",
                                headers={"X-Signature-256": "sha256=00"}) as r:
                assert r.status == 404


TRAVERSALS = (
    "../../../../../../etc/passwd", "..%2F..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "..%252F..%252Fetc%252Fpasswd", "....//....//etc/passwd", "%2Fetc%2Fpasswd", "..\\..\\..\\etc\\passwd",
    "../../pyproject.toml", "../templates/base.html", "..%2F..%2Fstreamctl%2Fstore.py", "%00../../etc/passwd",
)
LEAKS = ("root:x:0:0", "[build-system]", "{% block", "class Store", "import sqlite3")


async def test_path_traversal_in_static_files_overlays_and_theme_parameters_reaches_nothing(tmp_path):
    async with running_console(tmp_path) as console:
        token = console.controller.store.create_token("overlay", "obs")
        async with aiohttp.ClientSession() as raw:
            urls = []
            for evil in TRAVERSALS:
                urls += [f"/static/{evil}", f"/overlay/assets/{evil}", f"/overlay/{evil}?token={token}"]
                for param in ("theme", "position", "accent", "scale", "lang"):
                    urls.append(f"/overlay/question?token={token}&{param}={evil}")
            for url in urls:
                async with raw.get(f"{console.url}{url}", allow_redirects=False) as r:
                    body = await r.text(errors="replace")
                    assert not any(leak in body for leak in LEAKS), (url, r.status, body[:200])
                    if url.startswith(("/static/", "/overlay/assets/")):
                        assert r.status in (400, 403, 404), (url, r.status)
                    elif "&" not in url:
                        assert r.status in (400, 403, 404), (url, r.status)
                    else:  # a bad look falls back to the default one; the value is never echoed
                        assert r.status == 200, (url, r.status)
                        assert not any(name in body for name in ("passwd", "pyproject", "store.py", "base.html"))


# ---- limits (console/limits.py) --------------------------------------------------------------------------


@asynccontextmanager
async def console_with(tmp: Path, limits: Limits):
    """A running console (no destinations, the test users) with these limits."""
    port = free_port()
    controller = Controller(load_event(write_event(tmp, port, WEBHOOK)))
    controller.console_limits = limits
    for name, role in USERS:
        add_user(controller.store, name, role, PASSWORD)
    async with running(controller):
        yield controller


WEBHOOK = """
[[audience]]
name = "zalo"
platform = "webhook"
secret_env = "STREAMCTL_TEST_HOOK"
"""


async def healthz_time(url: str, local: str = "127.0.0.2") -> float:
    """Seconds for a fresh client (another loopback address) to get /healthz."""
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(local, 0))) as fresh:
        async with asyncio.timeout(5), fresh.get(f"{url}/healthz") as r:
            assert r.status == 200
    return time.monotonic() - started


async def test_bodies_over_the_limit_are_413_and_slow_ones_408_while_healthz_answers_within_a_second(tmp_path,
                                                                                                   monkeypatch):
    monkeypatch.setenv("STREAMCTL_TEST_HOOK", "s")
    limits = Limits(body_bytes=256 * 1024, body_s=1.0)
    async with console_with(tmp_path, limits) as controller:
        url = controller.console_url

        async def huge(path: str) -> int:
            async def body():
                for _ in range(160):  # 10 MiB offered, 64 KiB at a time
                    yield b"x" * 65536
            async with aiohttp.ClientSession() as s:
                try:
                    async with s.post(f"{url}{path}", data=body(), headers={"Content-Length": str(160 * 65536),
                                                                            "Content-Type": "application/json"}) as r:
                        return r.status
                except aiohttp.ClientError:
                    return 413  # the console stopped reading after its limit and closed: refused either way

        async def slow() -> int:
            async def body():
                for _ in range(20):
                    yield b" "
                    await asyncio.sleep(0.25)
            async with aiohttp.ClientSession() as s:
                async with s.post(f"{url}/api/webhook/zalo", data=body(),
                                  headers={"Content-Length": "20", "Content-Type": "application/json"}) as r:
                    return r.status

        uploads = [asyncio.create_task(huge(p)) for p in ("/api/webhook/zalo", "/login", "/api/webhook/zalo") * 3]
        slow_ones = [asyncio.create_task(slow()) for _ in range(3)]
        timings = []
        for _ in range(10):
            timings.append(await healthz_time(url))
            await asyncio.sleep(0.1)
        statuses = await asyncio.gather(*uploads)
        assert set(statuses) <= {413, 403}, statuses  # /login refuses a body without its form token first
        assert 413 in statuses
        assert await asyncio.gather(*slow_ones) == [408, 408, 408]
        assert max(timings) < 1.0, timings
        assert controller.store.query_one("SELECT count(*) FROM comments")[0] == 0


async def test_slowloris_is_bounded_per_address_and_closed_when_idle_while_others_get_in(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMCTL_TEST_HOOK", "s")
    limits = Limits(idle_s=1.5, connections=400, connections_per_address=100)
    async with console_with(tmp_path, limits) as controller:
        port = int(controller.console_url.rsplit(":", 1)[1])
        streams = []
        for _ in range(150):  # one attacker address, more connections than it may hold
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: console\r\n")  # and never the blank line
            streams.append((reader, writer))
        await asyncio.sleep(0.3)
        guard = controller.console_site.guard
        assert guard.by_address.get(LOOPBACK) == 100 and guard.refused >= 50
        # Trickle one header byte at a time: it does not count as progress.
        for _ in range(3):
            for _reader, writer in streams:
                if not writer.is_closing():
                    writer.write(b"X")
            assert await healthz_time(controller.console_url) < 1.0
            await asyncio.sleep(0.3)
        async with asyncio.timeout(5):
            closed = 0
            for reader, _writer in streams:
                try:
                    closed += await reader.read(1024) == b""
                except ConnectionError:
                    closed += 1
        assert closed == 150  # refused at once, or closed once idle for idle_s
        assert guard.by_address.get(LOOPBACK, 0) == 0
        for _reader, writer in streams:
            writer.close()


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def enough_descriptors(needed: int) -> bool:
    """Raise this process's open-file limit (the console child inherits it) towards `needed`; is it there?"""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= needed


async def test_two_thousand_idle_websockets_are_bounded_in_count_and_memory(tmp_path):
    if not enough_descriptors(5000):
        pytest.skip("this machine's hard limit on open files is below the 5000 that 2000 websockets need")
    port = free_port()
    event = write_event(tmp_path, port)
    store = Store(tmp_path / "event.db")
    tokens = [store.create_token("operator", f"script {n}") for n in range(100)]
    store.close()
    with (tmp_path / "run.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "streamctl", "run", str(event)],  # noqa: ASYNC220
                                   stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://{LOOPBACK}:{port}"
    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, local_addr=(f"127.0.0.{n}", 0)))
                for n in range(10, 20)]  # ten client addresses, each under the per-address connection limit
    sockets: list = []
    try:
        for _ in range(100):
            with contextlib.suppress(aiohttp.ClientError):
                async with sessions[0].get(f"{url}/healthz") as r:
                    if r.status == 200:
                        break
            await asyncio.sleep(0.1)
        before = rss_mb(process.pid)
        gate = asyncio.Semaphore(50)

        async def connect(n: int) -> int:
            async with gate:
                try:
                    ws = await sessions[n % 10].ws_connect(
                        f"{url}/ws", headers={"Authorization": f"Bearer {tokens[n % 100]}"}, heartbeat=None)
                except aiohttp.WSServerHandshakeError as e:
                    return e.status
                sockets.append(ws)
                return 101

        statuses = await asyncio.gather(*(connect(n) for n in range(2000)))
        assert statuses.count(101) == 1000 and statuses.count(503) == 1000, sorted(set(statuses))
        assert max([await healthz_time(url, "127.0.0.3") for _ in range(5)]) < 1.0
        grown = rss_mb(process.pid) - before
        assert grown < 120, f"{grown:.0f} MB for 1000 idle websockets"
        # Closed sockets free their places; one token alone holds at most 32.
        for ws in sockets:
            await ws.close()
        sockets.clear()
        await asyncio.sleep(0.5)
        tokens[:] = [tokens[7]] * 100
        one = await asyncio.gather(*(connect(n) for n in range(40)))
        assert (one.count(101), one.count(503)) == (32, 8)
        (tmp_path / "memory.txt").write_text(f"{grown:.1f} MB for 1000 idle websockets\n")
    finally:
        for ws in sockets:
            await ws.close()
        for session in sessions:
            await session.close()
        process.terminate()
        await asyncio.to_thread(process.wait, 30)
