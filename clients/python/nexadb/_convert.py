"""Plain Python values <-> google.protobuf.Struct, the wire form of a document.

A Struct number is a double. Going out, int and float both become number_value; an
int outside +-2**53 is refused (a double would silently round it). Coming back, a
number that is integral and within +-2**53 is returned as int, so {'age': 28} reads
back as 28 (the database stores it as an integer, see DESIGN.md "Numbers").
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Sequence

from google.protobuf import struct_pb2

MAX_SAFE_INT = 2**53


def _fill_value(v: struct_pb2.Value, x: Any, path: str) -> None:
    if x is None:
        v.null_value = struct_pb2.NULL_VALUE
    elif isinstance(x, bool):  # before int: bool is an int subclass
        v.bool_value = x
    elif isinstance(x, int):
        if not -MAX_SAFE_INT <= x <= MAX_SAFE_INT:
            raise ValueError(f"{path}: integer {x} is outside +-2**53 and cannot be stored exactly")
        v.number_value = float(x)
    elif isinstance(x, float):
        v.number_value = x
    elif isinstance(x, str):
        v.string_value = x
    elif isinstance(x, Mapping):
        _fill_struct(v.struct_value, x, path)
    elif isinstance(x, (list, tuple)):
        lv = v.list_value
        lv.SetInParent()  # an empty list must still be a list, not an unset value
        for i, item in enumerate(x):
            _fill_value(lv.values.add(), item, f"{path}[{i}]")
    else:
        raise TypeError(f"{path}: {type(x).__name__} is not a JSON value "
                        "(use dict, list, str, int, float, bool or None)")


def _fill_struct(s: struct_pb2.Struct, d: Mapping, path: str) -> None:
    s.SetInParent()
    for k, x in d.items():
        if not isinstance(k, str):
            raise TypeError(f"{path}: key {k!r} is not a string")
        _fill_value(s.fields[k], x, f"{path}.{k}" if path else k)


def to_struct(d: Mapping | None, what: str = "document") -> struct_pb2.Struct:
    """A new Struct message holding d (None gives an empty Struct). Requests do not use it:
    serializing a Struct message loses d's key order, so _wire encodes them instead; the
    tests use it as the reference that _wire's bytes must parse back to."""
    s = struct_pb2.Struct()
    if d is None:
        return s
    if not isinstance(d, Mapping):
        raise TypeError(f"{what} must be a dict, not {type(d).__name__}")
    _fill_struct(s, d, "")
    return s


def from_value(v: struct_pb2.Value) -> Any:
    kind = v.WhichOneof("kind")
    if kind == "number_value":
        n = v.number_value
        if math.isfinite(n) and n.is_integer() and -MAX_SAFE_INT <= n <= MAX_SAFE_INT:
            return int(n)
        return n
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "struct_value":
        return from_struct(v.struct_value)
    if kind == "list_value":
        return [from_value(x) for x in v.list_value.values]
    return None  # null_value, or unset


def from_struct(s: struct_pb2.Struct) -> Dict[str, Any]:
    return {k: from_value(v) for k, v in s.fields.items()}


def floats(vec: Sequence[float], what: str = "vector") -> List[float]:
    """A list of floats from any sequence of numbers (list, tuple, numpy array...)."""
    try:
        return [float(x) for x in vec]
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what} must be a sequence of numbers: {e}") from None
