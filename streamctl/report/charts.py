"""The report's charts as inline SVG: no JavaScript, the same in the browser and in the printed PDF."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from ..states import DestinationState, IngestState
from .labels import Words

WIDTH = 680
# RIGHT holds half of the last time label ("03:00" centred on the plot's right edge), so it is never cut.
LEFT, RIGHT, TOP, BOTTOM = 56, 20, 26, 24
FONT = "font-family=\"'DejaVu Sans', 'Liberation Sans', Arial, sans-serif\" font-size=\"10\""
TICK_STEPS_MIN = (1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720, 1440)
# Line patterns so lines stay apart on a black-and-white print.
DASHES = ("", "6 3", "2 2", "8 3 2 3", "4 4", "1 3")
D, IN = DestinationState, IngestState
STATE_COLOURS = {
    D.LIVE: "#2e7d32", D.STARTING: "#f2c14e", D.BACKOFF: "#ef8a17", D.FAILED: "#c62828",
    D.STOPPED: "#d0d0d0", IN.LOST: "#c62828", IN.WAITING: "#e6e6e6",
}
PLATFORM_COLOURS = {
    "facebook": "#1877f2", "youtube": "#e62117", "tiktok": "#00a3a3", "twitch": "#9146ff",
    "zalo": "#7b5cc4", "weibo": "#e6a100", "website": "#6d4c41",
}
SPARE_COLOURS = ("#8c1c13", "#0b4f9c", "#5d8a00", "#b35c00", "#6a1b9a", "#00796b", "#455a64")
TOTAL_COLOUR = "#111111"
LEGEND_ROW = 14


@dataclass(frozen=True)
class Line:
    """One series of a chart: a label, its colour and dash, and a value per axis minute."""

    label: str
    colour: str
    values: Sequence[float | None]
    dash: str = ""
    width: float = 1.4


def colours(items: Sequence[tuple[str, str]]) -> dict[str, str]:
    """A colour per (name, platform): the platform's own for its first channel, a spare one after."""
    out: dict[str, str] = {}
    used: set[str] = set()
    spare = iter(SPARE_COLOURS * 4)
    for name, platform in items:
        colour = PLATFORM_COLOURS.get(platform)
        if colour is None or colour in used:
            colour = next(spare)
        used.add(colour)
        out[name] = colour
    return out


