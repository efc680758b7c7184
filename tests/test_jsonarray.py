"""The streamed JSON array reader: elements out as bytes arrive, however the body is cut, in bounded memory."""

from __future__ import annotations

import json

import pytest

from streamctl.audience.jsonarray import ArrayReader

ELEMENTS = [
    {"nextPageToken": "a", "items": [{"id": "1", "text": 'quote " brace } bracket ] backslash \\ end'}]},
    {"items": [{"text": "Cho hỏi đường Hạ Long 🙏🏽👨‍👩‍👧 \u2028"}], "n": [1, [2, {"x": None}]]},
    {"error": {"code": 403, "errors": [{"reason": "liveChatEnded"}]}},
]
# As Google's REST streaming writes it: pretty-printed, newlines and commas between elements.
BODY = ("[" + "\n,\r\n".join(json.dumps(e, indent=2, ensure_ascii=False) for e in ELEMENTS) + "\n]").encode()


def read(chunks: list[bytes]) -> tuple[list, ArrayReader]:
    reader = ArrayReader()
    out = []
    for chunk in chunks:
        out += reader.feed(chunk)
    reader.end()
    return out, reader


def test_every_split_of_the_body_gives_the_same_elements():
    for cut in range(len(BODY) + 1):
        out, reader = read([BODY[:cut], BODY[cut:]])
        assert out == ELEMENTS and reader.error is None and reader.done, cut
    out, reader = read([BODY[i:i + 1] for i in range(len(BODY))])  # one byte at a time
    assert out == ELEMENTS and reader.error is None


def test_whitespace_commas_a_bom_and_a_bare_object_are_accepted():
    out, reader = read([b'\xef\xbb\xbf \n[ ,{"a":1} ,, ,\t{"b":2},]'])
    assert out == [{"a": 1}, {"b": 2}] and reader.error is None
    out, reader = read([b'{"error": {"code": 404}}'])  # an error sent without the array
    assert out == [{"error": {"code": 404}}] and reader.done


def test_elements_before_a_problem_are_kept_and_the_problem_is_named():
    reader = ArrayReader()
    assert reader.feed(b'[{"a":1},{"b":2}, <html>oops') == [{"a": 1}, {"b": 2}]
    assert "between responses" in str(reader.error) and not reader.error.not_json
    assert reader.feed(b'{"c":3}') == []  # nothing more once broken

    out, reader = read([b'[{"a":1},{"b":'])  # the connection dropped mid-response
    assert out == [{"a": 1}] and "cut off in the middle" in str(reader.error)
    out, reader = read([b'[{"a":1}'])  # dropped between responses, no closing bracket
    assert out == [{"a": 1}] and "without closing" in str(reader.error)
    out, reader = read([b'[{"a":1,}]'])  # balanced but not JSON
    assert out == [] and "not valid JSON" in str(reader.error)
    deep = b'[{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}]"  # valid, but deeper than the parser's stack
    out, reader = read([deep])
    assert out == [] and "not valid JSON" in str(reader.error)


def test_a_body_that_is_not_json_at_all_says_so():
    for body in (b"<!DOCTYPE html><html>", b"Not Found", b'"a string"'):
        out, reader = read([body])
        assert out == [] and reader.error is not None and reader.error.not_json, body
    out, reader = read([b""])
    assert out == [] and reader.error is not None and not reader.error.not_json  # empty: cut, not "not JSON"


def test_memory_holds_only_the_element_in_progress():
    reader = ArrayReader(max_element=4096)
    reader.feed(b"[")
    held = 0
    element = json.dumps({"items": [{"id": "x" * 100, "text": "y" * 300}]}).encode()
    half = len(element) // 2
    for _ in range(20_000):  # about 9 MB through the reader, each response split across two reads
        assert reader.feed(element[:half]) == []
        held = max(held, reader.pending)
        assert len(reader.feed(element[half:] + b",\n")) == 1
        held = max(held, reader.pending)
    assert held == half and reader.error is None
    reader.feed(b'{"items": "' + b"z" * 5000)
    assert "larger than 4096 bytes" in str(reader.error) and reader.pending == 0


@pytest.mark.parametrize("escape", [b'\\"', b"\\\\", b"\\u00e9"])
def test_an_escape_split_at_the_chunk_boundary(escape):
    body = b'[{"t":"a' + escape + b'}"}]'
    for cut in range(len(body)):
        out, reader = read([body[:cut], body[cut:]])
        assert out == [json.loads(body)[0]] and reader.error is None, cut
