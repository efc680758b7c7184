"""The report written out: HTML (with inline SVG charts, A4 print layout), PDF, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from .. import assets
from . import charts
from .figures import ReportError
from .labels import Words

TEMPLATES = assets.path("web/templates/report")
PAID_LIMIT = 100
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic", "--no-pdf-header-footer")
PDF_TIMEOUT_S = 90
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ToolMissing(ReportError):
    """A program the output format needs (Chromium for PDF) is not installed."""


_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def css_string(text: str) -> Markup:
    """Text safe inside a double-quoted CSS string in a <style> block: everything but letters escaped."""
    return Markup("".join(c if c.isalnum() or c == " " else f"\\{ord(c):x} " for c in text))  # noqa: S704


def chart_set(report: dict, words: Words) -> dict[str, Markup | None]:
    """The report's four charts as inline SVG."""
    start = _epoch(report["minutes"]["start"])
    minutes = report["minutes"]["count"]
    platforms = report["platforms"]
    colours = charts.colours([(p["name"], p["platform"]) for p in platforms])
    lines = [charts.Line(p["name"], colours[p["name"]], p["viewers_per_minute"], charts.DASHES[i % len(charts.DASHES)])
             for i, p in enumerate(platforms) if p["samples"]]
    lines.append(charts.Line(words("total"), charts.TOTAL_COLOUR, report["total"]["viewers_per_minute"], width=2.4))
    bars = [charts.Line(p["name"], colours[p["name"]], p["comments_per_minute"]) for p in platforms if p["comments"]]
    lanes = [charts.Lane(words("ingest"), [(_epoch(s["from"]), _epoch(s["to"]), s["state"])
                                          for s in report["ingest"]["states"]])]
    lanes += [charts.Lane(d["name"], [(_epoch(s["from"]), _epoch(s["to"]), s["state"]) for s in d["states"]])
              for d in report["destinations"]]
    dest_colours = charts.colours([(d["name"], d["platform"]) for d in report["destinations"]])
    bitrate = [charts.Line(d["name"], dest_colours[d["name"]], d["bitrate_per_minute"],
                           charts.DASHES[i % len(charts.DASHES)])
               for i, d in enumerate(report["destinations"]) if d["bitrate_per_minute"]]
    return {
        "viewers": charts.line_chart(words, words("viewers_chart"), start, minutes, lines),
        "comments": charts.stacked_bars(words, words("comments_chart"), start, minutes, bars),
        "timeline": charts.timeline(words, words("timeline_chart"), start, minutes, lanes),
        "bitrate": charts.line_chart(words, words("bitrate_chart"), start, minutes, bitrate, height=180)
        if bitrate else None,
        "colours": colours,
    }


def to_html(report: dict, lang: str, downloads: Sequence[tuple[str, str]] = ()) -> str:
    """The printable report page; `downloads` (label, href) links are shown on screen only, never printed."""
    assets.require(assets.REPORT)
    words = Words(lang, report["event"]["timezone"])
    made = chart_set(report, words)
    return _env.get_template("report.html").render(
        r=report, t=words, charts=made, colours=made["colours"], paid_limit=PAID_LIMIT,
        any_manual=any(p["manual"] for p in report["platforms"]), footer_name=css_string(report["event"]["name"]),
        downloads=downloads,
    )


def to_json(report: dict) -> str:
    return json.dumps(report, ensure_ascii=False, indent=1) + "\n"


