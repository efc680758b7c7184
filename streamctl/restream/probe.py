"""What the program carries, read from its FLV tags as they pass: codecs, size, fps, keyframes, bitrates."""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from . import amf
from .flv import AUDIO, SCRIPT, VIDEO, Tag
from .h264 import H264Error, parse_avcc
from .platforms import StreamFacts, facts_from_dict

log = logging.getLogger(__name__)

VIDEO_CODECS = {2: "flv1", 3: "screen", 4: "vp6", 5: "vp6", 6: "screen2", 7: "h264", 12: "hevc", 13: "av1"}
# Enhanced RTMP names codecs by FourCC instead.
VIDEO_FOURCC = {b"avc1": "h264", b"hvc1": "hevc", b"av01": "av1", b"vp09": "vp9"}
AUDIO_CODECS = {0: "pcm", 1: "adpcm", 2: "mp3", 3: "pcm", 4: "nellymoser", 5: "nellymoser", 6: "nellymoser",
                7: "g711a", 8: "g711u", 10: "aac", 11: "speex", 14: "mp3"}
AUDIO_FOURCC = {b"Opus": "opus", b"fLaC": "flac", b"ac-3": "ac3", b"ec-3": "eac3", b"mp4a": "aac", b".mp3": "mp3"}
AAC_PROFILES = {1: "Main", 2: "LC", 3: "SSR", 4: "LTP", 5: "HE", 29: "HEv2"}
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
FLV_RATES = (5512, 11025, 22050, 44100)

WINDOW_MS = 5000  # fps and bitrates are measured over this much media time
READY_AFTER_MS = 8000  # after this much media the probe reports what it has, even if incomplete


def parse_audio_specific_config(data: bytes) -> tuple[str, int | None, int | None]:
    """AAC profile, output sample rate and channel count from an AudioSpecificConfig."""
    bits = int.from_bytes(data[:8].ljust(8, b"\x00"), "big")
    pos = 64

    def take(n: int) -> int:
        nonlocal pos
        pos -= n
        return (bits >> pos) & ((1 << n) - 1)

    if len(data) < 2:
        raise ValueError("AudioSpecificConfig shorter than 2 bytes")
    aot = take(5)
    if aot == 31:
        aot = 32 + take(6)
    index = take(4)
    rate = take(24) if index == 15 else (AAC_RATES[index] if index < len(AAC_RATES) else None)
    channels = take(4)
    if aot in (5, 29):  # explicit SBR: the extension rate is what comes out of the decoder
        ext = take(4)
        rate = take(24) if ext == 15 else (AAC_RATES[ext] if ext < len(AAC_RATES) else rate)
    if aot == 29 and channels == 1:
        channels = 2  # parametric stereo decodes to two channels
    return AAC_PROFILES.get(aot, f"object type {aot}"), rate, (channels or None)


class _Window:
    """(timestamp, bytes) of recent frames of one kind, to measure rate and bitrate over media time."""

    def __init__(self) -> None:
        self.frames: deque[tuple[int, int]] = deque()
        self.bytes = 0

    def add(self, ts: int, size: int) -> None:
        self.frames.append((ts, size))
        self.bytes += size
        while len(self.frames) > 2 and ts - self.frames[0][0] > WINDOW_MS:
            self.bytes -= self.frames.popleft()[1]

    def clear(self) -> None:
        self.frames.clear()
        self.bytes = 0

    @property
    def span_ms(self) -> int:
        return self.frames[-1][0] - self.frames[0][0] if len(self.frames) > 1 else 0

    def rate(self) -> float | None:
        span = self.span_ms
        return round((len(self.frames) - 1) * 1000 / span, 2) if span >= 500 else None

    def kbps(self) -> int | None:
        span = self.span_ms
        # The last frame's bytes belong to the time after the window's end, so leave them out.
        return round((self.bytes - self.frames[-1][1]) * 8 / span) if span >= 500 else None


