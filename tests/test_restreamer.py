"""The restreamer end to end: a real file ingest, real receivers, the archive, platform rules, clean stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys

import aiohttp
import pytest

from streamctl.config import DestinationConfig, load_event
from streamctl.events import Alert, Bus
from streamctl.restream.destinations import Backoff, Timing
from streamctl.restream.restreamer import DuplicateDestination, Restreamer, UnknownDestination

from .conftest import free_port
from .receivers import RtmpReceiver, ffmpeg_children, make_media, packet_count, pid_alive, wait_for

FAST = Timing(live_after_s=1.0, start_timeout_s=6.0, stall_s=3.0, rw_timeout_s=2.0, stop_grace_s=2.0,
              backoff=Backoff(base_s=0.3, cap_s=1.5))


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    return {"av": make_media(folder / "av.flv"), "video": make_media(folder / "video.flv", audio=False)}


class Running:
    """A restreamer running in a task, with what it started noted for the no-orphans check."""

    def __init__(self, restreamer: Restreamer):
        self.restreamer = restreamer
        self.task: asyncio.Task | None = None
        self.pids: set[int] = set()

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.restreamer.run(), name="restreamer-under-test")
        return self

    def note_pids(self) -> None:
        self.pids |= {c.pid for c in self.restreamer.supervisor.children}

    async def stop(self) -> float:
        """Cancel as the controller does; returns how long the stop took."""
        self.note_pids()
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        return loop.time() - started

    async def __aexit__(self, *exc) -> None:
        if not self.task.done():
            await self.stop()


async def test_run_restreams_archives_controls_and_stops_clean(write_event, media, tmp_path, monkeypatch):
    rx_auto, rx_manual, rx_added = [await RtmpReceiver(free_port()).start() for _ in range(3)]
    monkeypatch.setenv("AUTO_KEY", "auto-secret-key")
    path = write_event(f"""
        [event]
        name = "test"
        database = "t.db"
        [ingest]
        url = "{media['av']}"
        [[destination]]
        name = "auto"
        url = "{rx_auto.url}"
        key_env = "AUTO_KEY"
        [[destination]]
        name = "manual"
        url = "{rx_manual.url}"
        autostart = false
        [archive]
        path = "{tmp_path / 'archive'}"
        segment_s = 10
    """)
    bus = Bus()
    restreamer = Restreamer(load_event(path), bus, timing=FAST)
    try:
        async with Running(restreamer) as running:
            await wait_for(lambda: len(rx_auto.video) > 30, 15, "the autostart destination's frames")
            assert restreamer.get("manual").state == "stopped" and not rx_manual.frames
            await restreamer.start("manual")
            await wait_for(lambda: len(rx_manual.video) > 30, 10, "the manual destination after start")

            added = await restreamer.add(DestinationConfig(name="added", platform="custom", url=rx_added.url))
            assert added["state"] in ("starting", "stopped")
            await wait_for(lambda: len(rx_added.video) > 30, 10, "the added destination's frames")
            with pytest.raises(DuplicateDestination):
                await restreamer.add(DestinationConfig(name="added", platform="custom", url=rx_added.url))
            running.note_pids()
            await restreamer.remove("added")
            with pytest.raises(UnknownDestination):
                await restreamer.stop("added")
            assert [d["name"] for d in restreamer.destinations()] == ["auto", "manual"]

            status = restreamer.ingest_status()
            assert status["state"] == "live" and status["probe"]["video_codec"] == "h264"
            assert status["archive"]["state"] == "live"
            listed = repr(restreamer.destinations())
            assert "auto-secret-key" not in listed and f"{rx_auto.url}/****" in listed
            took = await running.stop()
        assert took < 5
        assert not restreamer.supervisor.children
        assert not [pid for pid in running.pids if pid_alive(pid)]
        segments = sorted((tmp_path / "archive").glob("*.ts"))
        assert segments and packet_count(segments[0]) > 60
        assert rx_auto.sessions == 1
    finally:
        for rx in (rx_auto, rx_manual, rx_added):
            await rx.kill()


async def test_rules_broken_by_the_program_warn_but_do_not_refuse(write_event, media):
    rx = await RtmpReceiver(free_port()).start()
    path = write_event(f"""
        [event]
        name = "rules"
        [ingest]
        url = "{media['video']}"
        [[destination]]
        name = "yt"
        platform = "youtube"
        url = "{rx.url}"
        [[destination]]
        name = "tt"
        platform = "custom"
        url = "{rx.url}"
        autostart = false
    """)
    bus = Bus()
    alerts = bus.subscribe(Alert, name="test")
    restreamer = Restreamer(load_event(path), bus, timing=FAST)
    try:
        async with Running(restreamer):
            seen: list[Alert] = []

            def rules_alert() -> Alert | None:
                while not alerts.queue.empty():
                    seen.append(alerts.get_nowait())
                return next((a for a in seen if a.code == "destination.rules"), None)

            await wait_for(lambda: rules_alert() is not None, 15, "an alert about the missing audio")
            alert = rules_alert()
            assert alert.level == "warning" and "yt (youtube)" in alert.message and "no audio" in alert.message
            entry = {d["name"]: d for d in restreamer.destinations()}
            assert entry["yt"]["rule_warnings"] == ["no audio in the program, expected AAC audio"]
            assert entry["tt"]["rule_warnings"] == []  # custom takes video only
            await wait_for(lambda: len(rx.video) > 30, 10, "frames despite the warning")
    finally:
        await rx.kill()


async def test_streamctl_run_stops_on_sigterm_with_no_ffmpeg_left(write_event, media, tmp_path):
    rxs = [await RtmpReceiver(free_port()).start() for _ in range(2)]
    secret = "run-secret-key-2468"
    port = free_port()
    path = write_event(f"""
        [event]
        name = "run"
        database = "run.db"
        [ingest]
        url = "{media['av']}"
        [[destination]]
        name = "one"
        url = "{rxs[0].url}"
        key_env = "RUN_KEY"
        [[destination]]
        name = "two"
        url = "{rxs[1].url}"
        [[audience]]
        name = "zalo"
        platform = "manual"
        [console]
        listen = "127.0.0.1:{port}"
    """)
    env = {**os.environ, "RUN_KEY": secret}
    cli = [sys.executable, "-m", "streamctl"]
    maker = await asyncio.create_subprocess_exec(*cli, "token", "create", "--role", "operator", "--event", str(path),
                                                 env=env, stdout=subprocess.PIPE)
    token = (await asyncio.wait_for(maker.communicate(), 60))[0].decode().strip()
    assert maker.returncode == 0 and token
    log = (tmp_path / "run.log").open("wb")
    proc = await asyncio.create_subprocess_exec(*cli, "run", str(path), env=env, stdout=log, stderr=log)
    try:
        await wait_for(lambda: all(len(rx.video) > 30 for rx in rxs), 20, "both receivers fed by streamctl run")
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            texts = []
            for _ in range(50):  # the receivers see frames a moment before the output has stayed up long enough
                async with http.get(f"http://127.0.0.1:{port}/api/destinations") as response:
                    texts.append(await response.text())
                    assert response.status == 200, texts[-1]
                if {d["state"] for d in json.loads(texts[-1])["destinations"]} == {"live"}:
                    break
                await asyncio.sleep(0.1)
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                metrics = await response.text()
        assert {d["state"] for d in json.loads(texts[-1])["destinations"]} == {"live"}
        assert 'streamctl_destination_state{name="one",platform="custom",state="live"} 1' in metrics
        assert 'streamctl_audience_source_state{name="zalo",platform="manual"' in metrics
        assert "streamctl_processes 4" in metrics and secret not in metrics + "".join(texts)
        children = ffmpeg_children(proc.pid)
        assert len(children) == 4  # the ingest, two destinations and the confidence monitor
        loop = asyncio.get_running_loop()
        started = loop.time()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 15)
        assert code == 0 and loop.time() - started < 6
        assert not [pid for pid in children if pid_alive(pid)]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
        for rx in rxs:
            await rx.kill()
    output = (tmp_path / "run.log").read_text()
    assert secret not in output and "Traceback" not in output
    db = sqlite3.connect(tmp_path / "run.db")
    states = [r[0] for r in db.execute("SELECT new FROM destination_events WHERE name = 'one' ORDER BY at")]
    db.close()
    assert states[:2] == ["starting", "live"] and states[-1] == "stopped"
