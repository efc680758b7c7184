"""The CPU budget: transcodes run at lower priority, a hardware encoder is looked for, a slow output raises an alert."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

from streamctl.events import Alert
from streamctl.restream.destinations import Timing
from streamctl.restream.ffmpeg import destination_argv, encoder_for
from streamctl.restream.hardware import find_hardware_encoder
from streamctl.restream.health import Pace
from streamctl.restream.profiles import PROFILES, Profile
from streamctl.restream.supervisor import LOW_PRIORITY, Supervisor

from .receivers import wait_for
from .test_destinations import FAST, stage  # noqa: F401 - the fixture

SMALL = Profile("small-test", "320x180 ultrafast, to keep tests light", width=320, height=180, video_kbps=300,
                x264_preset="ultrafast")
# The realtime filter holds each picture to twice its duration: an encoder that can do only half real time.
STARVED = replace(SMALL, name="starved-test", filters=(("realtime", {"speed": 0.5}),))


def nice_of(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


async def test_a_transcode_runs_at_lower_priority_than_a_copy(stage, monkeypatch):  # noqa: F811
    monkeypatch.setitem(PROFILES, SMALL.name, SMALL)
    copy_rx, tx_rx = await stage.receiver(), await stage.receiver()
    copy = stage.destination("copy", copy_rx.url)
    transcode = stage.destination("tx", tx_rx.url, profile=SMALL.name)
    copy.start()
    transcode.start()
    await wait_for(lambda: copy.state == "live" and transcode.state == "live", 10, "both live")
    stage.note_pids()
    assert nice_of(copy.child.pid) == nice_of(os.getpid())
    assert nice_of(transcode.child.pid) == min(19, nice_of(os.getpid()) + LOW_PRIORITY)
    assert copy.describe()["encoder"] == "copy" and transcode.describe()["encoder"] == "libx264"


async def test_an_output_that_cannot_keep_real_time_raises_destination_slow(stage, monkeypatch):  # noqa: F811
    monkeypatch.setitem(PROFILES, STARVED.name, STARVED)
    alerts = stage.bus.subscribe(Alert, maxsize=100, name="test.alerts")
    rx = await stage.receiver()
    quick = replace(FAST, slow_after_s=2.0, stall_s=30.0)
    dest = stage.destination("slowpoke", rx.url, profile=STARVED.name, timing=quick)
    dest.start()
    await wait_for(lambda: dest.state == "live", 10, "the starved output live")
    stage.note_pids()
    await wait_for(lambda: any(a.code == "destination.slow" for a in alerts.queue._queue), 15, "destination.slow")
    alert = next(a for a in alerts.queue._queue if a.code == "destination.slow")
    assert alert.code == "destination.slow" and not alert.resolved
    assert alert.source == "slowpoke" and alert.params["speed"] < 0.8
    await dest.stop()
    resolved = [a for a in alerts.queue._queue if a.code == "destination.slow"][-1]
    assert resolved.resolved
    alerts.close()


async def test_a_copy_that_keeps_up_raises_nothing(stage):  # noqa: F811
    alerts = stage.bus.subscribe(Alert, maxsize=100, name="test.alerts")
    rx = await stage.receiver()
    dest = stage.destination("fine", rx.url, timing=replace(FAST, slow_after_s=2.0))
    dest.start()
    await wait_for(lambda: dest.state == "live" and dest.health()["uptime_s"] > 7, 15, "seven seconds live")
    assert not [a for a in alerts.queue._queue if a.code == "destination.slow"] and not dest.slow
    alerts.close()


def test_pace_compares_output_time_with_program_time():
    pace = Pace(window_ms=4000)
    speeds = [pace.add(ms, ms * 1000 // 2) for ms in range(0, 10_000, 500)]  # output at half the program's rate
    assert speeds[0] is None and abs(speeds[-1] - 0.5) < 0.01
    pace.clear()
    assert all(s is None or abs(s - 1) < 1e-9 for s in (pace.add(ms, ms * 1000) for ms in range(0, 9000, 500)))


async def test_no_hardware_encoder_here_is_said_plainly_and_transcodes_use_x264():
    probe = await find_hardware_encoder(Supervisor(), cached=False)
    # This machine has no GPU: every encoder is tried and each says why it does not work.
    assert probe.encoder is None
    assert [name for name, _ in probe.tried] == ["h264_vaapi", "h264_qsv", "h264_nvenc"]
    assert all(outcome and outcome != "works" for _, outcome in probe.tried)
    assert probe.lines()[0] == "hardware encoder: none (transcodes use libx264)"
    assert encoder_for(PROFILES["portrait-720p"], probe.encoder) == "libx264"
    assert encoder_for(PROFILES["copy"], "h264_nvenc") == "copy"


def test_a_found_hardware_encoder_replaces_x264_in_the_transcode():
    argv = destination_argv("rtmp://h/live/k", PROFILES["landscape-720p"], encoder="h264_vaapi")
    assert argv[argv.index("-vaapi_device") + 1] == "/dev/dri/renderD128"
    assert "h264_vaapi" in argv and "libx264" not in argv and "hwupload" in " ".join(argv)
    nvenc = destination_argv("rtmp://h/live/k", PROFILES["landscape-720p"], encoder="h264_nvenc")
    assert nvenc[nvenc.index("-c:v") + 1] == "h264_nvenc" and "-vaapi_device" not in nvenc


def test_doctor_says_which_hardware_encoder_it_found():
    done = subprocess.run([sys.executable, "-m", "streamctl", "doctor"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "hardware encoder: none (transcodes use libx264)" in done.stdout
    assert "h264_nvenc: " in done.stdout and "Traceback" not in done.stderr


def test_default_timing_judges_slowness_over_ten_seconds():
    assert Timing().slow_speed == 0.95 and Timing().slow_after_s == 10.0
