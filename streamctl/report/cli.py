"""`streamctl report EVENT.db --format html|pdf|csv|json [-o PATH]`: the post-event report from the database alone."""

from __future__ import annotations

import sys
from pathlib import Path

from ..assets import AssetMissing
from .figures import ReportError, build_report
from .labels import LANGS
from .render import ToolMissing, to_csv, to_html, to_json, to_pdf

FORMATS = ("html", "pdf", "csv", "json")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def render(report: dict, fmt: str, lang: str) -> str:
    """The report as text in one of the text formats (html, csv, json)."""
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report, lang)
    return to_html(report, lang)


def _fail(message: str, code: int) -> int:
    print(f"streamctl report: {message}", file=sys.stderr)
    return code


def run_report(db_path: Path, fmt: str, output: str | None, lang: str) -> int:
    """Write the report of `db_path`; 0 when done, 2 for bad input, 1 when a needed tool or the output fails."""
    if fmt not in FORMATS:
        return _fail(f"unknown format {fmt!r}, expected one of {', '.join(FORMATS)}", EXIT_USAGE)
    if lang not in LANGS:
        return _fail(f"unknown language {lang!r}, expected one of {', '.join(LANGS)}", EXIT_USAGE)
    if fmt == "pdf" and not output:
        return _fail("pdf is a binary file: give -o PATH, e.g. -o report.pdf", EXIT_USAGE)
    try:
        report = build_report(Path(db_path))
    except ReportError as e:
        return _fail(str(e), EXIT_USAGE)
    try:
        text = to_html(report, lang) if fmt == "pdf" else render(report, fmt, lang)
    except AssetMissing as e:
        return _fail(str(e), EXIT_FAILED)
    try:
        if fmt == "pdf":
            to_pdf(text, Path(output))
        elif output:
            # A byte-order mark lets spreadsheet programs read the Vietnamese text of a CSV file as UTF-8.
            Path(output).write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="")
        else:
            sys.stdout.buffer.write(text.encode("utf-8"))
            sys.stdout.flush()
    except ToolMissing as e:
        return _fail(str(e), EXIT_FAILED)
    except (ReportError, OSError) as e:
        return _fail(f"could not write the report to {output or 'standard output'}: {e}", EXIT_FAILED)
    if output:
        print(f"report written to {output}", file=sys.stderr)
    return EXIT_OK
