"""Order-preserving protobuf encoding of Struct fields in requests.

A google.protobuf.Struct is a protobuf map, and Python's protobuf runtime (upb) writes map
entries in a per-process random order. The server keeps the wire order of keys: it is the
stored key order of a document, and it is what makes a compound sort mean anything
({'$sort': {'count': -1, '_id': 1}} sorts by count first). So Struct-valued fields of requests
are encoded here, by hand, in the dict's own order, and appended to the rest of the request as
serialized by protobuf (protobuf parsing merges concatenated encodings of one message, and
appends repeated fields in order).

Wire format used (protobuf encoding spec): a field is a varint key (number << 3 | wire type)
then its payload; wire type 0 varint, 1 fixed 64-bit little-endian, 2 length-delimited.
  Struct    { map<string, Value> fields = 1; }  each entry: {string key = 1; Value value = 2}
  Value     { NullValue null_value = 1; double number_value = 2; string string_value = 3;
              bool bool_value = 4; Struct struct_value = 5; ListValue list_value = 6; }
  ListValue { repeated Value values = 1; }
The checks are those of _convert.to_struct: JSON values only, ints within +-2**53.
"""
from __future__ import annotations

import struct as _struct
from typing import Any, Iterable, List, Mapping, Optional

from ._convert import MAX_SAFE_INT


def _varint(n: int, out: bytearray) -> None:
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return


def _len_field(field: int, payload: bytes, out: bytearray) -> None:
    _varint(field << 3 | 2, out)
    _varint(len(payload), out)
    out += payload


_DOUBLE_KEY = bytes([2 << 3 | 1])       # Value.number_value, fixed64
_NULL = bytes([1 << 3 | 0, 0])          # Value.null_value = NULL_VALUE (0)
_TRUE = bytes([4 << 3 | 0, 1])          # Value.bool_value
_FALSE = bytes([4 << 3 | 0, 0])
_pack_double = _struct.Struct("<d").pack


def _value(x: Any, path: str) -> bytes:
    if x is None:
        return _NULL
    if x is True:
        return _TRUE
    if x is False:
        return _FALSE
    if isinstance(x, int):
        if not -MAX_SAFE_INT <= x <= MAX_SAFE_INT:
            raise ValueError(f"{path}: integer {x} is outside +-2**53 and cannot be stored exactly")
        return _DOUBLE_KEY + _pack_double(float(x))
    if isinstance(x, float):
        return _DOUBLE_KEY + _pack_double(x)
    out = bytearray()
    if isinstance(x, str):
        _len_field(3, x.encode("utf-8"), out)
    elif isinstance(x, Mapping):
        _len_field(5, _struct_body(x, path), out)
    elif isinstance(x, (list, tuple)):
        lst = bytearray()
        for i, item in enumerate(x):
            _len_field(1, _value(item, f"{path}[{i}]"), lst)
        _len_field(6, bytes(lst), out)
    else:
        raise TypeError(f"{path}: {type(x).__name__} is not a JSON value "
                        "(use dict, list, str, int, float, bool or None)")
    return bytes(out)


def _struct_body(d: Mapping, path: str) -> bytes:
    out = bytearray()
    for k, x in d.items():
        if not isinstance(k, str):
            raise TypeError(f"{path}: key {k!r} is not a string")
        entry = bytearray()
        _len_field(1, k.encode("utf-8"), entry)
        _len_field(2, _value(x, f"{path}.{k}" if path else k), entry)
        _len_field(1, bytes(entry), out)
    return bytes(out)


def struct_bytes(d: Mapping, what: str) -> bytes:
    """The encoded Struct message for d, keys in d's order."""
    if not isinstance(d, Mapping):
        raise TypeError(f"{what} must be a dict, not {type(d).__name__}")
    return _struct_body(d, "")


class Request:
    """Serialized request bytes: protobuf's encoding of the message's other fields, then
    Struct fields appended in order. Passed to a gRPC call whose serializer is serialize()."""

    __slots__ = ("buf", "_fields")

    def __init__(self, base: Any):
        self.buf = bytearray(base.SerializeToString())
        self._fields = base.DESCRIPTOR.fields_by_name

    def struct(self, name: str, d: Optional[Mapping], what: str = "",
               required: bool = False) -> "Request":
        """Appends field `name` holding d as a Struct (skipped when d is None, unless
        required, which sends an empty Struct)."""
        field = self._fields[name].number
        if d is None:
            if required:
                _len_field(field, b"", self.buf)
            return self
        _len_field(field, struct_bytes(d, what or name), self.buf)
        return self

    def structs(self, name: str, ds: Iterable[Mapping], what: str = "") -> "Request":
        """Appends a repeated Struct field, in order."""
        field = self._fields[name].number
        for i, d in enumerate(ds):
            _len_field(field, struct_bytes(d, f"{what or name}[{i}]"), self.buf)
        return self

    def message(self, name: str, sub: "Request") -> "Request":
        """Appends one element of a repeated (or a singular) message field."""
        _len_field(self._fields[name].number, bytes(sub.buf), self.buf)
        return self


def serialize(req: Any) -> bytes:
    """The request serializer for calls: a Request as built, or a protobuf message."""
    if isinstance(req, Request):
        return bytes(req.buf)
    return req.SerializeToString()


__all__: List[str] = ["Request", "serialize", "struct_bytes"]
