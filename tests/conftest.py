"""Fixtures shared by every area's tests: free loopback ports and event files."""

from __future__ import annotations

import os
import socket
import textwrap
from pathlib import Path

import pytest

# Tests only ever touch loopback.
LOOPBACK = "127.0.0.1"
ARTIFACTS = Path(os.environ.get("STREAMCTL_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def artifacts() -> Path:
    """Where tests keep what a person may want to look at (screenshots, reports)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def write_event(tmp_path):
    """Write an event file from TOML text (dedented) and return its path."""

    def write(text: str, name: str = "event.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write
