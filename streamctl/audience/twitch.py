"""Twitch: chat over IRC on a websocket (anonymous, tags, PING/PONG, RECONNECT) and viewer_count from Helix."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator

import websockets

from ..config import AudienceConfig
from ..events import now
from .models import Comment, ViewerSample
from .options import TwitchOptions
from .source import BLOCKED, RATE_LIMITED, Batch, Http, SourceError, parse_time, stable_id, unexpected

_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
# USERNOTICE `msg-id`s by the comment kind they are stored as; the msg-id itself is kept in `extra["notice"]`.
NOTICE_KINDS = {
    **dict.fromkeys(("sub", "resub", "subgift", "submysterygift", "giftpaidupgrade", "anongiftpaidupgrade",
                     "primepaidupgrade", "communitypayforward", "standardpayforward", "sharedchatnotice"),
                    "member"),
    **dict.fromkeys(("raid", "unraid", "ritual", "bitsbadgetier", "viewermilestone", "announcement"), "system"),
}


def unescape_tag(value: str) -> str:
    """An IRCv3 tag value as its text (`\\s` is a space, `\\:` a semicolon...)."""
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out.append(_UNESCAPE.get(value[i + 1], value[i + 1]))
            i += 2
        else:
            if ch != "\\":
                out.append(ch)
            i += 1
    return "".join(out)


def parse_line(line: str) -> tuple[dict[str, str], str, str, list[str]]:
    """One IRC line into (tags, prefix, command, params); the trailing parameter is the last param."""
    tags: dict[str, str] = {}
    prefix = ""
    if line.startswith("@"):
        raw, _, line = line[1:].partition(" ")
        for pair in raw.split(";"):
            key, _, value = pair.partition("=")
            tags[key] = unescape_tag(value)
    if line.startswith(":"):
        prefix, _, line = line[1:].partition(" ")
    head, sep, trailing = line.partition(" :")
    parts = head.split()
    command = parts[0] if parts else ""
    params = parts[1:] + ([trailing] if sep else [])
    return tags, prefix, command, params


class TwitchSource:
    """One channel: `listen` reads its chat anonymously, `sample` asks Helix for viewer_count."""

    platform = "twitch"
    streaming = True  # always pushed (IRC); viewers are polled from Helix

    def __init__(self, config: AudienceConfig, http: Http):
        self.name = config.name
        options: TwitchOptions = config.options
        self.channel = str(options.channel).lstrip("#").lower()
        self.credential = config.credential
        self.client_id = options.client_id
        self.api = options.api_base.rstrip("/")
        self.irc_url = options.irc_url
        self.http = http
        self.units = 0

    def resume(self, cursor: str | None) -> None:
        """IRC has no history to resume from."""

    async def close(self) -> None:
        """The websocket is closed by `listen` itself."""

    async def sample(self) -> Batch:
        """viewer_count of the live stream; 0 while the channel is offline (Helix returns no data)."""
        what = "helix streams"
        headers = {"Authorization": f"Bearer {self.credential}", "Client-Id": str(self.client_id)}
        reply = await self.http.get(what, self.api + "/streams", {"user_login": self.channel}, headers)
        if reply.status == 429:
            reset = reply.headers.get("Ratelimit-Reset", "")
            retry = max(1.0, float(reset) - time.time()) if reset.isdigit() else None
            raise SourceError(f"{what}: HTTP 429 too many requests", RATE_LIMITED, retry_after=retry)
        if reply.status == 401:
            raise SourceError(f"{what}: the app access token or client id was refused (HTTP 401)", BLOCKED)
        if reply.status != 200 or not isinstance(reply.data, dict) or not isinstance(reply.data.get("data"), list):
            raise unexpected(what, reply)
        live = [s for s in reply.data["data"] if isinstance(s, dict) and s.get("type", "live") == "live"]
        count = live[0].get("viewer_count") if live else 0
        viewers = count if isinstance(count, int) and not isinstance(count, bool) else None
        return Batch(viewers=ViewerSample(self.name, self.platform, now(), viewers))

    async def listen(self) -> AsyncIterator[Batch]:
        """Join the channel anonymously and yield each frame's chat lines; returns when Twitch closes."""
        try:
            async with websockets.connect(self.irc_url, open_timeout=10, close_timeout=2,
                                          max_size=2**20) as ws:
                await ws.send("CAP REQ :twitch.tv/tags twitch.tv/commands")
                await ws.send("PASS SCHMOOPIIE")  # what anonymous clients send; Twitch ignores it
                await ws.send(f"NICK justinfan{random.randint(10000, 99999)}")
                await ws.send(f"JOIN #{self.channel}")
                async for frame in ws:
                    text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
                    batch, replies, reconnect = self._frame(text)
                    for reply in replies:
                        await ws.send(reply)
                    if batch.comments or batch.deleted_ids:
                        yield batch
                    if reconnect:
                        return
        except (OSError, websockets.WebSocketException, TimeoutError) as e:
            raise SourceError(f"chat {self.irc_url}: {type(e).__name__}: {e}") from None

    def _frame(self, text: str) -> tuple[Batch, list[str], bool]:
        batch, replies, reconnect = Batch(), [], False
        received = now()
        for line in text.split("\r\n"):
            if not line:
                continue
            tags, prefix, command, params = parse_line(line)
            if command == "PING":
                replies.append("PONG :" + (params[-1] if params else "tmi.twitch.tv"))
            elif command == "RECONNECT":
                reconnect = True
            elif command in ("PRIVMSG", "USERNOTICE"):
                comment = self._comment(tags, prefix, command, params, received)
                if comment is not None:
                    batch.comments.append(comment)
            elif command == "CLEARMSG" and tags.get("target-msg-id"):
                batch.deleted_ids.append(tags["target-msg-id"])
            elif command == "CLEARCHAT" and len(params) > 1:
                batch.comments.append(self._ban(tags, params[-1], received))
            elif command == "CLEARCHAT":  # no user: a moderator cleared the whole chat
                notice = self._cleared(tags, received)
                batch.comments.append(notice)
                batch.cleared_before = notice.published_at
            elif command == "NOTICE" and params and "authentication failed" in params[-1].lower():
                raise SourceError(f"chat: {params[-1]}", BLOCKED)
        return batch, replies, reconnect

    def _comment(self, tags: dict, prefix: str, command: str, params: list[str], received: float) -> Comment | None:
        login = prefix.split("!", 1)[0] if prefix else tags.get("login", "")
        text = params[-1] if len(params) > 1 else ""
        extra = {}
        if text.startswith("\x01ACTION ") and text.endswith("\x01"):
            text, extra["action"] = text[8:-1], True  # "/me waves"
        kind, amount = "comment", None
        if tags.get("bits"):
            kind, amount = "paid", f"{tags['bits']} bits"
        if command == "USERNOTICE":
            notice = tags.get("msg-id", "")
            kind = NOTICE_KINDS.get(notice, "system")  # a notice type Twitch adds later is shown, not a comment
            extra["notice"] = notice or "unknown"
            text = " ".join(t for t in (tags.get("system-msg", ""), text) if t)
            login = tags.get("login", login)
        if tags.get("mod") == "1":
            extra["moderator"] = True
        msg_id = tags.get("id") or stable_id(login, tags.get("tmi-sent-ts", ""), text)
        try:
            published = parse_time(int(tags["tmi-sent-ts"]))
        except (KeyError, ValueError):
            published = received
        return Comment(platform=self.platform, source=self.name, platform_id=msg_id,
                       author_name=tags.get("display-name") or login, author_id=tags.get("user-id", login),
                       text=text, published_at=published, received_at=received, kind=kind, amount=amount,
                       extra=extra)

    def _ban(self, tags: dict, login: str, received: float) -> Comment:
        duration = tags.get("ban-duration")
        stamp = tags.get("tmi-sent-ts", str(int(received * 1000)))
        try:
            published = parse_time(int(stamp))
        except ValueError:
            published = received
        return Comment(platform=self.platform, source=self.name,
                       platform_id=f"clearchat:{tags.get('target-user-id', login)}:{stamp}", author_name=login,
                       author_id=tags.get("target-user-id", login),
                       text=f"timed out for {duration} s" if duration else "banned permanently",
                       published_at=published, received_at=received, kind="banned")

    def _cleared(self, tags: dict, received: float) -> Comment:
        """A CLEARCHAT without a user: a notice, and every earlier message of the channel is hidden."""
        stamp = tags.get("tmi-sent-ts", str(int(received * 1000)))
        try:
            published = parse_time(int(stamp))
        except ValueError:
            published = received
        return Comment(platform=self.platform, source=self.name, platform_id=f"clearchat:all:{stamp}",
                       author_name="Twitch", author_id="", text="a moderator cleared the chat",
                       published_at=published, received_at=received, kind="system")
