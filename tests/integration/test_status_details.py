"""google.rpc.Status details (issue 16): a BadRequest field violation for INVALID_ARGUMENT that
names its field, RetryInfo when trying later may succeed; in the grpc-status-details-bin trailer
and in REST error bodies (with Retry-After)."""
import grpc
import pytest
import requests
from google.rpc import error_details_pb2, status_pb2
from grpc_reflection.v1alpha import reflection_pb2

from test_reflection import _stream, held_stream


def status_of(err):
    (raw,) = [v for k, v in err.trailing_metadata() if k == "grpc-status-details-bin"]
    st = status_pb2.Status.FromString(raw)
    assert st.code == err.code().value[0] and st.message == err.details()
    return st


def unpack(st, cls):
    found = [d for d in st.details if d.type_url == f"type.googleapis.com/{cls.DESCRIPTOR.full_name}"]
    if not found:
        return None
    out = cls()
    found[0].Unpack(out)
    return out


def test_grpc_bad_request_names_the_field(server_factory, pb):
    s = server_factory().start()
    ch = grpc.insecure_channel(s.target)
    stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
    with pytest.raises(grpc.RpcError) as e:
        stub.Get(pb.document_pb2.GetRequest(collection="u", id="alice\0-typo"), metadata=(("x-api-key", s.api_key),),
                 timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    br = unpack(status_of(e.value), error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in br.field_violations] == [("id", "must not contain a NUL byte (\\0)")]
    assert unpack(status_of(e.value), error_details_pb2.RetryInfo) is None
    # a failure with nothing more to say carries no details trailer
    with pytest.raises(grpc.RpcError) as e:
        stub.Get(pb.document_pb2.GetRequest(collection="u", id="missing"), metadata=(("x-api-key", s.api_key),),
                 timeout=10)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert not [k for k, _ in e.value.trailing_metadata() if k == "grpc-status-details-bin"]
    ch.close()


def test_grpc_retry_info_when_overloaded(server_factory):
    s = server_factory(extra_args=["--workers", "4"]).start()  # one reflection stream at a time
    R = reflection_pb2.ServerReflectionRequest
    ch, first, release = held_stream(s)
    with pytest.raises(grpc.RpcError) as e:
        _stream(s, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", [R(list_services="")])
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    ri = unpack(status_of(e.value), error_details_pb2.RetryInfo)
    assert ri is not None and ri.retry_delay.seconds >= 1
    release.set()
    list(first)
    ch.close()


def test_rest_error_bodies_carry_the_same_details(server_factory):
    s = server_factory().start()
    h = {"X-API-Key": s.api_key}
    r = requests.post(f"{s.http_base}/collections/u/query", json={"limit": "x"}, headers=h, timeout=10)
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == 3 and body["message"] == "limit: 'x' is not an integer"
    assert body["details"] == [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                                "fieldViolations": [{"field": "limit", "description": "'x' is not an integer"}]}]
    assert "Retry-After" not in r.headers
    r = requests.get(f"{s.http_base}/collections/u/missing", headers=h, timeout=10)
    assert r.status_code == 404 and r.json()["details"] == []
