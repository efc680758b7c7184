"""A destination's backup output: the platform's backup ingest fed by its own ffmpeg, independent of the primary."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from streamctl.config import ConfigError, DestinationConfig, load_event, youtube_backup_url
from streamctl.events import Bus
from streamctl.restream.destinations import BackupOutput, Destination
from streamctl.restream.restreamer import NotRemovable, Restreamer

from .receivers import wait_for
from .test_destinations import FAST, assert_continuous, stage  # noqa: F401 - the fixture


def test_youtube_backup_is_the_documented_b_host_with_backup_1_and_the_same_key():
    assert youtube_backup_url("rtmp://a.rtmp.youtube.com/live2") == "rtmp://b.rtmp.youtube.com/live2?backup=1"
    assert youtube_backup_url("rtmps://a.rtmps.youtube.com:443/live2/") == \
        "rtmps://b.rtmps.youtube.com:443/live2?backup=1"
    assert youtube_backup_url("rtmp://example.com/live2") is None
    dest = DestinationConfig("yt", "youtube", "rtmps://a.rtmps.youtube.com/live2", key="abcd-1234", backup=True)
    assert dest.backup_publish_url == "rtmps://b.rtmps.youtube.com/live2?backup=1/abcd-1234"
    assert DestinationConfig("yt", "youtube", "rtmps://a.rtmps.youtube.com/live2", key="k").backup_publish_url is None
    explicit = DestinationConfig("c", "custom", "rtmp://one/live", key="k", backup=True, backup_url="rtmp://two/live")
    assert explicit.backup_publish_url == "rtmp://two/live/k"


def _event(tmp_path: Path, destination: str) -> Path:
    path = tmp_path / "e.toml"
    path.write_text(f'[event]\nname = "b"\n[ingest]\nurl = "testsrc"\n[[destination]]\n{destination}\n',
                    encoding="utf-8")
    return path


@pytest.mark.parametrize(("table", "says"), [
    ('name = "fb"\nplatform = "facebook"\nbackup = true', 'backup: Facebook gives a backup (secondary) URL only'),
    ('name = "tw"\nplatform = "twitch"\nbackup = true', "backup: twitch has no documented backup ingest"),
    ('name = "yt"\nplatform = "youtube"\nurl = "rtmp://example.com/live2"\nbackup = true',
     "backup: YouTube's backup ingest is known only for a.rtmp(s).youtube.com"),
    ('name = "c"\nurl = "rtmp://h/live"\nbackup_url = "ftp://h/x"', "backup_url: 'ftp://h/x' is not a custom ingest"),
    ('name = "c"\nurl = "rtmp://h/live"\nbackup = "yes"', "backup: 'yes' is a str, expected true or false"),
])
def test_a_backup_without_a_known_backup_ingest_is_refused_by_check(tmp_path, table, says):
    with pytest.raises(ConfigError) as caught:
        load_event(_event(tmp_path, table), environ={})
    named = [line for line in caught.value.issues if line.split(": ")[1].startswith('destination "')]
    assert any(says in line for line in named), caught.value.issues


def test_youtube_and_explicit_backups_are_accepted(tmp_path):
    event = load_event(_event(tmp_path, 'name = "yt"\nplatform = "youtube"\nkey_env = "YT"\nbackup = true'),
                       environ={"YT": "yt-key-1"})
    assert event.destinations[0].backup_publish_url == "rtmps://b.rtmps.youtube.com/live2?backup=1/yt-key-1"


async def test_backup_receiver_killed_primary_loses_no_frame_and_never_reconnects(stage):  # noqa: F811
    primary_rx, backup_rx = await stage.receiver(), await stage.receiver()
    config = DestinationConfig(name="hall", platform="custom", url=primary_rx.url, key="main-key-secret",
                               key_env="K", backup=True, backup_url=backup_rx.url)
    dest = Destination(config, stage.program, stage.bus, stage.supervisor, FAST)
    assert isinstance(dest.backup, BackupOutput) and dest.backup.name == "hall (backup)"
    stage.destinations += [dest, dest.backup]
    dest.start()
    dest.backup.start()
    await wait_for(lambda: dest.state == "live" and dest.backup.state == "live", 10, "both outputs live")
    await wait_for(lambda: len(backup_rx.video) > 30, 5, "frames at the backup receiver")
    stage.note_pids()
    assert dest.child.pid != dest.backup.child.pid
    loop = asyncio.get_running_loop()
    since = loop.time()
    port = backup_rx.port
    await backup_rx.kill()
    await wait_for(lambda: dest.backup.state == "backoff", 8, "the backup output to back off")
    back = await stage.receiver(port)
    await wait_for(lambda: dest.backup.state == "live" and len(back.video) > 30, 10, "the backup to reconnect")
    until = loop.time()
    assert_continuous(primary_rx, since, until)
    assert dest.reconnects == 0 and stage.states("hall") == ["starting", "live"]
    assert "backoff" in stage.states("hall (backup)") and dest.backup.reconnects >= 1
    entry = dest.backup.describe()
    assert entry["backup_of"] == "hall" and entry["url"].endswith("/live/****")
    assert "main-key-secret" not in str(entry)


async def test_the_api_lists_the_backup_under_its_destination_and_controls_go_with_it(tmp_path):
    event = load_event(_event(tmp_path, 'name = "yt"\nplatform = "youtube"\nkey_env = "YT"\nbackup = true\n'
                                        'autostart = false\n[[destination]]\nname = "other"\nurl = "rtmp://h/live"'
                                        '\nautostart = false'),
                       environ={"YT": "yt-key-2"})
    restreamer = Restreamer(event, Bus())
    rows = restreamer.destinations()
    assert [r["name"] for r in rows] == ["yt", "yt (backup)", "other"]
    assert rows[1]["backup_of"] == "yt" and rows[1]["url"] == "rtmps://b.rtmps.youtube.com/live2?****"
    assert rows[0]["backup_of"] is None and rows[1]["encoder"] == "copy"
    assert restreamer.get("yt (backup)") is restreamer.get("yt").backup
    with pytest.raises(NotRemovable):
        await restreamer.remove("yt (backup)")
