"""gRPC server reflection (issue 16): stock clients list and call the API without the protos.
grpcio-reflection's descriptor database (v1alpha) in the default suite; grpcurl (v1, built from
the Go module proxy into .cache/bin) in the slow one."""
import base64
import json
import os
import subprocess
import threading

import bson
import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from conftest import ROOT

def b64(data):
    return base64.b64encode(data).decode()


SERVICES = {"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection", "nexadb.v1.AdminService",
            "nexadb.v1.DocumentService", "nexadb.v1.VectorService"}
GRPCURL_VERSION = "v1.9.3"


class _Key(grpc.UnaryUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the API key to every call, reflection's included."""

    def __init__(self, key):
        self.md = (("x-api-key", key),)

    def _details(self, d):
        return d._replace(metadata=tuple(d.metadata or ()) + self.md)

    def intercept_unary_unary(self, cont, details, request):
        return cont(self._details(details), request)

    def intercept_stream_stream(self, cont, details, requests):
        return cont(self._details(details), requests)


def keyed_channel(server):
    return grpc.intercept_channel(grpc.insecure_channel(server.target), _Key(server.api_key))


def test_descriptor_database_lists_and_calls_without_protos(server_factory):
    s = server_factory().start()
    ch = keyed_channel(s)
    db = ProtoReflectionDescriptorDatabase(ch)
    assert set(db.get_services()) == SERVICES
    pool = descriptor_pool.DescriptorPool(db)

    def method(service, name):
        m = pool.FindServiceByName(service).FindMethodByName(name)
        req, resp = (message_factory.GetMessageClass(t) for t in (m.input_type, m.output_type))
        return req, ch.unary_unary(f"/{service}/{name}", request_serializer=req.SerializeToString,
                                   response_deserializer=resp.FromString)

    req, status = method("nexadb.v1.AdminService", "Status")
    assert status(req(), timeout=10).version
    req, insert = method("nexadb.v1.DocumentService", "InsertOne")
    # a document is BSON (nexadb.v1.Document), made here with pymongo's bson
    r = insert(json_format.ParseDict({"collection": "u", "document": {"bson": b64(bson.encode({"name": "Ada", "n": 3}))}},
                                     req()), timeout=10)
    req, get = method("nexadb.v1.DocumentService", "Get")
    got = get(json_format.ParseDict({"collection": "u", "id": r.document_id}, req()), timeout=10)
    assert bson.decode(got.document.bson)["name"] == "Ada"
    # comments travel too (grpcurl describe shows them)
    fd = pool.FindFileContainingSymbol("nexadb.v1.AdminService")
    assert fd.name == "nexadb/v1/admin.proto"
    ch.close()


def _stream(server, path, requests, metadata=None):
    ch = grpc.insecure_channel(server.target)
    call = ch.stream_stream(path, request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    try:
        return list(call(iter(requests), metadata=metadata or (("x-api-key", server.api_key),), timeout=10))
    finally:
        ch.close()


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_one_stream_answers_each_request_in_order(server_factory, version):
    s = server_factory().start()
    R = reflection_pb2.ServerReflectionRequest
    out = _stream(s, f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo", [
        R(list_services=""),
        R(file_containing_symbol="nexadb.v1.DocumentService.InsertOne"),
        R(file_containing_symbol="nexadb.v1.FindRequest"),
        R(file_by_filename="nexadb/v1/no_such.proto"),
        R(file_containing_symbol="nexadb.v1.NoSuchThing"),
        R(file_containing_extension=reflection_pb2.ExtensionRequest(containing_type="nexadb.v1.FindRequest",
                                                                    extension_number=100)),
        R(all_extension_numbers_of_type="nexadb.v1.FindRequest"),
    ])
    assert len(out) == 7
    assert {x.name for x in out[0].list_services_response.service} == SERVICES
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in out[1].file_descriptor_response.file_descriptor_proto]
    assert files[0].name == "nexadb/v1/document.proto"
    names = [f.name for f in files]
    assert len(names) == len(set(names))  # each file once
    # its imports come with it, transitively
    assert {"nexadb/v1/common.proto", "google/api/annotations.proto",
            "google/api/http.proto", "google/protobuf/descriptor.proto"} <= set(names)
    assert out[2].file_descriptor_response.file_descriptor_proto[0] == out[1].file_descriptor_response.file_descriptor_proto[0]
    for i in (3, 4, 5):
        assert out[i].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0], out[i]
    assert out[6].all_extension_numbers_response.base_type_name == "nexadb.v1.FindRequest"
    assert out[1].original_request.file_containing_symbol == "nexadb.v1.DocumentService.InsertOne"