class StreamProbe:
    """Reads FLV tags as they pass and says what the stream is; one probe per feed."""

    def __init__(self) -> None:
        self.video_codec: str | None = None
        self.video_profile: str | None = None
        self.video_level: str | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.sps_fps: float | None = None
        self.audio_codec: str | None = None
        self.audio_profile: str | None = None
        self.sample_rate: int | None = None
        self.channels: int | None = None
        self.metadata: dict[str, Any] = {}
        self.errors: list[str] = []
        self._video = _Window()
        self._audio = _Window()
        self._keyframes: deque[int] = deque(maxlen=16)
        self._first_ts: int | None = None
        self._last_ts = 0
        self._last_video_ts: int | None = None
        self.tags = 0

    # ---- input -------------------------------------------------------------------------------------

    def feed(self, tag: Tag) -> None:
        """Take one tag into account; never raises on odd input (it is noted in `errors`)."""
        self.tags += 1
        try:
            if tag.kind == VIDEO:
                self._feed_video(tag)
            elif tag.kind == AUDIO:
                self._feed_audio(tag)
            elif tag.kind == SCRIPT:
                self._feed_script(tag)
        except (ValueError, IndexError) as e:
            if len(self.errors) < 10:
                self.errors.append(f"{type(e).__name__}: {e}")

    def _clock(self, ts: int) -> None:
        if self._first_ts is None or ts < self._last_ts - 1000:
            # A jump back (a restarted source under the same probe): measure afresh from here.
            self._first_ts = ts
            self._video.clear()
            self._audio.clear()
            self._keyframes.clear()
            self._last_video_ts = None
            self._last_ts = ts
        else:
            self._last_ts = max(self._last_ts, ts)

    def _feed_video(self, tag: Tag) -> None:
        data = tag.data
        if not data:
            return
        if data[0] & 0x80:  # enhanced RTMP: [frame type, packet type] then a FourCC
            codec = VIDEO_FOURCC.get(data[1:5], data[1:5].decode("latin-1"))
            packet_type = data[0] & 0x0F
            keyframe = (data[0] >> 4) & 0x07 == 1
            if packet_type == 0:  # sequence start
                self.video_codec = codec
                return
            if packet_type not in (1, 3):  # coded frames (with or without composition time)
                return
        else:
            codec_id = data[0] & 0x0F
            codec = VIDEO_CODECS.get(codec_id, f"codec {codec_id}")
            keyframe = data[0] >> 4 == 1
            if codec_id in (7, 12) and len(data) > 1 and data[1] != 1:
                if data[1] == 0:  # decoder configuration, not a frame
                    self.video_codec = codec
                    if codec_id == 7:
                        self._take_sps(data[5:])
                return
        self.video_codec = codec
        self._clock(tag.timestamp)
        self._video.add(tag.timestamp, len(data))
        self._last_video_ts = tag.timestamp
        if keyframe and (not self._keyframes or tag.timestamp > self._keyframes[-1]):
            self._keyframes.append(tag.timestamp)

    def _take_sps(self, record: bytes) -> None:
        try:
            sps = parse_avcc(record)
        except H264Error as e:
            raise ValueError(f"AVC header: {e}") from None
        self.width, self.height, self.sps_fps = sps.width, sps.height, sps.fps
        self.video_profile, self.video_level = sps.profile, sps.level

    def _feed_audio(self, tag: Tag) -> None:
        data = tag.data
        if not data:
            return
        fmt = data[0] >> 4
        if fmt == 9:  # enhanced RTMP audio: packet type, then a FourCC
            self.audio_codec = AUDIO_FOURCC.get(data[1:5], data[1:5].decode("latin-1"))
            if data[0] & 0x0F == 0:
                return
        else:
            self.audio_codec = AUDIO_CODECS.get(fmt, f"codec {fmt}")
            if fmt == 10:
                if len(data) > 1 and data[1] == 0:
                    self.audio_profile, self.sample_rate, self.channels = parse_audio_specific_config(data[2:])
                    return
            else:
                self.sample_rate = FLV_RATES[(data[0] >> 2) & 3]
                self.channels = 2 if data[0] & 1 else 1
        self._clock(tag.timestamp)
        self._audio.add(tag.timestamp, len(data))

    def _feed_script(self, tag: Tag) -> None:
        values = amf.decode_all(tag.data)
        if len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], dict):
            self.metadata = dict(values[1])

    # ---- output ------------------------------------------------------------------------------------

    @property
    def media_ms(self) -> int:
        """How much media (by timestamps) this probe has seen."""
        return self._last_ts - self._first_ts if self._first_ts is not None else 0

    @property
    def ready(self) -> bool:
        """Enough seen to say what the stream is: headers, one keyframe interval, audio (or enough waiting)."""
        if self.media_ms >= READY_AFTER_MS:
            return True
        video_known = self.video_codec is not None and self.width is not None and len(self._keyframes) >= 2
        return video_known and (self.audio_codec is not None or self.media_ms >= 2000)

    def keyframe_intervals(self) -> list[float]:
        """Seconds between successive keyframes, oldest first."""
        k = list(self._keyframes)
        return [round((b - a) / 1000, 3) for a, b in zip(k, k[1:], strict=False)]

    def _meta_number(self, *keys: str) -> float | None:
        for key in keys:
            value = self.metadata.get(key)
            if isinstance(value, float) and value > 0:
                return value
        return None

    def facts(self) -> dict[str, Any]:
        """Everything known about the stream, fit for `GET /api/ingest` (None where not known yet)."""
        intervals = self.keyframe_intervals()
        gop_max = max(intervals) if intervals else None
        if self._keyframes and self._last_video_ts is not None:
            # A keyframe that is overdue already tells us the interval is at least this long.
            open_gap = round((self._last_video_ts - self._keyframes[-1]) / 1000, 3)
            if gop_max is not None and open_gap > gop_max:
                gop_max = open_gap
        fps = self._video.rate() or self.sps_fps or self._meta_number("framerate", "fps")
        width = self.width or self._meta_number("width")
        height = self.height or self._meta_number("height")
        meta_kbps = self._meta_number("videodatarate")
        audio_meta_kbps = self._meta_number("audiodatarate")
        encoder = self.metadata.get("encoder")
        return {
            "video_codec": self.video_codec,
            "video_profile": self.video_profile,
            "video_level": self.video_level,
            "width": int(width) if width else None,
            "height": int(height) if height else None,
            "fps": fps,
            "keyframe_interval_s": intervals[-1] if intervals else None,
            "keyframe_interval_max_s": gop_max,
            "video_kbps": self._video.kbps() or (round(meta_kbps) if meta_kbps else None),
            "audio_codec": self.audio_codec,
            "audio_profile": self.audio_profile,
            "sample_rate": self.sample_rate or (int(v) if (v := self._meta_number("audiosamplerate")) else None),
            "channels": self.channels,
            "audio_kbps": self._audio.kbps() or (round(audio_meta_kbps) if audio_meta_kbps else None),
            "encoder": encoder if isinstance(encoder, str) else None,
            "media_s": round(self.media_ms / 1000, 1),
            "ready": self.ready,
        }

    def stream_facts(self) -> StreamFacts:
        """The facts platform rules are checked against."""
        return facts_from_dict(self.facts())


def describe(facts: dict[str, Any]) -> str:
    """One line for people: `h264 High 1280x720 30 fps, keyframe every 2.0 s, 2500 kbit/s; aac LC 48000 Hz 2 ch`."""
    video = "no video"
    if facts.get("video_codec"):
        parts = [facts["video_codec"]]
        if facts.get("video_profile"):
            parts.append(facts["video_profile"])
        if facts.get("width") and facts.get("height"):
            parts.append(f"{facts['width']}x{facts['height']}")
        if facts.get("fps"):
            parts.append(f"{facts['fps']:g} fps")
        video = " ".join(parts)
        if facts.get("keyframe_interval_max_s") is not None:
            video += f", keyframe every {facts['keyframe_interval_max_s']:.1f} s"
        if facts.get("video_kbps"):
            video += f", {facts['video_kbps']} kbit/s"
    audio = "no audio"
    if facts.get("audio_codec"):
        parts = [facts["audio_codec"]]
        for key, unit in (("audio_profile", ""), ("sample_rate", " Hz"), ("channels", " ch")):
            if facts.get(key):
                parts.append(f"{facts[key]}{unit}")
        audio = " ".join(parts)
    return f"{video}; {audio}"
