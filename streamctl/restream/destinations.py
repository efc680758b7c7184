"""Destinations: one supervised ffmpeg each, fed from its own program reader, with honest state and health.

States: stopped → starting → live (only once the output advances and stayed up a moment) → backoff (ffmpeg
exited or its output stalled) → starting again after an exponential, jittered, capped delay; failed when
retrying cannot help (bad options, an expired key, the platform refusing the key again and again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from ..config import DestinationConfig, join_key
from ..events import Alert, Bus, DestinationHealth, DestinationStateChanged
from ..redact import mask_url, redact, register_secret
from ..states import DESTINATION_DOWN, DESTINATION_NEXT, DestinationState, may_change
from ..store import iso
from .ffmpeg import destination_argv, encoder_for
from .health import Pace, Progress, ProgressParser, StderrTail
from .hidden import OptionsPipe, split_publish_url
from .platforms import StreamFacts, rule_violations
from .profiles import PROFILES
from .program import Program, ProgramReader
from .supervisor import LOW_PRIORITY, Child, Supervisor

log = logging.getLogger(__name__)

D = DestinationState
STATES = tuple(DestinationState)

# Errors no retry can cure: the command itself is wrong for this ffmpeg.
PERMANENT = re.compile(r"(?i)(cannot start ffmpeg|protocol not found|unknown encoder|encoder not found|"
                       r"unrecognized option|option not found|no such filter|error initializing complex filters|"
                       r"already exists)")
# The platform heard us and said no: the key is wrong or spent. Worth a few tries (it may not be ready yet).
# ffmpeg shows an RTMP `_error`/onStatus error as "Server error: <description>" and then EPERM.
REFUSED = re.compile(r"(?i)(server error|operation not permitted|badname|connect\.rejected|unauthori[sz]ed|"
                     r"forbidden|\b401\b|\b403\b|publish\.denied|authentication failed)")

# Nobody listens at the receiver's address: once something does again, there is no point waiting out the delay.
UNREACHABLE = re.compile(r"(?i)(connection refused|no route to host|network is unreachable)")
# The receiver hung up on us mid-stream: it may have crashed (then it will refuse for a while) or dropped only us.
DROPPED = re.compile(r"(?i)(broken pipe|connection reset|end of file|input/output error)")
DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443}


@dataclass(frozen=True)
class Backoff:
    """Exponential retry delays with jitter and a cap; the count resets after a long enough live spell."""

    base_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 30.0
    jitter: float = 0.2  # ± this fraction, so destinations that failed together do not retry together
    reset_after_s: float = 60.0

    def delay(self, attempt: int) -> float:
        raw = self.base_s * self.factor ** min(attempt, 32)
        return min(self.cap_s, raw) * random.uniform(1 - self.jitter, 1 + self.jitter)


@dataclass(frozen=True)
class Timing:
    """How quickly an output is judged: tests shorten these, the defaults suit real platforms."""

    live_after_s: float = 1.0  # up and advancing this long before it counts as live
    start_timeout_s: float = 10.0  # fed but nothing written for this long while starting: kill it
    stall_s: float = 5.0  # live but nothing written for this long while the program flows: kill it
    rw_timeout_s: float = 5.0  # ffmpeg's own socket timeout, for a receiver that accepts and never answers
    send_buffer: int = 512 * 1024  # bytes the kernel may hold for a receiver that stopped reading
    program_idle_s: float = 2.0  # no program tag for this long: the ingest is gone, not the output
    health_every_s: float = 1.0
    stop_grace_s: float = 3.0
    refused_limit: int = 5  # refusals in a row before giving up (failed)
    slow_speed: float = 0.95  # output time over program time below this: the output is falling behind
    slow_after_s: float = 10.0  # ... for this long raises destination.slow (back above for as long resolves it)
    backoff: Backoff = field(default_factory=Backoff)


def key_expiry(url: str) -> float | None:
    """The epoch second a signed publish URL stops working (`expire=` / `expires=`, as TikTok's keys carry)."""
    query = parse_qs(urlsplit(url).query)
    for name in ("expire", "expires", "expiry"):
        values = query.get(name)
        if values and values[0].isdigit():
            return float(values[0])
    return None


class Output:
    """A supervised ffmpeg fed from its own ProgramReader: the state machine shared by destinations and the archive."""

    kind = "output"

    def __init__(self, name: str, platform: str, program: Program, bus: Bus, supervisor: Supervisor,
                 timing: Timing | None = None):
        self.name = name
        self.platform = platform
        self.program = program
        self.bus = bus
        self.supervisor = supervisor
        self.timing = timing or Timing()
        self.state = D.STOPPED
        self.error: str | None = None
        self.changed_at = time.time()
        self.reconnects = 0
        self.tail = StderrTail()
        self.child: Child | None = None
        self._task: asyncio.Task | None = None
        self._progress: Progress | None = None
        self._live_since: float | None = None
        self._dropped_before = 0
        self._reader: ProgramReader | None = None
        self._fed_at: float | None = None  # when ffmpeg got its first program bytes, this attempt
        self._advanced_at: float | None = None  # when its output last advanced, this attempt
        self._stall_reason: str | None = None
        self._pace = Pace()
        self.slow = False  # destination.slow raised and not yet resolved
        self._pace_since: float | None = None  # since when the pace has been on the other side of the line
        self._overflows_seen = 0

    # ---- what subclasses say ------------------------------------------------------------------------

    def argv(self) -> list[str]:
        """The ffmpeg command for one attempt."""
        raise NotImplementedError

    def command(self) -> tuple[list[str], OptionsPipe | None]:
        """The command for one attempt, and the pipe of options it reads (closed by the caller after spawning)."""
        return self.argv(), None

    def problem(self) -> str | None:
        """A reason this output cannot work at all right now (checked before each attempt)."""
        return None

    @property
    def nice(self) -> int:
        """The priority its ffmpeg runs at (0: ours; a transcode runs lower so it cannot starve the rest)."""
        return 0

    # ---- control ------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start (or keep) this output's supervision task; a failed output gets a fresh chance."""
        if self.running:
            return
        self._task = asyncio.create_task(self._main(), name=f"{self.kind}:{self.name}")

    async def stop(self) -> None:
        """Stop it and wait until its ffmpeg has exited."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.change_state(D.STOPPED)
        if self.slow:
            self.slow = False
            await self._slow_alert(False, None)

    async def start_now(self) -> None:
        """Start it and show `starting` at once, so an answer to "start" never still says `stopped`."""
        self.start()
        if self.state in (D.STOPPED, D.FAILED):
            await self.change_state(D.STARTING)

    async def restart(self) -> None:
        await self.stop()
        await self.start_now()

    async def change_state(self, new: str, error: str | None = None) -> None:
        """The one place a state changes; every change is logged and published on the bus."""
        if new not in STATES:
            raise ValueError(new)
        old = self.state
        if not may_change(DESTINATION_NEXT, old, new):
            log.warning("%s %s: unexpected change %s -> %s", self.kind, self.name, old, new)
        if new == old and error == self.error:
            return
        self.state, self.error, self.changed_at = new, error, time.time()
        if new == D.LIVE:
            self._live_since = _now()
        elif old == D.LIVE:
            self._live_since = None
        level = logging.WARNING if new in DESTINATION_DOWN else logging.INFO
        log.log(level, "%s %s: %s -> %s%s", self.kind, self.name, old, new, f" ({redact(error)})" if error else "")
        await self.announce(old, new, redact(error) if error else None)

    async def announce(self, old: str, new: str, error: str | None) -> None:
        """Tell the bus about a state change (each kind of output says it its own way)."""

    async def report(self) -> None:
        """Publish this output's health (called about once a second while it runs)."""

    # ---- figures ------------------------------------------------------------------------------------

    @property
    def bytes_dropped(self) -> int:
        return self._dropped_before + (self._reader.dropped_bytes if self._reader else 0)

    def health(self) -> dict:
        """Figures for the API and the bus; zeros unless the output is live right now."""
        p = self._progress if self.state == D.LIVE else None
        return {
            "bitrate_kbps": p.bitrate_kbps if p else 0.0,
            "fps": p.fps if p else 0.0,
            "speed": p.speed if p else 0.0,
            "uptime_s": round(_now() - self._live_since, 1) if self._live_since is not None else 0.0,
            "reconnects": self.reconnects,
            "last_error": self.tail.last_error(),
            "bytes_dropped": self.bytes_dropped,
        }

    # ---- the supervision loop -----------------------------------------------------------------------

    async def _main(self) -> None:
        reporter = asyncio.create_task(self._report(), name=f"{self.kind}:{self.name}:health")
        try:
            await self._supervise()
        except Exception as e:
            # A bug here must show on the console as this output failing, not vanish with the task.
            log.exception("%s %s: supervision failed", self.kind, self.name)
            await self.change_state(D.FAILED, f"internal error: {type(e).__name__}: {e}")
        finally:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)

    async def _supervise(self) -> None:
        attempt = 0
        refused = 0
        while True:
            problem = self.problem()
            if problem:
                await self.change_state(D.FAILED, problem)
                return
            await self.change_state(D.STARTING)
            error, live_for = await self._attempt()
            if live_for >= self.timing.backoff.reset_after_s:
                attempt = 0
            refused = refused + 1 if (live_for == 0 and REFUSED.search(error)) else 0
            if PERMANENT.search(error):
                await self.change_state(D.FAILED, error)
                return
            if refused >= self.timing.refused_limit:
                await self.change_state(D.FAILED, f"refused {refused} times in a row: {error}")
                return
            delay = self.timing.backoff.delay(attempt)
            attempt += 1
            await self.change_state(D.BACKOFF, f"{error}; retrying in {delay:.1f} s")
            await self._sit_out(delay, error)
            self.reconnects += 1

    async def _sit_out(self, delay: float, error: str) -> None:
        """Wait out the backoff, but retry at once when the receiver was seen down and now accepts again.

        Only after "connection refused" or a dropped connection; a receiver that refused the key or hung
        gets the full delay untouched. One still accepting (it dropped only us) is asked three times at
        most, so a platform is never hammered; one that crashed and came back gets us within 0.25 s.
        """
        address = self.address()
        seen_down = bool(UNREACHABLE.search(error))
        if address is None or REFUSED.search(error) or not (seen_down or DROPPED.search(error)):
            await asyncio.sleep(delay)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        up_polls = 0
        while loop.time() < deadline and (seen_down or up_polls < 3):
            await asyncio.sleep(min(0.25, max(0.0, deadline - loop.time())))
            if not await _accepts(*address):
                seen_down = True
            elif seen_down:
                return
            else:
                up_polls += 1
        await asyncio.sleep(max(0.0, deadline - loop.time()))

    def address(self) -> tuple[str, int] | None:
        """The TCP host and port this output connects to, if it is a network output over TCP."""
        return None

    async def _attempt(self) -> tuple[str, float]:
        """Run ffmpeg once until it exits or is killed; returns (what went wrong, seconds it was live)."""
        # Start with the GOP under way: the receiver gets pictures now, not at the next keyframe.
        reader = self.program.reader(self.name, from_last_keyframe=True)
        self._reader = reader
        self._progress = self._fed_at = self._advanced_at = self._stall_reason = None
        self._pace.clear()
        self._overflows_seen = 0
        self.tail.new_attempt()
        try:
            argv, hidden = self.command()
        except (ValueError, OSError) as e:
            reader.close()
            self._reader = None
            return f"cannot hand ffmpeg its publish URL: {e}", 0.0
        try:
            child = await self.supervisor.spawn(self.name, argv, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                nice=self.nice, pass_fds=hidden.fds if hidden else ())
        except OSError as e:
            reader.close()
            self._reader = None
            return f"cannot start ffmpeg {argv[0]!r}: {e.strerror or e}", 0.0
        finally:
            if hidden is not None:
                hidden.close()
        self.child = child
        live_for = 0.0
        helpers = [
            asyncio.create_task(self._feed(reader, child), name=f"{self.kind}:{self.name}:feed"),
            asyncio.create_task(self._read_stderr(child), name=f"{self.kind}:{self.name}:stderr"),
            asyncio.create_task(self._watch(child), name=f"{self.kind}:{self.name}:watchdog"),
        ]
        try:
            await self._read_progress(child)
            code = await self.supervisor.wait(child)
            # Let stderr reach its end so the last error is the real one.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(helpers[1]), 1.0)
            live_for = _now() - self._live_since if self._live_since is not None else 0.0
            reason = self._stall_reason or self.tail.reason() or f"ffmpeg exited with code {code}"
            return reason, live_for
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            reader.close()
            self._dropped_before += reader.dropped_bytes
            self._reader = None
            await self.supervisor.stop(child, self.timing.stop_grace_s)
            self.child = None

    async def _feed(self, reader: ProgramReader, child: Child) -> None:
        """Copy the program into ffmpeg; a stalled ffmpeg blocks only this task (its reader drops backlog)."""
        stdin = child.process.stdin
        try:
            while data := await reader.read():
                stdin.write(data)
                await stdin.drain()
                if self._fed_at is None:
                    self._fed_at = _now()
        except (BrokenPipeError, ConnectionResetError):
            pass

    async def _read_progress(self, child: Child) -> None:
        parser = ProgressParser()
        while line := await child.process.stdout.readline():
            progress = parser.feed_line(line.decode(errors="replace"))
            if progress is None:
                continue
            if progress.advanced_since(self._progress):
                self._advanced_at = _now()
                # starting -> live: written something and stayed up a moment (else the next block decides).
                if self.state == D.STARTING and _now() - child.started_at >= self.timing.live_after_s:
                    await self.change_state(D.LIVE)
            self._progress = progress
            await self._judge_pace(progress)

    async def _judge_pace(self, progress: Progress) -> None:
        """destination.slow when the output has kept below real time for `slow_after_s`, resolved as long back."""
        if self.state != D.LIVE or self._program_idle():
            self._pace.clear()
            return
        speed = self._pace.add(self.program.timeline_ms, progress.out_time_us)
        overflows = self._reader.overflows if self._reader else 0
        # A reader that overflowed skipped ahead to a keyframe: the output looks fast but is not keeping up.
        behind = overflows > self._overflows_seen or (speed is not None and speed < self.timing.slow_speed)
        self._overflows_seen = overflows
        if speed is None and not behind:
            return
        if behind == self.slow:
            self._pace_since = None
            return
        now = _now()
        self._pace_since = self._pace_since or now
        if now - self._pace_since < self.timing.slow_after_s:
            return
        self.slow, self._pace_since = behind, None
        await self._slow_alert(behind, speed)

    async def _slow_alert(self, slow: bool, speed: float | None) -> None:
        # Without a speed the reader overflowed: the output dropped a backlog, so it is under real time for sure.
        shown = round(speed, 2) if speed is not None else f"< {self.timing.slow_speed:g}"
        if slow:
            message = (f"{self.kind} {self.name} cannot keep up with real time (speed {shown}x): it loses pictures; "
                       "lighten its profile or stop another transcode")
        else:
            message = f"{self.kind} {self.name} keeps up with real time again (speed {shown}x)"
        log.log(logging.WARNING if slow else logging.INFO, "%s", message)
        await self.bus.publish(Alert("warning", self.alert_source, message, code="destination.slow",
                                     params={"name": self.name, "speed": shown}, resolved=not slow))

    @property
    def alert_source(self) -> str:
        return self.kind

    async def _read_stderr(self, child: Child) -> None:
        while line := await child.process.stderr.readline():
            self.tail.add(line.decode(errors="replace"))

    def _program_idle(self) -> bool:
        last = self.program.last_tag_at
        return last is None or _now() - last > self.timing.program_idle_s

    async def _watch(self, child: Child) -> None:
        """Kill an ffmpeg whose output stopped advancing while the program still flows (a hung receiver)."""
        t = self.timing
        idle_mark = _now()
        while True:
            await asyncio.sleep(0.25)
            now = _now()
            if self._program_idle():
                # Not the output's fault: restart the stall clock, and say honestly that nothing is going out.
                idle_mark = now
                if self.state == D.LIVE and now - (self._advanced_at or 0.0) > t.program_idle_s:
                    await self.change_state(D.STARTING, "waiting for the program (ingest lost)")
                continue
            if self.state == D.LIVE or self._advanced_at is not None:
                since = max(idle_mark, self._advanced_at or 0.0)
                limit, what = t.stall_s, "output stalled"
            elif self._fed_at is not None:
                since = max(idle_mark, self._fed_at)
                limit, what = t.start_timeout_s, "no output"
            else:
                continue  # the reader waits for the next keyframe; nothing has been asked of ffmpeg yet
            if now - since > limit:
                self._stall_reason = f"{what} for {limit:g} s (receiver not accepting data)"
                await self.supervisor.stop(child, grace_s=1.0)
                return

    async def _report(self) -> None:
        while True:
            await self.report()
            await asyncio.sleep(self.timing.health_every_s)


