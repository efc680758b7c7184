"""Nothing acknowledged is lost: the webhook answers 2xx only for committed messages (SIGKILL right after loses
nothing), a full disk refuses and recovers (recorder.py, store.py), a damaged or read-only database at start is
a clear error."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import aiohttp
import pytest

from streamctl.audience.webhook import sign
from streamctl.events import Alert

from .conftest import LOOPBACK, free_port
from .console_harness import running_console, write_event
from .small_disk import fill, small_disk

SECRET = "webhook-secret-for-tests"
WEBHOOK_TABLE = """
[[audience]]
name = "zalo"
platform = "webhook"
secret_env = "STREAMCTL_TEST_HOOK"
label = "zalo"
"""


def messages(prefix: str, count: int, size: int = 80) -> bytes:
    return json.dumps([{"id": f"{prefix}-{i}", "author": "Trần Thị Bình", "text": f"Câu hỏi {i}? " + "x" * size,
                        "published_at": time.time()} for i in range(count)]).encode()


async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, dict]:
    async with session.post(f"{url}/api/webhook/zalo", data=body,
                            headers={"X-Signature-256": sign(SECRET, body), "Content-Type": "application/json"}) as r:
        return r.status, await r.json(content_type=None)


def stored_ids(database) -> set[str]:
    with sqlite3.connect(database) as db:
        return {row[0] for row in db.execute("SELECT platform_id FROM comments")}


async def test_every_acknowledged_webhook_message_survives_sigkill_right_after_the_answer(tmp_path):
    port = free_port()
    event = write_event(tmp_path, port, WEBHOOK_TABLE)
    env = {**os.environ, "STREAMCTL_TEST_HOOK": SECRET}
    with (tmp_path / "run.log").open("wb") as log:
        # Popen, not asyncio's: its child watcher may reap a SIGKILLed child first and report 255.
        process = subprocess.Popen([sys.executable, "-m", "streamctl", "run", str(event)], env=env,  # noqa: ASYNC220
                                   stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://{LOOPBACK}:{port}"
    acknowledged: set[str] = set()
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):  # the console comes up
                try:
                    async with session.get(f"{url}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            # Many big batches at once, so the recorder has a queue; SIGKILL the moment the first answer arrives.
            bodies = {f"b{n}": messages(f"b{n}", 1000) for n in range(12)}
            pending = {asyncio.create_task(post(session, url, body)): name for name, body in bodies.items()}
            done, _ = await asyncio.wait(pending, timeout=60, return_when=asyncio.FIRST_COMPLETED)
            process.send_signal(signal.SIGKILL)
            for task in done:
                status, answer = task.result()
                assert status == 200, answer
                acknowledged |= {f"{pending[task]}-{i}" for i in range(1000)}
            for task in pending:
                if task not in done:
                    try:
                        status, _ = await task
                    except aiohttp.ClientError:
                        continue  # the process died before answering: the bridge would send it again
                    if status == 200:
                        acknowledged |= {f"{pending[task]}-{i}" for i in range(1000)}
    finally:
        if process.poll() is None:
            process.kill()
        await asyncio.to_thread(process.wait, 30)
    assert process.returncode == -signal.SIGKILL, (tmp_path / "run.log").read_text()
    assert acknowledged
    assert acknowledged <= stored_ids(tmp_path / "event.db")


@pytest.mark.parametrize("limit", ["tmpfs", "max_page_count"])
async def test_a_full_disk_refuses_instead_of_acknowledging_alerts_keeps_serving_and_recovers(tmp_path, monkeypatch,
                                                                                          limit):
    monkeypatch.setenv("STREAMCTL_TEST_HOOK", SECRET)
    with small_disk(tmp_path / "disk", size="3m") as disk:
        if limit == "tmpfs" and disk is None:
            pytest.skip("this machine does not allow mounting a small tmpfs; the max_page_count case still runs")
        folder = disk if limit == "tmpfs" else tmp_path
        async with running_console(folder, tables=WEBHOOK_TABLE) as console:
            store, bus = console.controller.store, console.controller.bus
            mod = await console.client("mod1")
            async with aiohttp.ClientSession() as bridge:
                status, answer = await post(bridge, console.url, messages("before", 20))
                assert (status, answer["new"]) == (200, 20)
                with bus.subscribe(Alert, name="test.alerts") as alerts:
                    # The disk fills up (a recording, a log, another program).
                    if limit == "tmpfs":
                        filler = fill(disk)
                    else:
                        pages = store.query_one("PRAGMA page_count")[0]
                        store.db.execute(f"PRAGMA max_page_count = {pages}")
                    answers = []
                    for n in range(40):  # bounded: the first batch that does not fit is refused
                        status, answer = await post(bridge, console.url, messages(f"full{n}", 200, size=400))
                        answers.append((n, status))
                        if status != 200:
                            break
                    refused = [n for n, status in answers if status != 200]
                    assert refused, answers
                    assert status == 503 and "nothing was stored" in answer["error"], answer
                    async with asyncio.timeout(5):
                        alert = await alerts.get()
                    assert (alert.code, alert.level, alert.resolved) == ("disk.low", "error", False)
                    assert alert.params["path"] == str(folder)
                    assert not console.controller.recorder.writable
                    # Whatever was acknowledged is on disk; nothing refused was acknowledged.
                    ids = stored_ids(folder / "event.db")
                    for n, status in answers:
                        if status == 200:
                            assert {f"full{n}-{i}" for i in range(200)} <= ids
                    # Refused at once while full, and the console keeps serving what it has.
                    started = time.monotonic()
                    status, answer = await post(bridge, console.url, messages("while-full", 5))
                    assert status == 503 and time.monotonic() - started < 1.0
                    status, listed = await mod.call("GET", "/api/comments?limit=1000")
                    assert status == 200 and len(listed["comments"]) == len(ids)
                    async with bridge.get(f"{console.url}/healthz") as r:
                        assert r.status == 200
                    # Space comes back: the held batch is written, the alert closes, the bridge's retry is taken.
                    if limit == "tmpfs":
                        filler.unlink()
                    else:
                        store.db.execute("PRAGMA max_page_count = 1073741823")
                    async with asyncio.timeout(10):
                        resolved = await alerts.get()
                    assert (resolved.code, resolved.resolved) == ("disk.low", True)
                assert console.controller.recorder.writable
                n = refused[0]
                status, answer = await post(bridge, console.url, messages(f"full{n}", 200, size=400))
                assert status == 200, answer
                assert {f"full{n}-{i}" for i in range(200)} <= stored_ids(folder / "event.db")
                assert store.query_one("SELECT count(*) FROM comments WHERE platform_id LIKE ?",
                                       (f"full{n}-%",))[0] == 200  # sent twice, kept once


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamctl", *args], capture_output=True, text=True, timeout=60)


def event_file(tmp_path, database) -> str:
    path = tmp_path / "event.toml"
    path.write_text(f'[event]\nname = "x"\ndatabase = "{database}"\n[console]\nlisten = "{LOOPBACK}:0"\n',
                    encoding="utf-8")
    return str(path)


def test_a_damaged_database_at_start_is_a_clear_error_never_a_traceback(tmp_path):
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\0" + os.urandom(8192))
    other = tmp_path / "notes.db"
    other.write_text("these are the moderators' notes, not a database\n" * 100)
    for database in (damaged, other):
        for args in (("run", event_file(tmp_path, database)),
                     ("user", "add", "lan", "--role", "moderator", "--event", event_file(tmp_path, database),
                      "--password-stdin"),
                     ("token", "create", "--role", "operator", "--event", event_file(tmp_path, database))):
            done = run_cli(*args)
            assert done.returncode == 1, (args, done.stderr)
            assert "Traceback" not in done.stderr, done.stderr
            assert f"{database}: is not a readable SQLite database" in done.stderr
            assert "restore it from a backup or snapshot" in done.stderr


def test_a_read_only_database_at_start_is_a_clear_error_never_a_traceback(tmp_path):
    from streamctl.store import Store

    Store(tmp_path / "ro" / "event.db").close()
    with small_disk(tmp_path / "ro-disk", size="2m") as disk:
        if disk is not None:  # root ignores file modes: a read-only filesystem is what stops it
            (disk / "event.db").write_bytes((tmp_path / "ro" / "event.db").read_bytes())
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True, timeout=20)
            database = disk / "event.db"
        elif os.geteuid() != 0:
            database = tmp_path / "ro" / "event.db"
            database.chmod(0o444)
            database.parent.chmod(0o555)
        else:
            pytest.skip("as root without mount, nothing here can make a file read-only")
        done = run_cli("run", event_file(tmp_path, database))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{database}: cannot be written (a read-only file, folder or filesystem)" in done.stderr
