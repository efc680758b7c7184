"""The switcher with real encoders and a real platform receiver: primary → backup → slate, failback, switches.

Two ffmpeg publishers stand in for the hall's main and backup encoders, each on its own RTMP listener of
ours; one copy destination publishes the program to a real receiver (ffmpeg -listen) that records it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from streamctl.config import load_event
from streamctl.events import Alert, Bus, IngestSwitched
from streamctl.recorder import Recorder
from streamctl.report.figures import build_report
from streamctl.restream.restreamer import Restreamer
from streamctl.restream.switcher import SwitchRefused
from streamctl.store import Store

from .conftest import LOOPBACK, free_port
from .ingest_media import Publisher, encode_args, make_file
from .receivers import RtmpReceiver, wait_for
from .test_slate import decoded_video

KEY, BACKUP_KEY = "primary-key-5150", "backup-key-8086"


@dataclass
class Hall:
    """The restreamer, its two encoders' URLs, the receiver, and what went over the bus."""

    restreamer: Restreamer
    receiver: RtmpReceiver
    primary_url: str
    backup_url: str
    store: Store
    alerts: list[Alert] = field(default_factory=list)
    switches: list[IngestSwitched] = field(default_factory=list)
    publishers: list[Publisher] = field(default_factory=list)

    async def encoder(self, url: str, size: str = "640x360") -> Publisher:
        publisher = await Publisher(encode_args(120, size=size, gop=30) + ["-f", "flv", url]).start()
        self.publishers.append(publisher)
        return publisher

    def on_air(self) -> str | None:
        return self.restreamer.ingest_status()["on_air"]

    def input(self, role: str) -> dict:
        return next(i for i in self.restreamer.ingest_status()["inputs"] if i["role"] == role)

    def codes(self) -> list[tuple[str, bool]]:
        return [(a.code, a.resolved) for a in self.alerts if a.code.startswith(("ingest.", "slate."))]


@contextlib.asynccontextmanager
async def hall(write_event, tmp_path: Path, monkeypatch, failback: str = "auto", failback_after_s: float = 2.0,
               backup_url: str | None = None):
    receiver = await RtmpReceiver(free_port(), respawn=False, record=tmp_path / "received.flv").start()
    ports = free_port(), free_port()
    monkeypatch.setenv("INGEST_KEY", KEY)
    monkeypatch.setenv("BACKUP_KEY", BACKUP_KEY)
    event = load_event(write_event(f"""
        [event]
        name = "switcher"
        [ingest]
        url = "rtmp://{LOOPBACK}:{ports[0]}/live"
        key_env = "INGEST_KEY"
        backup_url = "{backup_url or f'rtmp://{LOOPBACK}:{ports[1]}/live'}"
        {'' if backup_url else 'backup_key_env = "BACKUP_KEY"'}
        failback = "{failback}"
        failback_after_s = {failback_after_s}
        [[destination]]
        name = "main"
        url = "{receiver.url}"
    """))
    bus = Bus()
    store = Store(tmp_path / "event.db")
    recorder = Recorder(store, bus)
    restreamer = Restreamer(event, bus)
    h = Hall(restreamer, receiver, f"rtmp://{LOOPBACK}:{ports[0]}/live/{KEY}",
             f"rtmp://{LOOPBACK}:{ports[1]}/live/{BACKUP_KEY}", store)
    watched = bus.subscribe(Alert, IngestSwitched, name="test")

    async def collect() -> None:
        async for event in watched:
            (h.alerts if isinstance(event, Alert) else h.switches).append(event)

    tasks = [asyncio.create_task(restreamer.run()), asyncio.create_task(recorder.run()),
             asyncio.create_task(collect())]
    try:
        await wait_for(lambda: restreamer.ingest_status()["inputs"][0]["state"] == "waiting", 5, "the listener")
        yield h
    finally:
        for publisher in h.publishers:
            await publisher.stop()
        tasks[0].cancel()
        await asyncio.gather(tasks[0], return_exceptions=True)
        await asyncio.sleep(0.1)  # the last events reach the recorder
        for task in tasks[1:]:
            task.cancel()
        await asyncio.gather(*tasks[1:], return_exceptions=True)
        await recorder.drain()
        store.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receiver.process.wait(), 5)
        await receiver.kill()
    assert restreamer.supervisor.children == []


