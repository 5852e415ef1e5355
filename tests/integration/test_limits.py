"""Hostile requests get clear errors and the server keeps serving."""
import grpc
import pytest


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def ld(field, payload):
    """A length-delimited field."""
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def nested_struct(depth):
    """{"a": {"a": ... {} }} as google.protobuf.Struct wire bytes (the release before's
    document), built inside out (no recursion)."""
    s = b""
    for _ in range(depth):
        value = ld(5, s)                      # Value.struct_value
        entry = ld(1, b"a") + ld(2, value)    # map entry key, value
        s = ld(1, entry)                      # Struct.fields
    return s


def nested_bson(depth):
    """{"a": {"a": ... {} }} as BSON, built inside out (no recursion)."""
    doc = b"\x05\x00\x00\x00\x00"
    for _ in range(depth):
        body = b"\x03a\x00" + doc  # element: type 3 (document), key "a", value
        doc = (len(body) + 5).to_bytes(4, "little") + body + b"\x00"
    return doc


def insert_one(name, bson_doc):
    """InsertOneRequest{collection, document (102): Document{bson (1)}} wire bytes."""
    return ld(1, name) + ld(102, ld(1, bson_doc))


@pytest.mark.parametrize("depth", [150, 10000])
def test_deep_nesting_is_refused_not_a_crash(pb, channel, auth, depth):
    insert = channel.unary_unary("/nexadb.v1.DocumentService/InsertOne")
    with pytest.raises(grpc.RpcError) as e:
        insert(insert_one(b"deep", nested_bson(depth)), metadata=auth, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nested deeper than 100 levels" in e.value.details()
    # a Struct of the release before, nested as deep, is an unknown field: refused unread
    with pytest.raises(grpc.RpcError) as e:
        insert(ld(1, b"deep") + ld(2, nested_struct(depth)), metadata=auth, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "field number 2 is not part of nexadb.v1.InsertOneRequest" in e.value.details()
    h = pb.health_pb2_grpc.HealthStub(channel).Check(pb.health_pb2.HealthCheckRequest(), timeout=5)
    assert h.status == pb.health_pb2.HealthCheckResponse.SERVING


def test_nesting_within_the_document_limit_is_stored(pb, channel, auth):
    insert = channel.unary_unary("/nexadb.v1.DocumentService/InsertOne")
    insert(insert_one(b"nested_ok", nested_bson(98)), metadata=auth, timeout=10)


def test_truncated_wire_bytes_are_invalid_argument(channel, auth):
    insert = channel.unary_unary("/nexadb.v1.DocumentService/InsertOne")
    good = insert_one(b"c", nested_bson(3))
    for cut in (1, 4, len(good) - 1):  # inside a tag, before a length, inside a field
        with pytest.raises(grpc.RpcError) as e:
            insert(good[:cut], metadata=auth, timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
