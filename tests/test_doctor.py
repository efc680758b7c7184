"""`streamctl doctor [EVENT.toml]` (doctor.py): Chromium, the event's ports, disk space and the clock."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from streamctl import doctor as doctor_checks

from .conftest import LOOPBACK, free_port
from .small_disk import small_disk


def doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamctl", "doctor", *args], capture_output=True, text=True,
                          timeout=90)


def tool(folder: Path, name: str, script: str) -> None:
    """A stand-in for a system tool (timedatectl, chronyc, ntpq): a script printing what the real one prints."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def line(output: str, name: str) -> str:
    return next(x for x in output.splitlines() if x.startswith(f"{name}:"))


def test_doctor_says_which_ports_of_the_event_are_taken(tmp_path):
    srt_port = free_port()
    with socket.socket() as console, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as backup:
        console.bind((LOOPBACK, 0))
        console.listen()
        backup.bind((LOOPBACK, srt_port))
        ingest = free_port()
        event = tmp_path / "event.toml"
        event.write_text(f"""[event]\nname = "doctor"\ndatabase = "event.db"\n
[ingest]\nurl = "rtmp://{LOOPBACK}:{ingest}/live"\nbackup_url = "srt://{LOOPBACK}:{srt_port}?mode=listener"\n
[console]\nlisten = "{LOOPBACK}:{console.getsockname()[1]}"\n""", encoding="utf-8")
        done = doctor(str(event))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert line(done.stdout, "port console").endswith("/tcp in use (is this event already running, or another "
                                                      "program on it?) [problem]")
    assert line(done.stdout, "port ingest") == f"port ingest: {LOOPBACK}:{ingest}/tcp free"
    assert line(done.stdout, "port backup ingest").startswith(f"port backup ingest: {LOOPBACK}:{srt_port}/udp in use")
    assert line(done.stdout, "disk database").startswith("disk database: ")


def test_doctor_without_chromium_warns_that_pdf_reports_will_not_work_but_passes(monkeypatch):
    assert doctor_checks.chromium().line().startswith("chromium: /")
    monkeypatch.setenv("STREAMCTL_CHROMIUM", "no-such-chromium")
    check = doctor_checks.chromium()
    assert check.status == "warning"
    assert check.line().startswith("chromium: not found: `streamctl report --format pdf` will not work")


@pytest.mark.parametrize(("tools", "expected"), [
    ({"timedatectl": "echo yes"}, "clock: synchronised (timedatectl)"),
    ({"timedatectl": "echo no"}, "clock: not synchronised (timedatectl): enable NTP"),
    ({"timedatectl": "exit 1", "chronyc": "echo 'Reference ID    : C0A80001 (router)'; "
      "echo 'Leap status     : Normal'"}, "clock: synchronised (chrony)"),
    ({"timedatectl": "exit 1", "chronyc": "echo 'Leap status     : Not synchronised'"},
     "clock: chrony says 'Not synchronised'"),
    ({"timedatectl": "exit 1", "chronyc": "exit 1", "ntpq": "echo '*192.168.0.1  .GPS.  1 u  12   64  377'"},
     "clock: synchronised (ntpd)"),
    ({"timedatectl": "exit 1", "chronyc": "exit 1", "ntpq": "exit 1"}, "clock: unknown: neither timedatectl"),
])
def test_doctor_reads_the_clock_from_whichever_time_service_answers(tmp_path, monkeypatch, tools, expected):
    for name, script in tools.items():
        tool(tmp_path / "bin", name, script)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert doctor_checks.clock().line().startswith(expected)


def test_doctor_calls_a_nearly_full_disk_a_problem(tmp_path):
    with small_disk(tmp_path / "disk", size="8m") as disk:
        if disk is None:
            pytest.skip("this machine does not allow mounting a small tmpfs (needs root)")
        event = tmp_path / "event.toml"
        event.write_text(f'[event]\nname = "d"\ndatabase = "{disk}/event.db"\n[ingest]\nurl = "testsrc"\n'
                         f'[archive]\npath = "{disk}/archive"\n[console]\nlisten = "{LOOPBACK}:0"\n',
                         encoding="utf-8")
        done = doctor(str(event))
    assert done.returncode == 1
    assert line(done.stdout, "disk database").startswith("disk database: 8 MB free at ")
    assert line(done.stdout, "disk database").endswith("[problem]")
    assert "about 0.0 hours of recording" in line(done.stdout, "disk archive")
