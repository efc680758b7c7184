"""The slate: a holding card that keeps every platform fed while the program is lost.

An ffmpeg, started through the supervisor, encodes a dark card with the event name and a message in the
program's own format (picture size, frame rate, H.264 profile and level, a keyframe every 2 s, AAC at the
program's sample rate and channels), so copy-mode destinations and the platforms see one consistent stream.
The switcher decides when the card is on air (switcher.py); this module designs it and keeps its ffmpeg running,
restarted with backoff, for as long as it is asked to.
"""

from __future__ import annotations

import asyncio
import logging
import re
import textwrap
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..redact import redact
from .commands import SLATE_LAYOUTS, slate_argv
from .drawtext import FONT, drawtext
from .flv import DecoderHeaders, Tag
from .flvchild import run_flv_child
from .supervisor import Supervisor

log = logging.getLogger(__name__)

GOP_S = 2  # keyframe interval, as the platforms ask
# Frame rates a probe's measured rate is snapped to (within 2 %), as ffmpeg writes them.
RATES = (("24000/1001", 24000 / 1001), ("24", 24.0), ("25", 25.0), ("30000/1001", 30000 / 1001), ("30", 30.0),
         ("48", 48.0), ("50", 50.0), ("60000/1001", 60000 / 1001), ("60", 60.0))
# x264 writes 8-bit 4:2:0 only: the high-bit-depth and 4:4:4 profiles get the nearest it has.
X264_PROFILES = {"Constrained Baseline": "baseline", "Baseline": "baseline", "Main": "main", "Extended": "main"}
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
MAX_LINES = 4  # of the message; a longer one is drawn smaller
CHAR_EM = 0.6  # DejaVu Sans: a character is about this wide, in font sizes
FIRST_TAG_S = 10.0
STALL_S = 3.0
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0)
STEADY_S = 10.0  # on this long and the backoff starts over


class NoSlate(ValueError):
    """The program's format is one the slate cannot stand in for (the message says why)."""


@dataclass(frozen=True)
class SlateFormat:
    """What the slate must be for a decoder to take it as the same stream: the program's own parameters."""

    width: int
    height: int
    rate: str  # as ffmpeg takes it, e.g. "30" or "30000/1001"
    fps: float
    profile: str | None  # x264's name for the program's profile
    level: str | None
    video_kbps: int
    sample_rate: int | None  # None: the program has no audio, so neither has the slate
    channels: int

    @property
    def gop(self) -> int:
        """Frames from one keyframe to the next."""
        return max(1, round(self.fps * GOP_S))

    def describe(self) -> str:
        video = f"{self.width}x{self.height} {self.fps:g} fps h264 {self.profile or ''} {self.level or ''}"
        audio = f"aac {self.sample_rate} Hz {self.channels} ch" if self.sample_rate else "no audio"
        return f"{' '.join(video.split())}, {audio}"


def slate_format(facts: dict[str, Any]) -> SlateFormat:
    """The slate's format from the program's probe facts; `NoSlate` when there cannot be one."""
    if facts.get("video_codec") != "h264":
        what = facts.get("video_codec") or "without video"
        raise NoSlate(f"the program is {what}; a slate in another codec would break copy-mode destinations")
    width, height = facts.get("width"), facts.get("height")
    if not width or not height:
        raise NoSlate("the program's picture size is not known yet")
    rate, fps = snap_rate(facts.get("fps"))
    profile = facts.get("video_profile")
    level = facts.get("video_level")
    kbps = facts.get("video_kbps") or 1500
    sample_rate = channels = None
    if facts.get("audio_codec"):
        sample_rate = facts.get("sample_rate") if facts.get("sample_rate") in AAC_RATES else 48000
        channels = facts.get("channels") if facts.get("channels") in SLATE_LAYOUTS else 2
    return SlateFormat(
        width=int(width), height=int(height), rate=rate, fps=fps,
        profile=X264_PROFILES.get(profile, "high") if profile else None,
        level=level if isinstance(level, str) and re.fullmatch(r"[1-6](\.[0-3])?", level) else None,
        video_kbps=min(4000, max(300, int(kbps))), sample_rate=sample_rate, channels=channels or 2)


def snap_rate(fps: float | None) -> tuple[str, float]:
    """A measured frame rate as the common rate it is meant to be (ffmpeg's spelling, value); 30 if unknown."""
    if not fps or fps <= 0 or fps > 240:
        return "30", 30.0
    name, value = min(RATES, key=lambda r: abs(r[1] - fps))
    if abs(value - fps) <= 0.02 * value:
        return name, value
    whole = max(1, round(fps))
    return str(whole), float(whole)


