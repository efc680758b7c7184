"""AMF0: the value encoding of RTMP commands and FLV script data (numbers, strings, objects, arrays)."""

from __future__ import annotations

import struct
from typing import Any

NUMBER, BOOLEAN, STRING, OBJECT, NULL, UNDEFINED, REFERENCE, ECMA_ARRAY, OBJECT_END, STRICT_ARRAY, DATE, \
    LONG_STRING = 0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12
# Nesting deeper than this is hostile input, not a real encoder's metadata.
MAX_DEPTH = 32
MAX_ITEMS = 65536


class AmfError(ValueError):
    """The bytes are not valid AMF0."""


class EcmaArray(dict):
    """An AMF0 ECMA array (onMetaData's body); encodes back as an array, not an object."""


class _Decoder:
    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise AmfError(f"truncated: needed {n} bytes at offset {self.pos}")
        chunk = bytes(self.data[self.pos:end])
        self.pos = end
        return chunk

    def string(self, size_bytes: int = 2) -> str:
        size = int.from_bytes(self.take(size_bytes), "big")
        return self.take(size).decode("utf-8", errors="replace")

    def properties(self, target: dict, depth: int) -> dict:
        for _ in range(MAX_ITEMS):
            key = self.string()
            if not key and self.data[self.pos:self.pos + 1] == bytes([OBJECT_END]):
                self.pos += 1
                return target
            target[key] = self.value(depth + 1)
        raise AmfError("object has too many properties")

    def value(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise AmfError("nested too deeply")
        marker = self.take(1)[0]
        if marker == NUMBER:
            return struct.unpack(">d", self.take(8))[0]
        if marker == BOOLEAN:
            return self.take(1)[0] != 0
        if marker == STRING:
            return self.string()
        if marker == LONG_STRING:
            return self.string(4)
        if marker == OBJECT:
            return self.properties({}, depth)
        if marker == ECMA_ARRAY:
            self.take(4)  # the count is a hint only; encoders get it wrong, the end marker is what counts
            return self.properties(EcmaArray(), depth)
        if marker == STRICT_ARRAY:
            count = int.from_bytes(self.take(4), "big")
            if count > MAX_ITEMS:
                raise AmfError(f"strict array of {count} items is too long")
            return [self.value(depth + 1) for _ in range(count)]
        if marker in (NULL, UNDEFINED):
            return None
        if marker == REFERENCE:
            self.take(2)
            return None
        if marker == DATE:
            ms = struct.unpack(">d", self.take(8))[0]
            self.take(2)  # time zone, unused by everyone
            return ms
        raise AmfError(f"unsupported AMF0 marker {marker}")


def decode_all(data: bytes) -> list[Any]:
    """Every AMF0 value in `data`, in order (a command is name, transaction id, then arguments)."""
    dec = _Decoder(data)
    values = []
    while dec.pos < len(dec.data):
        values.append(dec.value())
    return values


def _encode_string_body(text: str) -> bytes:
    raw = text.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw


def _encode_properties(items: dict) -> bytes:
    out = bytearray()
    for key, value in items.items():
        out += _encode_string_body(str(key)) + encode(value)
    return bytes(out) + b"\x00\x00" + bytes([OBJECT_END])


def encode(value: Any) -> bytes:
    """One value as AMF0."""
    if value is None:
        return bytes([NULL])
    if isinstance(value, bool):
        return bytes([BOOLEAN, 1 if value else 0])
    if isinstance(value, int | float):
        return bytes([NUMBER]) + struct.pack(">d", float(value))
    if isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) > 0xFFFF:
            return bytes([LONG_STRING]) + len(raw).to_bytes(4, "big") + raw
        return bytes([STRING]) + len(raw).to_bytes(2, "big") + raw
    if isinstance(value, EcmaArray):
        return bytes([ECMA_ARRAY]) + len(value).to_bytes(4, "big") + _encode_properties(value)
    if isinstance(value, dict):
        return bytes([OBJECT]) + _encode_properties(value)
    if isinstance(value, list | tuple):
        return bytes([STRICT_ARRAY]) + len(value).to_bytes(4, "big") + b"".join(encode(v) for v in value)
    raise TypeError(f"cannot encode {type(value).__name__} as AMF0")


def encode_all(*values: Any) -> bytes:
    """Several values back to back, as in a command message."""
    return b"".join(encode(v) for v in values)
