"""Python values <-> nexadb.v1.Document (BSON), without a server."""
import datetime

import bson
import pytest

from nexadb._convert import floats, from_document, to_document


def roundtrip(d):
    return from_document(to_document(d))


def test_types_and_order_roundtrip():
    when = datetime.datetime(2030, 1, 2, 3, 4, 5, 6000, tzinfo=datetime.timezone.utc)
    d = {"s": "x", "i": 28, "big": 2**62, "neg": -5, "f": 2.5, "t": True, "fa": False, "n": None,
         "when": when, "raw": b"\x00\x01", "arr": [1, "a", [2, 3], {"k": 1.5}], "empty_list": [],
         "empty_obj": {}, "nested": {"deep": {"deeper": [None, True]}}}
    out = roundtrip(d)
    assert out == d and list(out) == list(d)
    assert type(out["i"]) is int and type(out["f"]) is float and type(out["t"]) is bool
    assert out["when"].tzinfo is not None and out["raw"] == b"\x00\x01"


def test_ints_use_the_narrowest_bson_type():
    raw = to_document({"a": 1, "b": 2**40}).bson
    assert raw[4] == 0x10 and raw.index(b"b\x00") - 1 == raw.index(b"\x12")  # int32, then int64


def test_refusals_name_the_input():
    with pytest.raises(ValueError, match="filter"):
        to_document({"a": {"b": 2**64}}, "filter")
    with pytest.raises(TypeError, match="query must be a dict"):
        to_document([1], "query")
    with pytest.raises(TypeError, match="update is required"):
        to_document(None, "update", required=True)
    with pytest.raises(TypeError, match="document"):
        to_document({"a": object()})
    assert to_document(None) is None
    assert from_document(to_document({})) == {}


def test_tuples_are_arrays_and_binary_subtypes_survive():
    uuid4 = bson.Binary(b"\x01" * 16, 4)
    out = roundtrip({"t": (1, 2), "u": uuid4})
    assert out["t"] == [1, 2] and out["u"] == uuid4


def test_floats():
    assert floats((1, 2.5)) == [1.0, 2.5]
    with pytest.raises(TypeError, match="vector"):
        floats(["x"])


def test_a_top_level_id_keeps_its_place():
    """bson.encode moves a top-level _id first; a sort {"k": 1, "_id": 1} must not change."""
    assert list(roundtrip({"k": 1, "_id": 1})) == ["k", "_id"]
    assert list(roundtrip({"z": {"_id": 2, "a": 1}, "_id": "x"})) == ["z", "_id"]
