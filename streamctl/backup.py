"""Copies of the event database while it runs: `streamctl backup` and `[event] snapshot_every_s`.

Both go through SQLite's online backup API in one step: the copy is one consistent moment of the database
(a WAL reader, so the running event keeps writing), written beside the target and renamed over it, so a
reader of the target never sees half a copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from .events import Alert, Bus

log = logging.getLogger(__name__)


class BackupError(Exception):
    """The copy could not be made; the message says why and about which file."""


@dataclass(frozen=True)
class Copied:
    target: Path
    pages: int
    bytes: int
    seconds: float


def backup(source: Path, target: Path) -> Copied:
    """A consistent copy of the SQLite database `source` at `target` (replaced atomically)."""
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise BackupError(f"{source}: not found, expected the event's database file")
    if target.resolve() == source.resolve():
        raise BackupError(f"{target}: is the database itself, expected another file to copy it to")
    if not target.parent.is_dir():
        raise BackupError(f"{target}: cannot be written, the folder {target.parent} does not exist")
    partial = target.with_name(f".{target.name}.partial")
    started = time.monotonic()
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as e:
        raise BackupError(f"{source}: cannot be opened ({e})") from None
    try:
        with contextlib.closing(sqlite3.connect(partial)) as dst:
            src.backup(dst)  # every page in one step: one read transaction, one consistent moment
            pages = dst.execute("PRAGMA page_count").fetchone()[0]
            if dst.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise BackupError(f"{source}: the copy fails SQLite's quick_check; is {source} damaged?")
        os.replace(partial, target)
    except sqlite3.DatabaseError as e:
        raise BackupError(f"{source}: cannot be copied ({e}); is it an SQLite database?") from None
    except OSError as e:
        raise BackupError(f"{target}: cannot be written ({e.strerror or e})") from None
    finally:
        src.close()
        with contextlib.suppress(OSError):
            partial.unlink()
    return Copied(target, pages, target.stat().st_size, time.monotonic() - started)


def snapshot_path(database: Path, folder: Path | None) -> Path:
    """Where the periodic snapshot of `database` goes: `NAME-snapshot.db` in `folder`, or beside it."""
    return (folder or database.parent) / f"{database.stem}-snapshot.db"


class Snapshots:
    """Every `every_s` seconds, a fresh copy of the event database replaces the previous one."""

    def __init__(self, database: Path, every_s: float, folder: Path | None, bus: Bus):
        self.database = database
        self.every_s = every_s
        self.target = snapshot_path(database, folder)
        self.bus = bus
        self.failing = False

    async def take(self) -> Copied | None:
        """One snapshot; a failure is an alert (once, until a snapshot works again), never an exception."""
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            copied = await asyncio.to_thread(backup, self.database, self.target)
        except (BackupError, OSError) as e:
            if not self.failing:
                self.failing = True
                await self.bus.publish(Alert("warning", "snapshot", f"database snapshot failed: {e}",
                                             code="snapshot.failed", params={"path": str(self.target)}))
            return None
        if self.failing:
            self.failing = False
            await self.bus.publish(Alert("info", "snapshot", f"database snapshot works again: {self.target}",
                                         code="snapshot.failed", params={"path": str(self.target)}, resolved=True))
        log.debug("snapshot of %s: %d pages in %.2f s", self.database, copied.pages, copied.seconds)
        return copied

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            await self.take()
