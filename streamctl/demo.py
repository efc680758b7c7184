"""`streamctl demo`: a whole rehearsal with nothing configured.

A test-pattern program, local RTMP receivers standing in for the platforms, a simulated audience served
through local fakes of the real platform APIs, and the console, all on loopback. The event is an ordinary
event file written into the demo folder, run by the ordinary controller.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .accounts.files import write_private
from .audience.simulated import make_comment
from .config import load_event
from .console.accounts import add_user, hash_password
from .controller import Controller, os_error_in, run_until_signalled
from .fakes.facebook_live import FakeFacebookLive
from .fakes.youtube_live import FakeYouTubeLive
from .restream.rtmp_server import RtmpServer
from .store import Store

# Stand-ins for the platforms: (destination name, platform preset shown, app path, profile, autostart).
RECEIVERS = (
    ("youtube-channel-2", "live2", "landscape-720p", False),
)
# Destinations whose broadcast the demo makes through local fakes of the platforms' APIs, as a real event
# does: liveBroadcasts/liveStreams and live_videos, OAuth and a Page token, each with its own RTMP ingest.
BROADCASTS = ("facebook-fanpage", "youtube-channel-1")
CHATTER_EVERY_S = 4.0  # a comment into each broadcast's own chat this often

DEMO_USERS = (
    ("dieuhanh", "operator", "vi"),
    ("bientap1", "moderator", "vi"),
    ("bientap2", "moderator", "en"),
    ("lanhdao", "official", "vi"),
)


@dataclass
class DemoLogin:
    username: str
    role: str
    password: str


def event_text(console_port: int, receivers: dict[str, RtmpServer], database: str, broadcasts: str = "") -> str:
    """The demo's event file: the same TOML a real event uses, pointed at loopback."""
    lines = [
        "# Written by `streamctl demo`: a rehearsal on this machine only.",
        "[event]",
        'name = "Kỳ họp HĐND tỉnh — phiên chất vấn (diễn tập)"',
        'timezone = "Asia/Ho_Chi_Minh"',
        f'database = "{database}"',
        "",
        "[ingest]",
        'url = "testsrc"',
        "",
    ]
    lines.append(broadcasts)
    for name, _app, profile, autostart in RECEIVERS:
        env = "DEMO_KEY_" + name.upper().replace("-", "_")
        lines += [
            "[[destination]]",
            f'name = "{name}"',
            'platform = "custom"',
            f'url = "{receivers[name].url}"',
            f'key_env = "{env}"',
            f"autostart = {'true' if autostart else 'false'}",
            f'profile = "{profile}"',
            "",
        ]
    lines += [
        "[[audience]]",
        'name = "khan-gia-mo-phong"',
        'platform = "simulated"',
        "rate = 2",
        "",
        "[[audience]]",
        'name = "zalo"',
        'platform = "manual"',
        'label = "zalo"',
        "",
        "[console]",
        f'listen = "127.0.0.1:{console_port}"',
        "",
    ]
    return "\n".join(lines)


def ensure_logins(store: Store) -> list[DemoLogin]:
    """Demo accounts with fresh passwords each run (an existing demo folder gets its passwords reset)."""
    logins = []
    for username, role, lang in DEMO_USERS:
        password = secrets.token_urlsafe(9)
        exists = store.query_one("SELECT id FROM users WHERE username = ?", (username,))
        if exists:
            with store.transaction() as db:
                db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (hash_password(password), exists["id"]))
        else:
            add_user(store, username, role, password, lang=lang)
        logins.append(DemoLogin(username, role, password))
    return logins


def print_banner(url: str, folder: Path, logins: list[DemoLogin], overlay_token: str, receivers) -> None:
    out = sys.stdout
    out.write("\nstreamctl demo is running — Ctrl-C stops it.\n\n")
    out.write(f"  Console:   {url}/login\n")
    for login in logins:
        out.write(f"    {login.role:<9} {login.username:<10} password: {login.password}\n")
    out.write(f"  Moderate:  {url}/moderate    Officials: {url}/official    Operate: {url}/operate\n")
    out.write(f"  Report:    {url}/report\n")
    out.write(f"  Overlays:  {url}/overlay/question?token={overlay_token}\n")
    out.write(f"             {url}/overlay/viewers?token={overlay_token}\n")
    event, database = shlex.quote(str(folder / "demo.toml")), shlex.quote(str(folder / "demo.db"))
    out.write("  Commands for this rehearsal (in another terminal, while it runs):\n")
    for what, command in (
        ("an API token for scripts", f"streamctl token create --role operator --label scripts --event {event}"),
        ("the accounts", f"streamctl user list --event {event}"),
        ("the tokens", f"streamctl token list --event {event}"),
        ("the report so far", f"streamctl report {database} --format html -o "
                              f"{shlex.quote(str(folder / 'report.html'))}"),
    ):
        out.write(f"    {what + ':':<26}{command}\n")
    out.write("  Stand-in platforms (local RTMP receivers; the first two with their broadcast made through a local "
              "fake of the platform's API: Go live on /operate):\n")
    for name, server in receivers.items():
        out.write(f"    {name:<18} {server.url}/…\n")
    out.write(f"  Event file and database: {folder}\n\n")
    out.flush()


