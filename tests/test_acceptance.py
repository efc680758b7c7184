"""Acceptance: streamctl driven only through its contract (DESIGN.md), as a new user would.

The real console script, event files in a temp folder, keys in environment variables, ffmpeg publishing to
its RTMP ingest, real RTMP receivers standing in for the platforms, the fake YouTube and Facebook APIs, and
HTTP on loopback with tokens from `streamctl token create` or a session from /login. One running event is
shared by the checks in file order (ingest → destinations → audience → questions → accounts → stop →
report); the stop-and-report check stops it itself, so each check can also be run alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from streamctl.fakes.facebook import FakeFacebook
from streamctl.fakes.youtube import FakeYouTube

from .acceptance_helpers import (
    LOOPBACK,
    Client,
    NginxRtmp,
    Publisher,
    Service,
    cli,
    eventually,
    ffmpeg_below,
    ffmpeg_mentioning,
    nginx_rtmp_available,
)
from .conftest import free_port
from .receivers import RtmpReceiver, pid_alive, wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")

if not shutil.which("ffmpeg"):  # the only tool these checks cannot do without
    pytest.skip("ffmpeg is not installed", allow_module_level=True)

# Everything secret is random per run, so finding one in an answer or a log can only be a leak.
INGEST_KEY = "ingest-" + secrets.token_hex(8)
DEST_KEYS = {name: f"{name}-key-{secrets.token_hex(6)}" for name in ("yt-one", "custom-two", "custom-three", "extra")}
YT_TOKEN = "ya29.acc-" + secrets.token_hex(8)
FB_TOKEN = "EAAacc" + secrets.token_hex(8)
HOOK_SECRET = "hook-" + secrets.token_hex(8)
DEAD_KEY = "dead-key-" + secrets.token_hex(6)  # for a platform that is down: ffmpeg's errors carry the URL
SECRETS = [INGEST_KEY, *DEST_KEYS.values(), YT_TOKEN, FB_TOKEN, HOOK_SECRET, DEAD_KEY]


def env_var(destination: str) -> str:
    """The environment variable holding a destination's key."""
    return "ACC_KEY_" + destination.upper().replace("-", "_")


ENV = {
    "ACC_INGEST_KEY": INGEST_KEY, **{env_var(name): key for name, key in DEST_KEYS.items()},
    "ACC_YT_TOKEN": YT_TOKEN, "ACC_FB_TOKEN": FB_TOKEN, "ACC_HOOK_SECRET": HOOK_SECRET, env_var("dead"): DEAD_KEY,
}
EVENT_NAME = "Kỳ họp HĐND — phiên chất vấn (acceptance)"
YT_VIEWERS, FB_VIEWERS, FB_VIEWERS_LATER = 120, 80, 95
CONFIGURED = ("yt-one", "custom-two", "custom-three")
ON_NGINX = "custom-three"  # this platform is an nginx-rtmp server (when installed); the others are ffmpeg -listen


def user_env() -> dict[str, str]:
    """The operator's shell: every key and token exported."""
    return {**os.environ, **ENV}


# ---- 1. streamctl check -------------------------------------------------------------------------------

GOOD = """
[event]
name = "Phiên chất vấn"
timezone = "Asia/Ho_Chi_Minh"
database = "good.db"

[ingest]
url = "rtmp://127.0.0.1:{ingest}/live"
key_env = "ACC_INGEST_KEY"

[[destination]]
name = "yt-one"
platform = "youtube"
url = "rtmp://127.0.0.1:{dest}/live2"
key_env = "ACC_KEY_YT_ONE"

[[audience]]
name = "fb"
platform = "facebook"
live_video_id = "911936075671494"
credential_env = "ACC_FB_TOKEN"
api_base = "http://127.0.0.1:9/v21.0"

[console]
listen = "127.0.0.1:{console}"
"""

# (what is wrong, the file's text, what its error lines must mention)
BAD = [
    ("missing key variable", GOOD.replace('key_env = "ACC_KEY_YT_ONE"', 'key_env = "ACC_NOT_SET_ANYWHERE"'),
     ['destination "yt-one": key_env', "ACC_NOT_SET_ANYWHERE"]),
    ("unknown platform", GOOD.replace('platform = "youtube"', 'platform = "youtub"'),
     ['destination "yt-one": platform', "youtub"]),
    ("wrong type", GOOD.replace('key_env = "ACC_KEY_YT_ONE"', 'key_env = "ACC_KEY_YT_ONE"\nautostart = "yes"'),
     ['destination "yt-one": autostart']),
    ("no event table", GOOD.replace("[event]", "[evnt]"), ["event"]),
    ("audience field missing", GOOD.replace('live_video_id = "911936075671494"\n', ""),
     ['audience "fb": live_video_id']),
    ("bad listen", GOOD.replace('listen = "127.0.0.1:{console}"', 'listen = "localhost"'), ["console.listen"]),
    ("not TOML", "[event\nname = 'x'\n", []),
]


