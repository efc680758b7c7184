"""Splits a streamed JSON array (`[{…},{…},…` over one long HTTP body) into its elements as bytes arrive."""

from __future__ import annotations

import json
import re
from typing import Any

MAX_ELEMENT = 16 * 2**20  # one streamed response; YouTube's largest (2000 messages) is a few MB
_TOKENS = re.compile(rb'["\\{}\[\]]')  # the only bytes that change nesting; UTF-8 never hides them
_SPACE = b" \t\r\n"
START, BETWEEN, ELEMENT, DONE = "start", "between", "element", "done"


class ArrayError(ValueError):
    """The body stopped being the JSON array it started as; `not_json` when it never was JSON at all."""

    def __init__(self, message: str, not_json: bool = False):
        super().__init__(message)
        self.not_json = not_json


class ArrayReader:
    """Feed it the body's bytes as they come; it returns every element completed so far.

    Only the element in progress is held, so memory stays bounded however long the stream runs.
    Whitespace and commas between elements are skipped; a bare object (an error sent without the array)
    counts as a one-element array. After a problem, `error` is set and later bytes are ignored.
    """

    def __init__(self, max_element: int = MAX_ELEMENT):
        self.max_element = max_element
        self.count = 0  # elements returned so far
        self.error: ArrayError | None = None
        self._buf = bytearray()
        self._state = START
        self._single = False
        self._scan = 0  # where scanning resumes inside the element in progress
        self._depth = 0
        self._in_string = False

    @property
    def pending(self) -> int:
        """Bytes held for the element in progress."""
        return len(self._buf)

    @property
    def done(self) -> bool:
        """The closing `]` (or the end of a bare object) has arrived."""
        return self._state == DONE

    def feed(self, data: bytes) -> list[Any]:
        """The elements that `data` completed, in order; sets `error` (after them) when the stream is broken."""
        out: list[Any] = []
        if self.error is not None or self._state == DONE:
            return out
        self._buf += data
        try:
            while self._step(out):
                pass
        except ArrayError as e:
            self.error = e
            self._buf.clear()
        return out

    def end(self) -> None:
        """The body is over: sets `error` when it stopped before the array was closed."""
        if self.error is not None or self._state == DONE:
            return
        if self._state == ELEMENT:
            self.error = ArrayError("cut off in the middle of a response")
        elif self._state == BETWEEN:
            self.error = ArrayError("ended without closing the array")
        else:
            self.error = ArrayError("empty body")
        self._buf.clear()

    def _step(self, out: list[Any]) -> bool:
        """Advance by one state; False when more bytes are needed."""
        buf = self._buf
        if self._state == ELEMENT:
            end = self._element_end()
            if end is None:
                if len(buf) > self.max_element:
                    raise ArrayError(f"a response larger than {self.max_element} bytes")
                return False
            raw = bytes(buf[:end])
            del buf[:end]
            try:
                out.append(json.loads(raw))
            except (ValueError, RecursionError) as e:  # RecursionError: nested deeper than Python's stack
                raise ArrayError(f"a response that is not valid JSON ({type(e).__name__}: {e})") from None
            self.count += 1
            self._state = DONE if self._single else BETWEEN
            if self._state == DONE:
                buf.clear()
            return self._state != DONE
        skip = _SPACE + (b"," if self._state == BETWEEN else b"\xef\xbb\xbf")  # a BOM may open the body
        i = 0
        while i < len(buf) and buf[i] in skip:
            i += 1
        del buf[:i]
        if not buf:
            return False
        first = buf[0]
        if first == ord("{"):
            self._single = self._state == START
            self._state, self._scan, self._depth, self._in_string = ELEMENT, 0, 0, False
            return True
        if self._state == START and first == ord("["):
            del buf[:1]
            self._state = BETWEEN
            return True
        if self._state == BETWEEN and first == ord("]"):
            self._state = DONE
            buf.clear()
            return False
        sample = bytes(buf[:40]).decode("utf-8", "replace")
        if self._state == START:
            raise ArrayError(f"not JSON: {sample!r}", not_json=True)
        raise ArrayError(f"unexpected {sample!r} between responses")

    def _element_end(self) -> int | None:
        """The index just past the element's closing brace, or None while it is incomplete."""
        buf = self._buf
        pos = self._scan
        while True:
            m = _TOKENS.search(buf, pos)
            if m is None:
                self._scan = len(buf)
                return None
            i = m.start()
            c = buf[i]
            if self._in_string:
                if c == ord("\\"):
                    if i + 1 >= len(buf):  # the escaped byte has not arrived yet
                        self._scan = i
                        return None
                    pos = i + 2
                    continue
                if c == ord('"'):
                    self._in_string = False
            elif c == ord('"'):
                self._in_string = True
            elif c in b"{[":
                self._depth += 1
            elif c in b"}]":
                self._depth -= 1
                if self._depth == 0:
                    return i + 1
            pos = i + 1