async def on_air_from_both(h: Hall, backup_size: str = "640x360") -> tuple[Publisher, Publisher]:
    primary = await h.encoder(h.primary_url)
    await wait_for(lambda: h.on_air() == "primary", 10, "the primary on air")
    backup = await h.encoder(h.backup_url, size=backup_size)
    dest = h.restreamer.get("main")
    await wait_for(lambda: dest.state == "live" and h.input("backup")["state"] == "live"
                   and h.input("backup")["probe"]["ready"], 15, "the program live and the backup probed")
    assert h.on_air() == "primary"
    await asyncio.sleep(0.5)
    return primary, backup


def kill(publisher: Publisher) -> None:
    assert publisher.process is not None
    os.kill(publisher.process.pid, signal.SIGKILL)  # the encoder crashed (or its cable was pulled)


async def test_primary_lost_the_backup_takes_over_within_a_second_and_the_primary_fails_back(
        write_event, tmp_path, monkeypatch):
    async with hall(write_event, tmp_path, monkeypatch, failback_after_s=2.0) as h:
        primary, _ = await on_air_from_both(h)
        dest = h.restreamer.get("main")
        reconnects = dest.describe()["health"]["reconnects"]
        loop = asyncio.get_running_loop()
        killed = loop.time()
        kill(primary)
        await wait_for(lambda: h.on_air() == "backup", 2, "the backup on air")
        took = loop.time() - killed
        assert took < 1.0, f"the backup took {took:.2f} s"
        status = h.restreamer.ingest_status()
        assert status["state"] == "live" and h.input("primary")["state"] == "lost"
        await wait_for(lambda: ("ingest.backup", False) in h.codes(), 1, "the ingest.backup alert")
        assert ("ingest.lost", False) not in h.codes()
        frames = len(h.receiver.video)
        await asyncio.sleep(2.0)
        assert len(h.receiver.video) - frames >= 45, "the platform keeps getting frames from the backup"

        again = loop.time()
        await h.encoder(h.primary_url)
        await wait_for(lambda: h.input("primary")["state"] == "live", 10, "the primary back")
        back = loop.time()
        await asyncio.sleep(1.0)
        assert h.on_air() == "backup", "no failback before the primary has been stable failback_after_s"
        await wait_for(lambda: h.on_air() == "primary", 6, "the failback")
        assert 2.0 <= loop.time() - back < 4.5, loop.time() - back
        await asyncio.sleep(1.0)
        assert dest.state == "live" and dest.describe()["health"]["reconnects"] == reconnects
    assert h.receiver.sessions == 1, "the platform saw one session from start to end"
    video = [f for f in h.receiver.video if f.at >= killed - 1]
    assert [f.dts for f in video] == sorted(f.dts for f in video), "timestamps only go forward"
    dts_gap, arrival_gap = h.receiver.largest_gap(since=killed - 1)
    assert dts_gap <= 100 and arrival_gap < 1.0, (dts_gap, arrival_gap)
    assert [(s.old, s.new, s.target) for s in h.switches][1:] == [
        ("primary", "backup", None), ("backup", "handback", "primary"), ("handback", "primary", None)]
    assert ("ingest.backup", True) in h.codes()
    report = build_report(tmp_path / "event.db")
    assert [p["input"] for p in report["ingest"]["on_air"]] == ["primary", "backup", "primary"]
    spells = [i for i in report["incidents"] if i["kind"] == "ingest_backup"]
    assert len(spells) == 1 and spells[0]["recovered"] and 3.0 < spells[0]["duration_s"] < 9, spells
    assert again - killed >= 2.0


async def test_both_lost_the_slate_goes_on_and_the_backup_alone_takes_it_off(write_event, tmp_path, monkeypatch):
    async with hall(write_event, tmp_path, monkeypatch) as h:
        primary, backup = await on_air_from_both(h)
        kill(primary)
        await wait_for(lambda: h.on_air() == "backup", 2, "the backup on air")
        kill(backup)
        await wait_for(lambda: h.on_air() == "slate", 4, "the slate on air")
        status = h.restreamer.ingest_status()
        assert status["state"] == "lost" and status["slate"]["on_air"]
        await wait_for(lambda: {("ingest.lost", False), ("slate.on", False)} <= set(h.codes()), 1, "the alerts")
        frames = len(h.receiver.video)
        await asyncio.sleep(1.5)
        assert len(h.receiver.video) - frames >= 30, "the slate keeps the platform fed"
        await h.encoder(h.backup_url)
        await wait_for(lambda: h.on_air() == "backup", 10, "the backup back on air")
        assert h.restreamer.ingest_status()["state"] == "live"
        await asyncio.sleep(1.0)
    assert {("ingest.lost", True), ("slate.on", True)} <= set(h.codes())
    assert h.receiver.sessions == 1
    video = h.receiver.video
    assert [f.dts for f in video] == sorted(f.dts for f in video)


