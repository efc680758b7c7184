"""Which ffmpeg we run, what it can do, and the command lines we give it."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from urllib.parse import urlsplit

import ffmpeg as ffmpeg_python

from .hidden import split_publish_url
from .profiles import Profile

# What `streamctl doctor` checks: output protocols and encoders a restream needs.
NEEDED_PROTOCOLS = ("rtmp", "rtmps", "srt")
NEEDED_ENCODERS = ("libx264", "aac")

# Every ffmpeg we start: quiet stderr (kept for the last error), machine-readable progress on stdout,
# and never overwrite a file (a restarted file output must not destroy what it recorded).
GLOBAL_ARGS = ("-hide_banner", "-loglevel", "warning", "-nostats", "-progress", "pipe:1", "-n")
# The program arrives as FLV on stdin; its decoder headers come first, so a short probe is enough.
INPUT_ARGS = {"f": "flv", "probesize": "256k", "analyzeduration": "100000"}
OUTPUT_FORMATS = {"rtmp": "flv", "rtmps": "flv", "srt": "mpegts"}


@functools.cache
def ffmpeg_source() -> tuple[str, str]:
    """(path, where it came from): $STREAMCTL_FFMPEG, else PATH, else the imageio-ffmpeg wheel."""
    explicit = os.environ.get("STREAMCTL_FFMPEG")
    if explicit:
        return explicit, "$STREAMCTL_FFMPEG"
    found = shutil.which("ffmpeg")
    if found:
        return found, "PATH"
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe(), "imageio-ffmpeg"


def find_ffmpeg() -> str:
    """The ffmpeg on PATH (or in $STREAMCTL_FFMPEG), else the binary shipped in the imageio-ffmpeg wheel."""
    return ffmpeg_source()[0]


def _run(path: str, *args: str) -> str:
    return subprocess.run([path, "-hide_banner", *args], capture_output=True, text=True, timeout=20,
                          check=False).stdout


def _protocols(text: str) -> tuple[set[str], set[str]]:
    """`ffmpeg -protocols` output as (input names, output names)."""
    inputs: set[str] = set()
    outputs: set[str] = set()
    current = None
    for line in text.splitlines():
        name = line.strip()
        if name == "Input:":
            current = inputs
        elif name == "Output:":
            current = outputs
        elif current is not None and name:
            current.add(name)
    return inputs, outputs


def _encoders(text: str) -> set[str]:
    """Encoder names from `ffmpeg -encoders` (lines like ` V....D libx264   libx264 H.264 ...`)."""
    names = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VASD" and parts[1] != "=":
            names.add(parts[1])
    return names


def doctor_report() -> tuple[str, bool]:
    """What `streamctl doctor` prints: which ffmpeg, its version, and yes/no per needed feature."""
    try:
        path, source = ffmpeg_source()
    except Exception as e:  # imageio-ffmpeg missing or without a binary for this platform
        return f"ffmpeg: not found ({type(e).__name__}: {e}); install ffmpeg or pip install imageio-ffmpeg", False
    lines = [f"ffmpeg: {path} (from {source})"]
    try:
        version = _run(path, "-version").splitlines()
        _, outputs = _protocols(_run(path, "-protocols"))
        encoders = _encoders(_run(path, "-encoders"))
    except (OSError, subprocess.SubprocessError) as e:
        lines.append(f"cannot run it: {e}")
        return "\n".join(lines), False
    lines.append(f"version: {version[0] if version else 'unknown'}")
    ok = True
    for name, have in [*((p, p in outputs) for p in NEEDED_PROTOCOLS), *((e, e in encoders) for e in NEEDED_ENCODERS)]:
        lines.append(f"{name}: {'yes' if have else 'no'}")
        ok = ok and have
    return "\n".join(lines), ok


def output_format(url: str) -> str | None:
    """The muxer for a publish URL; None lets ffmpeg pick one from a file's extension."""
    return OUTPUT_FORMATS.get(urlsplit(url).scheme.lower())


def _fit_filter(video, profile: Profile):
    """Scale the program's picture into the profile's frame the way the profile says."""
    w, h = profile.width, profile.height
    if profile.fit == "crop":
        return video.filter("scale", w, h, force_original_aspect_ratio="increase").filter("crop", w, h)
    if profile.fit == "blur":
        # Two copies: the whole picture fitted inside, over a blurred fill of the frame.
        split = video.split()
        back = split[0].filter("scale", w, h, force_original_aspect_ratio="increase").filter("crop", w, h) \
            .filter("boxblur", luma_radius=20, luma_power=2)
        front = split[1].filter("scale", w, h, force_original_aspect_ratio="decrease")
        return ffmpeg_python.overlay(back, front, x="(W-w)/2", y="(H-h)/2")
    return video.filter("scale", w, h, force_original_aspect_ratio="decrease") \
        .filter("pad", w, h, "(ow-iw)/2", "(oh-ih)/2")


