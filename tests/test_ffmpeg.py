"""Which ffmpeg, what it supports (`streamctl doctor`), and command lines that real ffmpeg runs as meant."""

from __future__ import annotations

import subprocess
import sys

import imageio_ffmpeg
import pytest

from streamctl.restream import ffmpeg
from streamctl.restream.profiles import PROFILES

from .receivers import FFMPEG, make_media


def output_option(argv: list[str], name: str) -> str:
    """The value of an option given after the input (i.e. to the output)."""
    return argv[argv.index(name, argv.index("pipe:0")) + 1]


@pytest.fixture
def fresh_source():
    """Forget the cached choice of ffmpeg before and after, so each test sees its own environment."""
    ffmpeg.ffmpeg_source.cache_clear()
    yield
    ffmpeg.ffmpeg_source.cache_clear()


def test_doctor_reports_the_path_ffmpeg_and_its_features(fresh_source, monkeypatch):
    monkeypatch.delenv("STREAMCTL_FFMPEG", raising=False)
    text, ok = ffmpeg.doctor_report()
    lines = text.splitlines()
    assert lines[0] == f"ffmpeg: {FFMPEG} (from PATH)"
    assert lines[1].startswith("version: ffmpeg version ")
    assert lines[2:] == ["rtmp: yes", "rtmps: yes", "srt: yes", "libx264: yes", "aac: yes"]
    assert ok


def test_explicit_ffmpeg_wins_and_a_broken_one_is_reported(fresh_source, monkeypatch, tmp_path):
    monkeypatch.setenv("STREAMCTL_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
    text, ok = ffmpeg.doctor_report()
    assert not ok and "(from $STREAMCTL_FFMPEG)" in text and "cannot run it" in text


def test_without_ffmpeg_on_path_the_wheel_binary_is_used(fresh_source, monkeypatch):
    monkeypatch.delenv("STREAMCTL_FFMPEG", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert ffmpeg.ffmpeg_source() == (imageio_ffmpeg.get_ffmpeg_exe(), "imageio-ffmpeg")
    text, _ = ffmpeg.doctor_report()
    assert "(from imageio-ffmpeg)" in text and "version: ffmpeg version" in text and "libx264: yes" in text


def test_streamctl_doctor_command():
    done = subprocess.run([sys.executable, "-m", "streamctl", "doctor"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "rtmps: yes" in done.stdout and "ffmpeg: " in done.stdout


def test_copy_command_line():
    argv = ffmpeg.destination_argv("rtmp://h/live/KEY", PROFILES["copy"], rw_timeout_s=2.5, ffmpeg="ff")
    assert argv[0] == "ff" and argv[-1] == "rtmp://h/live/KEY"
    text = " ".join(argv)
    assert "-progress pipe:1" in text and "-f flv" in text and "-i pipe:0" in text and "-c copy" in text
    assert "-rw_timeout 2500000" in text and "-flvflags no_duration_filesize" in text
    srt = ffmpeg.destination_argv("srt://h:9000?streamid=x", PROFILES["copy"])
    assert output_option(srt, "-f") == "mpegts" and "-flvflags" not in srt


def test_transcode_command_line_fixes_the_gop():
    argv = ffmpeg.destination_argv("rtmps://h/app/K", PROFILES["portrait-720p"])
    pairs = dict(zip(argv, argv[1:], strict=False))
    assert pairs["-c:v"] == "libx264" and pairs["-g"] == "60" and pairs["-keyint_min"] == "60"
    assert pairs["-sc_threshold"] == "0" and pairs["-c:a"] == "aac" and pairs["-b:v"] == "2500k"
    assert "crop=720:1280" in pairs["-filter_complex"] and "0:a?" in argv


@pytest.mark.parametrize(("profile", "size"), [("portrait-720p-blur", "720x1280"), ("landscape-720p", "1280x720")])
def test_transcode_profiles_run_and_make_their_frame(tmp_path, profile, size):
    source = make_media(tmp_path / "in.flv", seconds=1.5, size="480x270")
    out = tmp_path / "out.flv"
    argv = ffmpeg.destination_argv(str(out), PROFILES[profile])
    done = subprocess.run(argv, input=source.read_bytes(), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height,codec_name", "-of", "csv=p=0", str(out)],
                           capture_output=True, text=True, timeout=30).stdout.strip()
    assert probe == f"h264,{size.replace('x', ',')}"
    assert b"progress=end" in done.stdout


def test_archive_command_line():
    argv = ffmpeg.archive_argv("/a/%Y%m%d-%H%M%S-r1.ts", 600)
    pairs = dict(zip(argv, argv[1:], strict=False))
    assert output_option(argv, "-f") == "segment"
    assert pairs["-segment_time"] == "600" and pairs["-strftime"] == "1" and pairs["-reset_timestamps"] == "1"
    assert argv[-1] == "/a/%Y%m%d-%H%M%S-r1.ts"
