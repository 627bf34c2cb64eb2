"""Feast's Redis online-store layout, read without importing Feast.

Importing Feast took half of a serving worker's start (``python -X importtime``: 17 of 34 s of
imports at load 8, and it drags in pandas' IO, SQLAlchemy and cloud SDK stubs), for three small
things the request path needs. They are the store's on-disk format, which Feast keeps stable
across releases because existing stores must stay readable (Feast 0.67,
``entity_key_serialization_version: 3`` in feature_store.yaml):

* the **hash key** of an entity: the serialized entity key, then the project name;
* the **serialized entity key**: ``u32`` count of join keys; per key, sorted by name, ``u32``
  value type STRING (2), ``u32`` length, the UTF-8 name; then per value in the same order,
  ``u32`` value type, ``u32`` length, the bytes (INT64 (4): 8 bytes, little-endian, signed);
* the **hash field** of a feature: unsigned MurmurHash3 x86 32-bit (seed 0) of
  ``"view:feature"``, 4 bytes little-endian;
* a **value**: a ``feast.types.Value`` protobuf, a oneof whose scalar members this repo writes
  (int64 field 4 and double field 5; the others are decoded too).

tests/unit/test_feast_wire.py checks each against Feast's own functions, and
tests/integration/test_feast_parity.py reads every materialized entity both ways.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

import mmh3

STRING, INT64 = 2, 4  # feast.ValueType numbers
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_F32 = struct.Struct("<f")
_NULL_FIELD = 19  # Value.null_val: an explicit null


def entity_key(join_keys: Sequence[str], values: Sequence[int]) -> bytes:
    """Serialized entity key (version 3) of int64 entity values, keys sorted by name."""
    pairs = sorted(zip(join_keys, values))
    out = [_U32.pack(len(pairs))]
    for name, _ in pairs:
        raw = name.encode()
        out += [_U32.pack(STRING), _U32.pack(len(raw)), raw]
    for _, value in pairs:
        out += [_U32.pack(INT64), _U32.pack(8), _I64.pack(value)]
    return b"".join(out)


def redis_key(project: str, join_keys: Sequence[str], values: Sequence[int]) -> bytes:
    """The Redis hash that holds one entity's features of every view keyed like it."""
    return entity_key(join_keys, values) + project.encode()


def field(view: str, feature: str) -> bytes:
    """The hash field of one feature of one view."""
    return _U32.pack(mmh3.hash(f"{view}:{feature}", signed=False))


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(raw) or shift > 63:
            raise ValueError("truncated or oversized varint in a Feast value")
        byte = raw[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7


def value(raw: bytes | None) -> float:
    """A Feast ``Value`` as a float; NaN when absent, unset or null. A kind that is not a
    number (a string, a list) raises ValueError: the models read numbers only."""
    if not raw:
        return math.nan
    tag, pos = _varint(raw, 0)
    number, wire = tag >> 3, tag & 7
    if number == 5 and wire == 1:  # double_val
        return _F64.unpack_from(raw, pos)[0]
    if number == 6 and wire == 5:  # float_val
        return float(_F32.unpack_from(raw, pos)[0])
    if number in (3, 4, 7, 8) and wire == 0:  # int32, int64, bool, unix_timestamp
        number_value, _ = _varint(raw, pos)
        return float(number_value - (1 << 64) if number_value >> 63 else number_value)
    if number == _NULL_FIELD:
        return math.nan
    raise ValueError(f"Feast value field {number} (wire type {wire}) is not a number")
