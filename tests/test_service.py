"""The example systemd unit (examples/streamctl.service): hardened, restart keeps the database, valid for systemd."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streamctl.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "examples" / "streamctl.service"


def settings() -> dict[str, list[str]]:
    """Every `Key=value` of the unit, in order per key (comments and section headers left out)."""
    found: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        text = raw.strip()
        if text and not text.startswith(("#", "[")):
            key, _, value = text.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_the_unit_runs_as_its_own_user_in_a_hardened_sandbox_and_restarts_keeping_the_database():
    unit = settings()
    expected = {
        "User": "streamctl", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "ProtectProc": "invisible", "Restart": "on-failure", "StateDirectory": "streamctl",
        "ReadWritePaths": "/var/lib/streamctl", "KillMode": "mixed", "CapabilityBoundingSet": "",
    }
    for key, value in expected.items():
        assert unit.get(key) == [value], key
    # The database is in the state folder, which systemd keeps across restarts and the sandbox lets it write.
    assert unit["WorkingDirectory"] == ["/var/lib/streamctl"]
    assert "/var/lib/streamctl/event.db" in UNIT.read_text()
    # Keys come from a root-only environment file, never the command line or the event file.
    assert unit["EnvironmentFile"] == ["/etc/streamctl/keys.env"]
    # Its commands are real streamctl commands.
    parser = build_parser()
    for command in (*unit["ExecStartPre"], *unit["ExecStart"]):
        argv = command.split()
        assert argv[0] == "/usr/local/bin/streamctl"
        parser.parse_args(argv[1:])


def test_systemd_accepts_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze or not Path("/lib/systemd/systemd").exists(), "systemd is installed without systemd-analyze"
    if analyze is None:
        pytest.skip("no systemd on this machine: the unit is only read (test above)")
    streamctl = Path(sys.executable).with_name("streamctl")
    copy = tmp_path / "streamctl.service"
    copy.write_text(UNIT.read_text().replace("/usr/local/bin/streamctl", str(streamctl)))
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip() and not done.stdout.strip(), done.stdout + done.stderr
