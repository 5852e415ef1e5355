"""Dict <-> Struct conversion, without a server."""
import math

import pytest
from google.protobuf import struct_pb2

from nexadb._convert import floats, from_struct, to_struct


def roundtrip(d):
    wire = struct_pb2.Struct()
    wire.ParseFromString(to_struct(d).SerializeToString())
    return from_struct(wire)


def test_types_roundtrip():
    d = {"s": "x", "i": 28, "neg": -5, "f": 2.5, "t": True, "fa": False, "n": None,
         "arr": [1, "a", [2, 3], {"k": 1.5}], "empty_list": [], "empty_obj": {},
         "nested": {"deep": {"deeper": [None, True]}}}
    out = roundtrip(d)
    assert out == d
    assert type(out["i"]) is int and type(out["f"]) is float
    assert type(out["t"]) is bool and type(out["arr"][0]) is int
    assert out["empty_list"] == [] and out["empty_obj"] == {}


def test_integral_float_comes_back_int_and_limits():
    out = roundtrip({"a": 3.0, "big": 2**53, "nbig": -(2**53), "over": 1e300})
    assert out["a"] == 3 and type(out["a"]) is int
    assert out["big"] == 2**53 and type(out["big"]) is int
    assert out["nbig"] == -(2**53)
    assert type(out["over"]) is float  # integral but beyond 2**53: stays a double


def test_int_beyond_2_53_refused():
    with pytest.raises(ValueError, match=r"a\.b"):
        to_struct({"a": {"b": 2**53 + 1}})


def test_non_json_values_refused_with_path():
    with pytest.raises(TypeError, match=r"x\[1\]"):
        to_struct({"x": [1, object()]})
    with pytest.raises(TypeError, match="not a string"):
        to_struct({1: "a"})
    with pytest.raises(TypeError, match="must be a dict"):
        to_struct(["not", "a", "dict"])


def test_tuple_is_a_list_and_nan_passes_through():
    out = roundtrip({"t": (1, 2), "nan": float("nan")})
    assert out["t"] == [1, 2]
    assert math.isnan(out["nan"])


def test_floats():
    assert floats((1, 2.5)) == [1.0, 2.5]
    with pytest.raises(TypeError, match="vector"):
        floats([1, "x"])


def test_response_messages_become_plain_dicts():
    from nexadb.client import _message_dict
    from nexadb.v1 import admin_pb2, common_pb2

    info = _message_dict(common_pb2.CollectionInfo(
        name="v", count=3, dimensions=4, metric=common_pb2.VECTOR_METRIC_L2,
        kind=common_pb2.CollectionInfo.KIND_VECTORS))
    assert info["name"] == "v" and info["count"] == 3 and info["dimensions"] == 4
    assert info["metric"] == "l2" and info["kind"] == "vectors"
    st = admin_pb2.StatsResponse(rss_bytes=5)
    st.engine.levels.add(level=1, files=2, bytes=3)
    d = _message_dict(st)
    assert d["engine"]["levels"] == [{"level": 1, "files": 2, "bytes": 3}]
    assert d["collections"] == [] and d["rss_bytes"] == 5


def test_wire_encoding_keeps_dict_order_and_matches_protobuf():
    from nexadb._wire import Request, struct_bytes
    from nexadb.v1 import document_pb2
    d = {f"k{i:02d}": i for i in range(30, 0, -1)}
    d["nested"] = {"z": 1, "a": [{"y": None, "b": True}]}
    b = struct_bytes(d, "doc")
    positions = [b.index(k.encode()) for k in d]
    assert positions == sorted(positions)  # entries in the dict's order
    parsed = struct_pb2.Struct()
    parsed.ParseFromString(b)
    assert from_struct(parsed) == d
    assert parsed.SerializeToString(deterministic=True) == \
        to_struct(d).SerializeToString(deterministic=True)
    # a request: protobuf's encoding of the other fields plus the appended Struct fields
    req = Request(document_pb2.FindRequest(collection="c", limit=5)).struct("filter", {"a": 1})
    msg = document_pb2.FindRequest.FromString(bytes(req.buf))
    assert (msg.collection, msg.limit, from_struct(msg.filter)) == ("c", 5, {"a": 1})
    assert not msg.HasField("projection")
    empty = Request(document_pb2.UpdateRequest(id="x")).struct("update", None, required=True)
    assert document_pb2.UpdateRequest.FromString(bytes(empty.buf)).HasField("update")


def test_multi_key_sort_stage_goes_as_an_array():
    from nexadb.client import _ordered_sort
    assert _ordered_sort({"$sort": {"count": -1, "_id": 1}}) == {"$sort": [{"count": -1}, {"_id": 1}]}
    assert _ordered_sort({"$sort": {"count": -1}}) == {"$sort": {"count": -1}}
    assert _ordered_sort({"$match": {"a": 1, "b": 2}}) == {"$match": {"a": 1, "b": 2}}
