"""Kill `streamctl run` mid-stream and start it again: the stored comments equal the published ones exactly."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

from streamctl.fakes.youtube import FakeYouTube
from tests.audience_harness import until
from tests.conftest import free_port

TOKEN = "ya29.restart-test-secret"


def stored_ids(db: Path) -> list[str]:
    if not db.exists():
        return []
    con = sqlite3.connect(db, timeout=10)
    try:
        return [r[0] for r in con.execute("SELECT platform_id FROM comments WHERE source = 'yt' ORDER BY id")]
    except sqlite3.OperationalError:  # the schema is not there yet
        return []
    finally:
        con.close()


async def start(event: Path, log: Path) -> asyncio.subprocess.Process:
    env = dict(os.environ, YT_TOKEN=TOKEN)
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(sys.executable, "-m", "streamctl", "run", str(event),
                                                    stdout=out, stderr=out, env=env)


async def test_sigkill_and_restart_lose_nothing_and_store_nothing_twice(tmp_path, write_event):
    db = tmp_path / "event.db"
    log = tmp_path / "run.log"
    async with FakeYouTube(token=TOKEN, interval_ms=100) as fake:
        event = write_event(f"""
            [event]
            name = "restart"
            database = "{db}"

            [console]
            listen = "127.0.0.1:{free_port()}"

            [[audience]]
            name = "yt"
            platform = "youtube"
            video_id = "{fake.video_id}"
            credential_env = "YT_TOKEN"
            api_base = "{fake.url}"
            interval = 0.2
            daily_quota = 10000000
        """)
        fake.recent = 3  # a restart that forgot its page token would lose all but the last three
        typing = True

        async def audience() -> None:  # about 80 comments a second, numbered so a loss would show
            n = 0
            while typing:
                for _ in range(4):
                    fake.post_comment(f"Người {n % 17}", f"câu hỏi số {n}?")
                    n += 1
                await asyncio.sleep(0.05)

        proc = await start(event, log)
        writer = None
        try:
            await until(lambda: fake.calls("liveChat") >= 1, 30, "the first poll")
            writer = asyncio.create_task(audience())
            for round_ in range(2):
                target = len(stored_ids(db)) + 80  # two rounds: over 150 stored, however fast the chat is read
                await until(lambda t=target: len(stored_ids(db)) >= t, 30, f"comments stored (round {round_})")
                proc.send_signal(signal.SIGKILL)  # no chance to flush or say goodbye
                await proc.wait()
                await asyncio.sleep(0.3)  # the audience keeps typing while nobody listens
                proc = await start(event, log)
            await until(lambda: len(stored_ids(db)) >= len(fake.published) - 100, 30, "catching up")
            typing = False
            await writer
            await until(lambda: len(stored_ids(db)) == len(fake.published), 30, "every comment stored")
            await asyncio.sleep(0.5)  # a few more polls: nothing may arrive twice
            ids = stored_ids(db)
            assert len(ids) == len(set(ids)) == len(fake.published)
            assert set(ids) == set(fake.published)
            assert len(ids) > 150
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0
            assert TOKEN not in log.read_text(errors="replace")
        finally:
            typing = False
            if writer is not None:
                await asyncio.gather(writer, return_exceptions=True)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
