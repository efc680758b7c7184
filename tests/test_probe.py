"""The probe: SPS and AudioSpecificConfig parsing, measured fps/keyframes/bitrates, and `check`'s ingest probe."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from streamctl.config import load_event
from streamctl.restream import amf
from streamctl.restream.check import check_ingest_against_rules
from streamctl.restream.flv import AUDIO, SCRIPT, VIDEO, FlvReader, Tag
from streamctl.restream.h264 import H264Error, parse_avcc, parse_sps, unescape
from streamctl.restream.platforms import facts_from_dict, rule_violations
from streamctl.restream.probe import StreamProbe, describe, parse_audio_specific_config
from tests.conftest import LOOPBACK, free_port
from tests.ingest_media import encode_args, make_file

# ---- a bit writer of our own, to craft SPS units independently of the parser ------------------------


class BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> BitWriter:
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]
        return self

    def ue(self, value: int) -> BitWriter:
        code = value + 1
        length = code.bit_length()
        return self.u(length - 1, 0).u(length, code)

    def se(self, value: int) -> BitWriter:
        return self.ue(2 * value - 1 if value > 0 else -2 * value)

    def nal(self, header: int = 0x67) -> bytes:
        bits = self.bits + [1]  # rbsp_stop_one_bit
        bits += [0] * (-len(bits) % 8)
        raw = bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))
        escaped = bytearray()
        zeros = 0
        for b in raw:
            if zeros >= 2 and b <= 3:
                escaped.append(3)
                zeros = 0
            escaped.append(b)
            zeros = zeros + 1 if b == 0 else 0
        return bytes([header]) + bytes(escaped)


def sps_1080p_high(*, fps_units: int = 1, fps_scale: int = 60) -> bytes:
    """High profile 4:2:0 1920x1088 coded, cropped 8 lines at the bottom to 1920x1080, 30 fps VUI timing."""
    w = BitWriter().u(8, 100).u(8, 0).u(8, 40).ue(0)
    w.ue(1).ue(0).ue(0).u(1, 0).u(1, 0)  # chroma 4:2:0, 8 bit, no bypass, no scaling matrix
    w.ue(0).ue(0).ue(2)  # log2_max_frame_num, poc type 0, log2_max_poc_lsb
    w.ue(4).u(1, 0)  # max_num_ref_frames, gaps
    w.ue(119).ue(67)  # 120 x 68 macroblocks
    w.u(1, 1).u(1, 1)  # frame_mbs_only, direct_8x8
    w.u(1, 1).ue(0).ue(0).ue(0).ue(4)  # cropping: bottom 4 units of 2 lines
    w.u(1, 1)  # vui present
    w.u(1, 0).u(1, 0).u(1, 0).u(1, 0)  # no aspect, overscan, signal type, chroma loc
    w.u(1, 1).u(32, fps_units).u(32, fps_scale).u(1, 1)  # timing info
    return w.nal()


def avcc(sps: bytes) -> bytes:
    return bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]) + len(sps).to_bytes(2, "big") + sps + b"\x01\x00\x00"


# ---- SPS ---------------------------------------------------------------------------------------------


def test_sps_1080p_with_cropping_and_timing():
    sps = parse_sps(sps_1080p_high())
    assert (sps.width, sps.height) == (1920, 1080)
    assert sps.fps == 30.0
    assert (sps.profile, sps.level) == ("High", "4")


def test_sps_interlaced_crop_unit_is_two_field_lines():
    # Main profile 1080i: 34 map units of field pairs = 1088 lines; one crop unit is 4 lines in 4:2:0 fields.
    w = BitWriter().u(8, 77).u(8, 0).u(8, 40).ue(0)
    w.ue(0).ue(1).u(1, 0).se(-2).se(3).ue(2).se(1).se(-1)  # poc type 1 with two cycle offsets
    w.ue(2).u(1, 0).ue(119).ue(33).u(1, 0).u(1, 0).u(1, 1)  # not frame_mbs_only: adaptive flag follows
    w.u(1, 1).ue(0).ue(0).ue(0).ue(2).u(1, 0)
    sps = parse_sps(w.nal())
    assert (sps.width, sps.height, sps.fps) == (1920, 1080, None)
    assert sps.profile == "Main"


def test_sps_444_with_scaling_lists_crops_in_luma_samples():
    w = BitWriter().u(8, 244).u(8, 0).u(8, 31).ue(0)
    w.ue(3).u(1, 0).ue(2).ue(2).u(1, 0)  # 4:4:4, 10 bit
    w.u(1, 1)  # scaling matrix present: 12 lists for 4:4:4
    for i in range(12):
        w.u(1, 1 if i in (0, 7) else 0)
        if i == 0:
            for _ in range(16):
                w.se(1)
        if i == 7:
            w.se(-8)  # next scale 0: the rest of the list repeats
    w.ue(0).ue(2).ue(1).u(1, 0).ue(79).ue(44).u(1, 1).u(1, 1)
    w.u(1, 1).ue(2).ue(4).ue(0).ue(0).u(1, 0)  # crop 6 columns: 1 sample each in 4:4:4
    sps = parse_sps(w.nal())
    assert (sps.width, sps.height) == (1280 - 6, 720)
    assert sps.profile == "High 4:4:4 Predictive"
    assert sps.level == "3.1"


def test_emulation_prevention_bytes_are_removed():
    assert unescape(b"\x00\x00\x03\x01\x00\x00\x03\x00\x05") == b"\x00\x00\x01\x00\x00\x00\x05"
    # A huge max_num_ref_frames is a long run of zero bits: the NAL needs emulation prevention.
    w = BitWriter().u(8, 66).u(8, 0xC0).u(8, 30).ue(0).ue(0).ue(0).ue(0).ue((1 << 24) - 1).u(1, 0)
    w.ue(0).ue(0).u(1, 1).u(1, 1).u(1, 0).u(1, 0)
    nal = w.nal()
    assert b"\x00\x00\x03" in nal
    sps = parse_sps(nal)
    assert (sps.width, sps.height) == (16, 16)
    assert sps.profile == "Constrained Baseline"


@pytest.mark.parametrize("data", [b"", b"\x68\x00", b"\x67", b"\x67\x64\x00\x28", b"\x67" + b"\x00" * 20])
def test_bad_sps_raises_a_clear_error(data):
    with pytest.raises(H264Error):
        parse_sps(data)


def test_avcc_record_checks():
    assert parse_avcc(avcc(sps_1080p_high())).width == 1920
    for bad in (b"", b"\x02" + bytes(10), avcc(sps_1080p_high())[:12], bytes([1, 100, 0, 40, 0xFF, 0xE0, 0, 0])):
        with pytest.raises(H264Error):
            parse_avcc(bad)


@pytest.mark.parametrize("size", ["1920x1080", "854x480"])
async def test_sps_of_real_x264_output(size):
    """x264 crops to odd sizes; the parsed size must be what was encoded."""
    process = await asyncio.create_subprocess_exec(
        *encode_args(0.04, size=size, audio=False, realtime=False), "-f", "flv", "pipe:1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await asyncio.wait_for(process.communicate(), 20)
    header = next(t for t in FlvReader().feed(out) if t.is_sequence_header)
    sps = parse_avcc(header.data[5:])
    assert f"{sps.width}x{sps.height}" == size


# ---- AAC ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("asc", "expected"), [
    (bytes([0x11, 0x90]), ("LC", 48000, 2)),
    (bytes([0x12, 0x08]), ("LC", 44100, 1)),
    (bytes([0x2B, 0x92, 0x08, 0x00]), ("HE", 44100, 2)),  # SBR: 22.05 kHz core, 44.1 kHz out
    (bytes([0xEB, 0x09, 0x88, 0x00]), ("HEv2", 48000, 2)),  # PS: mono core decodes to stereo
    (bytes.fromhex("17805dc010"), ("LC", 48000, 2)),  # explicit 24-bit sample rate
])
def test_audio_specific_config(asc, expected):
    assert parse_audio_specific_config(asc) == expected


# ---- the probe on crafted tags ----------------------------------------------------------------------


def video_tags(seconds: float, fps: int = 30, gop: int = 60, size: int = 5000, start: int = 0) -> list[Tag]:
    tags = [Tag(VIDEO, start, b"\x17\x00\x00\x00\x00" + avcc(sps_1080p_high()))]
    for i in range(round(seconds * fps)):
        key = i % gop == 0
        tags.append(Tag(VIDEO, start + round(i * 1000 / fps), bytes([0x17 if key else 0x27, 1, 0, 0, 0])
                        + bytes(size - 5)))
    return tags


def audio_tags(seconds: float, start: int = 0, size: int = 400) -> list[Tag]:
    tags = [Tag(AUDIO, start, b"\xaf\x00\x11\x90")]
    frame_ms = 1024 * 1000 / 48000
    tags += [Tag(AUDIO, start + round(i * frame_ms), b"\xaf\x01" + bytes(size - 2))
             for i in range(int(seconds * 1000 / frame_ms))]
    return tags


def interleave(*lists: list[Tag]) -> list[Tag]:
    return sorted((t for tags in lists for t in tags), key=lambda t: (t.timestamp, not t.is_sequence_header))


def test_probe_measures_fps_keyframes_and_bitrates():
    probe = StreamProbe()
    meta = Tag(SCRIPT, 0, amf.encode_all("onMetaData", amf.EcmaArray(encoder="switcher 1.0", framerate=25.0)))
    probe.feed(meta)
    for tag in interleave(video_tags(6.5), audio_tags(6.5)):
        probe.feed(tag)
    f = probe.facts()
    assert f["video_codec"] == "h264" and (f["width"], f["height"]) == (1920, 1080)
    assert f["fps"] == pytest.approx(30, abs=0.1)  # measured, not the metadata's 25
    assert f["keyframe_interval_s"] == pytest.approx(2.0, abs=0.01)
    assert f["keyframe_interval_max_s"] == pytest.approx(2.0, abs=0.1)
    assert f["video_kbps"] == pytest.approx(5000 * 8 * 30 / 1000, rel=0.02)
    assert (f["audio_codec"], f["audio_profile"], f["sample_rate"], f["channels"]) == ("aac", "LC", 48000, 2)
    assert f["audio_kbps"] == pytest.approx(400 * 8 * 48000 / 1024 / 1000, rel=0.02)
    assert f["encoder"] == "switcher 1.0"
    assert probe.ready and f["ready"]
    assert probe.stream_facts().keyframe_interval_s == pytest.approx(2.0, abs=0.1)
    assert probe.errors == []


def test_probe_not_ready_before_a_keyframe_interval_and_overdue_keyframe_counts():
    probe = StreamProbe()
    tags = interleave(video_tags(12, gop=300), audio_tags(12))
    early = [t for t in tags if t.timestamp <= 1500]
    for tag in early:
        probe.feed(tag)
    assert not probe.ready
    assert probe.facts()["keyframe_interval_max_s"] is None
    for tag in tags[len(early):]:
        probe.feed(tag)
    # One keyframe at 0 and one at 10 s; 2 s later the next one is not here yet, 10 s is the known bound.
    f = probe.facts()
    assert f["keyframe_interval_s"] == pytest.approx(10.0, abs=0.05)
    assert probe.ready
    assert rule_violations("facebook", probe.stream_facts()) == [
        "keyframe every 10.0 s, expected every 2 s (at most 4 s)"]


def test_probe_falls_back_to_metadata_and_flv_audio_header():
    probe = StreamProbe()
    meta = amf.EcmaArray(width=1280.0, height=720.0, framerate=29.97, videodatarate=3000.0, audiosamplerate=44100.0)
    probe.feed(Tag(SCRIPT, 0, amf.encode_all("onMetaData", meta)))
    probe.feed(Tag(VIDEO, 0, b"\x12" + bytes(100)))  # Sorenson H.263 keyframe: no SPS to read
    probe.feed(Tag(AUDIO, 0, bytes([0x2E]) + bytes(50)))  # MP3, 44 kHz, 16 bit, mono
    f = probe.facts()
    assert (f["video_codec"], f["width"], f["height"], f["fps"], f["video_kbps"]) == ("flv1", 1280, 720, 29.97, 3000)
    assert (f["audio_codec"], f["sample_rate"], f["channels"]) == ("mp3", 44100, 1)
    assert rule_violations("youtube", probe.stream_facts()) == [
        "video codec flv1 is not accepted, expected h264/hevc/av1",
        "audio codec mp3 is not accepted, expected aac",
    ]


def test_probe_enhanced_rtmp_hevc():
    probe = StreamProbe()
    probe.feed(Tag(VIDEO, 0, b"\x90hvc1" + bytes(20)))  # sequence start
    probe.feed(Tag(VIDEO, 0, b"\x93hvc1" + bytes(200)))  # keyframe, coded frames X
    probe.feed(Tag(VIDEO, 33, b"\xa3hvc1" + bytes(200)))
    assert probe.facts()["video_codec"] == "hevc"


def test_probe_restarts_its_clock_when_timestamps_jump_back():
    probe = StreamProbe()
    for tag in video_tags(4):
        probe.feed(tag)
    for tag in video_tags(1):  # the source restarted at 0 under the same probe
        probe.feed(tag)
    assert probe.media_ms < 1500
    assert probe.facts()["fps"] == pytest.approx(30, abs=0.5)


def test_probe_survives_garbage():
    rng = random.Random(7)
    probe = StreamProbe()
    for _ in range(3000):
        kind = rng.choice([AUDIO, VIDEO, SCRIPT, 3])
        data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))
        if kind == VIDEO and rng.random() < 0.3:
            data = b"\x17\x00\x00\x00\x00" + data  # an AVC header with a random record
        probe.feed(Tag(kind, rng.randrange(0, 1 << 32), data))
    facts = probe.facts()
    assert set(facts) >= {"video_codec", "audio_codec", "keyframe_interval_s", "fps", "ready"}
    assert probe.errors and len(probe.errors) <= 10


def test_facts_from_dict_and_describe():
    f = {"video_codec": "h264", "video_profile": "High", "width": 1280, "height": 720, "fps": 30.0,
         "keyframe_interval_s": 2.0, "keyframe_interval_max_s": 6.0, "video_kbps": 2500, "audio_codec": None}
    stream = facts_from_dict(f)
    assert (stream.video_codec, stream.audio_codec, stream.keyframe_interval_s) == ("h264", None, 6.0)
    assert describe(f) == "h264 High 1280x720 30 fps, keyframe every 6.0 s, 2500 kbit/s; no audio"
    assert rule_violations("facebook", stream) == [
        "no audio in the program, expected AAC audio",
        "keyframe every 6.0 s, expected every 2 s (at most 4 s)",
    ]


# ---- `streamctl check`: probing the ingest ---------------------------------------------------------

EVENT = """
[event]
name = "Kỳ họp HĐND — chất vấn"

