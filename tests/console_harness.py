"""A real running console for the console tests: Controller on a temp event file, accounts, signed-in clients."""

from __future__ import annotations

import asyncio
import html
import json
import re
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from streamctl.audience.models import Comment
from streamctl.config import load_event
from streamctl.console.accounts import add_user
from streamctl.controller import Controller
from streamctl.events import CommentsFetched, CommentsStored, QuestionChanged

from .conftest import LOOPBACK, free_port

PASSWORD = "correct horse battery"
USERS = (("op", "operator"), ("mod1", "moderator"), ("mod2", "moderator"), ("chair", "official"))
EVENT_NAME = "Kỳ họp HĐND tỉnh — phiên chất vấn"


@dataclass
class Console:
    """The running console: its controller, base URL and a counter for made-up comment ids."""

    controller: Controller
    url: str
    tmp: Path
    next_comment: int = 0
    clients: list[aiohttp.ClientSession] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return self.url

    async def feed(self, *texts: str | tuple[str, str], platform: str = "youtube", source: str = "yt-main",
                   within: float = 10.0) -> list[dict]:
        """Publish comments the real way (CommentsFetched on the bus) and wait until the recorder stored them."""
        comments = []
        at = time.time()
        for item in texts:
            author, text = item if isinstance(item, tuple) else ("Nguyễn Văn An", item)
            self.next_comment += 1
            comments.append(Comment(platform=platform, source=source, platform_id=f"c{self.next_comment}",
                                    author_name=author, author_id=f"a-{author}", text=text, published_at=at,
                                    received_at=at))
        with self.controller.bus.subscribe(CommentsStored, name="test.feed") as sub:
            await self.controller.bus.publish(CommentsFetched(source, platform, tuple(comments)))
            stored: list[dict] = []
            async with asyncio.timeout(within):
                while len(stored) < len(comments):
                    stored.extend((await sub.get()).comments)
        return stored

    async def feed_questions(self, *texts: str | tuple[str, str], within: float = 10.0) -> list[dict]:
        """Feed comments that read as questions and wait until the desk made each a pending question.

        Thousands go in batches of 100, as pollers hand them over.
        """
        with self.controller.bus.subscribe(QuestionChanged, maxsize=len(texts) + 100, name="test.questions") as sub:
            for start in range(0, len(texts), 100):
                await self.feed(*texts[start:start + 100], within=within)
            created: list[dict] = []
            async with asyncio.timeout(within):
                while len(created) < len(texts):
                    event = await sub.get()
                    if event.action == "create":
                        created.append(event.question)
        return created

    async def client(self, name: str | None = None, password: str = PASSWORD) -> Client:
        """A cookie-keeping HTTP client, signed in as `name` unless None."""
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.clients.append(session)
        client = Client(self, session)
        if name is not None:
            response = await client.sign_in(name, password)
            assert response.status == 302, await response.text()
        return client


@dataclass
class Client:
    """One browser-like client of the console: cookies, the page's CSRF token, Origin header."""

    console: Console
    session: aiohttp.ClientSession
    csrf: str = ""

    async def sign_in(self, name: str, password: str, origin: str | None = None) -> aiohttp.ClientResponse:
        async with self.session.get(f"{self.console.url}/login") as r:
            token = re.search(r'name="csrf_token" value="([^"]+)"', await r.text()).group(1)
        response = await self.session.post(
            f"{self.console.url}/login", data={"username": name, "password": password, "csrf_token": token},
            headers={"Origin": origin or self.console.origin}, allow_redirects=False)
        await response.read()  # kept for the test to look at
        response.release()
        if response.status == 302:
            await self.load_csrf()
        return response

    async def load_csrf(self) -> None:
        async with self.session.get(f"{self.console.url}/") as r:
            self.csrf = page_data(await r.text()).get("csrf", "")

    async def call(self, method: str, path: str, body: object = None, csrf: bool = True,
                   origin: str | None = "same", headers: dict | None = None) -> tuple[int, dict]:
        """A JSON API call as the page's script makes it: CSRF header and our Origin (both can be left out)."""
        h = dict(headers or {})
        if csrf and self.csrf:
            h["X-CSRF-Token"] = self.csrf
        if origin == "same":
            h["Origin"] = self.console.origin
        elif origin:
            h["Origin"] = origin
        async with self.session.request(method, f"{self.console.url}{path}", json=body, headers=h,
                                        allow_redirects=False) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text)
            except json.JSONDecodeError:
                return r.status, {"text": text}

    async def page(self, path: str) -> tuple[int, str]:
        async with self.session.get(f"{self.console.url}{path}", allow_redirects=False) as r:
            return r.status, await r.text()


def page_data(text: str) -> dict:
    """The JSON a page hands its script."""
    found = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', text, re.S)
    return json.loads(html.unescape(found.group(1))) if found else {}


def write_event(tmp: Path, port: int, tables: str = "", listen: str | None = None) -> Path:
    """A minimal event file: the console on loopback `port` (or at `listen`), then `tables` (TOML)."""
    path = tmp / "event.toml"
    path.write_text(textwrap.dedent(f"""\
        [event]
        name = "{EVENT_NAME}"
        timezone = "Asia/Ho_Chi_Minh"
        database = "event.db"

        [console]
        listen = "{listen or f'{LOOPBACK}:{port}'}"
        """) + textwrap.dedent(tables), encoding="utf-8")
    return path


@asynccontextmanager
async def running_console(tmp: Path, users=USERS, tables: str = "", prepare=None) -> AsyncIterator[Console]:
    """A Controller on a free loopback port; no destinations and no audience unless `tables` (TOML) adds them.

    `prepare(controller)` runs before it starts (say, to shorten a component's timing).
    """
    port = free_port()
    controller = Controller(load_event(write_event(tmp, port, tables)))
    if prepare is not None:
        prepare(controller)
    for name, role in users:
        add_user(controller.store, name, role, PASSWORD, lang="vi" if role != "official" else "en")
    console = Console(controller, f"http://{LOOPBACK}:{port}", tmp)
    async with running(controller):
        try:
            yield console
        finally:
            for session in console.clients:
                await session.close()


@asynccontextmanager
async def running(controller: Controller, start_s: float = 15) -> AsyncIterator[Controller]:
    """Run `controller` until the block ends: wait for its console to listen, then stop it and close its store."""
    stop = asyncio.Event()
    task = asyncio.create_task(controller.run(stop), name="controller")
    try:
        async with asyncio.timeout(start_s):
            await controller.started.wait()
        yield controller
    finally:
        stop.set()
        async with asyncio.timeout(20):
            await task
        controller.store.close()
