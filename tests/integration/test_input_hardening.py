"""Issue 16, input: NUL bytes in strings, ambiguous HTTP framing.

NUL: a protobuf string becomes a C string in the server, so "alice\\0-typo"
used to name "alice" (a Delete of the one deleted the other). Every string
field of every method's request is now refused with INVALID_ARGUMENT naming
the field, over gRPC (the cases are generated from the descriptors, so a new
field is covered without editing this file) and REST (path, query and body).

Framing: a request whose body length two parsers could read differently
(Content-Length with Transfer-Encoding, two Content-Lengths, a malformed one)
is answered 400 and its connection closed, so a request hidden in its body
is never run.
"""
import json
import re
import socket
import urllib.parse

import grpc
import pytest
import requests

NUL = "a\x00b"


# ---- gRPC: every string field of every method -------------------------------------------

def _services(pb):
    return [pb.document_pb2.DESCRIPTOR.services_by_name["DocumentService"],
            pb.vector_pb2.DESCRIPTOR.services_by_name["VectorService"],
            pb.admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
            pb.health_pb2.DESCRIPTOR.services_by_name["Health"]]


def _cases(msg_desc, prefix=()):
    """(path, "string") for every string field reachable in msg_desc; path is a tuple of
    (field, repeated). Documents are BSON bytes, where a NUL inside a string is data (and a
    key cannot hold one), so they are not walked."""
    out = []
    for f in msg_desc.fields:
        rep = f.is_repeated  # a property in protobuf 6 (label is deprecated)
        step = prefix + ((f.name, rep),)
        if f.type == f.TYPE_STRING:
            out.append((step, "string"))
        elif f.type == f.TYPE_MESSAGE:
            if f.message_type.full_name.startswith("google.protobuf.") or \
                    f.message_type.full_name == "nexadb.v1.Document":
                continue
            else:
                out += _cases(f.message_type, step)
    return out


def _set(msg, path, kind):
    """Sets the string field at path in msg to one holding a NUL."""
    name, repeated = path[0]
    if len(path) == 1:
        if repeated:
            getattr(msg, name).append(NUL)
        else:
            setattr(msg, name, NUL)
        return
    target = getattr(msg, name).add() if repeated else getattr(msg, name)
    _set(target, path[1:], kind)


def _path_text(path):
    return ".".join(f"{n}[0]" if rep else n for n, rep in path)


def _all_cases(pb):
    cases = []
    for svc in _services(pb):
        for m in svc.methods:
            for path, kind in _cases(m.input_type):
                cases.append((svc, m, path, kind))
    return cases


def test_nul_in_every_grpc_string_field_is_refused(pb, server):
    from google.protobuf import message_factory
    cases = _all_cases(pb)
    covered_methods = {(s.name, m.name) for s, m, _, _ in cases}
    # the descriptors reach every method that takes a name (a guard against an empty walk)
    assert len(cases) >= 35, len(cases)
    for svc, name in [("DocumentService", "Delete"), ("DocumentService", "CreateIndex"),
                      ("DocumentService", "Find"), ("VectorService", "InsertVectors"),
                      ("VectorService", "Search"), ("Health", "Check")]:
        assert (svc, name) in covered_methods
    failures = []
    with grpc.insecure_channel(server.target) as ch:
        md = (("x-api-key", server.api_key),)
        for svc, m, path, kind in cases:
            cls = message_factory.GetMessageClass(m.input_type)
            req = cls()
            _set(req, path, kind)
            full = f"/{svc.full_name}/{m.name}"
            if m.server_streaming:
                call = ch.unary_stream(full, request_serializer=cls.SerializeToString,
                                       response_deserializer=lambda b: b)
            else:
                call = ch.unary_unary(full, request_serializer=cls.SerializeToString,
                                      response_deserializer=lambda b: b)
            where = f"{m.name} {_path_text(path)} ({kind})"
            try:
                r = call(req, metadata=md, timeout=10)
                if m.server_streaming:
                    for _ in r:
                        pass
                failures.append(f"{where}: accepted")
                continue
            except grpc.RpcError as e:
                code, det = e.code(), e.details() or ""
            if code != grpc.StatusCode.INVALID_ARGUMENT:
                failures.append(f"{where}: {code} {det}")
            elif not det.startswith(_path_text(path) + ":") or "NUL" not in det:
                failures.append(f"{where}: message does not name the field: {det!r}")
    assert not failures, "\n".join(failures)