async def test_check_accepts_a_good_file_and_explains_every_bad_one(tmp_path):
    ports = {"ingest": free_port(), "dest": free_port(), "console": free_port()}
    good = tmp_path / "good.toml"
    good.write_text(GOOD.format(**ports), encoding="utf-8")
    bad = []
    for i, (what, text, mentions) in enumerate(BAD):
        path = tmp_path / f"bad{i}.toml"
        path.write_text(text.format(**ports), encoding="utf-8")
        bad.append((what, path, mentions))
    env = user_env()
    del env["ACC_FB_TOKEN"]  # one more mistake a new user makes: the good file's credential is not exported
    results = await asyncio.gather(cli("check", str(good), env=user_env()),
                                   cli("check", str(good), env=env),
                                   *(cli("check", str(path), env=user_env()) for _, path, _ in bad))
    ok, unset, *wrong = results
    assert ok.code == 0, ok.err
    assert "Traceback" not in ok.out + ok.err
    assert unset.code == 2 and "ACC_FB_TOKEN" in unset.err and 'audience "fb": credential_env' in unset.err, unset.err
    for (what, path, mentions), result in zip([("credential unset", good, []), *bad], [unset, *wrong], strict=True):
        assert result.code == 2, f"{what}: exit {result.code}\n{result.out}{result.err}"
        text = result.out + result.err
        assert "Traceback" not in text, f"{what}: {text}"
        lines = [line for line in result.err.splitlines() if line.strip()]
        assert lines, f"{what}: nothing said on stderr"
        for line in lines:
            # `file: key: what is wrong, what was expected`
            assert line.startswith(f"{path}: ") and line.count(": ") >= 2 and "expected" in line, f"{what}: {line}"
        for needle in mentions:
            assert needle in result.err, f"{what}: {needle!r} not named in {result.err}"


async def test_check_probes_a_reachable_ingest_against_platform_rules(tmp_path):
    """A publisher whose keyframes are 6 s apart breaks YouTube's rules; check says so (exit 2) by name."""
    ports = {"ingest": free_port(), "dest": free_port(), "console": free_port()}
    path = tmp_path / "probe.toml"
    path.write_text(GOOD.format(**ports), encoding="utf-8")
    check = asyncio.create_task(cli("check", str(path), "--probe-timeout", "20", env=user_env()))
    publisher = None
    try:
        await wait_for(lambda: _listening(ports["ingest"]), 15, "check to listen for the ingest")
        publisher = await Publisher(f"rtmp://{LOOPBACK}:{ports['ingest']}/live/{INGEST_KEY}", gop_s=6,
                                    realtime=False).start()
        result = await asyncio.wait_for(check, 40)
    finally:
        if publisher:
            await publisher.stop()
        check.cancel()
        with contextlib.suppress(BaseException):
            await check
    assert result.code == 2, result.out + result.err
    assert "yt-one" in result.err and "keyframe" in result.err.lower(), result.err
    assert INGEST_KEY not in result.out + result.err and "Traceback" not in result.err


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((LOOPBACK, port)) == 0


# ---- 2. streamctl doctor ------------------------------------------------------------------------------


async def test_doctor_names_ffmpeg_and_its_protocols_and_codecs():
    result = await cli("doctor")
    assert result.code == 0, result.out + result.err
    text = result.out.lower()
    assert "ffmpeg" in text and re.search(r"\d+\.\d+", text)
    for feature in ("rtmp", "rtmps", "srt", "libx264", "aac"):
        assert re.search(rf"\b{feature}\b.*\byes\b", text), f"{feature} not reported as available:\n{result.out}"


async def test_run_and_demo_say_when_the_console_port_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = tmp_path / "busy.toml"
        path.write_text(f'[event]\nname = "busy"\n[console]\nlisten = "127.0.0.1:{port}"\n', encoding="utf-8")
        run, demo = await asyncio.gather(cli("run", str(path), within=30),
                                         cli("demo", "--port", str(port), "--dir", str(tmp_path / "demo"), within=30))
    for what, result in (("run", run), ("demo", demo)):
        assert result.code == 1, f"{what}: exit {result.code}\n{result.err}"
        assert "Traceback" not in result.err and "address already in use" in result.err, f"{what}: {result.err}"
        assert str(port) in result.err.splitlines()[-1], f"{what}: {result.err}"


# ---- the shared running event ---------------------------------------------------------------------------


