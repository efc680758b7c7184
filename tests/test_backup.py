"""Copies of the event database (backup.py): `streamctl backup` while it is written, and periodic snapshots."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from streamctl.audience.models import Comment
from streamctl.backup import snapshot_path
from streamctl.config import load_event
from streamctl.controller import Controller
from streamctl.events import Alert
from streamctl.store import Store


def comment(n: int) -> Comment:
    return Comment(platform="youtube", source="yt", platform_id=f"c{n}", author_name="An", author_id="a",
                   text=f"câu hỏi số {n}?" + " x" * 200, published_at=time.time(), received_at=time.time())


def streamctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamctl", *args], capture_output=True, text=True, timeout=60)


def test_backup_while_the_database_is_written_is_one_consistent_moment(tmp_path):
    store = Store(tmp_path / "event.db")
    store.add_comments("yt", [comment(n) for n in range(2000)])
    stop = threading.Event()
    written = [2000]

    def keep_writing() -> None:
        writer = Store(tmp_path / "event.db")
        try:
            while not stop.is_set() and written[0] < 200_000:
                writer.add_comments("yt", [comment(written[0] + i) for i in range(50)], cursor=str(written[0]))
                written[0] += 50
        finally:
            writer.close()

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        time.sleep(0.2)
        before = written[0]
        done = streamctl("backup", str(tmp_path / "event.db"), str(tmp_path / "copy.db"))
        after = written[0]
    finally:
        stop.set()
        thread.join(30)
        store.close()
    assert done.returncode == 0, done.stderr
    assert "copied to" in done.stdout and "pages" in done.stdout
    assert after > before  # the writer kept committing while the copy was made
    with sqlite3.connect(tmp_path / "copy.db") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count, low, high = copy.execute("SELECT count(*), min(id), max(id) FROM comments").fetchone()
        cursor = copy.execute("SELECT cursor FROM cursors WHERE source = 'yt'").fetchone()
    # Every comment committed before the copy began, no gap, and the cursor of exactly the last batch in it.
    assert count >= before - 50 and (low, high) == (1, count)
    assert int(cursor[0]) + 50 == count


def test_backup_refuses_clearly(tmp_path):
    Store(tmp_path / "event.db").close()
    (tmp_path / "notes.db").write_bytes(b"these are not the pages you are looking for" * 100)
    cases = [
        ((tmp_path / "missing.db", tmp_path / "out.db"), "missing.db: not found"),
        ((tmp_path / "event.db", tmp_path / "event.db"), "is the database itself"),
        ((tmp_path / "notes.db", tmp_path / "out.db"), "is it an SQLite database?"),
        ((tmp_path / "event.db", tmp_path / "no-such-folder" / "out.db"), "out.db: cannot be"),
    ]
    for (source, target), expected in cases:
        done = streamctl("backup", str(source), str(target))
        assert done.returncode == 1 and expected in done.stderr, (source, target, done.stderr)
        assert "Traceback" not in done.stderr
    done = streamctl("backup", str(tmp_path / "event.db"), str(tmp_path / "out.db"))  # a stopped database too
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob(".*.partial"))


async def test_snapshot_every_s_keeps_a_fresh_copy_and_alerts_once_while_it_cannot(tmp_path):
    blocked = tmp_path / "snapshots"
    blocked.write_text("a file where the folder should be")
    event = tmp_path / "event.toml"
    event.write_text('[event]\nname = "snap"\ndatabase = "event.db"\nsnapshot_every_s = 1\n'
                     'snapshot_dir = "snapshots"\n[console]\nlisten = "127.0.0.1:0"\n', encoding="utf-8")
    controller = Controller(load_event(event))
    target = snapshot_path(tmp_path / "event.db", blocked)
    stop = asyncio.Event()
    with controller.bus.subscribe(Alert, name="test.alerts") as alerts:
        task = asyncio.create_task(controller.run(stop))
        try:
            async with asyncio.timeout(10):
                first = await alerts.get()
            assert (first.code, first.level, first.resolved) == ("snapshot.failed", "warning", False)
            assert first.params == {"path": str(target)}
            await asyncio.sleep(1.5)
            with pytest.raises(asyncio.QueueEmpty):  # one alert while it keeps failing, not one a second
                alerts.get_nowait()
            blocked.unlink()
            async with asyncio.timeout(10):
                recovered = await alerts.get()
            assert (recovered.code, recovered.resolved) == ("snapshot.failed", True)
            assert target.is_file()
            controller.store.set_meta("marker", "after the first snapshot")
            async with asyncio.timeout(10):
                while True:
                    with sqlite3.connect(target) as copy:
                        if copy.execute("SELECT value FROM meta WHERE key = 'marker'").fetchone():
                            break
                    await asyncio.sleep(0.2)
        finally:
            stop.set()
            async with asyncio.timeout(20):
                await task
            controller.store.close()
    with sqlite3.connect(target) as copy:
        assert copy.execute("SELECT value FROM meta WHERE key = 'event_name'").fetchone()[0] == "snap"
