"""A fake Twitch: Helix Get Streams and the chat's IRC-over-websocket (CAP, NICK, JOIN, PING, RECONNECT)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid

from aiohttp import WSMsgType, web

from .server import FakeServer, dumps


def irc_escape(value: str) -> str:
    """A tag value as IRCv3 writes it."""
    return (value.replace("\\", "\\\\").replace(";", "\\:").replace(" ", "\\s")
            .replace("\r", "\\r").replace("\n", "\\n"))


class FakeTwitch(FakeServer):
    """One channel: Helix at /helix, chat at /irc; PINGs clients every `ping_every` seconds."""

    def __init__(self, channel: str = "hdndtinh", token: str = "tw-token", client_id: str = "client-1",  # noqa: S107
                 ping_every: float = 0.3):
        super().__init__()
        self.channel = channel
        self.token = token
        self.client_id = client_id
        self.ping_every = ping_every
        self.live = True
        self.viewer_count = 0
        self.published: list[str] = []
        self.clients: list[web.WebSocketResponse] = []
        self.joined: list[web.WebSocketResponse] = []
        self.received: list[str] = []  # every line a client sent
        self.pongs = 0
        self.connections = 0
        self._user_ids = itertools.count(1000)
        self.app.router.add_get("/helix/streams", self.streams)
        self.app.router.add_get("/irc", self.irc)

    @property
    def helix(self) -> str:
        return self.url + "/helix"

    @property
    def irc_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/irc"

    # ---- Helix ----------------------------------------------------------------------------------------

    async def streams(self, request: web.Request) -> web.Response:
        self.log(request)
        if (request.headers.get("Authorization") != f"Bearer {self.token}"
                or request.headers.get("Client-Id") != self.client_id):
            return web.json_response({"error": "Unauthorized", "status": 401, "message": "Invalid OAuth token"},
                                     status=401)
        if self.fault() == "429":
            reset = int(time.time()) + 1
            return web.json_response({"error": "Too Many Requests", "status": 429, "message": "Too many requests"},
                                     status=429, headers={"Ratelimit-Limit": "800", "Ratelimit-Remaining": "0",
                                                          "Ratelimit-Reset": str(reset)})
        data = []
        if self.live and request.query.get("user_login") == self.channel:
            data.append({"id": "40952121085", "user_id": "101051819", "user_login": self.channel,
                         "user_name": self.channel, "game_id": "509658", "game_name": "Just Chatting",
                         "type": "live", "title": "Kỳ họp", "tags": ["Tiếng Việt"],
                         "viewer_count": self.viewer_count, "started_at": "2021-03-10T03:18:11Z",
                         "language": "vi", "thumbnail_url": "https://static-cdn.jtvnw.net/x-{width}x{height}.jpg",
                         "tag_ids": [], "is_mature": False})
        return web.Response(text=dumps({"data": data, "pagination": {}}), content_type="application/json")

    def set_viewers(self, viewers: int | None) -> None:
        self.viewer_count = viewers or 0

    def end(self) -> None:
        self.live = False

    # ---- IRC ------------------------------------------------------------------------------------------

    async def irc(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        self.clients.append(ws)
        nick = "?"
        pinger = asyncio.create_task(self._ping(ws))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                for line in msg.data.split("\r\n"):
                    if not line:
                        continue
                    self.received.append(line)
                    if line.startswith("CAP REQ"):
                        await ws.send_str(f":tmi.twitch.tv CAP * ACK :{line.split(':', 1)[1]}\r\n")
                    elif line.startswith("NICK "):
                        nick = line[5:].strip()
                        await ws.send_str(f":tmi.twitch.tv 001 {nick} :Welcome, GLHF!\r\n"
                                          f":tmi.twitch.tv 376 {nick} :>\r\n")
                    elif line.startswith("JOIN #"):
                        room = f"@emote-only=0;room-id=101051819 :tmi.twitch.tv ROOMSTATE #{self.channel}"
                        await ws.send_str(f":{nick}!{nick}@{nick}.tmi.twitch.tv JOIN #{self.channel}\r\n{room}\r\n")
                        self.joined.append(ws)
                    elif line.startswith("PONG"):
                        self.pongs += 1
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
            for group in (self.clients, self.joined):
                if ws in group:
                    group.remove(ws)
        return ws

    async def _ping(self, ws: web.WebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(self.ping_every)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str("PING :tmi.twitch.tv\r\n")

    async def _broadcast(self, lines: str) -> None:
        for ws in list(self.joined):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(lines)

    async def say(self, login: str, text: str, display: str | None = None, bits: int = 0,
                  msg_id: str | None = None) -> str:
        """A viewer's chat line, with the tags Twitch sends."""
        msg_id = msg_id or str(uuid.uuid4())
        tags = {"badge-info": "", "badges": "", "color": "#0000FF", "display-name": display or login, "emotes": "",
                "first-msg": "0", "id": msg_id, "mod": "0", "room-id": "101051819", "subscriber": "0",
                "tmi-sent-ts": str(int(time.time() * 1000)), "turbo": "0", "user-id": str(next(self._user_ids)),
                "user-type": ""}
        if bits:
            tags["bits"] = str(bits)
        tag_text = ";".join(f"{k}={irc_escape(v)}" for k, v in tags.items())
        await self._broadcast(f"@{tag_text} :{login}!{login}@{login}.tmi.twitch.tv PRIVMSG #{self.channel} :{text}\r\n")
        if msg_id not in self.published:
            self.published.append(msg_id)
        return msg_id

    async def clear_message(self, msg_id: str, login: str = "someone") -> None:
        await self._broadcast(f"@login={login};room-id=;target-msg-id={msg_id};tmi-sent-ts={int(time.time() * 1000)}"
                              f" :tmi.twitch.tv CLEARMSG #{self.channel} :deleted text\r\n")

    async def timeout_user(self, login: str, seconds: int | None = 600) -> None:
        duration = f"ban-duration={seconds};" if seconds else ""
        await self._broadcast(f"@{duration}room-id=101051819;target-user-id=777;tmi-sent-ts={int(time.time() * 1000)}"
                              f" :tmi.twitch.tv CLEARCHAT #{self.channel} :{login}\r\n")

    async def clear_chat(self) -> None:
        """A moderator's /clear: CLEARCHAT with no user."""
        await self._broadcast(f"@room-id=101051819;tmi-sent-ts={int(time.time() * 1000)}"
                              f" :tmi.twitch.tv CLEARCHAT #{self.channel}\r\n")

    async def notice(self, kind: str, login: str, system_msg: str, text: str = "", **tags: str) -> str:
        """A USERNOTICE (`msg-id` = sub, resub, subgift, raid, announcement...) with Twitch's tags."""
        msg_id = str(uuid.uuid4())
        all_tags = {"badges": "", "display-name": login, "id": msg_id, "login": login, "msg-id": kind,
                    "room-id": "101051819", "system-msg": system_msg, "tmi-sent-ts": str(int(time.time() * 1000)),
                    "user-id": str(next(self._user_ids)), **tags}
        tag_text = ";".join(f"{k.replace('_', '-')}={irc_escape(v)}" for k, v in all_tags.items())
        trailing = f" :{text}" if text else ""
        await self._broadcast(f"@{tag_text} :tmi.twitch.tv USERNOTICE #{self.channel}{trailing}\r\n")
        self.published.append(msg_id)
        return msg_id

    async def reconnect(self) -> None:
        """Twitch asks clients to reconnect before a server restart, then closes."""
        for ws in list(self.clients):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(":tmi.twitch.tv RECONNECT\r\n")
            await ws.close()

    async def drop(self) -> None:
        """Close every chat connection without a word."""
        for ws in list(self.clients):
            await ws.close()
