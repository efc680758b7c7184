"""Platform presets for destinations: default ingest URLs and each platform's stream rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PlatformRules:
    """What a platform documents for its ingest (see docs/platform-apis.md)."""

    name: str
    default_url: str | None
    schemes: tuple[str, ...]
    keyframe_target_s: float = 2.0
    keyframe_max_s: float = 4.0
    needs_audio: bool = True
    video_codecs: tuple[str, ...] = ("h264",)
    audio_codecs: tuple[str, ...] = ("aac",)
    note: str = ""


PLATFORMS: dict[str, PlatformRules] = {
    "youtube": PlatformRules(
        "youtube", "rtmps://a.rtmps.youtube.com/live2", ("rtmp", "rtmps"),
        video_codecs=("h264", "hevc", "av1"),
        note="keyframe every 2 s, AAC audio",
    ),
    "facebook": PlatformRules(
        "facebook", "rtmps://live-api-s.facebook.com:443/rtmp/", ("rtmps",),
        note="RTMPS only, keyframe every 2 s (never over 4 s), audio and video both required",
    ),
    "tiktok": PlatformRules(
        "tiktok", None, ("rtmp", "rtmps"),
        note="server URL and key come from LIVE Producer and expire with the session",
    ),
    "twitch": PlatformRules(
        "twitch", "rtmp://live.twitch.tv/app", ("rtmp", "rtmps"),
        note="keyframe every 2 s, AAC-LC audio",
    ),
    "custom": PlatformRules(
        "custom", None, ("rtmp", "rtmps", "srt", "file"),
        keyframe_max_s=10.0, needs_audio=False,
        video_codecs=("h264", "hevc", "av1", "vp6", "flv1"), audio_codecs=("aac", "mp3", "speex", "pcm"),
    ),
}


def rules_for(platform: str) -> PlatformRules:
    """The rules of a known platform; unknown names fall back to `custom`."""
    return PLATFORMS.get(platform, PLATFORMS["custom"])


@dataclass(frozen=True)
class StreamFacts:
    """What a probe saw of the program: the facts platform rules are checked against."""

    video_codec: str | None
    audio_codec: str | None
    keyframe_interval_s: float | None


def rule_violations(platform: str, facts: StreamFacts) -> list[str]:
    """Each way the probed program breaks the platform's documented rules, in plain words."""
    rules = rules_for(platform)
    problems = []
    if facts.video_codec is None:
        problems.append("no video in the program")
    elif facts.video_codec not in rules.video_codecs:
        problems.append(f"video codec {facts.video_codec} is not accepted, expected {'/'.join(rules.video_codecs)}")
    if facts.audio_codec is None:
        if rules.needs_audio:
            problems.append("no audio in the program, expected AAC audio")
    elif facts.audio_codec not in rules.audio_codecs:
        problems.append(f"audio codec {facts.audio_codec} is not accepted, expected {'/'.join(rules.audio_codecs)}")
    gop = facts.keyframe_interval_s
    if gop is not None and gop > rules.keyframe_max_s + 0.05:
        problems.append(
            f"keyframe every {gop:.1f} s, expected every {rules.keyframe_target_s:g} s"
            f" (at most {rules.keyframe_max_s:g} s)"
        )
    return problems


def facts_from_dict(facts: dict[str, Any]) -> StreamFacts:
    """`StreamFacts` from a probe dict (as carried by `IngestStateChanged.probe` or `/api/ingest`)."""
    gop = facts.get("keyframe_interval_max_s")
    if gop is None:
        gop = facts.get("keyframe_interval_s")
    return StreamFacts(video_codec=facts.get("video_codec"), audio_codec=facts.get("audio_codec"),
                       keyframe_interval_s=gop)