[ingest]
url = "{url}"

[[destination]]
name = "fb"
platform = "facebook"

[[destination]]
name = "own"
platform = "custom"
url = "rtmp://127.0.0.1:1/live"
"""


def event_with(write_event, url: str):
    return load_event(write_event(EVENT.format(url=url)), environ={})


async def timed_check(event, within: float):
    lines: list[str] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    problems = await check_ingest_against_rules(event, within, say=lines.append)
    return problems, lines, loop.time() - start


async def test_check_testsrc_meets_every_platform(write_event):
    problems, lines, took = await timed_check(event_with(write_event, "testsrc"), 10)
    assert problems == []
    assert "h264 High 1280x720 30 fps, keyframe every 2.0 s" in lines[-1] and "aac LC 48000 Hz 2 ch" in lines[-1]
    assert took < 8


async def test_check_file_with_long_gop_and_no_audio_names_each_destination(write_event, tmp_path):
    path = await make_file(tmp_path / "long-gop.mp4", 13, size="320x180", gop=180, audio=False)
    event = event_with(write_event, str(path))
    problems, lines, took = await timed_check(event, 10)
    assert problems == [
        f"{event.path}: destination \"fb\": facebook: no audio in the program, expected AAC audio",
        f"{event.path}: destination \"fb\": facebook: keyframe every 6.0 s, expected every 2 s (at most 4 s)",
    ]
    assert "320x180" in lines[-1] and "no audio" in lines[-1]
    assert took < 8


async def test_check_probes_the_backup_input_too(write_event, tmp_path):
    path = await make_file(tmp_path / "long-gop.mp4", 13, size="320x180", gop=180, audio=False)
    event = load_event(write_event(EVENT.format(url="testsrc").replace(
        'url = "testsrc"', f'url = "testsrc"\nbackup_url = "{path}"')), environ={})
    problems, lines, took = await timed_check(event, 10)
    assert problems == [
        f"{event.path}: destination \"fb\": facebook: no audio in the program, expected AAC audio (the backup input)",
        f"{event.path}: destination \"fb\": facebook: keyframe every 6.0 s, expected every 2 s (at most 4 s)"
        " (the backup input)",
    ]
    assert "1280x720" in lines[-2] and lines[-1].startswith("ingest backup: h264") and "320x180" in lines[-1]
    assert took < 9


async def test_check_missing_pull_source_returns_quickly(write_event):
    event = event_with(write_event, f"http://{LOOPBACK}:{free_port()}/live/secret-pull-key.flv")
    problems, lines, took = await timed_check(event, 5)
    assert problems == []
    assert took < 1.0
    assert "not reachable" in lines[-1] and "secret-pull-key" not in lines[-1]


async def test_check_rtmp_listen_skips_a_port_in_use(write_event):
    with socket.socket() as busy:
        busy.bind((LOOPBACK, 0))
        busy.listen()
        event = event_with(write_event, f"rtmp://{LOOPBACK}:{busy.getsockname()[1]}/live")
        problems, lines, took = await timed_check(event, 5)
    assert problems == [] and took < 0.5
    assert "in use" in lines[-1]


async def test_check_rtmp_listen_without_publisher_waits_the_timeout_only(write_event):
    event = event_with(write_event, f"rtmp://{LOOPBACK}:{free_port()}/live")
    problems, lines, took = await timed_check(event, 0.5)
    assert problems == []
    assert 0.4 < took < 1.5
    assert "no publisher" in lines[-1]


async def test_check_rtmp_listen_probes_a_publisher(write_event):
    port = free_port()
    event = event_with(write_event, f"rtmp://{LOOPBACK}:{port}/live")
    publisher = asyncio.create_task(_publish_soon(f"rtmp://{LOOPBACK}:{port}/live/any", gop=150))
    problems, lines, _ = await timed_check(event, 5)
    await publisher
    assert problems == [
        f"{event.path}: destination \"fb\": facebook: keyframe every 5.0 s, expected every 2 s (at most 4 s)"]
    assert "640x360" in lines[-1] and "aac" in lines[-1]


async def _publish_soon(url: str, gop: int) -> None:
    await asyncio.sleep(0.3)  # let the check start listening
    # Not realtime: the probe measures media time, so the check needs no wall-clock wait.
    argv = encode_args(12, gop=gop, realtime=False) + ["-f", "flv", url]
    process = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                   stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.DEVNULL)
    await asyncio.wait_for(process.wait(), 30)


async def test_check_with_nothing_to_check(write_event):
    event = load_event(write_event('[event]\nname = "x"\n'), environ={})
    assert await check_ingest_against_rules(event, 5, say=lambda _: None) == []
