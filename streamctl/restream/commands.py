"""The ffmpeg command lines that make media for the program: the ingest's children and the slate's card.

Each is an ffmpeg writing FLV to its stdout (`FLV_OUT`), read tag by tag by flvchild.py. The x264 settings
every live encode of ours shares (`x264_live`) are written once, here. The program preview's decoder belongs
here too (one command per job, the same shape).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..redact import register_secret
from .drawtext import FONT, drawtext
from .ffmpeg import find_ffmpeg
from .hidden import concat_text, split_publish_url

if TYPE_CHECKING:
    from ..config import IngestConfig
    from .slate import SlateFormat

FLV_OUT = ("-sn", "-dn", "-f", "flv", "-flvflags", "no_duration_filesize", "pipe:1")  # FLV on stdout
QUIET = ("-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning")
TESTSRC_SIZE = "1280x720"
TESTSRC_FPS = 30
SRT_PASSPHRASE = (10, 79)  # characters, as libsrt takes them
FILE_LIKE = re.compile(r"\.(mp4|m4v|mov|mkv|flv|ts|webm)$", re.IGNORECASE)


def x264_live(gop: int, kbps: int, *, profile: str | None = None, level: str | None = None) -> list[str]:
    """libx264 for a live program: low latency, 8-bit 4:2:0, a keyframe exactly every `gop` frames, near-CBR."""
    argv = ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p"]
    if profile:
        argv += ["-profile:v", profile]
    if level:
        argv += ["-level", level]
    return argv + ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
                   "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{2 * kbps}k"]


def aac(kbps: int, sample_rate: int, channels: int) -> list[str]:
    return ["-c:a", "aac", "-b:a", f"{kbps}k", "-ar", str(sample_rate), "-ac", str(channels)]


# ---- the ingest's children (SRT listener, pull, file, testsrc) ------------------------------------------


def testsrc_filter(event_name: str, font: Path = FONT) -> str | None:
    """drawtext filters for the running clock and the event name; None when the font is missing."""
    if not font.is_file():
        return None
    clock = drawtext("%{localtime}", fontsize="h/12", y="h*0.30", font=font, box=True, expand=True)
    name = drawtext(event_name or "streamctl", fontsize="h/20", y="h*0.72", font=font, box=True)
    return f"{clock},{name}"


def srt_url(config: IngestConfig) -> str:
    """The SRT URL with the passphrase from `key_env` added (unless the URL has one); checks its length."""
    parts = urlsplit(config.url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = {k for k, _ in query}
    if config.key and "passphrase" not in names:
        query.append(("passphrase", config.key))
    for k, v in query:
        if k == "passphrase":
            register_secret(v)
            low, high = SRT_PASSPHRASE
            if not low <= len(v) <= high:
                raise ValueError(f"the SRT passphrase has {len(v)} characters, expected {low} to {high}")
    return urlunsplit(parts._replace(query=urlencode(query)))


def pull_url(config: IngestConfig) -> str:
    """A pull URL with the key from `key_env` put where its protocol carries one."""
    scheme = urlsplit(config.url).scheme.lower()
    if scheme == "srt":
        return srt_url(config)
    if config.key and scheme in ("rtmp", "rtmps"):
        return config.url.rstrip("/") + "/" + config.key
    segments = [s for s in urlsplit(config.url).path.split("/") if s]
    if len(segments) > 1:
        # Shown masked everywhere (as mask_url does): rtmp://host/app/KEY never shows the key.
        register_secret("/".join(segments[1:]))
    return config.url


# What an ingest's ffconcat list (hidden_input) may open; the list itself comes through a pipe (file).
CONCAT_PROTOCOLS = {"srt": "file,srt", "rtmp": "file,rtmp,tcp", "rtmps": "file,rtmps,rtmp,tls,tcp"}
PULL_RW_TIMEOUT_US = "10000000"


def hidden_input(config: IngestConfig) -> bytes | None:
    """The ingest's URL as an ffconcat list with its key as options (hidden.py), when the URL carries one: an
    SRT passphrase or stream id, an RTMP pull's key. None for anything else (nothing secret on its line)."""
    scheme = urlsplit(config.url).scheme.lower()
    if config.kind == "srt_listen" or (config.kind == "pull" and scheme == "srt"):
        public, options = split_publish_url(srt_url(config))
    elif config.kind == "pull" and scheme in ("rtmp", "rtmps") and config.key:
        public, options = split_publish_url(pull_url(config))
    else:
        return None
    if not options:
        return None
    if config.kind == "pull":
        options["rw_timeout"] = PULL_RW_TIMEOUT_US
    return concat_text(public, options)