@dataclass
class Event:
    folder: Path
    path: Path
    base: str
    service: Service
    yt: FakeYouTube
    fb: FakeFacebook
    receivers: dict[str, RtmpReceiver]
    nginx: NginxRtmp | None
    tokens: dict[str, str]
    clients: dict[str, Client] = field(default_factory=dict)
    publisher: Publisher | None = None
    hook_ids: list[str] = field(default_factory=list)
    question_id: int | None = None
    started_at: float = field(default_factory=time.time)
    fb_peak: int = FB_VIEWERS
    yt_deleted: int = 0
    all_live_at: float | None = None  # when the checks first saw every configured destination live

    def client(self, who: str) -> Client:
        """A caller by role (operator, moderator, official, overlay) or `anonymous`."""
        if who not in self.clients:
            self.clients[who] = Client(self.base, SECRETS, self.tokens.get(who))
        return self.clients[who]

    @property
    def op(self) -> Client:
        return self.client("operator")

    @property
    def mod(self) -> Client:
        return self.client("moderator")

    def url_of(self, name: str) -> str:
        """The platform ingest URL a destination publishes to (before its key)."""
        return self.nginx.url if self.nginx and name == ON_NGINX else self.receivers[name].url

    async def progress(self) -> dict[str, int]:
        """What each platform has received so far: video frames (ffmpeg receivers) or bytes (nginx)."""
        got = {name: len(rx.video) for name, rx in self.receivers.items()}
        if self.nginx:
            stream = await self.nginx.stream(DEST_KEYS[ON_NGINX])
            got[ON_NGINX] = stream["bytes_in"] if stream else 0
        return got

    def enough(self, name: str, seconds: float) -> int:
        """The least a healthy platform receives in `seconds`: 15 frames a second, or 12 kB a second."""
        return int(seconds * (12_000 if self.nginx and name == ON_NGINX else 15))

    async def publishers_seen(self, name: str) -> object:
        """Which publisher sessions a platform has seen; it changes only when the destination reconnects."""
        if self.nginx and name == ON_NGINX:
            stream = await self.nginx.stream(DEST_KEYS[ON_NGINX])
            return tuple(stream["clients"]) if stream else ()
        return self.receivers[name].sessions

    async def destinations(self) -> dict[str, dict]:
        answer = await self.op.ok("GET", "/api/destinations")
        return {d["name"]: d for d in answer["destinations"]}

    async def states(self) -> dict[str, str]:
        return {name: d["state"] for name, d in (await self.destinations()).items()}

    async def ensure_program(self) -> None:
        """The right publisher is on the ingest and every configured destination is live (for checks run alone)."""
        if self.publisher is None or self.publisher.process.returncode is not None:
            self.publisher = await Publisher(f"rtmp://{LOOPBACK}:{self.ingest_port}/live/{INGEST_KEY}").start()
        await eventually(self._all_live, 40, "every configured destination live")
        if self.all_live_at is None:
            self.all_live_at = time.time()

    async def _all_live(self):
        states = await self.states()
        return all(states.get(n) == "live" for n in CONFIGURED) and states

    @property
    def ingest_port(self) -> int:
        return int(re.search(r"127\.0\.0\.1:(\d+)/live\"", self.path.read_text()).group(1))


