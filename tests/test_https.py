"""HTTPS for the console (console/https.py, config [console] tls_cert/tls_key/trusted_proxy), with throwaway certs."""

from __future__ import annotations

import re
import ssl
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from streamctl.config import ConfigError, load_event
from streamctl.console.accounts import add_user
from streamctl.controller import Controller

from .conftest import free_port
from .console_harness import running, write_event

PASSWORD = "correct horse battery"
PROXY = "127.0.0.2"  # another loopback address: the reverse proxy's; the test client's own is 127.0.0.1
HALL = "console.hall.example"


def make_cert(folder: Path, name: str = "console") -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 and its key."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("tls"))


def event_file(tmp: Path, console: str, listen: str | None = None) -> Path:
    """An event file whose [console] table carries `console`'s keys too."""
    return write_event(tmp, free_port(), console, listen=listen)


@asynccontextmanager
async def console_running(tmp: Path, console: str):
    controller = Controller(load_event(event_file(tmp, console)))
    add_user(controller.store, "op", "operator", PASSWORD)
    async with running(controller):
        yield controller.console_url


def browser(url: str, **kw) -> aiohttp.ClientSession:
    """A client that sends Secure cookies to the console's http:// address: behind a proxy the browser has them
    over its HTTPS, while the proxy (this test) speaks plain HTTP to the console."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[url]), **kw)


async def sign_in(session: aiohttp.ClientSession, url: str, headers: dict, **kw) -> aiohttp.ClientResponse:
    async with session.get(f"{url}/login", headers=headers, **kw) as r:
        token = re.search(r'name="csrf_token" value="([^"]+)"', await r.text()).group(1)
    response = await session.post(f"{url}/login", data={"username": "op", "password": PASSWORD, "csrf_token": token},
                                  headers=headers, allow_redirects=False, **kw)
    response.release()
    return response


def cookie_lines(response: aiohttp.ClientResponse) -> list[str]:
    """The cookies an answer sets (not the ones it deletes)."""
    return [c for c in response.headers.getall("Set-Cookie", []) if "Max-Age=0" not in c]


async def test_tls_cert_and_key_serve_https_with_hsts_and_secure_cookies(tmp_path, cert):
    async with console_running(tmp_path, f'tls_cert = "{cert[0]}"\ntls_key = "{cert[1]}"\n') as url:
        assert url.startswith("https://")
        trust = ssl.create_default_context(cafile=str(cert[0]))
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(f"{url}/healthz", ssl=trust) as r:
                assert r.status == 200
                assert r.headers["Strict-Transport-Security"] == "max-age=31536000"
            response = await sign_in(session, url, {"Origin": url}, ssl=trust)
            assert response.status == 302
            session_cookie = [c for c in cookie_lines(response) if c.startswith("streamctl_session=")]
            assert session_cookie and "Secure" in session_cookie[0] and "HttpOnly" in session_cookie[0]
            async with session.get(f"{url}/api/destinations", ssl=trust) as r:
                assert r.status == 200
        # Plain HTTP to the HTTPS port gets nowhere.
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.get(url.replace("https://", "http://") + "/healthz") as r:
                    await r.read()


async def test_a_trusted_proxy_saying_https_makes_cookies_secure_and_sets_the_origin_check(tmp_path):
    async with console_running(tmp_path, f'trusted_proxy = "{PROXY}"\n') as url:
        assert url.startswith("http://")
        via_proxy = aiohttp.TCPConnector(local_addr=(PROXY, 0))
        async with browser(url, connector=via_proxy) as session:
            forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": HALL, "X-Forwarded-For": "10.0.0.7"}
            # The Origin the browser sends is the proxy's https address, not the console's own.
            refused = await sign_in(session, url, {**forwarded, "Origin": url})
            assert refused.status == 403
            response = await sign_in(session, url, {**forwarded, "Origin": f"https://{HALL}"})
            assert response.status == 302
            assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
            assert cookie_lines(response) and all("Secure" in c for c in cookie_lines(response))
            async with session.get(f"{url}/operate", headers=forwarded) as r:
                assert r.status == 200
                csrf = re.search(r'&#34;csrf&#34;: &#34;([^&]+)&#34;|"csrf": "([^"]+)"', await r.text())
            token = next(g for g in csrf.groups() if g)
            body = {"name": "x", "platform": "custom", "url": "rtmp://127.0.0.1:1/live/k"}
            for origin, allowed in ((f"https://{HALL}", True), (f"http://{HALL}", False), (url, False)):
                async with session.post(f"{url}/api/destinations", json=body, headers={
                        **forwarded, "Origin": origin, "X-CSRF-Token": token}) as r:
                    text = await r.text()
                    assert (r.status != 403) == allowed, (origin, r.status, text)
        # RFC 7239 Forwarded works the same.
        via_proxy = aiohttp.TCPConnector(local_addr=(PROXY, 0))
        async with browser(url, connector=via_proxy) as session:
            response = await sign_in(session, url, {"Forwarded": f'for=10.0.0.8;proto=https;host="{HALL}"',
                                                    "Origin": f"https://{HALL}"})
            assert response.status == 302 and cookie_lines(response)
            assert all("Secure" in c for c in cookie_lines(response))


async def test_forwarded_headers_from_any_other_address_are_ignored(tmp_path):
    async with console_running(tmp_path, f'trusted_proxy = "{PROXY}"\n') as url:
        async with browser(url) as session:  # from 127.0.0.1
            forged = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": HALL, "Forwarded": f"proto=https;host={HALL}"}
            assert (await sign_in(session, url, {**forged, "Origin": f"https://{HALL}"})).status == 403
            response = await sign_in(session, url, {**forged, "Origin": url})
            assert response.status == 302
            assert not any("Secure" in c for c in cookie_lines(response))
            assert "Strict-Transport-Security" not in response.headers


def test_tls_and_proxy_keys_are_checked_by_name(tmp_path, cert):
    other_cert, other_key = make_cert(tmp_path, "other")
    (tmp_path / "junk.pem").write_text("not a certificate")
    cases = {
        f'tls_cert = "{cert[0]}"\n': "console.tls_key: missing while tls_cert is set",
        f'tls_key = "{cert[1]}"\n': "console.tls_cert: missing while tls_key is set",
        f'tls_cert = "{tmp_path / "none.crt"}"\ntls_key = "{cert[1]}"\n': "none.crt is not a readable file",
        f'tls_cert = "{tmp_path / "junk.pem"}"\ntls_key = "{cert[1]}"\n': "cannot be loaded",
        f'tls_cert = "{cert[0]}"\ntls_key = "{other_key}"\n': "the private key that belongs to it",
        'trusted_proxy = "proxy.local"\n': "console.trusted_proxy: 'proxy.local' is not an IP address",
    }
    for console, expected in cases.items():
        with pytest.raises(ConfigError) as caught:
            load_event(event_file(tmp_path, console))
        assert any(expected in issue for issue in caught.value.issues), (console, caught.value.issues)
    assert load_event(event_file(tmp_path, f'tls_cert = "{other_cert}"\ntls_key = "{other_key}"\n')).console.tls


@pytest.mark.parametrize(("listen", "console", "warned"), [
    ("0.0.0.0:8080", "", True),
    ("192.168.1.20:8080", "", True),
    ("127.0.0.1:8080", "", False),
    ("[::1]:8080", "", False),
    ("0.0.0.0:8443", "TLS", False),
    ("0.0.0.0:8080", f'trusted_proxy = "{PROXY}"\n', False),
])
def test_check_warns_when_the_console_listens_beyond_loopback_over_plain_http(tmp_path, cert, listen, console,
                                                                              warned):
    if console == "TLS":
        console = f'tls_cert = "{cert[0]}"\ntls_key = "{cert[1]}"\n'
    path = event_file(tmp_path, console, listen=listen)
    done = subprocess.run([sys.executable, "-m", "streamctl", "check", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert ("plain HTTP" in done.stderr) == warned, done.stderr