def ingest_argv(config: IngestConfig, event_name: str, *, realtime: bool = True,
                ffmpeg: str | None = None, keys_from: str | None = None) -> list[str]:
    """The ffmpeg that turns a (non-RTMP-listen) ingest into FLV on stdout; ValueError for a bad passphrase.

    With `keys_from` (where ffmpeg reads `hidden_input`'s list), the input is that list, so no passphrase or key
    is on the command line."""
    argv = [ffmpeg or find_ffmpeg(), *QUIET]
    if keys_from is not None:
        whitelist = CONCAT_PROTOCOLS[urlsplit(config.url).scheme.lower()]
        return argv + ["-f", "concat", "-safe", "0", "-protocol_whitelist", whitelist, "-i", keys_from,
                       "-c", "copy", *FLV_OUT]
    re_flag = ["-re"] if realtime else []
    if config.kind == "testsrc":
        argv += [*re_flag, "-f", "lavfi", "-i", f"testsrc2=size={TESTSRC_SIZE}:rate={TESTSRC_FPS}",
                 *re_flag, "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"]
        text = testsrc_filter(event_name)
        if text:
            argv += ["-vf", text]
        return argv + [*x264_live(2 * TESTSRC_FPS, 2500), *aac(128, 48000, 2), *FLV_OUT]
    if config.kind == "file":
        return argv + [*re_flag, "-stream_loop", "-1", "-i", config.url, "-c", "copy", *FLV_OUT]
    if config.kind == "srt_listen":
        return argv + ["-i", srt_url(config), "-c", "copy", *FLV_OUT]
    url = pull_url(config)
    # A pull of a recorded file over HTTP must be paced like a live source.
    pace = re_flag if FILE_LIKE.search(urlsplit(url).path) else []
    return argv + ["-rw_timeout", "10000000", *pace, "-i", url, "-c", "copy", *FLV_OUT]


# ---- the slate ------------------------------------------------------------------------------------------

SLATE_BACKGROUND = "0x11161d"
SLATE_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def slate_argv(fmt: SlateFormat, card: str | None, *, ffmpeg: str | None = None) -> list[str]:
    """The ffmpeg that encodes the holding card (`card`: its drawtext filters) in `fmt`, in real time, as FLV."""
    argv = [ffmpeg or find_ffmpeg(), *QUIET, "-re", "-f", "lavfi",
            "-i", f"color=c={SLATE_BACKGROUND}:size={fmt.width}x{fmt.height}:rate={fmt.rate}"]
    if fmt.sample_rate:
        argv += ["-re", "-f", "lavfi", "-i", f"anullsrc=r={fmt.sample_rate}:cl={SLATE_LAYOUTS[fmt.channels]}"]
    if card:
        argv += ["-vf", card]
    argv += x264_live(fmt.gop, fmt.video_kbps, profile=fmt.profile, level=fmt.level)
    if fmt.sample_rate:
        argv += aac(96, fmt.sample_rate, fmt.channels)
    return argv + list(FLV_OUT)


# The confidence monitor decodes the program once, at a low rate: deblocking is skipped (a preview and the
# detectors do not need it, and it is a large share of H.264 decoding), the picture is thinned to `fps` before
# anything else, and audio is measured in 4800-sample blocks (0.1 s at 48 kHz).
MONITOR_FREEZE_S = 1.0  # freezedetect's own wait before it calls a picture frozen


def monitor_argv(fps: float, width: int, *, ffmpeg: str | None = None) -> list[str]:
    """The program (FLV on stdin) into small JPEGs on stdout (mpjpeg) and, on stderr, per-channel audio levels
    (astats) and the black/freeze transitions (blackdetect, freezedetect), printed by (a)metadata.

    Either stream may be missing (`?` maps); the picture and the detectors share one decode.
    """
    thin = f"fps={fps:g},scale={width}:-2"
    return [
        ffmpeg or find_ffmpeg(), "-hide_banner", "-nostats", "-loglevel", "info",
        "-skip_loop_filter", "all", "-f", "flv", "-probesize", "256k", "-analyzeduration", "100000", "-i", "pipe:0",
        "-map", "0:v?", "-vf", f"{thin},format=yuvj420p", "-c:v", "mjpeg", "-q:v", "6", "-f", "mpjpeg", "pipe:1",
        "-map", "0:v?", "-map", "0:a?",
        "-filter:v", f"{thin},blackdetect=d=0:pix_th=0.10,freezedetect=n=-60dB:d={MONITOR_FREEZE_S:g},"
                     "metadata=mode=print",
        "-filter:a", "asetnsamples=n=4800:p=0,astats=metadata=1:reset=1:measure_perchannel=Peak_level+RMS_level"
                     ":measure_overall=none,ametadata=mode=print",
        "-f", "null", "-",
    ]