def _now() -> float:
    return asyncio.get_running_loop().time()


async def _accepts(host: str, port: int) -> bool:
    """Whether something accepts a TCP connection at host:port right now (within half a second)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 0.5)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class Destination(Output):
    """One platform the program is restreamed to."""

    kind = "destination"

    def __init__(self, config: DestinationConfig, program: Program, bus: Bus, supervisor: Supervisor,
                 timing: Timing | None = None, encoder: str | None = None):
        super().__init__(self.name_for(config), config.platform, program, bus, supervisor, timing)
        self.config = config
        self.profile = PROFILES[config.profile]
        self.encoder = encoder_for(self.profile, encoder)
        self.rule_warnings: list[str] = []
        self._in_backoff = False  # the destination.backoff alert of this outage is raised (once, not per retry)
        # ffmpeg prints the full URL; make sure every log and message masks it.
        register_secret(config.key)
        if config.key:
            register_secret(config.publish_url)
            if config.backup_publish_url:
                register_secret(config.backup_publish_url)
        self.backup: BackupOutput | None = None
        if config.backup and type(self) is Destination:
            self.backup = BackupOutput(config, program, bus, supervisor, timing, encoder)

    def with_backup(self) -> list[Destination]:
        """This output, then its backup output when it has one (a backup output has none of its own)."""
        return [self] if self.backup is None else [self, self.backup]

    @staticmethod
    def name_for(config: DestinationConfig) -> str:
        return config.name

    @property
    def nice(self) -> int:
        return 0 if self.profile.copy else LOW_PRIORITY

    def base_url(self) -> str | None:
        """The ingest address without the key (what `address()` connects to)."""
        return self.config.url

    def target_url(self) -> str | None:
        """The full URL this output publishes to."""
        return self.config.publish_url

    async def announce(self, old: str, new: str, error: str | None) -> None:
        await self.bus.publish(DestinationStateChanged(self.name, self.platform, old, new, error))
        await self._alert(new, error)

    async def _alert(self, new: str, error: str | None) -> None:
        """backoff (once an outage) and failed raise an alert; live again resolves both."""
        params = {"platform": self.platform, "error": error or ""}
        if new == D.BACKOFF and not self._in_backoff:
            self._in_backoff = True
            await self.bus.publish(Alert("warning", self.name, f"destination {self.name} is retrying: {error}",
                                         code="destination.backoff", params=params))
        elif new == D.FAILED:
            await self.bus.publish(Alert("error", self.name, f"destination {self.name} failed: {error}",
                                         code="destination.failed", params=params))
        elif new == D.LIVE:
            # Also after a restart of streamctl: the desk closes what the last run left open, or ignores it.
            self._in_backoff = False
            for code in ("destination.backoff", "destination.failed"):
                await self.bus.publish(Alert("info", self.name, f"destination {self.name} is live again",
                                             code=code, params=params, resolved=True))

    @property
    def alert_source(self) -> str:
        return self.name

    async def report(self) -> None:
        await self.bus.publish(DestinationHealth(self.name, {"state": self.state, **self.health()}))

    def argv(self, keys_from: str | None = None) -> list[str]:
        return destination_argv(self.target_url() or "", self.profile, rw_timeout_s=self.timing.rw_timeout_s,
                                send_buffer=self.timing.send_buffer, encoder=self.encoder, keys_from=keys_from)

    def command(self) -> tuple[list[str], OptionsPipe | None]:
        """ffmpeg's command line names the ingest server only; the key comes through a pipe (hidden.py)."""
        _public, options = split_publish_url(self.target_url() or "")
        if not options:
            return self.argv(), None
        hidden = OptionsPipe(options)
        return self.argv(keys_from=hidden.path), hidden

    def address(self) -> tuple[str, int] | None:
        parts = urlsplit(self.base_url() or "")
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            return None
        try:
            return parts.hostname, parts.port or DEFAULT_PORTS[scheme]
        except ValueError:
            return None

    def problem(self) -> str | None:
        if self.config.waits_for_broadcast:
            return "waiting for the platform's broadcast to be made (see the destination's broadcast error)"
        expires = key_expiry(self.config.publish_url)
        if expires is not None and expires < time.time():
            stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires))
            return f"stream key expired at {stamp}, expected a fresh key from the platform"
        return None

    def check_rules(self, facts: StreamFacts | None) -> list[str]:
        """The platform rules this destination's output breaks, given what the ingest probe saw."""
        if facts is None:
            self.rule_warnings = []
            return []
        if not self.profile.copy:
            # A transcode makes its own H.264 with a fixed GOP; audio stays only if the program has some.
            facts = StreamFacts("h264" if facts.video_codec else None, "aac" if facts.audio_codec else None,
                                self.profile.gop_s)
        self.rule_warnings = rule_violations(self.platform, facts)
        return self.rule_warnings

    def describe(self) -> dict:
        """This destination as the API shows it: key masked, live figures."""
        return {
            "name": self.name,
            "platform": self.platform,
            "url": self.config.display_url,
            "state": self.state,
            "error": redact(self.error) if self.error else None,
            "since": iso(self.changed_at),
            "profile": self.config.profile,
            "encoder": self.encoder,
            "autostart": self.config.autostart,
            "health": self.health(),
            "rule_warnings": list(self.rule_warnings),
            "backup_of": None,
        }


class BackupOutput(Destination):
    """The same program to the platform's backup ingest: its own ffmpeg, reader and state, listed as `NAME (backup)`.

    It shares nothing with the primary output but the program, so a backup ingest that fails, stalls or
    refuses never touches the primary's stream (and the other way round).
    """

    kind = "backup"

    @staticmethod
    def name_for(config: DestinationConfig) -> str:
        return backup_name(config.name)

    def base_url(self) -> str | None:
        return self.config.backup_base_url

    def target_url(self) -> str | None:
        return self.config.backup_publish_url

    def problem(self) -> str | None:
        if self.target_url() is None:
            return (f"no backup ingest URL for {self.platform} yet, expected backup_url (Facebook hands one out "
                    "only for a live video streamctl creates)")
        return super().problem()

    def describe(self) -> dict:
        entry = super().describe()
        base = self.config.backup_base_url
        key = self.config.key
        entry["url"] = mask_url(join_key(base, key)) if base else None
        entry["backup_of"] = self.config.name
        return entry


def backup_name(name: str) -> str:
    """The row name of a destination's backup output (a name no destination can have: it has a space)."""
    return f"{name} (backup)"
