"""What an ffmpeg output is doing: `-progress` blocks parsed into figures, and its stderr kept for the last error."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from ..redact import mask_url, redact

# ffmpeg prints these for things that are not errors of the output itself.
_NOISE = re.compile(r"(?i)^(\s*$|frame=|size=|press \[q\]|input #|output #|stream mapping|\s+stream #|\s+duration)")
_ERRORISH = re.compile(r"(?i)(error|failed|refused|denied|timed out|unauthori[sz]ed|forbidden|not found|invalid|"
                       r"cannot|could not|unable|broken pipe|reset by peer|end of file|bad ?name|rejected|"
                       r"not permitted|unknown|unrecognized|no such)")
# "[rtmp @ 0x55d0c1e0] Server error: …": the address means nothing to an operator; the component does.
_COMPONENT = re.compile(r"^\[(\w+) @ 0x[0-9a-f]+\] ")
_URL = re.compile(r"(?i)\b(?:rtmps?|rtmpt|srt|https?)://[^\s'\"]+")


def mask_urls(text: str) -> str:
    """Every URL in an ffmpeg line shown with its key masked (ffmpeg prints the full publish URL)."""

    def one(m: re.Match[str]) -> str:
        url = m.group(0).rstrip(":.,;)")
        return mask_url(url) + m.group(0)[len(url):]

    return redact(_URL.sub(one, text))


@dataclass(frozen=True)
class Progress:
    """One `-progress` block: what ffmpeg has written so far."""

    frame: int = 0
    fps: float = 0.0
    bitrate_kbps: float = 0.0
    total_size: int = 0
    out_time_us: int = 0
    speed: float = 0.0
    drop_frames: int = 0
    dup_frames: int = 0
    ended: bool = False

    def advanced_since(self, other: Progress | None) -> bool:
        """True when this block shows more output written than `other`."""
        if other is None:
            return self.out_time_us > 0 or self.total_size > 0
        return self.out_time_us > other.out_time_us or self.total_size > other.total_size


def _number(text: str, kind=float):
    """A progress value (`1234.5kbits/s`, `1.01x`, `N/A`) as a number; 0 when ffmpeg has none yet."""
    m = re.match(r"\s*(-?\d+(?:\.\d+)?)", text)
    if not m:
        return kind(0)
    try:
        return kind(float(m.group(1)))
    except ValueError:
        return kind(0)


class ProgressParser:
    """Feed `key=value` lines from `-progress pipe:1`; each finished block comes back as a `Progress`."""

    def __init__(self) -> None:
        self._fields: dict[str, str] = {}

    def feed_line(self, line: str) -> Progress | None:
        key, sep, value = line.strip().partition("=")
        if not sep:
            return None
        self._fields[key] = value.strip()
        if key != "progress":
            return None
        f, self._fields = self._fields, {}
        out_us = f.get("out_time_us", f.get("out_time_ms", "0"))  # out_time_ms is in µs too (ffmpeg quirk)
        bitrate = f.get("bitrate", "0")
        kbps = _number(bitrate) * (1000 if "mbits" in bitrate.lower() else 1)
        return Progress(
            frame=_number(f.get("frame", "0"), int),
            fps=_number(f.get("fps", "0")),
            bitrate_kbps=round(kbps, 1),
            total_size=_number(f.get("total_size", "0"), int),
            out_time_us=max(0, _number(out_us, int)),
            speed=_number(f.get("speed", "0")),
            drop_frames=_number(f.get("drop_frames", "0"), int),
            dup_frames=_number(f.get("dup_frames", "0"), int),
            ended=value.strip() == "end",
        )


class StderrTail:
    """The last lines ffmpeg wrote to stderr, secrets masked, and the one that best says what went wrong."""

    def __init__(self, lines: int = 20):
        self._lines: deque[str] = deque(maxlen=lines)
        self._last_error: str | None = None
        self.errors: deque[str] = deque(maxlen=2)  # this attempt's last error lines (cause, then effect)
        self._attempt_last: str | None = None

    def add(self, line: str) -> None:
        line = _COMPONENT.sub(r"\1: ", mask_urls(line.rstrip()))
        if _NOISE.match(line):
            return
        self._lines.append(line)
        self._attempt_last = line
        if _ERRORISH.search(line):
            self._last_error = line
            self.errors.append(line)

    def new_attempt(self) -> None:
        """A new ffmpeg starts: its errors are its own (the last error stays shown until a new one)."""
        self.errors.clear()
        self._attempt_last = None

    def reason(self) -> str | None:
        """Why this attempt ended, in ffmpeg's words: e.g. `Server error: invalid stream key; …: I/O error`."""
        return "; ".join(self.errors) or self._attempt_last

    @property
    def lines(self) -> list[str]:
        return list(self._lines)

    def last_error(self) -> str | None:
        """The latest error-looking line, else the latest line at all, else None."""
        if self._last_error:
            return self._last_error
        return self._lines[-1] if self._lines else None


class Pace:
    """Whether an output keeps up: its output time against the program's own time, over the last few seconds.

    ffmpeg's `speed` is an average since it started, so a pause of the program long ago still drags it
    down; comparing both clocks over a window says how the output does now, and a program that itself runs
    slow (a bad source) is not blamed on the output.
    """

    def __init__(self, window_ms: int = 5000):
        self.window_ms = window_ms
        self._marks: deque[tuple[int, int]] = deque()  # (program time ms, output time µs)

    def add(self, program_ms: int, out_time_us: int) -> float | None:
        """Note one progress block; the output's speed relative to the program, once a window is seen."""
        self._marks.append((program_ms, out_time_us))
        while len(self._marks) > 2 and program_ms - self._marks[1][0] >= self.window_ms:
            self._marks.popleft()
        first_ms, first_us = self._marks[0]
        if program_ms - first_ms < self.window_ms * 0.8:
            return None
        return (out_time_us - first_us) / 1000 / (program_ms - first_ms)

    def clear(self) -> None:
        self._marks.clear()
