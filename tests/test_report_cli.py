"""`streamctl report` as a user runs it: every format, clear errors, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from .report_fixture import write_fixture

# How each file begins: CSV with a byte-order mark so spreadsheets read the Vietnamese text as UTF-8.
MAGIC = {"html": b"<!DOCTYPE html>", "csv": "\ufeffEvent".encode(), "pdf": b"%PDF-"}


def streamctl(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamctl", "report", *args], capture_output=True, text=True,
                          timeout=100, env=env, check=False)


@pytest.fixture(scope="module")
def event_db(tmp_path_factory):
    return write_fixture(tmp_path_factory.mktemp("cli") / "event.db").path


def test_json_to_standard_output(event_db):
    done = streamctl(str(event_db), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["event"]["name"] == "Phiên chất vấn thử nghiệm"
    for key in ("name", "platform", "peak_viewers", "peak_at", "mean_viewers", "comments", "unique_authors"):
        assert all(key in p for p in report["platforms"])
    assert {"received", "approved", "forwarded", "answered", "dismissed", "median_answer_s"} <= set(report["questions"])
    assert all({"name", "platform", "uptime_s", "live_ratio", "reconnects"} <= set(d) for d in report["destinations"])


@pytest.mark.parametrize("fmt", ["html", "csv", "pdf"])
def test_files_in_each_format(event_db, tmp_path, fmt):
    out = tmp_path / f"report.{fmt}"
    done = streamctl(str(event_db), "--format", fmt, "-o", str(out), "--lang", "en")
    assert done.returncode == 0, done.stderr
    data = out.read_bytes()
    assert data.startswith(MAGIC[fmt])
    # The report only reads: the database is left as it was.
    assert not (event_db.parent / "event.db-journal").exists()


@pytest.mark.parametrize("kind", ["text", "other-sqlite", "missing"])
def test_not_an_event_database_exits_2_without_traceback(tmp_path, kind):
    path = tmp_path / "thing.db"
    if kind == "text":
        path.write_text("id,name\n1,not a database\n" * 50)
    elif kind == "other-sqlite":
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    done = streamctl(str(path), "--format", "html")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert str(path) in done.stderr
    assert ("no such file" if kind == "missing" else "not a streamctl event database") in done.stderr


def test_pdf_needs_an_output_path(event_db):
    done = streamctl(str(event_db), "--format", "pdf")
    assert done.returncode == 2 and "-o PATH" in done.stderr


def test_pdf_without_a_browser_names_what_to_install(event_db, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "STREAMCTL_CHROMIUM"}
    env["PATH"] = str(tmp_path)  # nothing to find there
    done = streamctl(str(event_db), "--format", "pdf", "-o", str(tmp_path / "r.pdf"), env=env)
    assert done.returncode == 1
    assert "Chromium" in done.stderr and "apt-get install chromium" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "r.pdf").exists()
