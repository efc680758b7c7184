"""Stream keys out of `ps`: the secret part of a publish URL reaches ffmpeg through a pipe, not its command line.

Every local user can read any process's command line (/proc/PID/cmdline). ffmpeg 5.1 cannot read an output
URL from a file, but it reads per-output options from a preset file (`-fpre FILE`, `key=value` lines), and
its protocols take the URL's parts as options: RTMP(S) the application and stream name (`rtmp_app`,
`rtmp_playpath`), SRT the `passphrase` and `streamid`. So the command line carries only
`rtmp://host:port/app` and `-fpre /dev/fd/N`, where N is a pipe ffmpeg inherits and reads once at start;
no file ever holds the key, and only the same user (who could read ffmpeg's memory anyway) can open the pipe.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

RTMP_SCHEMES = ("rtmp", "rtmps")
SRT_SECRETS = ("passphrase", "streamid", "srt_streamid")  # SRT URL options that carry a key
PRESET_LINE_MAX = 999  # ffmpeg reads preset lines into a 1000-byte buffer


def rtmp_app_and_playpath(path: str) -> tuple[str, str]:
    """How ffmpeg's RTMP protocol splits a URL's path (and query) into application and stream name.

    The same rules as libavformat/rtmpproto.c `rtmp_open`, so the options name exactly what the URL did:
    `/live2/KEY` → (`live2`, `KEY`); `/app/inst/KEY` → (`app/inst`, `KEY`); `/live2?backup=1/KEY` →
    (`live2?backup=1`, `KEY`); `/KEY` → (``, `KEY`).
    """
    if path.startswith("/ondemand/"):
        app, name = "ondemand", path[len("/ondemand/"):]
    else:
        rest = path[1:] if path.startswith("/") else path
        slash = rest.find("/")
        if slash < 0:
            return "", _playpath(rest)
        after = rest[slash + 1:]
        colon, second = after.find(":"), after.find("/")
        if second < 0 or 0 <= colon < second:
            app, name = rest[:slash], after
        else:
            app, name = rest[:slash + 1 + second], after[second + 1:]
    return app, _playpath(name)


def _playpath(name: str) -> str:
    """ffmpeg's stream name from the URL's last part: `x.mp4`/`x.f4v` become `mp4:x.mp4`, `.flv` is dropped."""
    if ":" not in name and name.endswith((".f4v", ".mp4")):
        return "mp4:" + name
    return name[:-4] if name.endswith(".flv") else name


def split_publish_url(url: str) -> tuple[str, dict[str, str]]:
    """(what may be on ffmpeg's command line, the options that carry the rest) for one publish URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in RTMP_SCHEMES:
        # ffmpeg sees everything after host:port as the path, the query included.
        tail = url[len(f"{parts.scheme}://{parts.netloc}"):]
        app, playpath = rtmp_app_and_playpath(tail.split("#", 1)[0])
        public = f"{parts.scheme}://{parts.netloc}" + (f"/{app}" if app else "")
        return public, {k: v for k, v in (("rtmp_app", app), ("rtmp_playpath", playpath)) if v}
    if scheme == "srt":
        query = parse_qsl(parts.query, keep_blank_values=True)
        hidden = {k: v for k, v in query if k in SRT_SECRETS}
        kept = [(k, v) for k, v in query if k not in SRT_SECRETS]
        return urlunsplit((parts.scheme, parts.netloc, "", urlencode(kept), "")), hidden
    return url, {}


def preset_text(options: dict[str, str]) -> bytes:
    """The options as an ffmpeg preset file; ValueError for a value a preset cannot carry."""
    lines = []
    for key, value in options.items():
        line = f"{key}={value}"
        if "\n" in line or "\r" in line or len(line.encode()) > PRESET_LINE_MAX:
            raise ValueError(f"the publish URL's {key} is longer than {PRESET_LINE_MAX} bytes or has a line break")
        lines.append(line)
    return "\n".join(lines).encode() + b"\n"


def _quoted(text: str) -> str:
    """A value for an ffconcat line: single-quoted, a quote inside written as '\\''."""
    return "'" + text.replace("'", "'\\''") + "'"


def concat_text(url: str, options: dict[str, str]) -> bytes:
    """An ffconcat list of one input, `url`, opened with `options`: how an *input* gets options off the
    command line (ffmpeg reads presets for outputs only). ValueError for a value that cannot be carried."""
    lines = ["ffconcat version 1.0", f"file {_quoted(url)}"]
    for key, value in options.items():
        if "\n" in value or "\r" in value or not key.replace("_", "").isalnum():
            raise ValueError(f"the input URL's {key} has a line break or is not an option name")
        lines.append(f"option {key} {_quoted(value)}")
    return ("\n".join(lines) + "\n").encode()


class OptionsPipe:
    """Hidden options in a pipe for one ffmpeg: `-fpre PATH` on its command line, `fds` to pass it, then close.

    `OptionsPipe(text=concat_text(...))` holds an ffconcat list instead, for `-f concat -i PATH`."""

    def __init__(self, options: dict[str, str] | None = None, *, text: bytes | None = None):
        text = preset_text(options or {}) if text is None else text
        self.read_fd, write_fd = os.pipe()  # neither end is inherited unless passed
        try:
            if os.write(write_fd, text) != len(text):  # far below a pipe's 64 KiB: one write, never blocks
                raise OSError("the options did not fit in the pipe")
        except BaseException:
            os.close(self.read_fd)
            raise
        finally:
            os.close(write_fd)

    @property
    def path(self) -> str:
        return f"/dev/fd/{self.read_fd}"

    @property
    def fds(self) -> tuple[int, ...]:
        return (self.read_fd,)

    def close(self) -> None:
        """Our copy of the read end; ffmpeg keeps its own."""
        if self.read_fd >= 0:
            os.close(self.read_fd)
            self.read_fd = -1