def card_filter(fmt: SlateFormat, event_name: str, text: str, font: Path = FONT) -> str | None:
    """drawtext filters for the card: the event name above, the message in the middle; None without a font."""
    if not font.is_file():
        return None
    width, height = fmt.width, fmt.height
    size, lines = layout(text, width, height)
    step = round(size * 1.35)
    top = round(height * 0.56 - step * len(lines) / 2)
    filters = [drawtext(line, fontsize=size, y=str(top + i * step), font=font) for i, line in enumerate(lines)]
    name_size = max(10, round(min(width, height) / 24))
    for i, line in enumerate(wrap(event_name, width, name_size)[:2]):
        filters.append(drawtext(line, fontsize=name_size, y=str(round(height * 0.2 + i * name_size * 1.3)),
                                font=font, color="0xa9b4c2"))
    return ",".join(filters)


def layout(text: str, width: int, height: int) -> tuple[int, list[str]]:
    """Font size and lines of the message: each part of a bilingual "A — B" on its own line, as large as fits."""
    parts = [p.strip() for paragraph in text.splitlines() for p in re.split(r"\s+—\s+", paragraph) if p.strip()]
    longest = max((len(p) for p in parts), default=1)
    short = min(width, height)  # a portrait card gets the sizes of a landscape one of its width
    size = max(round(short / 20), min(round(short / 13), int(width * 0.9 / (CHAR_EM * longest))))
    lines = [line for p in parts for line in wrap(p, width, size)]
    while len(lines) > MAX_LINES and size > 12:
        size = max(12, round(size * 0.85))
        lines = [line for p in parts for line in wrap(p, width, size)]
    return size, lines[:MAX_LINES]


def wrap(text: str, width: int, fontsize: int) -> list[str]:
    """`text` in lines that fit `width` pixels at `fontsize`."""
    return textwrap.wrap(text, max(8, int(width * 0.9 / (fontsize * CHAR_EM))))


class Slate:
    """The card's ffmpeg: started in a format, its tags handed to `on_tag`, kept running (with backoff) till stopped."""

    def __init__(self, supervisor: Supervisor, event_name: str, text: str,
                 on_tag: Callable[[Tag], Awaitable[None]], *, backoff_s: tuple[float, ...] = BACKOFF_S,
                 stall_s: float = STALL_S, ffmpeg: str | None = None):
        self.supervisor = supervisor
        self.event_name = event_name
        self.text = text
        self.on_tag = on_tag
        self.backoff_s = backoff_s
        self.stall_s = stall_s
        self.ffmpeg = ffmpeg
        self.format: SlateFormat | None = None
        self.error: str | None = None
        self.starts = 0  # ffmpeg runs so far; each is a feed of its own (fresh timeline and headers)
        self.headers = DecoderHeaders()  # of the current run
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, fmt: SlateFormat) -> None:
        """Start encoding the card in `fmt` (nothing happens if it already runs)."""
        if self.running:
            return
        self.format = fmt
        self._task = asyncio.create_task(self._run(fmt), name="slate")

    async def stop(self) -> None:
        """Stop it; returns once its ffmpeg has exited (a stop cancelled midway leaves the next one to wait)."""
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
            if self._task is task:
                self._task = None

    async def _run(self, fmt: SlateFormat) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            self.starts += 1
            self.headers.clear()
            started = loop.time()
            try:
                argv = slate_argv(fmt, card_filter(fmt, self.event_name, self.text), ffmpeg=self.ffmpeg)
                reason = await run_flv_child(self.supervisor, "slate", argv, self._take, first_tag_s=FIRST_TAG_S,
                                             stall_s=self.stall_s)
            except OSError as e:
                reason = f"cannot start ffmpeg: {e.strerror or e}"
            except Exception as e:
                # Whatever went wrong, the ingest goes on: the slate only tries again later.
                log.exception("slate failed")
                reason = f"internal error: {type(e).__name__}: {e}"
            if loop.time() - started >= STEADY_S:
                attempt = 0
            delay = self.backoff_s[min(attempt, len(self.backoff_s) - 1)]
            attempt += 1
            self.error = redact(reason)
            log.warning("slate ended (%s); starting it again in %g s", self.error, delay)
            await asyncio.sleep(delay)

    async def _take(self, tag: Tag) -> None:
        self.headers.keep(tag)
        await self.on_tag(tag)