def test_nul_id_no_longer_names_a_prefix(pb, server):
    """The issue's case: deleting "alice\\0-typo" deleted "alice"."""
    with grpc.insecure_channel(server.target) as ch:
        md = (("x-api-key", server.api_key),)
        docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
        doc = pb.doc({"_id": "alice", "age": 30})
        docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="nul_users", document=doc), metadata=md)
        for bad in (pb.document_pb2.DeleteRequest(collection="nul_users", id="alice\x00-typo"),
                    pb.document_pb2.DeleteRequest(collection="nul_users\x00x", id="alice")):
            with pytest.raises(grpc.RpcError) as ei:
                docs.Delete(bad, metadata=md)
            assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as ei:
            docs.Get(pb.document_pb2.GetRequest(collection="nul_users", id="alice\x00"), metadata=md)
        assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "id: must not contain a NUL byte" in ei.value.details()
        got = docs.Get(pb.document_pb2.GetRequest(collection="nul_users", id="alice"), metadata=md)
        assert pb.undoc(got.document)["age"] == 30
        # REST: %00 in the path and \u0000 in the body are refused the same way
        base = server.http_base
        h = {"X-API-Key": server.api_key}
        r = requests.delete(f"{base}/collections/nul_users/alice%00-typo", headers=h, timeout=10)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == 3 and "id" in r.json()["message"] and "NUL" in r.json()["message"]
        r = requests.get(f"{base}/collections/nul_users/alice", headers=h, timeout=10)
        assert r.status_code == 200 and r.json()["document"]["age"] == 30


# ---- REST: every route's path variables, query parameters and body strings -------------

def _routes(server):
    spec = requests.get(f"{server.http_base}/openapi.json", timeout=10).json()
    for path, item in spec["paths"].items():
        for verb, op in item.items():
            if verb in ("get", "post", "put", "delete", "patch"):
                yield path, verb.upper(), op


def _fill(template, bad_var=None):
    out = template
    for seg in template.split("/"):
        if seg.startswith("{") and seg.endswith("}"):
            var = seg[1:-1]
            out = out.replace(seg, "a%00b" if var == bad_var else "nul_rest", 1)
    return out


def test_nul_in_rest_path_variables_is_refused(server):
    h = {"X-API-Key": server.api_key, "Content-Type": "application/json"}
    failures, n = [], 0
    for template, verb, op in _routes(server):
        for seg in template.split("/"):
            if not (seg.startswith("{") and seg.endswith("}")):
                continue
            var = seg[1:-1]
            n += 1
            url = server.http_base + _fill(template, var)
            r = requests.request(verb, url, headers=h, data="{}", timeout=10)
            if r.status_code != 400 or "NUL" not in r.json().get("message", "") \
                    or var.split(".")[-1] not in r.json()["message"]:
                failures.append(f"{verb} {template} {{{var}}}: {r.status_code} {r.text[:200]}")
    assert n >= 20, n
    assert not failures, "\n".join(failures)


def _query_params(op):
    return [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]


def test_nul_in_rest_query_parameters_and_bodies_is_refused(server):
    h = {"X-API-Key": server.api_key, "Content-Type": "application/json"}
    failures, n = [], 0
    for template, verb, op in _routes(server):
        url = server.http_base + _fill(template)
        for name in _query_params(op):  # %00 anywhere, even in JSON text or a number, names the field
            n += 1
            r = requests.request(verb, f"{url}?{name}=a%00b", headers=h,
                                 data="{}" if verb != "GET" else None, timeout=10)
            msg = r.json().get("message", "") if r.headers.get("Content-Type") == "application/json" else ""
            if r.status_code != 400 or not msg.startswith(name + ":") or "NUL" not in msg:
                failures.append(f"{verb} {template}?{name}: {r.status_code} {r.text[:200]}")
    # bodies: a NUL in a name, a key and a value (json_pb refuses \u0000 anywhere)
    for path, body in [
        ("/collections/nul_rest", {"name": NUL}),
        ("/collections/nul_rest", {NUL: 1}),
        ("/collections/nul_rest/query", {"query": {NUL: 1}}),
        ("/collections/nul_rest/query", {"sort": [{"field": NUL}]}),
        ("/vector/nul_rest/search", {"vector": [1.0], "filter": {"a": NUL}}),
    ]:
        n += 1
        r = requests.post(server.http_base + path, headers=h, data=json.dumps(body), timeout=10)
        if r.status_code != 400 or "\\u0000" not in r.json().get("message", ""):
            failures.append(f"POST {path} {body!r}: {r.status_code} {r.text[:200]}")
    r = requests.get(server.http_base + _fill("/collections/{c}") + '?query={"a":"x%00"}', headers=h, timeout=10)
    assert r.status_code == 400 and r.json()["message"].startswith("query:"), r.text
    assert n >= 12, n
    assert not failures, "\n".join(failures)


