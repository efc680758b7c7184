"""The program's readers: joining at the next keyframe, or at once with the GOP under way."""

from __future__ import annotations

from streamctl.restream.flv import AUDIO, FILE_HEADER, VIDEO, FlvReader, Tag
from streamctl.restream.program import Program

AVC_HEADER = Tag(VIDEO, 0, b"\x17\x00\x00\x00\x00" + b"avcC")
AAC_HEADER = Tag(AUDIO, 0, b"\xaf\x00\x12\x10")


def frame(ts: int, key: bool) -> Tag:
    return Tag(VIDEO, ts, (b"\x17" if key else b"\x27") + b"\x01\x00\x00\x00" + bytes([ts % 256]) * 10)


def tags_of(data: bytes) -> list[Tag]:
    assert data.startswith(FILE_HEADER)
    return FlvReader().feed(data)


async def test_a_reader_from_the_last_keyframe_gets_the_gop_at_once():
    program = Program()
    program.new_feed()
    for tag in (AVC_HEADER, AAC_HEADER, frame(0, True), frame(33, False), frame(66, False)):
        program.publish(tag)
    waiting = program.reader("next-keyframe")
    at_once = program.reader("gop", from_last_keyframe=True)
    assert waiting.buffered_bytes == 0
    got = tags_of(await at_once.read())
    assert [t.data for t in got[:2]] == [AVC_HEADER.data, AAC_HEADER.data]
    assert [(t.timestamp, t.is_keyframe) for t in got[2:]] == [(0, True), (33, False), (66, False)]
    program.publish(frame(100, False))
    assert [t.timestamp for t in tags_of(b"".join([FILE_HEADER, await at_once.read()]))] == [100]
    assert waiting.buffered_bytes == 0  # still waiting for a keyframe
    program.publish(frame(133, True))
    assert [t.timestamp for t in tags_of(await waiting.read())][-1] == 133


async def test_no_replay_of_a_feed_that_stopped_or_restarted():
    program = Program()
    program.new_feed()
    for tag in (AVC_HEADER, frame(0, True), frame(33, False)):
        program.publish(tag)
    program.last_tag_at -= 5  # the ingest went quiet five seconds ago: its last GOP is old news
    assert program.reader("late", from_last_keyframe=True).buffered_bytes == 0
    program.last_tag_at += 5
    program.new_feed()  # a new publisher: the old GOP is not its own
    assert program.reader("new", from_last_keyframe=True).buffered_bytes == 0


def audio(ts: int) -> Tag:
    return Tag(AUDIO, ts, b"\xaf\x01" + bytes([ts % 256]) * 8)


async def test_a_first_audio_header_after_the_keyframe_reaches_a_reader_that_waits_for_it():
    program = Program()
    program.new_feed()
    reader = program.reader("destination")
    for tag in (AVC_HEADER, frame(0, True), frame(33, False), frame(66, False)):
        program.publish(tag)
    assert reader.buffered_bytes == 0, "no stream before the audio configuration is known"
    for tag in (AAC_HEADER, audio(70), frame(100, False)):
        program.publish(tag)
    got = tags_of(await reader.read())
    assert [t.data for t in got[:2]] == [AVC_HEADER.data, AAC_HEADER.data]
    assert [(t.kind, t.timestamp) for t in got[2:]] == [(VIDEO, 0), (VIDEO, 33), (VIDEO, 66), (AUDIO, 70), (VIDEO, 100)]


async def test_a_first_or_changed_header_goes_inline_to_readers_already_streaming():
    program = Program()
    program.new_feed()
    reader = program.reader("destination")
    for tag in (AVC_HEADER, AAC_HEADER, frame(0, True), frame(33, False)):
        program.publish(tag)
    tags_of(await reader.read())
    program.publish(AAC_HEADER)  # the same again: nothing to pass on
    assert reader.buffered_bytes == 0
    changed = Tag(AUDIO, 0, b"\xaf\x00\x11\x90")  # 48 kHz mono instead of 44.1 kHz stereo
    program.publish(changed)
    program.publish(frame(66, False))
    got = FlvReader().feed(FILE_HEADER + await reader.read())
    assert [(t.data, t.timestamp) for t in got] == [(changed.data, 33), (frame(66, False).data, 66)]


async def test_a_program_without_audio_starts_its_readers_after_a_second_of_waiting():
    program = Program()
    program.new_feed()
    reader = program.reader("destination")
    for ts in range(0, 1100, 100):
        program.publish(AVC_HEADER if ts == 0 else frame(ts, ts == 100))
    assert reader.buffered_bytes == 0
    program.publish(frame(1100, False))
    got = tags_of(await reader.read())
    # Re-timed from the first frame (100 ms): a second of media held, then all of it at once.
    assert [t.timestamp for t in got[1:]] == list(range(0, 1100, 100)) and got[0].data == AVC_HEADER.data
