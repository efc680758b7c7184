"""Which ffmpeg we run, what it can do, and the command lines we give it."""

from __future__ import annotations

import functools
import os
import shutil


@functools.cache
def find_ffmpeg() -> str:
    """The ffmpeg on PATH (or in $STREAMCTL_FFMPEG), else the binary shipped in the imageio-ffmpeg wheel."""
    explicit = os.environ.get("STREAMCTL_FFMPEG")
    if explicit:
        return explicit
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()
