"""A tiny real filesystem for tests of a full disk: a size-limited tmpfs mounted in the test's folder (root only)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


def can_mount() -> bool:
    return os.geteuid() == 0 and Path("/proc/filesystems").read_text().count("tmpfs") > 0


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "2m") -> Iterator[Path | None]:
    """`folder` with a tmpfs of `size` mounted on it, or None where this machine does not allow a mount."""
    folder.mkdir(parents=True, exist_ok=True)
    if not can_mount():
        yield None
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
                          capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        yield None
        return
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=20)


def fill(folder: Path, leave_bytes: int = 0) -> Path:
    """Fill the filesystem of `folder` until at most `leave_bytes` are free; returns the filler file."""
    filler = folder / "filler.bin"
    with filler.open("wb") as f:
        chunk = b"\0" * 65536
        for _ in range(1 << 16):  # bounded: 4 GiB at most
            free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
            if free <= leave_bytes:
                break
            try:
                f.write(chunk[:max(4096, min(len(chunk), free - leave_bytes))])
                f.flush()
            except OSError:
                break
    return filler
