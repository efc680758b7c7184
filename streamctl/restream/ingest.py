"""The ingest: whatever the program comes from (our RTMP listener, SRT, a pull, a file, testsrc) into the Program.

RTMP publishes arrive on our own server (app and key checked). Everything else is an ffmpeg child, started
by the supervisor, writing FLV to its stdout; it is restarted with backoff when it dies or stalls.

When a feed that was live sends nothing for `slate_after_s`, the slate (a holding card in the program's own
format, see slate.py) goes on air at its first keyframe, so every destination keeps streaming; the program
comes back at the returning feed's first keyframe and the slate's ffmpeg is stopped. The state stays
`lost` meanwhile (the program is lost; the slate only covers it) and `IngestStateChanged.slate` and
`status()["slate"]` say that the card is on air. No slate before the first feed: the platforms would go live
with a card before the show.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..config import IngestConfig
from ..events import Bus, IngestStateChanged, now
from ..redact import redact, register_secret
from ..states import INGEST_NEXT, IngestState, may_change
from .drawtext import FONT, drawtext
from .ffmpeg import find_ffmpeg
from .flv import Tag
from .flvchild import FLV_OUT, run_flv_child
from .probe import StreamProbe
from .program import Program
from .rtmp_server import RtmpServer, RtmpSession
from .slate import DecoderHeaders, NoSlate, Slate, slate_format
from .supervisor import Supervisor

log = logging.getLogger(__name__)

TESTSRC_SIZE = "1280x720"
STALL_S = 5.0  # a live feed with no tag for this long is lost
FIRST_TAG_S = 15.0  # a pull, file or testsrc that has sent nothing by now is restarted
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0)
STEADY_S = 10.0  # live this long and the backoff starts over
# Nothing from a live feed for this long and the slate goes on air (some 0.2 s later, its first keyframe): well
# within the 2 s after which destinations call the program gone (destinations.Timing.program_idle_s).
SLATE_AFTER_S = 1.0
SWITCH_BACK_S = 10.0  # a returning feed with no keyframe by then (audio only?) takes over from the slate anyway
WATCH_EVERY_S = 0.1
SRT_PASSPHRASE = (10, 79)
DEFAULT_PORTS = {"rtmp": 1935, "srt": 9000}
FILE_LIKE = re.compile(r"\.(mp4|m4v|mov|mkv|flv|ts|webm)$", re.IGNORECASE)


def listen_address(config: IngestConfig) -> tuple[str, int]:
    """Host and port an rtmp_listen or srt_listen ingest binds."""
    parts = urlsplit(config.url)
    host = parts.hostname or "0.0.0.0"
    if host == "localhost":
        host = "127.0.0.1"
    return host, parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 1935)


def rtmp_app_and_key(config: IngestConfig) -> tuple[str, str | None]:
    """The app publishers must use and the key they must present (None: any key).

    `rtmp://0.0.0.0:1935/live` with `key_env` is app `live` and that key; without `key_env` a key may
    also sit in the URL itself (`rtmp://0.0.0.0:1935/live/KEY`).
    """
    segments = [s for s in urlsplit(config.url).path.split("/") if s]
    app = segments[0] if segments else "live"
    key = config.key or ("/".join(segments[1:]) or None)
    register_secret(key)
    return app, key


def testsrc_filter(event_name: str, font: Path = FONT) -> str | None:
    """drawtext filters for the running clock and the event name; None when the font is missing."""
    if not font.is_file():
        return None
    clock = drawtext("%{localtime}", fontsize="h/12", y="h*0.30", font=font, box=True, expand=True)
    name = drawtext(event_name or "streamctl", fontsize="h/20", y="h*0.72", font=font, box=True)
    return f"{clock},{name}"


def srt_url(config: IngestConfig) -> str:
    """The SRT URL with the passphrase from `key_env` added (unless the URL has one); checks its length."""
    parts = urlsplit(config.url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = {k for k, _ in query}
    if config.key and "passphrase" not in names:
        query.append(("passphrase", config.key))
    for k, v in query:
        if k == "passphrase":
            register_secret(v)
            low, high = SRT_PASSPHRASE
            if not low <= len(v) <= high:
                raise ValueError(f"the SRT passphrase has {len(v)} characters, expected {low} to {high}")
    return urlunsplit(parts._replace(query=urlencode(query)))


def pull_url(config: IngestConfig) -> str:
    """A pull URL with the key from `key_env` put where its protocol carries one."""
    scheme = urlsplit(config.url).scheme.lower()
    if scheme == "srt":
        return srt_url(config)
    if config.key and scheme in ("rtmp", "rtmps"):
        return config.url.rstrip("/") + "/" + config.key
    segments = [s for s in urlsplit(config.url).path.split("/") if s]
    if len(segments) > 1:
        # Shown masked everywhere (as mask_url does): rtmp://host/app/KEY never shows the key.
        register_secret("/".join(segments[1:]))
    return config.url


def ffmpeg_argv(config: IngestConfig, event_name: str, *, realtime: bool = True,
                ffmpeg: str | None = None) -> list[str]:
    """The command line of the ffmpeg that turns this (non-RTMP-listen) ingest into FLV on stdout."""
    argv = [ffmpeg or find_ffmpeg(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning"]
    re_flag = ["-re"] if realtime else []
    if config.kind == "testsrc":
        argv += [*re_flag, "-f", "lavfi", "-i", f"testsrc2=size={TESTSRC_SIZE}:rate=30",
                 *re_flag, "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"]
        text = testsrc_filter(event_name)
        if text:
            argv += ["-vf", text]
        return argv + ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
                       "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
                       "-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "5000k",
                       "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", *FLV_OUT]
    if config.kind == "file":
        return argv + [*re_flag, "-stream_loop", "-1", "-i", config.url, "-c", "copy", *FLV_OUT]
    if config.kind == "srt_listen":
        return argv + ["-i", srt_url(config), "-c", "copy", *FLV_OUT]
    url = pull_url(config)
    # A pull of a recorded file over HTTP must be paced like a live source.
    pace = re_flag if FILE_LIKE.search(urlsplit(url).path) else []
    return argv + ["-rw_timeout", "10000000", *pace, "-i", url, "-c", "copy", *FLV_OUT]


class Ingest:
    """Feeds the Program from the event's ingest; its state is what `GET /api/ingest` shows."""

    def __init__(self, config: IngestConfig | None, program: Program, bus: Bus, supervisor: Supervisor,
                 event_name: str, *, realtime: bool = True, stall_s: float = STALL_S,
                 first_tag_s: float = FIRST_TAG_S, backoff_s: tuple[float, ...] = BACKOFF_S,
                 slate_after_s: float = SLATE_AFTER_S):
        self.config = config
        self.program = program
        self.bus = bus
        self.supervisor = supervisor
        self.event_name = event_name
        self.realtime = realtime
        self.stall_s = stall_s
        self.first_tag_s = first_tag_s
        self.backoff_s = backoff_s
        self.state = IngestState.STOPPED
        self.since = now()
        self.error: str | None = None
        self.publisher: str | None = None
        self.probe = StreamProbe()
        self.feeds = 0
        self.restarts = 0
        self._announced = False
        self._live_at: float | None = None
        self.server: RtmpServer | None = None
        self.slate_after_s = slate_after_s
        self.slate = Slate(supervisor, event_name, config.slate_text, self._slate_tag) \
            if config is not None and config.slate else None
        self.on_air = "ingest"  # whose tags the program carries: "ingest" or "slate"
        self.slate_times = 0
        self._headers = DecoderHeaders()  # of the current feed, to send again when it takes over from the slate
        self._last_in: float | None = None  # loop time of the feed's last tag; None until a first feed
        self._held_since: float | None = None  # the feed is back but waits for a keyframe to take over
        self._slate_run = 0  # which of the slate's ffmpeg runs is on air
        self._slate_since: float | None = None
        self._facts: dict[str, Any] = {}  # the last complete probe: the slate's format
        self._no_slate: str | None = None

    # ---- state -------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The shape of `GET /api/ingest`."""
        cfg = self.config
        return {
            "state": self.state,
            "url": cfg.display_url if cfg else None,
            "kind": cfg.kind if cfg else None,
            "probe": self.probe.facts(),
            "since": datetime.fromtimestamp(self.since, UTC).isoformat(),
            "error": self.error,
            "publisher": self.publisher,
            "feeds": self.feeds,
            "restarts": self.restarts,
            "slate": self.slate_status(),
        }

    def slate_status(self) -> dict[str, Any]:
        """Whether the slate is enabled and on air, since when, how often so far, its last error and format."""
        on_air = self.on_air == "slate"
        fmt = self.slate.format if self.slate else None
        return {
            "enabled": self.slate is not None,
            "on_air": on_air,
            "since": datetime.fromtimestamp(self._slate_since, UTC).isoformat() if on_air and self._slate_since
            else None,
            "times": self.slate_times,
            "error": self.slate.error if self.slate else None,
            "format": fmt.describe() if fmt else None,
        }

    def probe_facts(self) -> dict[str, Any]:
        """What the probe has seen of the current feed."""
        return self.probe.facts()

    async def _set_state(self, state: str, error: str | None = None) -> None:
        """The one place the state changes; every change goes on the bus."""
        error = redact(error) if error else None
        if state == self.state and error == self.error:
            return
        if state != self.state:
            if not may_change(INGEST_NEXT, self.state, state):
                log.warning("ingest: unexpected change %s -> %s", self.state, state)
            self.since = now()
            log.log(logging.WARNING if error else logging.INFO, "ingest %s%s", state, f": {error}" if error else "")
        elif error:
            # Same state, new trouble (e.g. still waiting, but now the port is taken): say so once.
            log.warning("ingest %s: %s", state, error)
        self.state, self.error = state, error
        await self._announce()

    async def _announce(self) -> None:
        await self.bus.publish(IngestStateChanged(self.state, self.probe.facts(), self.error,
                                                  slate=self.on_air == "slate"))

    async def _new_feed(self, publisher: str | None) -> None:
        """A publisher started or a child produced its first tag: a fresh timeline and a fresh probe."""
        if self.on_air == "ingest":
            self.program.new_feed()
        # else the slate stays on air until this feed's first keyframe (`_take`).
        self._headers.clear()
        self._held_since = None
        self.probe = StreamProbe()
        self._announced = False
        self.publisher = publisher
        self.feeds += 1
        self._live_at = asyncio.get_running_loop().time()
        await self._set_state(IngestState.LIVE)

    async def _take(self, tag: Tag) -> None:
        """A tag of the feed: into the program, or held back while the slate finishes (until a keyframe)."""
        now_s = asyncio.get_running_loop().time()
        self._last_in = now_s
        self.probe.feed(tag)
        header = self._headers.keep(tag)
        if self.on_air == "ingest":
            self.program.publish(tag)
        elif not header:
            if self._held_since is None:
                self._held_since = now_s
            if tag.is_keyframe or now_s - self._held_since >= SWITCH_BACK_S:
                self._put_on_air("ingest", self._headers, tag)
                await self._program_back()
        if not self._announced and self.probe.ready:
            self._announced = True
            self._facts = self.probe.facts()
            log.info("ingest probed: %s", self._facts)
            await self._announce()

    # ---- the slate ---------------------------------------------------------------------------------

    def _put_on_air(self, source: str, headers: DecoderHeaders, tag: Tag) -> None:
        """From `tag` (a keyframe) on the program carries `source`: its timeline continues the old one, and
        its decoder headers go first (readers pass changed ones inline)."""
        self.on_air = source
        self._held_since = None
        self.program.new_feed()
        for header in headers:
            self.program.publish(header)
        self.program.publish(tag)

    def _gone(self) -> bool:
        """A feed was live and has sent nothing for `slate_after_s`."""
        return self._last_in is not None and asyncio.get_running_loop().time() - self._last_in >= self.slate_after_s

    async def _slate_tag(self, tag: Tag) -> None:
        """A tag of the slate: carried while its run is on air; its first keyframe goes on air if still needed."""
        assert self.slate is not None
        if self.on_air == "slate" and self._slate_run == self.slate.starts:
            self.program.publish(tag)
            return
        if not tag.is_keyframe or tag.is_sequence_header or (self.on_air == "ingest" and not self._gone()):
            return  # not a place to cut in, or the program came back meanwhile (the watch stops the slate)
        was = self.on_air
        self._slate_run = self.slate.starts  # a restarted slate is a new feed too
        self._put_on_air("slate", self.slate.headers, tag)
        if was == "ingest":
            await self._slate_on()

    async def _slate_on(self) -> None:
        self.slate_times += 1
        self._slate_since = now()
        gone = asyncio.get_running_loop().time() - (self._last_in or 0.0)
        fmt = self.slate.format.describe() if self.slate and self.slate.format else "?"
        log.warning("ingest: no program for %.1f s; slate on air (%s) until it returns", gone, fmt)
        if self.state == IngestState.LIVE:
            # The feed stalled without ending (its own time-out has not fired yet): for the platforms it is lost.
            await self._set_state(IngestState.LOST, f"no data for {self.slate_after_s:g} s")
        else:
            await self._announce()

    async def _program_back(self) -> None:
        covered = now() - (self._slate_since or now())
        log.info("ingest: program back on air after %.1f s of slate", covered)
        self._slate_since = None
        if self.state != IngestState.LIVE:
            await self._set_state(IngestState.LIVE)
        else:
            await self._announce()

    def _start_slate(self) -> None:
        assert self.slate is not None
        facts = self.probe.facts() if self.probe.ready else (self._facts or self.probe.facts())
        try:
            fmt = slate_format(facts)
        except NoSlate as e:
            if str(e) != self._no_slate:  # said once, not every tick
                self._no_slate = str(e)
                log.warning("ingest lost and no slate: %s", e)
            return
        self._no_slate = None
        self.slate.start(fmt)

    async def _watch_for_loss(self) -> None:
        """Start the slate once the feed has been gone `slate_after_s`; stop it once the program is back."""
        assert self.slate is not None
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            try:
                if self.on_air == "slate":
                    continue  # only the returning feed's keyframe takes the slate off the air
                if self._gone():
                    if not self.slate.running:
                        self._start_slate()
                elif self.slate.running:
                    await self.slate.stop()
            except Exception:
                log.exception("slate watch failed")  # the ingest itself carries on

    # ---- running -----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Feed the program until cancelled; then stop the slate, close the listener or stop the child."""
        feeding = asyncio.create_task(self._feed(), name="ingest.feed")
        watching = asyncio.create_task(self._watch_for_loss(), name="ingest.slate") if self.slate else None
        try:
            await asyncio.wait([feeding])
            feeding.result()
        finally:
            # The slate goes first: a deliberate stop must never put it on air while the feed winds down.
            if watching is not None:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
            if self.slate is not None:
                await self.slate.stop()
            self.on_air = "ingest"
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
            self.publisher = None
            if self.state != IngestState.STOPPED:
                self.state, self.since = IngestState.STOPPED, now()
                with contextlib.suppress(asyncio.QueueFull):
                    self.bus.publish_nowait(IngestStateChanged(IngestState.STOPPED, self.probe.facts(), self.error))

    async def _feed(self) -> None:
        if self.config is None:
            await asyncio.Event().wait()  # nothing to ingest; stay "stopped" until the event ends
            return
        await self._set_state(IngestState.WAITING)
        if self.config.kind == "rtmp_listen":
            await self._run_rtmp()
        else:
            await self._run_children()

    async def _run_rtmp(self) -> None:
        assert self.config is not None
        app, key = rtmp_app_and_key(self.config)
        host, port = listen_address(self.config)
        attempt = 0
        while True:
            self.server = RtmpServer(host, port, app=app, key=key, on_publish=self._on_publish,
                                     on_tag=self._on_tag, on_unpublish=self._on_unpublish,
                                     idle_timeout_s=self.stall_s)
            try:
                await self.server.start()
            except OSError as e:
                # Someone else holds the port: say so and try again later rather than give up.
                await self._set_state(self.state, f"cannot listen on {host}:{port}: {e.strerror or e}")
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
                continue
            try:
                log.info("ingest listening on %s", self.config.display_url)
                await self._set_state(self.state)
                await asyncio.Event().wait()
            finally:
                await self.server.close()

    async def _on_publish(self, session: RtmpSession) -> None:
        await self._new_feed(session.peer)

    async def _on_tag(self, session: RtmpSession, tag: Tag) -> None:
        await self._take(tag)

    async def _on_unpublish(self, session: RtmpSession) -> None:
        self.publisher = None
        await self._set_state(IngestState.LOST, f"{session.peer}: {session.close_reason}")

    def _backoff(self, attempt: int) -> float:
        return self.backoff_s[min(attempt, len(self.backoff_s) - 1)]

    async def _run_children(self) -> None:
        assert self.config is not None
        try:
            argv = ffmpeg_argv(self.config, self.event_name, realtime=self.realtime)
        except ValueError as e:
            # A bad passphrase will not get better by retrying.
            await self._set_state(IngestState.WAITING, str(e))
            await asyncio.Event().wait()
            return
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            self._live_at = None
            reason = await self._run_child(argv)
            if self._live_at is not None and loop.time() - self._live_at >= STEADY_S:
                attempt = 0
            await self._set_state(IngestState.LOST, reason)
            self.publisher = None
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1
            self.restarts += 1

    async def _run_child(self, argv: list[str]) -> str:
        """One ffmpeg run: its FLV into the program until it ends or stalls; returns why it ended."""
        assert self.config is not None
        kind = self.config.kind
        started = False

        async def take(tag: Tag) -> None:
            nonlocal started
            if not started:
                started = True
                await self._new_feed(None)
            await self._take(tag)

        # A listener may wait for its caller as long as it takes; other sources must start promptly.
        first_tag_s = None if kind == "srt_listen" else self.first_tag_s
        return await run_flv_child(self.supervisor, f"ingest-{kind}", argv, take, first_tag_s=first_tag_s,
                                   stall_s=self.stall_s)
