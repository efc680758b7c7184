"""Per-destination output profiles: stream copy, or a named transcode."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Profile:
    """How one destination's output is made from the program."""

    name: str
    description: str
    copy: bool = False
    width: int | None = None
    height: int | None = None
    fps: int = 30
    video_kbps: int = 0
    audio_kbps: int = 128
    gop_s: float = 2.0
    # "crop" fills the frame by cutting the sides; "blur" letterboxes over a blurred copy of the picture.
    fit: str = "scale"
    x264_preset: str = "veryfast"
    extra: dict[str, str] = field(default_factory=dict)
    # Video filters after the fit and the frame rate, as (name, options) pairs, e.g. ("unsharp", {}).
    filters: tuple[tuple[str, dict[str, object]], ...] = ()


PROFILES: dict[str, Profile] = {
    "copy": Profile("copy", "the program as it arrives, not re-encoded", copy=True),
    "landscape-720p": Profile(
        "landscape-720p", "1280x720 30 fps, 2.5 Mbit/s, for weak uplinks or platforms that cap bitrate",
        width=1280, height=720, video_kbps=2500,
    ),
    "portrait-720p": Profile(
        "portrait-720p", "720x1280 30 fps portrait for TikTok, centre crop",
        width=720, height=1280, video_kbps=2500, fit="crop",
    ),
    "portrait-720p-blur": Profile(
        "portrait-720p-blur", "720x1280 30 fps portrait, whole picture over a blurred background",
        width=720, height=1280, video_kbps=2500, fit="blur",
    ),
}