# ---- HTTP framing (raw sockets) -----------------------------------------------------------

def _exchange(server, raw: bytes, wait=3.0):
    """Sends raw bytes; returns (everything received until the server closes or
    goes quiet, whether it closed)."""
    s = socket.create_connection(("127.0.0.1", server.http_port), timeout=wait)
    s.sendall(raw)
    got, closed = b"", False
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            got += chunk
    except socket.timeout:
        pass
    finally:
        s.close()
    return got, closed


def _smuggle(server, headers: str):
    """A POST whose headers are ambiguous about the body, with a second request
    hidden in the body: deleting a document that must survive."""
    hidden = (f"DELETE /collections/smuggle/victim HTTP/1.1\r\nHost: x\r\n"
              f"X-API-Key: {server.api_key}\r\nContent-Length: 0\r\n\r\n")
    body = "0\r\n\r\n" + hidden
    return (f"POST /collections/smuggle/query HTTP/1.1\r\nHost: x\r\nX-API-Key: {server.api_key}\r\n"
            f"Content-Type: application/json\r\n{headers}\r\n" + body).encode(), len(body)


@pytest.mark.parametrize("headers", [
    "Content-Length: {n}\r\nTransfer-Encoding: chunked\r\n",
    "Transfer-Encoding: chunked\r\nContent-Length: {n}\r\n",
    "Content-Length: {n}\r\nContent-Length: {n}\r\n",
    "Content-Length: 5\r\nContent-Length: {n}\r\n",
    "Content-Length: {n}, {n}\r\n",
    "Content-Length: +{n}\r\n",
    "Content-Length: 0x10\r\n",
    "Content-Length: -1\r\n",
    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    "Transfer-Encoding: gzip, chunked\r\n",
    "Transfer-Encoding: xchunked\r\n",
], ids=["cl-te", "te-cl", "cl-cl", "cl-cl-differ", "cl-list", "cl-plus", "cl-hex", "cl-negative",
        "te-te", "te-gzip-chunked", "te-unknown"])
def test_ambiguous_framing_is_refused_and_closed(server, headers):
    base = server.http_base
    h = {"X-API-Key": server.api_key}
    requests.post(f"{base}/collections/smuggle", headers=h, json={"_id": "victim", "v": 1}, timeout=10)
    assert requests.get(f"{base}/collections/smuggle/victim", headers=h, timeout=10).status_code == 200
    raw, n = _smuggle(server, "")
    raw, n = _smuggle(server, headers.format(n=n))
    got, closed = _exchange(server, raw)
    codes = re.findall(rb"HTTP/1\.[01] (\d{3}) ", got)
    # only 400s: the hidden DELETE would answer 200. (libmicrohttpd answers a
    # malformed Content-Length itself, and 0.9.75 writes its status line twice.)
    assert codes and set(codes) == {b"400"}, f"the hidden request ran, or no 400\n{got[:600]!r}"
    assert closed, "the connection stayed open after ambiguous framing"
    assert requests.get(f"{base}/collections/smuggle/victim", headers=h, timeout=10).status_code == 200


def test_plain_framing_still_works(server):
    """Control: one Content-Length, or chunked alone, with keep-alive, are served."""
    h = {"X-API-Key": server.api_key}
    requests.post(f"{server.http_base}/collections/framing", headers=h, json={"_id": "x"}, timeout=10)
    body = b'{"query": {}}'
    req = (f"POST /collections/framing/query HTTP/1.1\r\nHost: x\r\nX-API-Key: {server.api_key}\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    chunked = (f"POST /collections/framing/query HTTP/1.1\r\nHost: x\r\nX-API-Key: {server.api_key}\r\n"
               f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
               f"{len(body):x}\r\n").encode() + body + b"\r\n0\r\n\r\n"
    got, _ = _exchange(server, req + chunked, wait=2.0)
    codes = re.findall(rb"HTTP/1\.[01] (\d{3}) ", got)
    assert codes == [b"200", b"200"], got[:600]
