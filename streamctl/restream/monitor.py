"""The confidence monitor: one low-rate decoder of the program for the preview picture, the audio meters, and
the black / frozen / silent detectors.

It is one more program reader with its own supervised ffmpeg (commands.monitor_argv), never one per destination.
The picture arrives as mpjpeg on stdout; levels and black/freeze transitions as metadata lines on stderr. The
detectors keep the time themselves: a condition seen for its configured time raises `program.black`,
`program.frozen` or `program.silent`, and its end resolves it. While the slate is on air they hold their
judgement (the card is still and quiet on purpose, and `slate.on` already says the program is lost).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..config import MonitorConfig
from ..events import Alert, Bus, ProgramLevels
from ..store import iso
from .commands import MONITOR_FREEZE_S, monitor_argv
from .destinations import Output, Timing, _now
from .program import Program
from .supervisor import LOW_PRIORITY, Child, Supervisor

log = logging.getLogger(__name__)

FRESH_S = 2.0  # a preview older than this is no longer the program as it is
METERS_EVERY_S = 0.25  # levels go on the bus at most this often (the page animates between them)
AUDIO_GONE_S = 2.0  # no audio block for this long while pictures flow: the program has no sound at all
FLOOR_DB = -120.0  # digital silence (-inf) is shown as this
MAX_JPEG = 4 * 1024 * 1024

_LEVEL = re.compile(r"lavfi\.astats\.(\d+)\.(Peak_level|RMS_level)=(\S+)")
_AUDIO_FRAME = re.compile(r"^\[Parsed_ametadata_\d+ @ [^\]]+\] frame:")
_VIDEO_EVENT = re.compile(r"^\[Parsed_metadata_\d+ @ [^\]]+\] lavfi\.(black_start|black_end|"
                          r"freezedetect\.freeze_start|freezedetect\.freeze_end)=")
# Info lines of ours that are not trouble: the metadata prints, and swscale's note on full-range JPEG.
_OURS = re.compile(r"Parsed_a?metadata_|deprecated pixel format|^\s|^(Input|Output) #|^Stream mapping")


@dataclass(frozen=True)
class Picture:
    """One preview JPEG and when it was made."""

    jpeg: bytes
    at: float  # epoch seconds
    mono: float  # loop time, for its age

    def age_s(self) -> float:
        return asyncio.get_running_loop().time() - self.mono


@dataclass
class Condition:
    """One detector: since when the program has been in this condition, and whether its alert is open."""

    code: str
    after_s: float
    since: float | None = None  # loop time the condition began; None while the program is fine
    raised: bool = False


def _db(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        return FLOOR_DB
    return FLOOR_DB if math.isnan(value) or value < FLOOR_DB else round(value, 1)


class Meters:
    """Per-channel peak and RMS over the blocks since the last reading (peak: the highest; RMS: by energy)."""

    def __init__(self) -> None:
        self._block: dict[int, dict[str, float]] = {}
        self._peak: dict[int, float] = {}
        self._energy: dict[int, list[float]] = {}
        self.last: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())
        self.block_at: float | None = None  # loop time of the latest audio block

    def line(self, text: str, now: float) -> bool:
        """Take one stderr line; True when it was a level line of ours."""
        if _AUDIO_FRAME.match(text):
            self._close_block()
            self.block_at = now
            return True
        m = _LEVEL.search(text)
        if not m:
            return False
        self._block.setdefault(int(m.group(1)), {})[m.group(2)] = _db(m.group(3))
        return True

    def _close_block(self) -> None:
        for channel, values in self._block.items():
            if "Peak_level" in values:
                self._peak[channel] = max(self._peak.get(channel, FLOOR_DB), values["Peak_level"])
            if "RMS_level" in values:
                self._energy.setdefault(channel, []).append(10 ** (values["RMS_level"] / 10))
        self._block = {}

    def read(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """(peak_db per channel, rms_db per channel) since the last read, or None when no block closed since.

        Only whole blocks count (a block closes at the next block's header): a block half read has not said
        all its channels yet.
        """
        if not self._energy:
            return None
        channels = sorted(set(self._peak) | set(self._energy))
        peaks = tuple(self._peak.get(c, FLOOR_DB) for c in channels)
        rms = tuple(_db(str(10 * math.log10(max(1e-12, sum(e) / len(e)))))
                    if (e := self._energy.get(c)) else FLOOR_DB for c in channels)
        self._peak, self._energy = {}, {}
        self.last = (peaks, rms)
        return self.last


MONITOR_TIMING = Timing(live_after_s=0.5, start_timeout_s=15.0, stall_s=10.0)


class Monitor(Output):
    """The program's picture, levels and black/frozen/silent detection, from one low-rate ffmpeg."""

    kind = "monitor"

    def __init__(self, config: MonitorConfig, program: Program, bus: Bus, supervisor: Supervisor,
                 timing: Timing | None = None, *, covered: Callable[[], bool] = lambda: False):
        base = timing or MONITOR_TIMING
        # The monitor is judged by its own pictures: a still frame every 1/fps s is not a stall.
        super().__init__("monitor", "monitor", program, bus, supervisor,
                         replace(base, stall_s=max(base.stall_s, 4 / config.preview_fps), health_every_s=0.5))
        self.config = config
        self.covered = covered  # True while the slate is on air: the detectors hold their judgement
        self.picture: Picture | None = None
        self.pictures = 0
        self.meters = Meters()
        self.black = Condition("program.black", config.black_after_s)
        self.frozen = Condition("program.frozen", config.frozen_after_s)
        self.silent = Condition("program.silent", config.silent_after_s)
        self._levels_at = 0.0

    @property
    def nice(self) -> int:
        # Below the copies, the ingest and the console; above the transcodes (a preview late is worse than
        # a portrait output late, but neither may starve what the platforms receive).
        return LOW_PRIORITY // 2

    def argv(self) -> list[str]:
        return monitor_argv(self.config.preview_fps, self.config.preview_width)

    # ---- the picture ----------------------------------------------------------------------------------

    async def _read_progress(self, child: Child) -> None:
        """Read mpjpeg parts (`--ffmpeg` boundary, Content-length header) from stdout; each is the newest picture."""
        stdout = child.process.stdout
        try:
            while True:
                head = await stdout.readuntil(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                if not m or int(m.group(1)) > MAX_JPEG:
                    log.warning("monitor: unexpected picture header %r", head[:80])
                    return
                jpeg = await stdout.readexactly(int(m.group(1)))
                await stdout.readexactly(2)  # the CRLF after each part
                await self._new_picture(child, jpeg)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return

    async def _new_picture(self, child: Child, jpeg: bytes) -> None:
        now = asyncio.get_running_loop().time()
        self.picture = Picture(jpeg, time.time(), now)
        self.pictures += 1
        self._advanced_at = now
        if self.state == "starting" and now - child.started_at >= self.timing.live_after_s:
            await self.change_state("live")

    def preview(self) -> Picture | None:
        """The newest picture if it is at most FRESH_S old, else None."""
        picture = self.picture
        return picture if picture is not None and picture.age_s() <= FRESH_S else None

    # ---- levels and detectors -------------------------------------------------------------------------

    async def _read_stderr(self, child: Child) -> None:
        loop = asyncio.get_running_loop()
        while line := await child.process.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            now = loop.time()
            if self.meters.line(text, now):
                if now - self._levels_at >= METERS_EVERY_S:
                    await self._publish_levels(now)
                continue
            m = _VIDEO_EVENT.match(text)
            if m:
                self._video_event(m.group(1), now)
            elif not _OURS.search(text):
                self.tail.add(text)

    def _video_event(self, what: str, now: float) -> None:
        if what == "black_start":
            self.black.since = self.black.since or now
        elif what == "black_end":
            self.black.since = None
        elif what == "freezedetect.freeze_start":
            # freezedetect speaks after its own wait: the picture stood still since then.
            self.frozen.since = self.frozen.since or now - MONITOR_FREEZE_S
        else:
            self.frozen.since = None

    async def _publish_levels(self, now: float) -> None:
        reading = self.meters.read()
        if reading is None:
            return
        self._levels_at = now
        peaks, rms = reading
        if rms and all(level < self.config.silence_db for level in rms):
            self.silent.since = self.silent.since or now
        else:
            self.silent.since = None
        await self.bus.publish(ProgramLevels(peaks, rms))

    def levels(self) -> dict:
        """`audio` of GET /api/ingest: the latest per-channel levels, empty while no sound reaches the monitor."""
        fresh = self.meters.block_at is not None and _now() - self.meters.block_at <= AUDIO_GONE_S
        peaks, rms = self.meters.last if fresh and self.state == "live" else ((), ())
        return {"peak_db": list(peaks), "rms_db": list(rms)}

    async def report(self) -> None:
        """Every half second: judge the detectors (this is where their configured times are kept)."""
        now = _now()
        if self._program_idle():
            # No program at all: ingest.lost says so; what was not yet raised is no longer known.
            for cond in (self.black, self.frozen, self.silent):
                if not cond.raised:
                    cond.since = None
            return
        if self.state == "live":
            gone = self.meters.block_at is None or now - self.meters.block_at > AUDIO_GONE_S
            if gone:  # pictures but no sound block at all: as silent as it gets
                self.silent.since = self.silent.since or now
        covered = self.covered()
        for cond in (self.black, self.frozen, self.silent):
            # A black picture is also a still one: say the stronger thing only.
            active = cond.since is not None and not (cond is self.frozen and self.black.since is not None)
            if active and not cond.raised and not covered and now - cond.since >= cond.after_s:
                cond.raised = True
                await self._alert(cond, now)
            elif cond.raised and not active:
                cond.raised = False
                await self._alert(cond, now)

    async def _alert(self, cond: Condition, now: float) -> None:
        what = cond.code.split(".")[1]
        if cond.raised:
            seconds = round(now - (cond.since or now))
            message = f"the program has been {what} for {seconds} s"
            params = {"seconds": seconds, "db": self.config.silence_db}
        else:
            message, params = f"the program is no longer {what}", {}
        log.log(logging.WARNING if cond.raised else logging.INFO, "monitor: %s", message)
        await self.bus.publish(Alert("warning" if cond.raised else "info", "program", message, code=cond.code,
                                     params=params, resolved=not cond.raised))

    async def stop(self) -> None:
        await super().stop()
        for cond in (self.black, self.frozen, self.silent):
            cond.since = None
            if cond.raised:
                cond.raised = False
                await self._alert(cond, _now())

    # ---- what the API shows -----------------------------------------------------------------------------

    def describe(self) -> dict:
        picture = self.picture
        return {
            "state": self.state,
            "error": self.error,
            "preview_at": iso(picture.at) if picture else None,
            "preview_age_s": round(picture.age_s(), 2) if picture else None,
            "pictures": self.pictures,
            "black": self.black.raised, "frozen": self.frozen.raised, "silent": self.silent.raised,
        }
