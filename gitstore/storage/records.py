"""A journal record's format (ADR 0014): one commit round, what it wrote and the refs it moved.

    header   magic "GSJ1", payload length, crc32 of the payload
    payload  the objects (id, form, kind, data) then the moves (checked, expected, new, ref)

A record is what the journal appends and replays, and what an owner ships to its replicas
(ADR 0016), byte for byte.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import pygit2

from gitstore.errors import ReplicaOutOfSync

__all__ = ["CONTENT", "KIND_NAMES", "LOOSE", "Move", "RecordObject", "decode_record", "encode", "read_records"]

_MAGIC = b"GSJ1"
_HEADER = struct.Struct(">4sII")  # magic, payload length, crc32 of the payload
_COUNT = struct.Struct(">I")
_OBJECT = struct.Struct(">20sBBI")  # id, form, kind, length of the data that follows
_MOVE = struct.Struct(">B20s20sH")  # checked, expected, new, length of the ref name that follows
_NONE = b"\0" * 20
# An object's data: the loose file's bytes as written (zlib), or its content (an object found
# already on disk, whose file this process did not write).
LOOSE, CONTENT = 0, 1
KIND_NAMES = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}


class Move(NamedTuple):
    """One ref move of a record. `checked`: replayed only where the ref holds `expected`
    (None: absent); unchecked moves (a bulk rewrite of packed-refs) are replayed as they are.
    `new` None deletes the ref."""

    ref: str
    expected: pygit2.Oid | None
    new: pygit2.Oid | None
    checked: bool = True


class RecordObject(NamedTuple):
    name: str
    form: int
    kind: int
    data: bytes


def encode(objects: Sequence[RecordObject], moves: Sequence[Move]) -> bytes:
    """One record: its header, then the objects and the moves."""
    parts = [_COUNT.pack(len(objects))]
    for obj in objects:
        parts += (_OBJECT.pack(bytes.fromhex(obj.name), obj.form, obj.kind, len(obj.data)), obj.data)
    parts.append(_COUNT.pack(len(moves)))
    for move in moves:
        ref = move.ref.encode()
        expected = move.expected.raw if move.expected is not None else _NONE
        new = move.new.raw if move.new is not None else _NONE
        parts += (_MOVE.pack(move.checked, expected, new, len(ref)), ref)
    payload = b"".join(parts)
    return _HEADER.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload


def _decode(payload: bytes) -> tuple[list[RecordObject], list[Move]]:
    (count,) = _COUNT.unpack_from(payload, 0)
    at = _COUNT.size
    objects = []
    for _ in range(count):
        raw, form, kind, length = _OBJECT.unpack_from(payload, at)
        at += _OBJECT.size
        objects.append(RecordObject(raw.hex(), form, kind, payload[at : at + length]))
        at += length
    (count,) = _COUNT.unpack_from(payload, at)
    at += _COUNT.size
    moves = []
    for _ in range(count):
        checked, expected, new, length = _MOVE.unpack_from(payload, at)
        at += _MOVE.size
        ref = payload[at : at + length].decode()
        at += length
        moves.append(Move(ref, _oid(expected), _oid(new), bool(checked)))
    return objects, moves


def _oid(raw: bytes) -> pygit2.Oid | None:
    return None if raw == _NONE else pygit2.Oid(raw=raw)


def read_records(path: str) -> Iterator[tuple[list[RecordObject], list[Move]]]:
    """The whole records of a log, in order. A torn or damaged record (a writer killed in
    its append, a power cut) is skipped: the next record starts at the next header whose
    checksum holds."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return
    at = 0
    while at + _HEADER.size <= len(data):
        magic, length, crc = _HEADER.unpack_from(data, at)
        start, end = at + _HEADER.size, at + _HEADER.size + length
        if magic == _MAGIC and end <= len(data) and zlib.crc32(data[start:end]) == crc:
            try:
                yield _decode(data[start:end])
                at = end
                continue
            except (struct.error, ValueError, UnicodeDecodeError):
                pass
        found = data.find(_MAGIC, at + 1)
        if found < 0:
            return
        at = found


def decode_record(record: bytes) -> tuple[list[RecordObject], list[Move]]:
    """The one record `record` must be, decoded; ReplicaOutOfSync if it is not."""
    if len(record) >= _HEADER.size:
        magic, length, crc = _HEADER.unpack_from(record, 0)
        payload = record[_HEADER.size :]
        if magic == _MAGIC and length == len(payload) and zlib.crc32(payload) == crc:
            try:
                return _decode(payload)
            except (struct.error, ValueError, UnicodeDecodeError):
                pass
    raise ReplicaOutOfSync("the record is damaged or truncated")
