"""The report rendered: HTML with inline SVG charts, CSV without formulas, JSON, and a printed A4 PDF."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from html import unescape
from html.parser import HTMLParser

import pytest

from streamctl.report.figures import build_report
from streamctl.report.render import safe_cell, to_csv, to_html, to_json, to_pdf
from streamctl.store import Store

from .report_fixture import FORMULAS, HOSTILE_AUTHOR, HOSTILE_TEXT, NAME, SECRET, write_fixture, write_long_event


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    fx = write_fixture(tmp_path_factory.mktemp("hostile") / "event.db", hostile=True)
    return fx, build_report(fx.path)


class Collector(HTMLParser):
    """The page's elements and its visible text, as a browser's parser sees them."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> Collector:
    page = Collector()
    page.feed(html)
    return page


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_html_has_figures_charts_and_no_script(hostile, lang):
    _, report = hostile
    html = to_html(report, lang)
    page = parse(html)
    assert "script" not in page.tags and "img" not in page.tags
    assert page.tags.count("svg") >= 4  # viewers, comments, state timeline, bitrate
    text = "".join(page.text)
    # Hostile text is shown as text, never run: it reaches the reader verbatim.
    assert HOSTILE_TEXT in text and HOSTILE_AUTHOR in text and NAME in text
    assert "<script>alert" not in html
    assert SECRET not in html
    assert ("Tổng cộng" if lang == "vi" else "Total") in text
    thousands = "1.000" if lang == "vi" else "1,000"
    assert re.search(rf">{re.escape(thousands)}<", html), "the viewer axis labels use the reader's separators"
    assert ("NGƯỜI LẬP BÁO CÁO" if lang == "vi" else "PREPARED BY") in text  # the signature block
    assert "size: A4" in html


def test_times_are_in_the_event_time_zone(hostile):
    _, report = hostile
    text = "".join(parse(to_html(report, "en")).text)
    # The fixture starts at 01:00:17 UTC, 08:00 in Asia/Ho_Chi_Minh.
    assert "Time: 08:00–09:00" in text
    assert "01:00" not in text.split("Time:")[1][:20]


def test_csv_neutralises_formulas_and_keeps_every_section(hostile):
    _, report = hostile
    text = to_csv(report, "en")
    rows = list(csv.reader(io.StringIO(text)))
    cells = [c for row in rows for c in row]
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    for formula in FORMULAS:
        assert "'" + formula in cells
    assert HOSTILE_TEXT in cells and "'" + HOSTILE_AUTHOR in cells  # only a formula-like start is quoted
    titles = {row[0] for row in rows if len(row) == 1}
    assert {"Event", "1. Viewers by platform", "3. Audience questions", "4. Stream health", "Incidents",
            "Paid messages"} <= titles
    total = next(row for row in rows if row and row[0] == "Total" and len(row) > 10)
    assert int(total[3]) == report["total"]["peak_viewers"] and int(total[8]) == report["total"]["comments"]
    assert safe_cell(-5) == -5, "numbers stay numbers"


def test_json_keeps_hostile_text_as_data(hostile):
    _, report = hostile
    back = json.loads(to_json(report))
    assert back["event"]["name"] == NAME
    assert any(m["text"] == HOSTILE_TEXT for m in back["paid_messages"])
    assert SECRET not in to_json(report)


def test_pdf_is_a4_with_the_report_text(hostile, artifacts):
    _, report = hostile
    pdf = artifacts / "report-hostile.pdf"
    to_pdf(to_html(report, "vi"), pdf)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert pages >= 1
    width, height = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info).groups())
    assert (round(width), round(height)) == (595, 842)  # A4 in points
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    for expected in ("Người xem theo nền tảng", "Tổng cộng", "NGƯỜI LẬP BÁO CÁO", "<script>alert('x')</script>"):
        assert expected in text
    for old in artifacts.glob("report-hostile-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(artifacts / "report-hostile")], check=True)
    assert len(list(artifacts.glob("report-hostile-*.png"))) == pages


MM = 72 / 25.4
RIGHT_MARGIN_MM, BOTTOM_MARGIN_MM = 14, 17  # the report's @page margins


def pdf_words(pdf) -> list[list[tuple[float, float, float, float, str]]]:
    """Per page, every word pdftotext finds with its box (x0, y0, x1, y1) in points."""
    text = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    word = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>')
    return [[(*map(float, m.groups()[:4]), unescape(m.group(5))) for m in word.finditer(page)]
            for page in text.split("<page ")[1:]]


def test_a_long_pdf_keeps_its_signatures_with_the_text_and_cuts_no_label(tmp_path, artifacts):
    """Three hours ending on 03:00 with thirteen outages: the length that printed the signatures alone on page 3."""
    write_long_event(tmp_path / "long.db", outages=13)
    pdf = artifacts / "report-long.pdf"
    to_pdf(to_html(build_report(tmp_path / "long.db"), "vi"), pdf)
    pages = pdf_words(pdf)
    words = [[w[4] for w in page] for page in pages]
    signed = next(i for i, page in enumerate(words) if "NGƯỜI" in page and "CÁO" in page)
    assert signed == len(pages) - 1
    # The signatures share their page with what precedes them: the definitions and the last incident.
    assert "Cách" in words[signed] and "ingest" in words[signed], words[signed]
    assert words[signed].index("Cách") < words[signed].index("NGƯỜI")
    # Nothing is cut at the right edge: every word (the time axis's last "03:00" included) lies inside the
    # printed area; only the page footer sits in the bottom margin.
    width, height = 595.0, 842.0
    for n, page in enumerate(pages):
        for _x0, y0, x1, _y1, word in page:
            if y0 > height - BOTTOM_MARGIN_MM * MM:
                continue
            assert x1 <= width - RIGHT_MARGIN_MM * MM + 0.5, f"page {n + 1}: {word!r} ends at {x1:.1f} pt"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    axes = [line for line in text.splitlines() if "00:00" in line and "02:30" in line]
    assert len(axes) >= 3 and all(line.rstrip().endswith("03:00") for line in axes), axes
    for old in artifacts.glob("report-long-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(artifacts / "report-long")], check=True)


def test_an_empty_event_renders_in_every_format(tmp_path):
    store = Store(tmp_path / "empty.db")
    store.close()
    report = build_report(tmp_path / "empty.db")
    text = "".join(parse(to_html(report, "en")).text)
    assert "No data." in text and "No incidents." in text
    assert "1. Viewers by platform" in to_csv(report, "en")
    assert json.loads(to_json(report))["platforms"] == []
