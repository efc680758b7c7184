"""Masking of stream keys and tokens in every text that leaves the process."""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

MASK = "****"

_known: set[str] = set()
_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Remember a secret so that `redact` masks it wherever it appears."""
    global _pattern
    if not value or len(value) < 4:
        return
    with _lock:
        if value in _known:
            return
        _known.add(value)
        ordered = sorted(_known, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def mask_secrets(text: str) -> str:
    """Mask only the registered secrets: for audience text, which must otherwise reach pages as typed."""
    pattern = _pattern
    return pattern.sub(MASK, text) if pattern is not None and text else text


_QUERY_SECRET = re.compile(
    r"(?i)(?<![A-Za-z0-9_])((?:access_token|token|key|sign|auth_key|passphrase|secret|password|s_bl|a)=)[^&\s\"']+"
)


def redact(text: str) -> str:
    """Mask every registered secret and every secret-looking query parameter in `text`."""
    if not text:
        return text
    return _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, mask_secrets(text))


def mask_url(url: str) -> str:
    """A publish URL fit to show: scheme, host, port and app path kept, key and query masked.

    `rtmps://live-api-s.facebook.com:443/rtmp/KEY` becomes `rtmps://live-api-s.facebook.com:443/rtmp/****`.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if not parts.scheme or not parts.netloc:
        return redact(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    segments = parts.path.split("/")
    # rtmp://host/app/KEY: the app (first segment) stays, anything after it is the key.
    if len(segments) > 2 and any(segments[2:]):
        path = "/".join(segments[:2]) + "/" + MASK
    else:
        path = parts.path
    query = "?" + MASK if parts.query else ""
    return redact(f"{parts.scheme}://{netloc}{path}{query}")
