"""HTTPS for the console: served by streamctl itself (`tls_cert`/`tls_key`) or by a reverse proxy (`trusted_proxy`).

Behind a proxy the console sees plain HTTP from the proxy's address; only that address may tell it, through
`X-Forwarded-Proto`/`Forwarded`, that the browser used HTTPS (cookies then Secure, the Origin check then expects
`https://` and the proxy's host). The same headers from anyone else are ignored.
"""

from __future__ import annotations

import ssl

from aiohttp import web

from ..config import ConsoleConfig, EventFile

HSTS = "max-age=31536000"  # a year; browsers ignore it for bare IP addresses, so a hall's 10.x console is unaffected


def ssl_context(console: ConsoleConfig) -> ssl.SSLContext | None:
    """The server's TLS context, or None for plain HTTP."""
    if not console.tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(console.tls_cert, console.tls_key)
    return context


def plain_http_warning(event: EventFile) -> str | None:
    """What `streamctl check` says when the console is reachable from the network over plain HTTP."""
    console = event.console
    if console.loopback_only or console.tls or console.trusted_proxy is not None:
        return None
    return (f"{event.path}: console.listen: warning: {console.host}:{console.port} serves the console to the network "
            "over plain HTTP, so passwords and session cookies cross it readable; set tls_cert and tls_key, or put "
            "an HTTPS reverse proxy in front and set trusted_proxy (README: HTTPS)")


def _last(value: str | None) -> str | None:
    """The value the nearest proxy added: the last of a comma-separated header."""
    if not value:
        return None
    return value.split(",")[-1].strip() or None


def forwarded(request: web.Request) -> dict[str, str]:
    """What the proxy says about the browser's request: proto, host and for (the client's address)."""
    said: dict[str, str] = {}
    if request.forwarded:  # RFC 7239; the proxy's own element is the last one
        said.update({k: v for k, v in request.forwarded[-1].items() if k in ("proto", "host", "for")})
    for header, key in (("X-Forwarded-Proto", "proto"), ("X-Forwarded-Host", "host"), ("X-Forwarded-For", "for")):
        value = _last(request.headers.get(header))
        if value and key not in said:
            said[key] = value
    return said


def proxy_middleware(trusted_proxy: str | None):
    """Middleware: a request from the trusted proxy takes the scheme, host and client address the proxy names."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        if trusted_proxy is None or request.remote != trusted_proxy:
            return await handler(request)
        said = forwarded(request)
        changes: dict[str, str] = {}
        if said.get("proto", "").lower() in ("http", "https"):
            changes["scheme"] = said["proto"].lower()
        if said.get("host"):
            changes["host"] = said["host"]
        if said.get("for"):
            changes["remote"] = said["for"].strip('"[]')
        return await handler(request.clone(**changes) if changes else request)

    return middleware


def strict_transport(request: web.Request, headers) -> None:
    """HSTS on every answer the browser received over HTTPS."""
    if request.secure:
        headers.setdefault("Strict-Transport-Security", HSTS)