# Hardware H.264 encoders `doctor` may find, with what each needs: the options that replace x264's preset, and
# the pixel format the picture is handed over in (VAAPI also uploads it to the device).
HARDWARE_ENCODERS: dict[str, dict[str, object]] = {
    "h264_vaapi": {"rc_mode": "CBR"},
    "h264_qsv": {"preset": "veryfast"},
    "h264_nvenc": {"preset": "p4", "tune": "ll", "rc": "cbr"},
}
VAAPI_DEVICE = "/dev/dri/renderD128"


def encoder_for(profile: Profile, hardware: str | None) -> str:
    """The video encoder a destination uses: `copy`, the hardware encoder `doctor` found, or libx264."""
    if profile.copy:
        return "copy"
    return hardware if hardware in HARDWARE_ENCODERS else "libx264"


def _transcode_options(profile: Profile, encoder: str = "libx264") -> dict[str, object]:
    """Near-CBR H.264 with a fixed GOP (platforms want a keyframe every 2 s), AAC stereo."""
    gop = max(1, round(profile.fps * profile.gop_s))
    video = dict(HARDWARE_ENCODERS.get(encoder) or {"preset": profile.x264_preset, "sc_threshold": 0})
    return {
        "c:v": encoder, **video, "b:v": f"{profile.video_kbps}k",
        "maxrate": f"{profile.video_kbps}k", "bufsize": f"{profile.video_kbps * 2}k",
        "g": gop, "keyint_min": gop, "c:a": "aac", "b:a": f"{profile.audio_kbps}k", "ac": 2,
        **profile.extra,
    }


def _command(output, ffmpeg: str | None, extra_global: tuple[str, ...] = ()) -> list[str]:
    return [ffmpeg or find_ffmpeg(), *GLOBAL_ARGS, *extra_global, *output.get_args()]


def destination_argv(publish_url: str, profile: Profile, *, rw_timeout_s: float = 5.0,
                     send_buffer: int = 512 * 1024, ffmpeg: str | None = None,
                     encoder: str = "libx264", keys_from: str | None = None) -> list[str]:
    """ffmpeg reading the program as FLV on stdin and publishing it to `publish_url`, copied or transcoded.

    With `keys_from` (a preset file ffmpeg can read, see hidden.py) the command line names only the URL's
    public part; the stream name and any SRT passphrase are in that file.
    """
    source = ffmpeg_python.input("pipe:0", **INPUT_ARGS)
    options: dict[str, object] = {}
    if keys_from is not None:
        publish_url = split_publish_url(publish_url)[0]
        options["fpre"] = keys_from
    fmt = output_format(publish_url)
    if fmt:
        options["f"] = fmt
    if fmt == "flv":
        options["flvflags"] = "no_duration_filesize"  # a live URL cannot be seeked back to patch the header
    if urlsplit(publish_url).scheme.lower() in OUTPUT_FORMATS:
        # A receiver that accepts and then never answers or stops reading must fail us, not hang us.
        options["rw_timeout"] = int(rw_timeout_s * 1_000_000)
        # Bounded socket buffer: the kernel would grow it to megabytes, hiding a stalled receiver for tens
        # of seconds; 512 KiB still carries 6 Mbit/s over a 500 ms round trip.
        options["send_buffer_size"] = send_buffer
    if profile.copy:
        output = ffmpeg_python.output(source, publish_url, c="copy", **options)
    else:
        video = _fit_filter(source.video, profile).filter("fps", profile.fps).filter("setsar", 1)
        for name, args in profile.filters:
            video = video.filter(name, **args)
        video = video.filter("format", "yuv420p" if encoder in ("libx264", "h264_nvenc") else "nv12")
        extra_global: tuple[str, ...] = ()
        if encoder == "h264_vaapi":
            video = video.filter("hwupload")
            extra_global = ("-vaapi_device", VAAPI_DEVICE)
        output = ffmpeg_python.output(video, source["a?"], publish_url, **_transcode_options(profile, encoder),
                                      **options)
        return _command(output, ffmpeg, extra_global)
    return _command(output, ffmpeg)


def hardware_test_argv(encoder: str, *, ffmpeg: str | None = None) -> list[str]:
    """One second of 720p test pattern through `encoder` into nothing: does this hardware encoder work here?"""
    source = ffmpeg_python.input("testsrc2=size=1280x720:rate=30", f="lavfi", t=1)
    video = source.video.filter("format", "yuv420p" if encoder == "h264_nvenc" else "nv12")
    extra_global: tuple[str, ...] = ()
    if encoder == "h264_vaapi":
        video = video.filter("hwupload")
        extra_global = ("-vaapi_device", VAAPI_DEVICE)
    output = ffmpeg_python.output(video, "-", f="null", **{"c:v": encoder, "b:v": "2500k"})
    return [ffmpeg or find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", *extra_global,
            *output.get_args()]


def archive_argv(pattern: str, segment_s: int, *, ffmpeg: str | None = None) -> list[str]:
    """ffmpeg recording the program from stdin into time-named segments (`pattern` has strftime fields)."""
    source = ffmpeg_python.input("pipe:0", **INPUT_ARGS)
    output = ffmpeg_python.output(source, pattern, c="copy", f="segment", segment_time=segment_s,
                                  reset_timestamps=1, strftime=1)
    return _command(output, ffmpeg)
