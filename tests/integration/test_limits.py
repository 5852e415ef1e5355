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
    """{"a": {"a": ... {} }} as Struct wire bytes, built inside out (no recursion)."""
    s = b""
    for _ in range(depth):
        value = ld(5, s)                      # Value.struct_value
        entry = ld(1, b"a") + ld(2, value)    # map entry key, value
        s = ld(1, entry)                      # Struct.fields
    return s


@pytest.mark.parametrize("depth", [150, 10000])
def test_deep_nesting_is_refused_not_a_crash(pb, channel, auth, depth):
    insert = channel.unary_unary("/nexadb.v1.DocumentService/InsertOne")
    req = ld(1, b"deep") + ld(2, nested_struct(depth))
    with pytest.raises(grpc.RpcError) as e:
        insert(req, metadata=auth, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nested too deeply" in e.value.details()
    h = pb.health_pb2_grpc.HealthStub(channel).Check(pb.health_pb2.HealthCheckRequest(), timeout=5)
    assert h.status == pb.health_pb2.HealthCheckResponse.SERVING


def test_nesting_within_the_document_limit_is_stored(pb, channel, auth):
    insert = channel.unary_unary("/nexadb.v1.DocumentService/InsertOne")
    insert(ld(1, b"nested_ok") + ld(2, nested_struct(50)), metadata=auth, timeout=10)


def test_truncated_wire_bytes_are_invalid_argument(channel, auth):
    insert = channel.unary_unary("/nexadb.v1.DocumentService/InsertOne")
    good = ld(1, b"c") + ld(2, nested_struct(3))
    for cut in (1, 4, len(good) - 1):  # inside a tag, before a length, inside a field
        with pytest.raises(grpc.RpcError) as e:
            insert(good[:cut], metadata=auth, timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