def safe_cell(value: object) -> object:
    """A CSV cell that a spreadsheet will not run: text starting like a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(report: dict, lang: str) -> str:
    """One CSV file in titled sections (event, platforms, questions, destinations, incidents, per minute, paid)."""
    t = Words(lang, report["event"]["timezone"])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")

    def section(title: str, header: list[str], rows: list[list]) -> None:
        writer.writerow([safe_cell(title)])
        writer.writerow([safe_cell(h) for h in header])
        writer.writerows([[safe_cell(c) for c in row] for row in rows])
        writer.writerow([])

    e, total, q = report["event"], report["total"], report["questions"]
    section(t("event"), [t("figure"), t("value")], [
        [t("name"), e["name"]], [t("started"), t.stamp(e["started_at"])], [t("ended"), t.stamp(e["ended_at"])],
        [t("timezone"), e["timezone"]], [t("duration") + " (s)", e["duration_s"]],
    ])
    head = [t("channel"), t("platform"), t("manual"), t("peak"), t("peak_time"), t("mean"), t("views"), t("likes"),
            t("comments"), t("unique_authors"), t("paid"), t("hidden"), t("question")]
    rows = [[p["name"], p["platform"], int(p["manual"]), p["peak_viewers"], t.stamp(p["peak_at"]), p["mean_viewers"],
             p["views"], p["likes"], p["comments"], p["unique_authors"], p["paid"], p["hidden"], p["questions"]]
            for p in report["platforms"]]
    rows.append([t("total"), "", "", total["peak_viewers"], t.stamp(total["peak_at"]), total["mean_viewers"],
                 total["views"], total["likes"], total["comments"], total["unique_authors"], total["paid"],
                 total["hidden"], q["received"]])
    section(t("viewers_section"), head, rows)
    section(t("questions_section"), [t("figure"), t("value")],
            [[t(k), q[k]] for k in ("received", "approved", "forwarded", "on_air", "answered", "dismissed", "merged")]
            + [[t("median_answer") + " (s)", q["median_answer_s"]]])
    section(t("answered_list"), ["#", t("question"), t("asker"), t("channel"), t("time"), t("answered"),
                                 t("waited") + " (s)", t("answered_by")],
            [[a["id"], a["text"], a["author"], a["source"], t.stamp(a["asked_at"]), t.stamp(a["answered_at"]),
              a["answer_s"], a["answered_by"]] for a in q["answered_list"]])
    section(t("health_section"), [t("destination"), t("platform"), t("time_live") + " (s)", t("share_live"),
                                  t("reconnects"), t("outages"), t("bitrate") + " (kbit/s)",
                                  t("platform_good"), t("platform_bad") + " (s)", t("platform_issues")],
            [[d["name"], d["platform"], d["uptime_s"], d["live_ratio"], d["reconnects"], d["outages"],
              d["bitrate_mean_kbps"], *_platform_cells(d.get("platform_view"))] for d in report["destinations"]])
    section(t("incidents"), [t("what"), t("name"), t("from"), t("until"), t("duration") + " (s)", t("recovered"),
                             t("error")],
            [[t("kind_" + i["kind"]), i["name"], t.stamp(i["at"]), t.stamp(i["until"]), i["duration_s"],
              int(i["recovered"]), i["error"]] for i in report["incidents"]])
    start = _epoch(report["minutes"]["start"])
    names = [p["name"] for p in report["platforms"]]
    section(t("viewers_chart") + " / " + t("comments_chart"),
            [t("minute"), t("local_time")] + [f'{t("viewers")}: {n}' for n in names]
            + [f'{t("viewers")}: {t("total")}'] + [f'{t("comments")}: {n}' for n in names]
            + [f'{t("comments")}: {t("total")}'],
            [[m, t.stamp(start + 60 * m)] + [p["viewers_per_minute"][m] for p in report["platforms"]]
             + [total["viewers_per_minute"][m]] + [p["comments_per_minute"][m] for p in report["platforms"]]
             + [total["comments_per_minute"][m]] for m in range(report["minutes"]["count"])])
    section(t("paid"), [t("time"), t("channel"), t("author"), t("amount"), t("message")],
            [[t.stamp(m["published_at"]), m["source"], m["author"], m["amount"], m["text"]]
             for m in report["paid_messages"]])
    return out.getvalue()


def find_chromium() -> str:
    """The headless browser that prints the PDF, or ToolMissing naming what to install."""
    override = os.environ.get("STREAMCTL_CHROMIUM")
    for name in ((override,) if override else CHROMIUM_NAMES):
        found = shutil.which(name)
        if found:
            return found
    raise ToolMissing("PDF needs Chromium and none was found (looked for "
                      f"{', '.join((override,) if override else CHROMIUM_NAMES)} on PATH): install it, e.g. "
                      "`apt-get install chromium`, or use --format html and print from a browser")


def to_pdf(html: str, output: Path) -> None:
    """Print the HTML to an A4 PDF with headless Chromium (a short-lived helper process, not a service)."""
    browser = find_chromium()
    with tempfile.TemporaryDirectory(prefix="streamctl-report-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        target = Path(tmp) / "report.pdf"
        argv = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}",
                f"--print-to-pdf={target}", page.as_uri()]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=PDF_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise ReportError(f"{browser} did not print the PDF within {PDF_TIMEOUT_S} s") from None
        if not target.is_file() or target.stat().st_size == 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise ReportError(f"{browser} could not print the PDF (exit {done.returncode}): {' / '.join(tail)}")
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(target, output)


def _platform_cells(view: dict | None) -> list:
    """What the platform said it received (share good, seconds bad, issues), blank where it was not asked."""
    if not view or not view.get("samples"):
        return ["", "", ""]
    return [view["good_share"], view["bad_s"], " ".join(view["issues"])]