def test_needs_a_key(server_factory):
    s = server_factory().start()
    with pytest.raises(grpc.RpcError) as e:
        _stream(s, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                [reflection_pb2.ServerReflectionRequest(list_services="")], metadata=(("x-api-key", "nope"),))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


def held_stream(server):
    """A reflection stream left open after its first answer, as an idle client leaves it:
    (channel, the stream's answers, an Event that lets the client finish)."""
    R = reflection_pb2.ServerReflectionRequest
    release = threading.Event()

    def held():
        yield R(list_services="")
        release.wait(20)

    ch = grpc.insecure_channel(server.target)
    answers = ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                               request_serializer=R.SerializeToString,
                               response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)(
        held(), metadata=(("x-api-key", server.api_key),), timeout=30)
    assert next(answers).list_services_response.service  # the stream is open and answered
    return ch, answers, release


def test_open_streams_are_bounded_so_idle_ones_cannot_take_every_worker(server_factory, pb):
    """A stream holds a worker while it waits for the client's next request: with --workers 4,
    one may be open; a second is refused at once, and the worker pool keeps serving calls."""
    s = server_factory(extra_args=["--workers", "4"]).start()
    R = reflection_pb2.ServerReflectionRequest
    ch, first, release = held_stream(s)
    with pytest.raises(grpc.RpcError) as e:
        _stream(s, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", [R(list_services="")])
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    stats = pb.admin_pb2_grpc.AdminServiceStub(ch).Stats(pb.admin_pb2.StatsRequest(),
                                                          metadata=(("x-api-key", s.api_key),), timeout=10)
    assert stats is not None  # a worker call is still served
    release.set()
    assert list(first) == []  # the client closed its side: the stream ends cleanly
    assert len(_stream(s, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", [R(list_services="")])) == 1
    ch.close()


def _grpcurl():
    """grpcurl at GRPCURL_VERSION in .cache/bin, built with `go install` the first time."""
    bindir = ROOT / ".cache/bin"
    exe, stamp = bindir / "grpcurl", bindir / "grpcurl.version"
    if exe.exists() and stamp.exists() and stamp.read_text().strip() == GRPCURL_VERSION:
        return str(exe)
    go = next((g for g in ("go", "/usr/local/go/bin/go") if subprocess.run(["sh", "-c", f"command -v {g}"],
                                                                         capture_output=True).returncode == 0), None)
    if go is None:
        pytest.skip("grpcurl is built with go install, and no Go toolchain was found")
    bindir.mkdir(parents=True, exist_ok=True)
    subprocess.run([go, "install", f"github.com/fullstorydev/grpcurl/cmd/grpcurl@{GRPCURL_VERSION}"], check=True,
                   env={**os.environ, "GOBIN": str(bindir), "CGO_ENABLED": "0"}, timeout=900)
    stamp.write_text(GRPCURL_VERSION + "\n")
    return str(exe)


@pytest.mark.slow
def test_grpcurl_lists_describes_and_calls(server_factory):
    exe = _grpcurl()
    s = server_factory().start()
    base = [exe, "-plaintext", "-H", f"x-api-key: {s.api_key}"]

    def run(*args):
        r = subprocess.run([*base, *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    assert set(run(s.target, "list").split()) == SERVICES
    assert "rpc InsertOne" in run(s.target, "describe", "nexadb.v1.DocumentService")
    doc = json.loads(run("-d", json.dumps({"collection": "u", "document": {"bson": b64(bson.encode({"a": 1}))}}), s.target,
                         "nexadb.v1.DocumentService/InsertOne"))
    got = json.loads(run("-d", json.dumps({"collection": "u", "id": doc["documentId"]}), s.target,
                         "nexadb.v1.DocumentService/Get"))
    assert bson.decode(base64.b64decode(got["document"]["bson"]))["a"] == 1
