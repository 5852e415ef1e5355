"""Auth coverage: every RPC (from the service descriptors) and every REST
route (from the generated route table, served as /openapi.json) is refused
without a key, with a wrong key, and — for methods that write — with a
read-only key. Only the methods flagged SVC_M_OPEN (health, Status) answer
without one. Also: key comparison is constant-time (no memcmp/strcmp on
secrets)."""
import json
import re
import urllib.error
import urllib.request

import grpc
import pytest

from conftest import ROOT

OPEN_RPCS = {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch", "/nexadb.v1.AdminService/Status"}
OPEN_PATHS = {("get", "/status")}


def method_flags():
    """{"/pkg.Service/Method": flags text} from the handler tables in service/h_*.c; a file's
    table serves the service its svc_service names (&nexadb__v1__document_service__descriptor:
    nexadb.v1.DocumentService), so methods of one name in two services (Watch) stay apart."""
    flags = {}
    for src in (ROOT / "service").glob("h_*.c"):
        text = src.read_text()
        svc = re.search(r"svc_service svc_\w+ = \{&(\w+)__descriptor", text)
        if svc is None:
            continue
        parts = svc.group(1).split("__")
        full = ".".join(parts[:-1]) + "." + "".join(w.capitalize() for w in parts[-1].split("_"))
        for name, fl in re.findall(r'\{"(\w+)",\s*[\w]+,\s*([^}]+)\}', text):
            flags[f"/{full}/{name}"] = fl
    return flags


def all_rpcs(pb):
    out = []
    services = [pb.health_pb2.DESCRIPTOR.services_by_name["Health"]]
    for mod in (pb.admin_pb2, pb.document_pb2, pb.vector_pb2):
        services += list(mod.DESCRIPTOR.services_by_name.values())
    for svc in services:
        for m in svc.methods:
            out.append((f"/{svc.full_name}/{m.name}", m.name, m.server_streaming))
    return out


def call(channel, path, streaming, metadata):
    """Calls path with an empty request; returns the gRPC status code."""
    ident = lambda b: b  # noqa: E731 - raw bytes both ways
    try:
        if streaming:
            fn = channel.unary_stream(path, request_serializer=ident, response_deserializer=ident)
            for _ in fn(b"", metadata=metadata, timeout=5):
                break
        else:
            fn = channel.unary_unary(path, request_serializer=ident, response_deserializer=ident)
            fn(b"", metadata=metadata, timeout=5)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


def test_every_rpc_and_route_refuses_missing_wrong_and_readonly_keys(pb, keyed_server):
    s = keyed_server
    flags = method_flags()
    rpcs = all_rpcs(pb)
    assert len(rpcs) >= 30, rpcs
    # every write-looking method must be flagged as a write
    for path, name, _ in rpcs:
        if re.match(r"(Create|Drop|Insert|Update|Upsert|Delete)", name):
            assert "SVC_M_WRITE" in flags.get(path, ""), f"{path} changes data but is not SVC_M_WRITE"
        assert ("SVC_M_OPEN" in flags.get(path, "")) == (path in OPEN_RPCS), f"{path}: open flag"
    cases, failures = 0, []
    bad_keys = [("no key", ()), ("wrong key", (("x-api-key", "wrong-" + "c3" * 16),)),
                ("wrong bearer", (("authorization", "Bearer " + "d4" * 20),)),
                ("key prefix", (("x-api-key", s.rw_key[:-1]),)),
                ("key plus a byte", (("x-api-key", s.rw_key + "x"),))]
    with grpc.insecure_channel(s.target) as ch:
        for path, name, streaming in rpcs:
            if path in OPEN_RPCS:
                continue
            for label, md in bad_keys:
                cases += 1
                code = call(ch, path, streaming, md)
                if code != grpc.StatusCode.UNAUTHENTICATED:
                    failures.append((path, label, code))
            if "SVC_M_WRITE" in flags[path]:
                cases += 1
                code = call(ch, path, streaming, (("x-api-key", s.ro_key),))
                if code != grpc.StatusCode.PERMISSION_DENIED:
                    failures.append((path, "read-only key", code))
        # the open ones answer without a key
        assert call(ch, "/grpc.health.v1.Health/Check", False, ()) == grpc.StatusCode.OK
        assert call(ch, "/nexadb.v1.AdminService/Status", False, ()) == grpc.StatusCode.OK
        # a valid rw key is let through (NOT an auth error)
        assert call(ch, "/nexadb.v1.DocumentService/ListCollections", True, (("x-api-key", s.rw_key),)) == grpc.StatusCode.OK

    spec = json.loads(urllib.request.urlopen(f"{s.http_base}/openapi.json", timeout=5).read())
    ops = [(verb, path, op["operationId"]) for path, item in spec["paths"].items()
           for verb, op in item.items() if verb in ("get", "post", "put", "delete", "patch")]
    assert len(ops) >= 30
    http_cases = 0
    for verb, path, op_id in ops:
        if (verb, path) in OPEN_PATHS:
            continue
        url = s.http_base + re.sub(r"\{\w+\}", "x", path)
        if "_" not in op_id:  # the server's own endpoints, not RPCs
            assert path in ("/metrics", "/openapi.json"), op_id
            if path == "/metrics":  # any valid key, read-only included (issue 16)
                for label, h, want in [("no key", {}, 401), ("wrong key", {"X-API-Key": "wrong-" + "c3" * 16}, 401),
                                       ("read-only key", {"X-API-Key": s.ro_key}, 200),
                                       ("read-only bearer", {"Authorization": "Bearer " + s.ro_key}, 200)]:
                    http_cases += 1
                    try:
                        got = urllib.request.urlopen(urllib.request.Request(url, headers=h), timeout=5).status
                    except urllib.error.HTTPError as e:
                        got = e.code
                    if got != want:
                        failures.append(("GET /metrics", label, got))
            continue  # /openapi.json: open by design
        svc, rpc_name = op_id.split("_", 1)
        rpc_name = re.sub(r"_\d+$", "", rpc_name)  # a second binding is "Find_1"
        rpc = next(k for k in flags if k.endswith(f".{svc}/{rpc_name}"))
        headers = [("no key", {}), ("wrong key", {"X-API-Key": "wrong-" + "c3" * 16}),
                   ("wrong bearer", {"Authorization": "Bearer " + "d4" * 20})]
        if "SVC_M_WRITE" in flags[rpc]:
            headers.append(("read-only key", {"X-API-Key": s.ro_key}))
        for label, h in headers:
            http_cases += 1
            want = 403 if label == "read-only key" else 401
            req = urllib.request.Request(url, method=verb.upper(), data=b"{}" if verb in ("post", "put", "patch") else None,
                                         headers={"Content-Type": "application/json", **h})
            try:
                urllib.request.urlopen(req, timeout=5)
                got = 200
            except urllib.error.HTTPError as e:
                got = e.code
            if got != want:
                failures.append((verb.upper() + " " + path, label, got))
    print(f"\nAUTH TABLE: {cases} gRPC cases over {len(rpcs)} RPCs, {http_cases} REST cases over {len(ops)} routes; "
          f"{len(failures)} not refused")
    assert not failures, failures


def test_key_comparison_is_constant_time():
    src = (ROOT / "service/auth.c").read_text()
    body = src[src.index("svc_role svc_auth_check("):]
    body = body[:body.index("\n}\n")]
    for fn in ("memcmp", "strcmp", "strncmp", "strcasecmp", "bcmp", "timingsafe"):
        assert fn + "(" not in body, f"svc_auth_check uses {fn}"
    loop = body[body.index("for (size_t k"):body.index("return (svc_role)best")]
    assert "return" not in loop and "break" not in loop, "early exit inside the key comparison loop"
    assert "if (" not in loop, "a branch inside the key comparison loop"
    # nothing else in service/ compares presented keys with memcmp/strcmp
    for f in (ROOT / "service").glob("*.c"):
        for line in f.read_text().splitlines():
            # (comparing a header NAME with a literal, "x-api-key", is not a secret comparison)
            if (re.search(r"\b(memcmp|strcmp|strncmp)\s*\(", line) and '"' not in line
                    and re.search(r"api_?key|secret|bearer|->bytes|key_slot", line, re.I)):
                pytest.fail(f"{f.name}: {line.strip()}")