def nice_ceiling(value: float) -> tuple[float, float]:
    """A round top for an axis holding `value`, and its tick step (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0, 0.25
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return step * math.ceil(value / step - 1e-9), step


class Frame:
    """A time axis (the report's whole-minute axis) and a value axis mapped onto an SVG box."""

    def __init__(self, words: Words, axis_start: float, minutes: int, top_value: float, height: int,
                 left: int = LEFT, top: int = TOP):
        self.words = words
        self.top = top
        self.t0 = axis_start
        self.span = max(60.0, minutes * 60.0)
        self.left = left
        self.height = height
        self.plot_w = WIDTH - left - RIGHT
        self.plot_h = height - top - BOTTOM
        self.y_top, self.y_step = nice_ceiling(top_value)

    def x(self, t: float) -> float:
        return self.left + (t - self.t0) / self.span * self.plot_w

    def y(self, value: float) -> float:
        return self.top + self.plot_h * (1 - value / self.y_top)

    def minute_x(self, m: int) -> float:
        return self.x(self.t0 + 60.0 * m + 30.0)

    def time_ticks(self) -> list[str]:
        """Vertical grid lines and local-time labels on round minutes of the event's time zone."""
        step = next((s for s in TICK_STEPS_MIN if self.span / 60 / s <= 9), TICK_STEPS_MIN[-1])
        local = self.words.local(self.t0)
        offset_min = (local.hour * 60 + local.minute) if local else 0
        first = (-offset_min) % step
        out = []
        for m in range(first, int(self.span // 60) + 1, step):
            x = self.x(self.t0 + 60.0 * m)
            out.append(f'<line x1="{x:.1f}" y1="{self.top}" x2="{x:.1f}" y2="{self.height - BOTTOM}" stroke="#e3e3e3"/>'
                       f'<text x="{x:.1f}" y="{self.height - BOTTOM + 13}" text-anchor="middle" fill="#444">'
                       f'{escape(self.words.clock(self.t0 + 60.0 * m))}</text>')
        return out

    def value_ticks(self, digits: int = 0) -> list[str]:
        out = []
        for i in range(int(round(self.y_top / self.y_step)) + 1):
            value = i * self.y_step
            y = self.y(value)
            out.append(f'<line x1="{self.left}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e3e3e3"/>'
                       f'<text x="{self.left - 4}" y="{y + 3:.1f}" text-anchor="end" fill="#444">'
                       f'{escape(self.words.num(value, max(digits, 1) if value % 1 else 0))}</text>')
        return out

    def box(self) -> str:
        return (f'<rect x="{self.left}" y="{self.top}" width="{self.plot_w}" height="{self.plot_h}" fill="none"'
                f' stroke="#999" stroke-width="0.6"/>')


def _svg(height: int, title: str, body: list[str]) -> Markup:
    # Every text that reaches `body` went through escape() where it was placed; numbers are formatted by us.
    return Markup(  # noqa: S704
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" role="img"'
        f' aria-label="{escape(title)}" {FONT}><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def _legend(items: Sequence[tuple[str, str, str]], kind: str = "line", left: int = LEFT) -> tuple[list[str], int]:
    """A legend above the plot: (label, colour, dash) items left to right, wrapping; and the extra height used."""
    out, x, y = [], float(left), 0
    for label, colour, dash in items:
        width = 30 + 6.2 * len(label)
        if x + width > WIDTH - RIGHT and x > left:
            x, y = float(left), y + LEGEND_ROW
        if kind == "line":
            mark = (f'<line x1="{x:.1f}" y1="{10 + y}" x2="{x + 18:.1f}" y2="{10 + y}" stroke="{colour}"'
                    f' stroke-width="2" stroke-dasharray="{dash}"/>')
        else:
            mark = f'<rect x="{x:.1f}" y="{5 + y}" width="12" height="10" fill="{colour}"/>'
        out.append(mark + f'<text x="{x + 22:.1f}" y="{14 + y}" fill="#222">{escape(label)}</text>')
        x += width
    return out, y


def line_chart(words: Words, title: str, axis_start: float, minutes: int, lines: Sequence[Line],
               height: int = 210, digits: int = 0) -> Markup:
    """Lines over the minute axis; a None value breaks its line (the source was not reporting)."""
    legend, extra = _legend([(line.label, line.colour, line.dash) for line in lines])
    top = max((v for line in lines for v in line.values if v is not None), default=0.0)
    frame = Frame(words, axis_start, minutes, top, height + extra, top=TOP + extra)
    body = legend + frame.value_ticks(digits) + frame.time_ticks() + [frame.box()]
    for line in lines:
        path, pen_down = [], False
        for m, value in enumerate(line.values):
            if value is None:
                pen_down = False
                continue
            path.append(f'{"L" if pen_down else "M"}{frame.minute_x(m):.1f} {frame.y(value):.1f}')
            pen_down = True
        if path:
            body.append(f'<path d="{" ".join(path)}" fill="none" stroke="{line.colour}" stroke-width="{line.width}"'
                        f' stroke-dasharray="{line.dash}" stroke-linejoin="round"/>')
    return _svg(height + extra, title, body)


def stacked_bars(words: Words, title: str, axis_start: float, minutes: int, bars: Sequence[Line],
                 height: int = 190) -> Markup:
    """Stacked columns per minute (e.g. comments per minute by platform)."""
    legend, extra = _legend([(b.label, b.colour, "") for b in bars], kind="box")
    totals = [sum((b.values[m] or 0) for b in bars) for m in range(minutes)]
    frame = Frame(words, axis_start, minutes, max(totals, default=0), height + extra, top=TOP + extra)
    body = legend + frame.value_ticks() + frame.time_ticks() + [frame.box()]
    width = max(0.6, frame.plot_w / max(1, minutes) - 0.4)
    for m in range(minutes):
        base = 0.0
        x = frame.x(axis_start + 60.0 * m) + 0.2
        for bar in bars:
            value = bar.values[m] or 0
            if value <= 0:
                continue
            y_hi, y_lo = frame.y(base + value), frame.y(base)
            body.append(f'<rect x="{x:.1f}" y="{y_hi:.1f}" width="{width:.2f}" height="{y_lo - y_hi:.2f}"'
                        f' fill="{bar.colour}"/>')
            base += value
    return _svg(height + extra, title, body)


@dataclass(frozen=True)
class Lane:
    """One row of the state timeline: a label and its (start, stop, state) pieces in epoch seconds."""

    label: str
    pieces: Sequence[tuple[float, float, str]]


def timeline(words: Words, title: str, axis_start: float, minutes: int, lanes: Sequence[Lane]) -> Markup:
    """State lanes over time (live, backoff, failed...), one per destination and one for the ingest."""
    lane_h, left = 18, 120
    seen = [s for s in STATE_COLOURS if any(p[2] == s for lane in lanes for p in lane.pieces)]
    legend, extra = _legend([(words.state(s), STATE_COLOURS[s], "") for s in seen], "box", left)
    height = TOP + extra + BOTTOM + lane_h * max(1, len(lanes)) + 4
    frame = Frame(words, axis_start, minutes, 1.0, height, left=left, top=TOP + extra)
    body = legend + frame.time_ticks()
    for i, lane in enumerate(lanes):
        y = TOP + extra + 2 + i * lane_h
        body.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end" fill="#222">{escape(lane.label)}</text>')
        for start, stop, state in lane.pieces:
            x0, x1 = frame.x(start), frame.x(stop)
            body.append(f'<rect x="{x0:.2f}" y="{y + 2}" width="{max(0.8, x1 - x0):.2f}" height="{lane_h - 5}"'
                        f' fill="{STATE_COLOURS.get(state, "#999")}"><title>{escape(words.state(state))}'
                        f' {escape(words.clock(start, True))}–{escape(words.clock(stop, True))}</title></rect>')
    body.append(frame.box())
    return _svg(height, title, body)