def broadcast_tables(folder: Path, youtube: FakeYouTubeLive, facebook: FakeFacebookLive) -> str:
    """The broadcast destinations of the demo, with credentials files as `streamctl auth` writes them."""
    write_private(folder / "youtube-channel-1.json", youtube.authorized_user())
    write_private(folder / "facebook-fanpage.json", {
        "type": "facebook_page", "page_id": facebook.page_id, "page_name": facebook.page_name,
        "access_token": facebook.token, "expires_at": 0, "data_access_expires_at": 0, "api_base": facebook.api_base})
    return "\n".join([
        "[[destination]]", 'name = "facebook-fanpage"', 'platform = "facebook"', 'broadcast = "create"',
        'credentials_file = "facebook-fanpage.json"', f'page_id = "{facebook.page_id}"',
        f'api_base = "{facebook.api_base}"', 'title = "Kỳ họp HĐND tỉnh — phiên chất vấn (diễn tập)"', "",
        "[[destination]]", 'name = "youtube-channel-1"', 'platform = "youtube"', 'broadcast = "create"',
        'credentials_file = "youtube-channel-1.json"', f'api_base = "{youtube.url}"',
        'url = "rtmp://127.0.0.1/live2"  # the fake hands out a plain RTMP ingest', 'privacy = "unlisted"', "",
    ])


async def chatter(youtube: FakeYouTubeLive, facebook: FakeFacebookLive) -> None:
    """Comments typed into each broadcast's own chat, so its audience source has something to read."""
    rng = random.Random(8)
    while True:
        await asyncio.sleep(CHATTER_EVERY_S)
        author, text = make_comment(rng)
        if youtube.chat_id and youtube.video_id:
            youtube.post_comment(author, text)
        if facebook.video_id:
            facebook.post_comment(author, text)


async def _demo(port: int, folder: Path) -> None:
    receivers = {name: RtmpServer.receiver(app=app) for name, app, _p, _a in RECEIVERS}
    youtube, facebook = FakeYouTubeLive(), FakeFacebookLive()
    for server in receivers.values():
        await server.start()
    await youtube.start()
    await facebook.start()
    try:
        for name, *_ in RECEIVERS:
            os.environ["DEMO_KEY_" + name.upper().replace("-", "_")] = "demo-" + secrets.token_hex(6)
        path = folder / "demo.toml"
        path.write_text(event_text(port, receivers, "demo.db", broadcast_tables(folder, youtube, facebook)),
                        encoding="utf-8")
        event = load_event(path)
        store = Store(event.event.database)
        logins = ensure_logins(store)
        overlay_token = store.create_token("overlay", "demo overlays")
        controller = Controller(event, store=store)

        async def announce() -> None:
            await controller.started.wait()
            print_banner(controller.console_url or f"http://127.0.0.1:{port}", folder, logins, overlay_token,
                         {"facebook-fanpage": facebook.ingest, "youtube-channel-1": youtube.ingest, **receivers})

        controller.extra_tasks.append(("demo.announce", announce))
        controller.extra_tasks.append(("demo.chatter", lambda: chatter(youtube, facebook)))
        await run_until_signalled(controller)
    finally:
        for server in receivers.values():
            await server.close()
        await youtube.stop()
        await facebook.stop()


def run_demo(port: int = 8080, workdir: str | None = None) -> int:
    """Run the rehearsal until Ctrl-C; 0 on a clean stop."""
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="streamctl-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(_demo(port, folder.resolve()))
    except KeyboardInterrupt:
        pass
    except Exception as e:  # the console's port taken arrives wrapped in the controller's task group
        error = os_error_in(e)
        if error is None:
            raise
        print(f"streamctl demo: {error.strerror or error} (is port {port} already in use? try --port)",
              file=sys.stderr)
        return 1
    return 0
