"""`streamctl doctor [EVENT.toml]` beside ffmpeg: Chromium for PDF reports, the event's ports, disk space, the clock.

Each check is one line `name: verdict`; a problem that stops an event (a port taken, a disk nearly full) makes
the exit status 1, one that only limits something (no Chromium: no PDF) or cannot be told (the clock on a
machine without timedatectl/chrony/ntp) is said and left at that.
"""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .config import EventFile

OK, WARNING, PROBLEM, UNKNOWN = "ok", "warning", "problem", "unknown"
DATABASE_MIN_MB = 200  # below this the comments of a busy evening may not fit: a problem
DATABASE_WARN_MB = 2000
ARCHIVE_MBIT_S = 8.0  # what an hour of recording is reckoned at (a 6 Mbit/s program and headroom)
ARCHIVE_WARN_HOURS = 6.0
TOOL_TIMEOUT_S = 5


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warning | problem | unknown
    text: str

    def line(self) -> str:
        marker = "" if self.status == OK else f" [{self.status}]"
        return f"{self.name}: {self.text}{marker}"


def _run(argv: list[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None


def chromium() -> Check:
    """PDF reports need a headless Chromium."""
    from .report.render import ToolMissing, find_chromium

    try:
        path = find_chromium()
    except ToolMissing:
        return Check("chromium", WARNING, "not found: `streamctl report --format pdf` will not work "
                     "(install it, e.g. apt-get install chromium; html, csv and json reports do not need it)")
    done = _run([path, "--version"])
    version = done.stdout.strip() if done and done.returncode == 0 else "version unknown"
    return Check("chromium", OK, f"{path} ({version}), for PDF reports")


def listen_addresses(event: EventFile) -> list[tuple[str, str, str, int]]:
    """(what, transport, host, port) of everything the event listens on."""
    found = [("console", "tcp", event.console.host, event.console.port)]
    ingest = event.ingest
    inputs = [("ingest", ingest), ("backup ingest", getattr(ingest, "backup", None))] if ingest else []
    for what, config in inputs:
        if config is None or config.kind not in ("rtmp_listen", "srt_listen"):
            continue
        parts = urlsplit(config.url)
        default = 1935 if config.kind == "rtmp_listen" else 9000
        found.append((what, "tcp" if config.kind == "rtmp_listen" else "udp", parts.hostname or "0.0.0.0",
                      parts.port or default))
    return found


def port_free(transport: str, host: str, port: int) -> str | None:
    """None when `host:port` can be listened on now, else why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
    with socket.socket(family, kind) as probe:
        if transport == "tcp":
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the console and listener do
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return "in use (is this event already running, or another program on it?)"
            if e.errno == errno.EACCES:
                return "not allowed (ports below 1024 need privileges; use a higher port)"
            if e.errno == errno.EADDRNOTAVAIL:
                return "this machine has no such address"
            return e.strerror or str(e)
    return None


def ports(event: EventFile) -> list[Check]:
    checks = []
    for what, transport, host, port in listen_addresses(event):
        if port == 0:
            continue
        why = port_free(transport, host, port)
        checks.append(Check(f"port {what}", PROBLEM if why else OK,
                            f"{host}:{port}/{transport} {why or 'free'}"))
    return checks


def _existing(path: Path) -> Path:
    """The path, or its nearest existing parent (a database not yet created is measured where it will be)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def free_mb(path: Path) -> float:
    return shutil.disk_usage(_existing(path)).free / 1e6


def disks(event: EventFile | None) -> list[Check]:
    """Free space where the database (and the archive, if recording) are written."""
    database = event.event.database if event else Path.cwd() / "EVENT.db"
    free = free_mb(database.parent)
    status = PROBLEM if free < DATABASE_MIN_MB else WARNING if free < DATABASE_WARN_MB else OK
    checks = [Check("disk database", status, f"{free:,.0f} MB free at {_existing(database.parent)}"
                    + ("" if status == OK else f" (keep at least {DATABASE_WARN_MB:,} MB for an event's database)"))]
    archive = event.archive if event else None
    if archive is not None:
        free = free_mb(archive.path)
        hours = free / (ARCHIVE_MBIT_S / 8 * 3600)
        status = PROBLEM if hours < 1 else WARNING if hours < ARCHIVE_WARN_HOURS else OK
        checks.append(Check("disk archive", status, f"{free:,.0f} MB free at {_existing(archive.path)}: about "
                            f"{hours:,.1f} hours of recording at {ARCHIVE_MBIT_S:g} Mbit/s"))
    return checks


def clock() -> Check:
    """Whether the clock is kept in sync (times of comments, answers and the report depend on it)."""
    done = _run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if done is not None and done.returncode == 0 and done.stdout.strip() in ("yes", "no"):
        if done.stdout.strip() == "yes":
            return Check("clock", OK, "synchronised (timedatectl)")
        return Check("clock", WARNING, "not synchronised (timedatectl): enable NTP, e.g. timedatectl set-ntp true")
    done = _run(["chronyc", "-n", "tracking"])
    if done is not None and done.returncode == 0 and "Leap status" in done.stdout:
        leap = next(line.split(":", 1)[1].strip() for line in done.stdout.splitlines() if "Leap status" in line)
        if leap == "Normal":
            return Check("clock", OK, "synchronised (chrony)")
        return Check("clock", WARNING, f"chrony says {leap!r}: check its sources (chronyc sources)")
    done = _run(["ntpq", "-pn"])
    if done is not None and done.returncode == 0 and done.stdout.strip():
        if any(line.startswith("*") for line in done.stdout.splitlines()):
            return Check("clock", OK, "synchronised (ntpd)")
        return Check("clock", WARNING, "ntpd has no selected peer yet: check ntpq -p")
    return Check("clock", UNKNOWN, "unknown: neither timedatectl, chronyc nor ntpq answered; make sure the "
                 "machine keeps its clock in sync (comment and answer times, the report)")


def checks(event: EventFile | None) -> list[Check]:
    """Everything beside ffmpeg, in the order it is printed."""
    return [chromium(), *(ports(event) if event else []), *disks(event), clock()]