async def test_a_backup_in_another_resolution_reaches_the_platform_with_its_own_headers(
        write_event, tmp_path, monkeypatch):
    async with hall(write_event, tmp_path, monkeypatch) as h:
        primary, _ = await on_air_from_both(h, backup_size="320x180")
        kill(primary)
        await wait_for(lambda: h.on_air() == "backup", 2, "the backup on air")
        await asyncio.sleep(2.0)
        assert h.restreamer.get("main").state == "live"
    assert h.receiver.sessions == 1
    sizes = [size for _, size, _ in decoded_video(tmp_path / "received.flv")]  # and every picture decodes
    assert sizes[0] == "640x360" and sizes[-1] == "320x180" and sizes.count("320x180") >= 45
    assert sizes == sorted(sizes, key=lambda s: s == "320x180"), "one change of size, at the switch"


async def test_manual_failback_waits_for_the_operator_who_can_also_choose_the_backup(
        write_event, tmp_path, monkeypatch):
    async with hall(write_event, tmp_path, monkeypatch, failback="manual", failback_after_s=0.5) as h:
        primary, _ = await on_air_from_both(h)
        ingest = h.restreamer.ingest
        kill(primary)
        await wait_for(lambda: h.on_air() == "backup", 2, "the backup on air")
        await h.encoder(h.primary_url)
        await wait_for(lambda: h.input("primary")["state"] == "live", 10, "the primary back")
        await asyncio.sleep(2.0)
        assert h.on_air() == "backup", "manual: no failback by itself"
        status = await ingest.switch("primary")
        assert status["switch"]["state"] == "handback" and status["switch"]["target"] == "primary"
        await wait_for(lambda: h.on_air() == "primary", 3, "the primary at its next keyframe")
        await ingest.switch("backup")
        await wait_for(lambda: h.on_air() == "backup", 3, "the operator's backup")
        assert h.restreamer.ingest_status()["switch"]["held"] is True
        kill(h.publishers[1])  # the backup encoder goes: the primary, live, takes over whatever was chosen
        await wait_for(lambda: h.on_air() == "primary", 2, "the primary after the backup's loss")
        assert h.restreamer.ingest_status()["switch"]["held"] is False
        try:
            await ingest.switch("backup")
        except SwitchRefused as e:
            assert "the backup input is lost" in str(e)
        else:
            raise AssertionError("a lost backup cannot be switched to")
        await asyncio.sleep(0.5)
    reasons = [s.reason for s in h.switches if s.new == "handback"]
    assert reasons == ["the operator chose the primary input", "the operator chose the backup input"]
    assert h.receiver.sessions == 1


async def test_a_file_can_be_the_backup(write_event, tmp_path, monkeypatch):
    """Any ingest form is a backup: here a looped file, read by its own ffmpeg while the primary is on air."""
    clip = await make_file(tmp_path / "standby.mp4", 2.0, size="640x360", gop=30)
    async with hall(write_event, tmp_path, monkeypatch, backup_url=str(clip)) as h:
        primary = await h.encoder(h.primary_url)
        await wait_for(lambda: h.on_air() == "primary", 10, "the primary on air")
        await wait_for(lambda: h.input("backup")["state"] == "live" and h.restreamer.get("main").state == "live",
                       15, "the file backup read and the destination live")
        assert [c.name for c in h.restreamer.supervisor.children if c.name.startswith("backup")] == ["backup-file"]
        kill(primary)
        await wait_for(lambda: h.on_air() == "backup", 2, "the file on air")
        frames = len(h.receiver.video)
        await asyncio.sleep(1.5)
        assert len(h.receiver.video) - frames >= 30
    assert h.receiver.sessions == 1
