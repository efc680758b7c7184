"""Signed webhooks: any bridge (Zalo, Weibo, a website, Social Stream Ninja) posts comments to streamctl.

`POST /api/webhook/{source}` with `X-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`. The body is
one message, a list of them, or `{"messages": [...]}`; each in our shape (`id, author, author_id, text,
published_at, platform`) or Social Stream Ninja's (`chatname, chatmessage, userid, timestamp, type,
hasDonation...`). SSN's `{"event": "viewer_updates", "meta": {"youtube": 815}}` records viewer counts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re

from ..config import AudienceConfig
from ..events import now
from .models import Comment, ViewerSample
from .source import Batch, parse_time, stable_id

MAX_MESSAGES = 1000
PLATFORM_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
TEXT_KEYS = ("text", "message", "chatmessage")
AUTHOR_KEYS = ("author", "author_name", "chatname", "name")
AUTHOR_ID_KEYS = ("author_id", "userid", "user_id")
ID_KEYS = ("id", "message_id", "msg_id")
TIME_KEYS = ("published_at", "timestamp", "time")


class WebhookError(Exception):
    """A request the webhook refuses: `status` is 401 (signature) or 400 (body), the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def sign(secret: str, body: bytes) -> str:
    """The X-Signature-256 header value for `body`, as a bridge computes it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSource:
    """Comments pushed by a bridge; nothing to poll. The console route hands each request to `accept`."""

    platform = "webhook"

    def __init__(self, config: AudienceConfig):
        self.name = config.name
        self.secret = config.credential
        self.secret_env = config.options.secret_env
        self.label = config.options.label
        self.units = 0

    def resume(self, cursor: str | None) -> None:
        """Bridges push; there is no position to resume."""

    async def close(self) -> None:
        """Nothing to release."""

    def accept(self, body: bytes, signature: str | None) -> list[Batch]:
        """Check the signature over the raw body, then parse it; raises WebhookError."""
        if not self.secret:
            raise WebhookError(401, f"webhook {self.name} has no secret: set {self.secret_env}")
        if not signature:
            raise WebhookError(401, "missing X-Signature-256 header, expected sha256=<hex HMAC-SHA256 of the body>")
        if not hmac.compare_digest(signature.strip().lower(), sign(self.secret, body)):
            raise WebhookError(401, "bad signature: X-Signature-256 does not match the body")
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise WebhookError(400, f"body is not JSON ({type(e).__name__}), expected an object or a list") from None
        return self.parse(data)

    def parse(self, data: object) -> list[Batch]:
        """Messages (ours or SSN's) into a batch; raises WebhookError(400) naming the first bad field."""
        if isinstance(data, dict) and data.get("event") == "viewer_updates":
            return self._viewer_updates(data.get("meta"))
        if isinstance(data, dict) and "messages" in data:
            data = data["messages"]
        items = data if isinstance(data, list) else [data]
        if not items:
            raise WebhookError(400, "no messages, expected at least one")
        if len(items) > MAX_MESSAGES:
            raise WebhookError(400, f"{len(items)} messages, expected at most {MAX_MESSAGES} per request")
        received = now()
        batch = Batch()
        for i, item in enumerate(items):
            where = f"messages[{i}]" if isinstance(data, list) else "message"
            batch.comments.append(self._comment(item, where, received))
        return [batch]

    def _comment(self, item: object, where: str, received: float) -> Comment:
        if not isinstance(item, dict):
            raise WebhookError(400, f"{where}: is a {type(item).__name__}, expected an object")
        text = _pick(item, TEXT_KEYS)
        if not isinstance(text, str):
            raise WebhookError(400, f"{where}.text: {'missing' if text is None else 'not a string'}, "
                                    "expected a string (text, message or chatmessage)")
        author = _pick(item, AUTHOR_KEYS)
        author_id = _pick(item, AUTHOR_ID_KEYS)
        for key, value in (("author", author), ("author_id", author_id)):
            if value is not None and not isinstance(value, str | int) or isinstance(value, bool):
                raise WebhookError(400, f"{where}.{key}: not a string, expected a name or an id")
        raw_time = _pick(item, TIME_KEYS)
        published = received
        if raw_time is not None:
            try:
                published = parse_time(raw_time)
            except ValueError as e:
                raise WebhookError(400, f"{where}.published_at: {e}, expected ISO 8601 or epoch seconds/ms") from None
        msg_id = _pick(item, ID_KEYS)
        if msg_id is not None and (isinstance(msg_id, bool) or not isinstance(msg_id, str | int) or msg_id == ""):
            raise WebhookError(400, f"{where}.id: expected a non-empty string or number")
        author_text = "" if author is None else str(author)
        author_key = str(author_id) if author_id is not None else author_text
        # No id from the bridge: the same message re-sent must get the same id, so derive it from its content.
        platform_id = str(msg_id) if msg_id is not None else stable_id(author_key, raw_time, text)
        amount = item.get("amount") or item.get("hasDonation") or None
        return Comment(platform=self._platform(item), source=self.name, platform_id=platform_id,
                       author_name=author_text, author_id=author_key, text=text, published_at=published,
                       received_at=received, kind="paid" if amount else "comment",
                       amount=str(amount) if amount else None)

    def _platform(self, item: dict) -> str:
        if self.label:
            return self.label
        named = item.get("platform") or item.get("type")
        if isinstance(named, str) and PLATFORM_RE.match(named.lower()):
            return named.lower()
        return "webhook"

    def _viewer_updates(self, meta: object) -> list[Batch]:
        if not isinstance(meta, dict) or not meta:
            raise WebhookError(400, "viewer_updates: meta must be an object of platform: count")
        samples = []
        for platform, count in meta.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise WebhookError(400, f"viewer_updates.meta.{platform}: expected a whole number >= 0")
            if not PLATFORM_RE.match(str(platform).lower()):
                raise WebhookError(400, f"viewer_updates.meta: {str(platform)[:40]!r} is not a platform name")
            name = str(platform).lower()
            samples.append(Batch(viewers=ViewerSample(f"{self.name}.{name}", name, now(), count)))
        return samples


def _pick(item: dict, keys: tuple[str, ...]):
    for key in keys:
        if key in item and item[key] is not None:
            return item[key]
    return None