EVENT_FILE = """
[event]
name = "{name}"
timezone = "Asia/Ho_Chi_Minh"
database = "acc.db"

[ingest]
url = "rtmp://127.0.0.1:{ingest}/live"
key_env = "ACC_INGEST_KEY"

[[destination]]
name = "yt-one"
platform = "youtube"
url = "{rx_yt_one}"
key_env = "ACC_KEY_YT_ONE"

[[destination]]
name = "custom-two"
platform = "custom"
url = "{rx_custom_two}"
key_env = "ACC_KEY_CUSTOM_TWO"

[[destination]]
name = "custom-three"
url = "{rx_custom_three}"
key_env = "ACC_KEY_CUSTOM_THREE"

[[audience]]
name = "yt-live"
platform = "youtube"
video_id = "{yt_video}"
credential_env = "ACC_YT_TOKEN"
api_base = "{yt_base}"

[[audience]]
name = "fb-live"
platform = "facebook"
live_video_id = "{fb_video}"
credential_env = "ACC_FB_TOKEN"
api_base = "{fb_base}"

[[audience]]
name = "zalo-hook"
platform = "webhook"
secret_env = "ACC_HOOK_SECRET"
label = "zalo"

[console]
listen = "127.0.0.1:{console}"
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def event(tmp_path_factory):
    folder = tmp_path_factory.mktemp("acceptance")
    # The sources poll at their default pace, planned from YouTube's default daily quota, as a new user's would.
    yt = FakeYouTube(token=YT_TOKEN)
    fb = FakeFacebook(token=FB_TOKEN)
    receivers: dict[str, RtmpReceiver] = {}
    nginx = None
    service = None
    running = None
    try:
        await yt.start()
        await fb.start()
        yt.set_viewers(YT_VIEWERS)
        fb.set_viewers(FB_VIEWERS)
        for name in DEST_KEYS:
            if name == ON_NGINX and nginx_rtmp_available():
                nginx = await NginxRtmp(folder / "nginx", free_port(), free_port()).start()
            else:
                receivers[name] = await RtmpReceiver(free_port()).start()
        urls = {name: (nginx.url if nginx and name == ON_NGINX else receivers[name].url) for name in DEST_KEYS}
        port = free_port()
        path = folder / "event.toml"
        path.write_text(EVENT_FILE.format(
            name=EVENT_NAME, ingest=free_port(), console=port, yt_video=yt.video_id, yt_base=yt.url,
            fb_video=fb.video_id, fb_base=fb.api_base,
            **{"rx_" + n.replace("-", "_"): url for n, url in urls.items()}), encoding="utf-8")
        made = await asyncio.gather(*(cli("token", "create", "--role", role, "--event", str(path), env=user_env())
                                      for role in ("operator", "moderator", "official", "overlay")))
        tokens = {}
        for role, result in zip(("operator", "moderator", "official", "overlay"), made, strict=True):
            assert result.code == 0 and result.out.strip(), result.err
            tokens[role] = result.out.strip()
        service = await Service(["run", str(path)], user_env(), folder / "run.log").start()
        running = Event(folder, path, f"http://{LOOPBACK}:{port}", service, yt, fb, receivers, nginx, tokens)

        async def healthy():
            if not service.running():
                raise AssertionError(f"streamctl run exited ({service.process.returncode}):\n{service.output()}")
            with contextlib.suppress(OSError, TimeoutError):
                return (await running.client("anonymous").get("/healthz"))[0] == 200
            return False

        await eventually(healthy, 30, "streamctl run's console to answer /healthz")
        yield running
    finally:
        if running is not None:
            if running.publisher:
                await running.publisher.stop()
            for client in running.clients.values():
                await client.close()
        if service is not None:
            await service.kill()
        for rx in receivers.values():
            await rx.kill()
        if nginx is not None:
            await nginx.stop()
        await yt.stop()
        await fb.stop()


# ---- 3. restreaming ---------------------------------------------------------------------------------


async def test_ingest_refuses_a_wrong_key_then_restreams_the_right_one(event):
    intruder = await Publisher(f"rtmp://{LOOPBACK}:{event.ingest_port}/live/not-the-key").start()
    try:
        code, _ = await intruder.exited(15)
    finally:
        await intruder.stop()
    assert code not in (None, 0), "a publisher with the wrong key was not turned away"
    ingest = await event.op.ok("GET", "/api/ingest")
    assert ingest["state"] != "live", ingest
    assert not any((await event.progress()).values()), "a wrong-key stream reached a platform"

    await event.ensure_program()
    ingest = await eventually(lambda: _probed(event), 20, "the ingest live with probed parameters")
    probe = ingest["probe"]
    assert (probe["width"], probe["height"]) == (640, 360) and probe["video_codec"] == "h264"
    assert probe["audio_codec"] == "aac" and 25 <= probe["fps"] <= 35, probe
    assert INGEST_KEY not in json.dumps(ingest)

    dests = await event.destinations()
    assert set(dests) == set(CONFIGURED)
    for name, d in dests.items():
        assert d["state"] == "live" and d["url"] == event.url_of(name) + "/****", d
        health = d["health"]
        assert {"bitrate_kbps", "fps", "speed", "uptime_s", "reconnects", "last_error"} <= set(health), health
    async def all_receiving():
        got = await event.progress()
        return all(got[n] > event.enough(n, 3) for n in CONFIGURED) and got

    await eventually(all_receiving, 15, "every platform receiving the program")
    for name, rx in event.receivers.items():
        if name in CONFIGURED:
            assert rx.dimensions() == {"640x360"}, name
    if event.nginx:
        stream = await event.nginx.stream(DEST_KEYS[ON_NGINX])
        assert (stream["width"], stream["height"]) == ("640", "360"), stream


async def _probed(event: Event):
    ingest = await event.op.ok("GET", "/api/ingest")
    return ingest["state"] == "live" and (ingest.get("probe") or {}).get("width") and ingest


async def _received_during(event: Event, seconds: float) -> dict[str, int]:
    before = await event.progress()
    await asyncio.sleep(seconds)
    after = await event.progress()
    return {n: after[n] - before[n] for n in after}


async def _longest_stall(event: Event, name: str, until: asyncio.Event) -> float:
    """Samples what `name` has received until `until` is set; the longest time it got nothing new."""
    last_value, last_growth, longest = None, time.monotonic(), 0.0
    for _ in range(2000):  # bounded: 0.1 s steps, the caller sets `until` well before
        value = (await event.progress())[name]
        at = time.monotonic()
        if value != last_value:
            last_value, last_growth = value, at
        longest = max(longest, at - last_growth)
        if until.is_set():
            break
        await asyncio.sleep(0.1)
    return longest


async def test_one_destination_stops_starts_restarts_while_the_others_keep_receiving(event):
    await event.ensure_program()
    seen_before = await event.publishers_seen("custom-three")
    done = asyncio.Event()
    watcher = asyncio.create_task(_longest_stall(event, "custom-three", done))
    try:
        stopped = await event.op.ok("POST", "/api/destinations/custom-two/stop")
        assert stopped["state"] == "stopped", stopped
        await asyncio.sleep(0.5)  # what was already in flight lands
        got = await _received_during(event, 2.0)
        assert got["custom-two"] == 0, f"the stopped destination still delivered {got['custom-two']} frames"
        assert all(got[n] >= event.enough(n, 2) for n in ("yt-one", "custom-three")), got
        assert (await event.states())["yt-one"] == "live"

        # The answer may still say `stopped` (the start is under way); what counts is that it goes live.
        await event.op.ok("POST", "/api/destinations/custom-two/start")
        await eventually(lambda: _state_is(event, "custom-two", "live"), 20, "custom-two live again")
        count = len(event.receivers["custom-two"].video)
        await wait_for(lambda: len(event.receivers["custom-two"].video) > count + 30, 10,
                       "custom-two receiving again")

        sessions = event.receivers["yt-one"].sessions
        await event.op.ok("POST", "/api/destinations/yt-one/restart")
        await wait_for(lambda: event.receivers["yt-one"].sessions > sessions, 20, "yt-one to publish anew")
        await eventually(lambda: _state_is(event, "yt-one", "live"), 20, "yt-one live after its restart")
    finally:
        done.set()
        stall = await watcher
    # custom-three was never touched: the same publisher session throughout, and no gap a viewer would notice.
    assert await event.publishers_seen("custom-three") == seen_before
    assert stall < 2.0, f"custom-three got nothing for {stall:.1f} s while another destination was controlled"
    status, answer = await event.op.call("POST", "/api/destinations/nope/stop")
    assert status == 404, answer


async def _state_is(event: Event, name: str, state: str):
    return (await event.states()).get(name) == state


async def test_a_destination_added_and_removed_mid_event(event):
    await event.ensure_program()
    rx = event.receivers["extra"]
    body = {"name": "extra", "platform": "custom", "url": rx.url, "key_env": env_var("extra"), "autostart": True}
    status, added = await event.op.call("POST", "/api/destinations", body)
    assert status == 201 and added["name"] == "extra" and added["url"] == rx.url + "/****", added
    await eventually(lambda: _state_is(event, "extra", "live"), 20, "the added destination live")
    await wait_for(lambda: len(rx.video) > 30, 10, "the added destination's receiver getting frames")
    status, again = await event.op.call("POST", "/api/destinations", body)
    assert status == 409, again
    status, refused = await event.op.call("POST", "/api/destinations",
                                          {"name": "broken", "platform": "youtube", "url": "http://x/y"})
    assert status == 400 and "url" in json.dumps(refused), refused

    # A platform that is down: the destination says so (with ffmpeg's words, key masked); the others go on.
    dead = {"name": "dead", "platform": "custom", "url": f"rtmp://{LOOPBACK}:{free_port()}/live",
            "key_env": "ACC_KEY_DEAD"}
    assert (await event.op.call("POST", "/api/destinations", dead))[0] == 201

    async def failing():
        d = (await event.destinations())["dead"]
        return d["state"] in ("backoff", "failed") and (d["error"] or d["health"]["last_error"]) and d

    d = await eventually(failing, 20, "the destination to a closed port to report its failure")
    assert d["url"].endswith("/****"), d
    states = await event.states()
    assert all(states[n] == "live" for n in (*CONFIGURED, "extra")), states
    for name in ("dead", "extra"):
        status, _ = await event.op.call("DELETE", f"/api/destinations/{name}")
        assert status == 200
    assert not {"dead", "extra"} & set(await event.destinations())
    await wait_for(lambda: not ffmpeg_mentioning(DEST_KEYS["extra"], DEAD_KEY), 10,
                   "the removed destinations' ffmpeg to exit")
    await asyncio.sleep(0.5)
    got = await _received_during(event, 1.5)
    assert got["extra"] == 0 and all(got[n] >= event.enough(n, 1.5) for n in CONFIGURED), got


async def test_metrics_for_the_operator_and_roles_everywhere(event):
    status, text = await event.op.get("/metrics")
    assert status == 200 and isinstance(text, str), text
    assert "# TYPE streamctl_destination_state gauge" in text
    assert re.search(r'streamctl_destination_state\{[^}]*name="yt-one"[^}]*\} 1', text), text[:2000]
    for secret in SECRETS:
        assert secret not in text
    anon, mod, official = event.client("anonymous"), event.mod, event.client("official")
    assert (await anon.get("/healthz"))[0] == 200
    for path in ("/api/destinations", "/api/ingest", "/metrics", "/api/audience", "/api/comments", "/api/viewers",
                 "/api/questions"):
        assert (await anon.get(path))[0] == 401, path
    for path in ("/api/destinations", "/api/ingest", "/metrics", "/api/audience"):
        assert (await mod.get(path))[0] == 403, path
    for path in ("/api/comments", "/api/viewers"):
        assert (await official.get(path))[0] == 403, path
    assert (await mod.call("POST", "/api/destinations/yt-one/stop"))[0] == 403
    assert (await event.client("overlay").get("/api/comments"))[0] == 403
    # The pages show the same destinations; no key may be in them either (every answer is checked).
    for path in ("/operate", "/moderate", "/official", "/report"):
        status, page = await event.op.get(path)
        assert status == 200 and "<html" in page.lower(), (path, status)
    bogus = Client(event.base, SECRETS, "not-a-token")
    try:
        assert (await bogus.get("/api/destinations"))[0] == 401
    finally:
        await bogus.close()


# ---- 4. audience ------------------------------------------------------------------------------------------


def _signed(body: bytes, secret: str = HOOK_SECRET) -> dict:
    return {"X-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            "Content-Type": "application/json"}


async def test_comments_viewers_and_sources_from_every_platform(event):
    async def viewers_total(total: int):
        answer = await event.mod.ok("GET", "/api/viewers")
        return answer["total"] == total and answer

    viewers = await eventually(lambda: viewers_total(YT_VIEWERS + FB_VIEWERS), 20, "YouTube's and Facebook's viewers")
    by_name = {s["name"]: s for s in viewers["sources"]}
    assert by_name["yt-live"]["viewers"] == YT_VIEWERS and by_name["fb-live"]["viewers"] == FB_VIEWERS
    assert by_name["yt-live"]["platform"] == "youtube" and by_name["yt-live"]["manual"] is False
    assert by_name["yt-live"]["at"]
    event.fb.set_viewers(FB_VIEWERS_LATER)  # more people join on Facebook; checked once the comments are in
    event.fb_peak = FB_VIEWERS_LATER

    for i in range(5):
        event.yt.post_comment(f"Người xem YT {i}", f"Câu hỏi YouTube số {i}: đường 342 khi nào xong?")
    for i in range(4):
        event.fb.post_comment(f"Người xem FB {i}", f"Bình luận Facebook số {i}")
    hook = [{"id": f"z-{i}", "author": f"Zalo {i}", "author_id": f"zu{i}", "text": f"Tin nhắn Zalo {i}"}
            for i in range(3)]
    body = json.dumps({"messages": hook}, ensure_ascii=False).encode()
    status, answer = await event.mod.call("POST", "/api/webhook/zalo-hook", data=body, headers=_signed(body))
    assert status == 200 and answer["accepted"] == 3, answer
    status, answer = await event.mod.call("POST", "/api/webhook/zalo-hook", data=body,
                                          headers=_signed(body, "wrong-secret"))
    assert status == 401, answer
    forged = body.replace(b"Zalo 0", b"Zalo X")
    assert (await event.mod.call("POST", "/api/webhook/zalo-hook", data=forged, headers=_signed(body)))[0] == 401
    event.hook_ids = [h["id"] for h in hook]

    expected = {"youtube": len(event.yt.published), "facebook": len(event.fb.published), "zalo": 3}

    async def all_arrived():
        comments = await _all_comments(event.mod)
        by = {p: sum(1 for c in comments if c["platform"] == p) for p in expected}
        return by == expected and comments

    comments = await eventually(all_arrived, 20, f"{expected} comments at /api/comments")
    ids = [c["id"] for c in comments]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    sample = next(c for c in comments if c["platform"] == "youtube")
    assert {"id", "platform", "source", "author", "text", "published_at", "received_at", "hidden",
            "is_question"} <= set(sample), sample
    assert sample["source"] == "yt-live" and sample["author"].startswith("Người xem YT")
    assert not any("Zalo X" in c["author"] for c in comments)
    only_fb = await event.mod.ok("GET", "/api/comments?platform=facebook")
    assert {c["platform"] for c in only_fb["comments"]} == {"facebook"} and len(only_fb["comments"]) == 4
    later = await event.mod.ok("GET", f"/api/comments?after={ids[-2]}")
    assert [c["id"] for c in later["comments"]] == ids[-1:] and later["next_after"] == ids[-1]
    found = await event.mod.ok("GET", "/api/comments?q=" + "Facebook số 2")
    assert [c["text"] for c in found["comments"]] == ["Bình luận Facebook số 2"], found
    asked = await event.mod.ok("GET", "/api/comments?questions=1&limit=1000")
    assert {c["platform"] for c in asked["comments"]} == {"youtube"} and len(asked["comments"]) == 5, asked
    assert all(c["is_question"] for c in asked["comments"])

    # YouTube's moderators delete a message: it stays stored, marked hidden.
    gone_text = sample["text"]
    event.yt.delete(event.yt.published[0])
    event.yt_deleted = 1

    async def hidden_on_youtube():
        shown = await event.mod.ok("GET", "/api/comments?platform=youtube")
        return [c["text"] for c in shown["comments"] if c["hidden"]]

    assert await eventually(hidden_on_youtube, 20, "the deleted YouTube message marked hidden") == [gone_text]
    await eventually(lambda: viewers_total(YT_VIEWERS + FB_VIEWERS_LATER), 20, "Facebook's new viewer count")

    sources = {s["name"]: s for s in (await event.op.ok("GET", "/api/audience"))["sources"]}
    assert set(sources) == {"yt-live", "fb-live", "zalo-hook"}, sources
    for name in ("yt-live", "fb-live"):
        s = sources[name]
        assert s["state"] in ("ok", "live", "polling", "running") and not s.get("error"), s
        assert s["last_ok"] and s["last_message_at"], s
    assert sources["yt-live"]["platform"] == "youtube"


async def _all_comments(client: Client) -> list[dict]:
    answer = await client.ok("GET", "/api/comments?limit=1000")
    return answer["comments"]


# ---- 5. questions and overlays ----------------------------------------------------------------------------


async def test_question_flow_from_comment_to_answered(event):
    comments = await _all_comments(event.mod)
    if not comments:  # run alone: one comment is enough here
        event.yt.post_comment("Người hỏi", "Khi nào sửa đường 342?")
        comments = await eventually(lambda: _all_comments(event.mod), 15, "a comment")
    comment = next((c for c in comments if c["platform"] == "facebook"), comments[0])
    status, answer = await event.mod.call("POST", "/api/questions", {"comment_id": comment["id"]})
    assert status in (200, 201), answer
    question = answer["question"]
    qid = event.question_id = question["id"]
    assert question["original_text"] == comment["text"] and question["state"] == "pending", question
    status, answer = await event.mod.call("POST", "/api/questions", {"comment_id": 10**12})
    assert status == 404, answer

    official = event.client("official")

    async def act(action: str, body: dict | None = None) -> dict:
        return (await event.mod.ok("POST", f"/api/questions/{qid}/{action}", body or {}))["question"]

    assert (await act("approve"))["state"] == "approved"
    assert qid not in [q["id"] for q in (await official.ok("GET", "/api/questions"))["questions"]]
    edited = await act("edit", {"text": "Khi nào đường tỉnh 342 hoàn thành?"})
    assert edited["text"] == "Khi nào đường tỉnh 342 hoàn thành?" and edited["original_text"] == comment["text"]
    assert (await act("forward"))["state"] == "forwarded"
    seen = {q["id"]: q for q in (await official.ok("GET", "/api/questions"))["questions"]}
    assert seen[qid]["state"] == "forwarded" and seen[qid]["text"] == edited["text"], seen
    assert all(q["state"] in ("forwarded", "on_air", "answered") for q in seen.values()), seen
    assert {"id", "text", "original_text", "author", "platform", "state", "order", "merged_count"} <= set(seen[qid])
    assert (await official.call("POST", f"/api/questions/{qid}/on_air"))[0] == 403

    assert (await act("on_air"))["state"] == "on_air"
    overlay_token = event.tokens["overlay"]
    anon = event.client("anonymous")
    status, page = await anon.get(f"/overlay/question?token={overlay_token}")
    assert status == 200, page
    # The lower third is drawn by the page's script from the data the page carries.
    assert page_data(page)["on_air"]["text"] == edited["text"], page
    status, page = await anon.get(f"/overlay/viewers?token={overlay_token}")
    assert status == 200 and isinstance(page_data(page)["viewers"], int), page
    assert (await anon.get("/overlay/question"))[0] in (401, 403)
    assert (await anon.get(f"/overlay/question?token={event.tokens['moderator']}"))[0] in (401, 403)
    assert (await anon.get("/overlay/question?token=made-up"))[0] in (401, 403)

    assert (await act("answered"))["state"] == "answered"
    mine = {q["id"]: q for q in (await event.mod.ok("GET", "/api/questions"))["questions"]}
    assert mine[qid]["state"] == "answered"
    status, answer = await event.mod.call("POST", f"/api/questions/{qid}/frobnicate")
    assert status in (400, 404), answer


def page_data(page: str) -> dict:
    """The JSON a page carries for its script (`<script type="application/json" id="page-data">`)."""
    match = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', page, re.DOTALL)
    assert match, page[:500]
    return json.loads(match.group(1))


# ---- 8. accounts ------------------------------------------------------------------------------------------


async def test_user_add_then_sign_in_and_a_wrong_password_is_refused(event):
    password = "mật-khẩu-" + secrets.token_hex(4)
    result = await cli("user", "add", "linh", "--role", "moderator", "--event", str(event.path), "--password-stdin",
                       stdin=password + "\n", env=user_env())
    assert result.code == 0, result.err
    assert password not in result.out + result.err
    again = await cli("user", "add", "linh", "--role", "moderator", "--event", str(event.path), "--password-stdin",
                      stdin=password + "\n", env=user_env())
    assert again.code != 0 and "Traceback" not in again.err, again.err

    wrong = Client(event.base, SECRETS + [password])
    person = Client(event.base, SECRETS + [password])
    script = Client(event.base, SECRETS + [password])
    try:
        assert await wrong.sign_in("linh", password + "x") in (401, 403)
        assert not wrong.has_session()
        assert (await wrong.get("/api/comments"))[0] == 401

        assert await person.sign_in("linh", password) in (302, 303)
        assert person.has_session()
        assert (await person.get("/api/comments"))[0] == 200
        assert (await person.get("/api/questions"))[0] == 200
        assert (await person.get("/api/destinations"))[0] == 403
        # A script (curl, requests) sends no Origin header: the form's own token is its proof.
        assert await script.sign_in("linh", password, origin=False) in (302, 303)
        assert (await script.get("/api/comments"))[0] == 200
    finally:
        for client in (wrong, person, script):
            await client.close()


# ---- 3 (end) and 6. stop, then the report ---------------------------------------------------------------


async def test_sigterm_stops_everything_then_the_report_tells_the_event(event):
    await event.ensure_program()
    assert len(event.service.note_ffmpeg()) == len(CONFIGURED) + 1  # every destination and the confidence monitor
    stopping_at = time.time()
    code, took = await event.service.stop(signal.SIGTERM)
    assert code == 0 and took < 10, f"exit {code} after {took:.1f} s"
    left = [p for p in event.service.seen_ffmpeg if pid_alive(p)] + ffmpeg_mentioning(*DEST_KEYS.values())
    assert not left, f"ffmpeg left behind: {left}"
    log = event.service.output()
    assert "Traceback" not in log, log[max(0, log.find("Traceback") - 1500):][:4000]
    assert not [s for s in SECRETS if s in log], "a secret reached the log"
    await event.publisher.stop()

    db = event.folder / "acc.db"
    assert db.exists()
    result = await cli("report", str(db), "--format", "json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    ev = report["event"]
    assert ev["name"] == EVENT_NAME and ev["timezone"] == "Asia/Ho_Chi_Minh"
    assert ev["started_at"] and ev["ended_at"] and ev["started_at"] < ev["ended_at"], ev

    platforms = {p["name"]: p for p in report["platforms"]}
    counts = {"yt-live": len(event.yt.published), "fb-live": len(event.fb.published),
              "zalo-hook": len(event.hook_ids)}
    for name, n in counts.items():
        if n == 0 and name not in platforms:  # run alone: a source that heard nothing need not be listed
            continue
        assert name in platforms, platforms.keys()
        p = platforms[name]
        assert {"platform", "peak_viewers", "peak_at", "mean_viewers", "comments", "unique_authors"} <= set(p)
        assert p["comments"] == n, (name, p["comments"], n)
        assert p["unique_authors"] == n  # every comment in these checks has its own author
    if "yt-live" in platforms:
        assert platforms["yt-live"]["hidden"] == event.yt_deleted, platforms["yt-live"]
    assert platforms["yt-live"]["platform"] == "youtube" and platforms["fb-live"]["platform"] == "facebook"
    assert platforms["yt-live"]["peak_viewers"] == YT_VIEWERS and platforms["fb-live"]["peak_viewers"] == event.fb_peak
    assert platforms["yt-live"]["mean_viewers"] == pytest.approx(YT_VIEWERS)
    assert FB_VIEWERS <= platforms["fb-live"]["mean_viewers"] <= event.fb_peak
    total = report["total"]
    assert total["comments"] == sum(counts.values()) and total["unique_authors"] == sum(counts.values())
    # The peak of the summed series: both platforms at their highest at once (YouTube never changed).
    assert total["peak_viewers"] == YT_VIEWERS + event.fb_peak and total["peak_at"], total

    questions = report["questions"]
    assert {"received", "approved", "forwarded", "answered", "dismissed", "median_answer_s"} <= set(questions)
    if event.question_id is not None:  # the question flow ran in this session
        assert questions["received"] >= 1 and questions["answered"] == 1 and questions["dismissed"] == 0
        assert questions["forwarded"] >= 1 and questions["approved"] >= 1
        assert isinstance(questions["median_answer_s"], int | float) and 0 <= questions["median_answer_s"] < 600

    dests = {d["name"]: d for d in report["destinations"]}
    assert set(CONFIGURED) <= set(dests), dests.keys()
    for name in CONFIGURED:
        d = dests[name]
        assert d["platform"] == ("youtube" if name == "yt-one" else "custom") and d["uptime_s"] >= 0, d
        assert 0 < d["live_ratio"] <= 1 and isinstance(d["reconnects"], int) and d["reconnects"] >= 0, d
    # custom-three was never touched: live from when the checks saw it live until the stop, within the run.
    uptime = dests["custom-three"]["uptime_s"]
    assert stopping_at - event.all_live_at - 1.5 <= uptime <= stopping_at - event.started_at + 1.5, uptime

    html = await cli("report", str(db), "--format", "html", "-o", str(event.folder / "report.html"))
    assert html.code == 0, html.err
    page = (event.folder / "report.html").read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") and EVENT_NAME in page
    pdf = event.folder / "report.pdf"
    printed = await cli("report", str(db), "--format", "pdf", "-o", str(pdf))
    assert printed.code == 0 and pdf.read_bytes().startswith(b"%PDF"), printed.err
    table = await cli("report", str(db), "--format", "csv")
    assert table.code == 0, table.err
    rows = list(csv.reader(io.StringIO(table.out)))
    assert len(rows) > 5 and any(EVENT_NAME in cell for row in rows for cell in row)
    for text in (page, table.out, result.out):
        assert not [s for s in SECRETS if s in text]


# ---- 7. streamctl demo ------------------------------------------------------------------------------------

LOGIN_LINE = re.compile(r"^\s+(operator|moderator|official)\s+(\S+)\s+password:\s+(\S+)\s*$", re.MULTILINE)
# A command the banner tells the user to type: after a label on an indented line, or in backquotes.
COMMAND_LINE = re.compile(r"^\s+[^\n`]*?:\s+(streamctl [^\n]+?)\s*$|`(streamctl [^`\n]+)`", re.MULTILINE)


async def test_demo_runs_a_whole_rehearsal_and_stops_clean(tmp_path):
    port = free_port()
    demo = await Service(["demo", "--port", str(port), "--dir", str(tmp_path)], dict(os.environ),
                         tmp_path / "demo.log", stdout_pipe=True).start()
    client = Client(f"http://{LOOPBACK}:{port}", [])
    try:
        async def banner():
            if not demo.running():
                raise AssertionError(f"streamctl demo exited ({demo.process.returncode}):\n{demo.output()}")
            logins = LOGIN_LINE.findall(demo.stdout)
            return f"http://127.0.0.1:{port}/login" in demo.stdout and len(logins) >= 3 and logins

        logins = await eventually(banner, 30, "the demo's banner with its logins")
        operator = next((name, pw) for role, name, pw in logins if role == "operator")
        assert await client.sign_in(*operator) in (302, 303)

        async def live():
            dests = (await client.ok("GET", "/api/destinations"))["destinations"]
            auto = [d for d in dests if d["autostart"]]
            return auto and all(d["state"] == "live" for d in auto) and dests

        dests = await eventually(live, 40, "the demo's autostart destinations live")
        assert len(dests) >= 2 and all("****" in d["url"] for d in dests), dests
        made = {d["name"]: d["broadcast"] for d in dests if d.get("broadcast")}
        assert set(made) == {"facebook-fanpage", "youtube-channel-1"}, dests  # through the fakes' APIs
        assert all(b["id"] and b["watch_url"] for b in made.values()), made

        async def talking():
            comments = (await client.ok("GET", "/api/comments"))["comments"]
            return len({c["platform"] for c in comments}) >= 2 and comments

        await eventually(talking, 30, "simulated comments from two platforms")
        commands = [a or b for a, b in COMMAND_LINE.findall(demo.stdout)]
        assert any("token create" in c for c in commands), demo.stdout
        for command in commands:  # every command the demo tells the user to type works as printed
            result = await cli(*shlex.split(command)[1:])
            assert result.code == 0 and "Traceback" not in result.err, (command, result)
            if "token create" in command:
                assert result.out.startswith("sct_"), result.out
        assert (tmp_path / "report.html").stat().st_size > 1000
        viewers = await client.ok("GET", "/api/viewers")
        assert viewers["total"] >= 0 and viewers["sources"], viewers
        overlay = re.search(r"(/overlay/question\?token=\S+)", demo.stdout)
        assert overlay, demo.stdout
        status, page = await client.get(overlay.group(1))  # overlays read only the token in their URL
        assert status == 200 and "on_air" in page_data(page), page
        children = demo.note_ffmpeg()
        assert children, "the demo runs no ffmpeg at all"
        code, took = await demo.stop(signal.SIGINT)
        assert code == 0 and took < 10, f"exit {code} after {took:.1f} s"
        assert not [p for p in demo.seen_ffmpeg if pid_alive(p)], "the demo left ffmpeg behind"
        assert "Traceback" not in demo.output()
    finally:
        await client.close()
        await demo.kill()
    assert not ffmpeg_below(demo.pid)

