"""Request ids and the access log (issue 16): every call gets an id (the client's x-request-id
when it is a sane one), sent back as x-request-id on both transports, carried by the lines
logged for the call, and one "call" line at info level per call with method, code, duration
and bytes."""
import re
import time

import grpc
import requests


def wait_for(server, pred, timeout=5):
    end = time.time() + timeout
    while time.time() < end:
        found = [r for r in list(server.lines) if pred(r)]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("no such log line")


def test_grpc_id_echoed_and_in_the_access_line(server_factory, pb):
    s = server_factory(extra_args=["--log-level", "debug"]).start()
    ch = grpc.insecure_channel(s.target)
    stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
    doc = pb.doc({"name": "Ada"})
    _, call = stub.InsertOne.with_call(pb.document_pb2.InsertOneRequest(collection="u", document=doc),
                                       metadata=(("x-api-key", s.api_key), ("x-request-id", "trace-42.a:b_c")),
                                       timeout=10)
    assert dict(call.initial_metadata())["x-request-id"] == "trace-42.a:b_c"
    (line,) = wait_for(s, lambda r: r.get("msg") == "call" and r.get("request_id") == "trace-42.a:b_c")
    assert line["level"] == "info" and line["transport"] == "grpc"
    assert line["method"] == "/nexadb.v1.DocumentService/InsertOne" and line["code"] == "OK"
    assert line["bytes_in"] > 0 and line["bytes_out"] > 0 and line["ms"] >= 0

    # an error's own line carries the id too
    try:
        stub.Get(pb.document_pb2.GetRequest(collection="u", id="missing"),
                 metadata=(("x-api-key", s.api_key), ("x-request-id", "get-missing")), timeout=10)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND
        assert dict(e.initial_metadata())["x-request-id"] == "get-missing"
    failed = wait_for(s, lambda r: r.get("msg") == "call failed" and r.get("request_id") == "get-missing")
    assert failed[0]["method"] == "/nexadb.v1.DocumentService/Get"
    (access,) = wait_for(s, lambda r: r.get("msg") == "call" and r.get("request_id") == "get-missing")
    assert access["code"] == "NOT_FOUND"
    ch.close()


def test_ids_are_made_when_missing_or_unfit(server_factory, pb):
    s = server_factory().start()
    ch = grpc.insecure_channel(s.target)
    stub = pb.admin_pb2_grpc.AdminServiceStub(ch)
    ids = set()
    for given in (None, "has space", "x" * 65, "semi;colon"):
        md = [] if given is None else [("x-request-id", given)]
        _, call = stub.Status.with_call(pb.admin_pb2.StatusRequest(), metadata=md, timeout=10)
        rid = dict(call.initial_metadata())["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{16}", rid), rid
        ids.add(rid)
    assert len(ids) == 4
    ch.close()


def test_rest_id_echoed_and_in_the_access_line(server_factory):
    s = server_factory().start()
    r = requests.post(f"{s.http_base}/collections/u", json={"name": "Ada"},
                      headers={"X-API-Key": s.api_key, "X-Request-Id": "rest-1"}, timeout=10)
    assert r.status_code == 200 and r.headers["X-Request-Id"] == "rest-1"
    (line,) = wait_for(s, lambda rec: rec.get("msg") == "call" and rec.get("request_id") == "rest-1")
    assert line["transport"] == "http" and line["code"] == "OK"
    assert line["method"] == "/nexadb.v1.DocumentService/InsertOne"
    assert line["bytes_in"] == len(r.request.body) and line["bytes_out"] == len(r.content)
    r = requests.get(f"{s.http_base}/no/such/route", timeout=10)
    rid = r.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{16}", rid)
    (line,) = wait_for(s, lambda rec: rec.get("msg") == "call" and rec.get("request_id") == rid)
    assert line["method"] == "unknown" and line["code"] != "OK"


def test_no_access_log_leaves_the_line_out_and_keeps_the_id(server_factory, pb):
    s = server_factory(extra_args=["--no-access-log"]).start()
    ch = grpc.insecure_channel(s.target)
    _, call = pb.admin_pb2_grpc.AdminServiceStub(ch).Status.with_call(
        pb.admin_pb2.StatusRequest(), metadata=[("x-request-id", "quiet")], timeout=10)
    assert dict(call.initial_metadata())["x-request-id"] == "quiet"
    time.sleep(0.3)
    assert not [r for r in list(s.lines) if r.get("msg") == "call"]
    ch.close()
