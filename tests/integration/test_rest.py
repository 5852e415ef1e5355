"""The REST shim against the real server: routes, auth, errors, limits, CORS, /metrics, /openapi.json."""
import json
import socket
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families


@pytest.fixture(scope="module")
def http(server):
    s = requests.Session()
    s.base = server.http_base
    s.key = {"X-API-Key": server.api_key}
    yield s
    s.close()


def still_serving(http):
    r = http.get(http.base + "/status", timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "ok"


def assert_error(r, status, code, words=()):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    for d in body["details"]:  # google.rpc.Status details, each consistent with the message
        assert d["@type"] in ("type.googleapis.com/google.rpc.BadRequest", "type.googleapis.com/google.rpc.RetryInfo"), d
        if d["@type"].endswith("BadRequest"):
            (v,) = d["fieldViolations"]
            assert body["message"] == f'{v["field"]}: {v["description"]}', body
        else:
            assert r.headers["Retry-After"] == d["retryDelay"].rstrip("s"), (r.headers, d)
    for w in words:
        assert w in body["message"], body


# ---- routes, auth ----------------------------------------------------------------

def test_status_is_open(http):
    r = http.get(http.base + "/status", timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["version"]
    assert isinstance(body["uptime_seconds"], int)  # int64 as a JSON number


def test_stats_needs_a_key(http):
    assert_error(http.get(http.base + "/stats", timeout=5), 401, 16, ["API key"])


def test_wrong_key_is_401(http, server):
    wrong = server.api_key[:-1] + ("0" if server.api_key[-1] != "0" else "1")
    for h in ({"X-API-Key": wrong}, {"Authorization": f"Bearer {wrong}"}, {"Authorization": server.api_key}):
        assert_error(http.get(http.base + "/stats", headers=h, timeout=5), 401, 16)


def test_x_api_key_and_bearer_both_work(http, server):
    for h in ({"X-API-Key": server.api_key}, {"Authorization": f"Bearer {server.api_key}"},
              {"authorization": f"bearer {server.api_key}"}):
        r = http.get(http.base + "/stats", headers=h, timeout=5)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["rss_bytes"] > 0
        assert isinstance(body["collections"], list)  # repeated fields are written even when empty


def test_unknown_route_is_404(http):
    r = http.get(http.base + "/no/such/route", headers=http.key, timeout=5)
    assert_error(r, 404, 5, ["/no/such/route"])
    still_serving(http)


def test_wrong_verb_is_405_with_allow(http):
    r = http.request("PATCH", http.base + "/status", timeout=5)
    assert_error(r, 405, 12)
    assert "GET" in r.headers["Allow"]


def test_trailing_slash_is_ignored(http):
    assert http.get(http.base + "/status/", timeout=5).status_code == 200


# ---- request decoding ---------------------------------------------------------------
# These routes' bodies are decoded before the handler runs, so they are checked
# whether or not the document engine is wired.

def test_malformed_json_is_400(http):
    r = http.post(http.base + "/collections/users/query", data=b'{"query": {"age": ', headers=http.key, timeout=5)
    assert_error(r, 400, 3, ["not valid JSON"])
    still_serving(http)


def test_wrong_types_are_400(http):
    cases = [
        ({"limit": "many"}, "limit"),
        ({"limit": 1.5}, "limit"),
        ({"limit": [1]}, "limit"),
        ({"query": [1, 2]}, "query"),
        ({"query": "age > 3"}, "query"),
        ({"explain": "yes"}, "explain"),
        ({"page_size": 1 << 40}, "page_size"),
        ({"sort": [{"field": "a", "direction": -1}]}, "sort"),
        ({"sort": {"a": "SIDEWAYS"}}, "sort"),
    ]
    for body, word in cases:
        r = http.post(http.base + "/collections/users/query", json=body, headers=http.key, timeout=5)
        assert_error(r, 400, 3, [word])
    r = http.post(http.base + "/collections/users/query", data=b"[1,2]", headers=http.key, timeout=5)
    assert_error(r, 400, 3, ["object"])
    still_serving(http)


def test_unknown_fields_are_400(http):
    r = http.post(http.base + "/collections/users/query", json={"query": {}, "limitt": 3}, headers=http.key, timeout=5)
    assert_error(r, 400, 3, ["limitt"])
    r = http.post(http.base + "/collections/users/query", json={"sort": {"a": 1}, "projectoin": {}}, headers=http.key,
                  timeout=5)
    assert_error(r, 400, 3, ["projectoin"])
    r = http.get(http.base + "/collections/users", params={"limitt": "3"}, headers=http.key, timeout=5)
    assert_error(r, 400, 3, ["limitt"])


def test_escaped_path_segments_and_query_values(http):
    """An escaped '/' stays inside its segment; '+' is a space only in the query string."""
    from urllib.parse import quote
    for doc_id in ("a/b", "sp ace+plus", "ünï", "%41"):
        r = http.post(http.base + "/collections/escapes", json={"_id": doc_id, "v": 1}, headers=http.key, timeout=5)
        assert r.status_code == 200, r.text
        assert r.json()["document_id"] == doc_id
        r = http.get(http.base + "/collections/escapes/" + quote(doc_id, safe=""), headers=http.key, timeout=5)
        assert r.status_code == 200, (doc_id, r.text)
        assert r.json()["document"]["_id"] == doc_id
    # requests encodes the JSON filter (braces, quotes, '/', '$', spaces) in the query string
    r = http.get(http.base + "/collections/escapes", params={"query": json.dumps({"_id": {"$in": ["a/b", "sp ace+plus"]}})},
                 headers=http.key, timeout=5)
    assert r.status_code == 200, r.text
    assert sorted(d["_id"] for d in r.json()["documents"]) == ["a/b", "sp ace+plus"]


def test_bad_query_string_values_are_400(http):
    r = http.get(http.base + "/collections/users", params={"query": "{not json"}, headers=http.key, timeout=5)
    assert_error(r, 400, 3, ["query"])
    r = http.get(http.base + "/collections/users", params={"limit": "ten"}, headers=http.key, timeout=5)
    assert_error(r, 400, 3, ["limit"])


def test_duplicate_keys_are_400(http):
    r = http.post(http.base + "/collections/users/query", data=b'{"limit": 1, "limit": 2}', headers=http.key,
                  timeout=5)
    assert_error(r, 400, 3)


def test_nul_in_strings_is_400(http):
    r = http.post(http.base + "/collections/users/bulk", data=b'{"documents": [{"a": "x\\u0000y"}]}',
                  headers=http.key, timeout=5)
    assert_error(r, 400, 3, ["\\u0000"])


def test_deep_nesting_is_400_not_a_crash(http):
    body = b'{"query": ' + b'{"a": ' * 1000 + b'1' + b'}' * 1000 + b'}'
    r = http.post(http.base + "/collections/users/query", data=body, headers=http.key, timeout=10)
    assert r.status_code == 400, r.text
    still_serving(http)


def test_auth_is_checked_before_the_body(http):
    r = http.post(http.base + "/collections/users/query", data=b"{bad", timeout=5)
    assert_error(r, 401, 16)


# ---- body limit -------------------------------------------------------------------

def read_response(sock):
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest


def test_100mb_body_is_413_before_it_is_read(http, server):
    """Content-Length over the limit is answered from the headers; the body is never sent."""
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as s:
        s.sendall(b"POST /collections/users/bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + f"X-API-Key: {server.api_key}\r\nContent-Length: {100 << 20}\r\n\r\n".encode())
        status, headers, body = read_response(s)
    assert status == 413
    msg = json.loads(body)
    assert msg["code"] == 8 and "limit" in msg["message"]
    still_serving(http)


def test_unauthenticated_body_is_refused_before_it_is_read(http, server):
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as s:
        s.sendall(b"POST /collections/users/bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + f"Content-Length: {10 << 20}\r\n\r\n".encode())
        status, headers, body = read_response(s)  # answered from the headers alone
    assert status == 401 and json.loads(body)["code"] == 16
    still_serving(http)


def test_100mb_body_sent_whole_gets_413(http, server):
    """A client that sends the whole 100 MB body anyway still gets its 413 (or a closed connection)."""
    payload = b"[" + b"0," * (50 << 20) + b"0]"
    try:
        r = requests.post(server.http_base + "/collections/users/bulk", data=payload, headers={
            "X-API-Key": server.api_key, "Content-Type": "application/json"}, timeout=60)
        assert_error(r, 413, 8)
    except requests.exceptions.ConnectionError:
        pass  # the server may close the connection before the client finished sending
    still_serving(http)


def test_chunked_body_over_the_limit_is_413(server_factory):
    s = server_factory(extra_args=["--max-body-bytes", "65536"]).start()
    def chunks():
        # 135 KB against a 64 KiB limit: read and dropped, then answered (beyond 4x the
        # limit the server stops reading and closes the connection instead)
        for _ in range(15):
            yield b'{"documents": [' + b'{"a": 1},' * 1000
    r = requests.post(s.http_base + "/collections/users/bulk", data=chunks(),
                      headers={"X-API-Key": s.api_key}, timeout=30)
    assert_error(r, 413, 8, ["65536"])
    r = requests.get(s.http_base + "/status", timeout=5)
    assert r.status_code == 200


# ---- streaming methods over REST -------------------------------------------------------

def test_find_merges_pages_or_streams_ndjson(http):
    docs = [{"n": i, "even": i % 2 == 0} for i in range(2500)]
    r = http.post(http.base + "/collections/pages/bulk", json={"documents": docs}, headers=http.key, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 2500
    r = http.post(http.base + "/collections/pages/query", json={"query": {"even": True}, "page_size": 100},
                  headers=http.key, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    # one body is a page of 1000 by default (pages concatenated, count from the last)...
    assert body["count"] == 1000 and len(body["documents"]) == 1000
    assert body["next_page_token"]
    # ...and its token reads on
    r = http.post(http.base + "/collections/pages/query", json={"query": {"even": True}, "page_size": 100,
                                                                 "page_token": body["next_page_token"]},
                  headers=http.key, timeout=30)
    rest = r.json()
    assert rest["count"] == 250 and rest["next_page_token"] == ""
    assert sorted(d["n"] for d in body["documents"] + rest["documents"]) == list(range(0, 2500, 2))
    r = http.get(http.base + "/collections/pages", params={"limit": "2000"}, headers=http.key, timeout=30)
    assert len(r.json()["documents"]) == 2000 and r.json()["next_page_token"]
    # NDJSON streams everything
    r = http.post(http.base + "/collections/pages/query", json={"query": {"even": True}, "page_size": 100},
                  headers=dict(http.key, Accept="application/x-ndjson"), timeout=30)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(l) for l in r.text.splitlines()]
    assert len(lines) >= 2 and sum(len(l["documents"]) for l in lines) == 1250
    assert [l["count"] for l in lines] == sorted(l["count"] for l in lines)


def test_documents_keep_numbers_and_order(http):
    doc = {"z": 1, "a": 0.1, "big": 2 ** 53, "huge": 10 ** 30, "neg": -7, "nested": {"y": [1, 2.5, "x"], "b": None}}
    r = http.post(http.base + "/collections/numbers", json=doc, headers=http.key, timeout=5)
    assert r.status_code == 200, r.text
    r = http.get(http.base + "/collections/numbers/" + r.json()["document_id"], headers=http.key, timeout=5)
    got = r.json()["document"]
    assert [k for k in got if not k.startswith("_")] == list(doc)
    assert got["z"] == 1 and isinstance(got["z"], int)
    assert got["a"] == 0.1 and '"a":0.1' in r.text
    assert got["big"] == 2 ** 53 and isinstance(got["big"], int)
    assert got["huge"] == 1e30
    assert got["nested"] == {"y": [1, 2.5, "x"], "b": None}


def test_response_over_the_limit_is_429(server_factory):
    s = server_factory(extra_args=["--max-message-bytes", "65536"]).start()  # REST answers up to 4x that
    key = {"X-API-Key": s.api_key}
    docs = [{"pad": "x" * 1000, "i": i} for i in range(40)]
    for _ in range(10):
        r = requests.post(s.http_base + "/collections/big/bulk", json={"documents": docs}, headers=key, timeout=30)
        assert r.status_code == 200, r.text
    r = requests.get(s.http_base + "/collections/big", headers=key, timeout=30)
    assert_error(r, 429, 8, ["limit"])
    r = requests.get(s.http_base + "/collections/big", params={"limit": "10"}, headers=key, timeout=30)
    assert r.status_code == 200 and r.json()["count"] == 10


def test_named_body_is_required(http):
    r = http.post(http.base + "/collections/users", data=b"", headers=http.key, timeout=5)
    assert_error(r, 400, 3, ["body"])


# ---- CORS ----------------------------------------------------------------------------

def test_cors_default_allows_no_foreign_origin(http):
    r = http.options(http.base + "/stats", headers={"Origin": "http://evil.example",
                                                    "Access-Control-Request-Method": "GET"}, timeout=5)
    assert r.status_code == 403
    r = http.get(http.base + "/status", headers={"Origin": "http://evil.example"}, timeout=5)
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_configured_origin(server_factory):
    s = server_factory(extra_args=["--cors-origins", "http://app.example, http://other.example"]).start()
    r = requests.options(s.http_base + "/collections/users/query", headers={
        "Origin": "http://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key, content-type"}, timeout=5)
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "http://app.example"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    assert "X-API-Key" in r.headers["Access-Control-Allow-Headers"]
    r = requests.get(s.http_base + "/stats", headers={"Origin": "http://other.example", "X-API-Key": s.api_key},
                     timeout=5)
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "http://other.example"
    assert r.headers["Vary"] == "Origin"
    r = requests.get(s.http_base + "/stats", headers={"Origin": "http://evil.example", "X-API-Key": s.api_key},
                     timeout=5)
    assert "Access-Control-Allow-Origin" not in r.headers
    r = requests.options(s.http_base + "/stats", headers={"Origin": "http://evil.example",
                                                          "Access-Control-Request-Method": "GET"}, timeout=5)
    assert r.status_code == 403


def test_cors_any_origin(server_factory):
    s = server_factory(extra_args=["--cors-origins", "*"]).start()
    r = requests.get(s.http_base + "/status", headers={"Origin": "http://anything.example"}, timeout=5)
    assert r.headers["Access-Control-Allow-Origin"] == "*"


# ---- keep-alive, concurrency ------------------------------------------------------------

def test_keep_alive_reuses_the_connection(server):
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as s:
        for _ in range(3):
            s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = read_response(s)
            assert status == 200 and json.loads(body)["status"] == "ok"


def test_idle_connections_time_out(server_factory):
    s = server_factory(extra_args=["--http-timeout", "1"]).start()
    with socket.create_connection(("127.0.0.1", s.http_port), timeout=10) as c:
        c.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
        t0 = time.time()
        c.settimeout(10)
        assert c.recv(100) == b""  # the server hangs up
        assert time.time() - t0 < 8
    assert requests.get(s.http_base + "/status", timeout=5).status_code == 200


# ---- /metrics and /openapi.json ----------------------------------------------------------

def test_metrics_parse_and_count(http, pb, channel, auth):
    # one call over each transport, so both show up
    http.get(http.base + "/stats", headers=http.key, timeout=5)
    http.get(http.base + "/no/such/route", timeout=5)
    stub = pb.admin_pb2_grpc.AdminServiceStub(channel)
    stub.Stats(pb.admin_pb2.StatsRequest(), timeout=5, metadata=auth)

    r = http.get(http.base + "/metrics", headers=http.key, timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    fams = {f.name: f for f in text_string_to_metric_families(r.text)}
    for name in ("nexadb_requests", "nexadb_request_duration_seconds", "nexadb_requests_in_flight",
                 "nexadb_http_responses", "nexadb_uptime_seconds"):
        assert name in fams, sorted(fams)
    reqs = [s for s in fams["nexadb_requests"].samples if s.name == "nexadb_requests_total"]
    def count(**labels):
        return sum(s.value for s in reqs if all(s.labels.get(k) == v for k, v in labels.items()))
    assert count(transport="http", method="/nexadb.v1.AdminService/Stats", code="OK") >= 1
    assert count(transport="grpc", method="/nexadb.v1.AdminService/Stats", code="OK") >= 1
    assert count(transport="http", method="unknown", code="NOT_FOUND") >= 1
    http.get(http.base + "/metrics", headers=http.key, timeout=5)
    fams2 = {f.name: f for f in text_string_to_metric_families(
        http.get(http.base + "/metrics", headers=http.key, timeout=5).text)}
    assert any(s.labels.get("method") == "/metrics" and s.value >= 2 for s in fams2["nexadb_requests"].samples
               if s.name == "nexadb_requests_total")
    hist = fams["nexadb_request_duration_seconds"]
    assert fams["nexadb_request_duration_seconds"].type == "histogram"
    buckets = [s for s in hist.samples if s.name.endswith("_bucket")
               and s.labels["method"] == "/nexadb.v1.AdminService/Stats" and s.labels["transport"] == "http"
               and s.labels["code"] == "OK"]
    assert buckets and buckets[-1].labels["le"] == "+Inf"
    values = [b.value for b in buckets]
    assert values == sorted(values)  # cumulative
    inflight = {s.labels["transport"]: s.value for s in fams["nexadb_requests_in_flight"].samples}
    assert inflight["http"] >= 1  # this very request
    assert inflight["grpc"] >= 0
    # process_* series: test_metrics_dashboard.py


def test_openapi_describes_every_route(http):
    r = http.get(http.base + "/openapi.json", timeout=5)
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for p, verb in [("/status", "get"), ("/stats", "get"), ("/collections", "get"), ("/collections/{collection}", "post"),
                    ("/collections/{collection}", "get"), ("/collections/{collection}/bulk", "post"),
                    ("/collections/{collection}/{id}", "get"), ("/collections/{collection}/{id}", "put"),
                    ("/collections/{collection}/{id}", "delete"), ("/collections/{collection}", "delete"),
                    ("/collections/{collection}/query", "post"), ("/collections/{collection}/aggregate", "post"),
                    ("/vector/{collection}/search", "post"), ("/metrics", "get")]:
        assert verb in paths.get(p, {}), (p, verb)
    assert paths["/status"]["get"]["security"] == []
    params = {q["name"] for q in paths["/collections/{collection}"]["get"]["parameters"]}
    assert {"collection", "query", "limit"} <= params
    find = doc["components"]["schemas"]["nexadb.v1.FindRequest.Body"]["properties"]
    assert "query" in find and "filter" not in find  # the explicit json_name
    hit = doc["components"]["schemas"]["nexadb.v1.SearchHit"]["properties"]
    assert {"document_id", "similarity", "document"} <= set(hit)


def test_typed_values_cross_between_grpc_and_rest(pb, server, http):
    """int64 extremes, a date with milliseconds and binary, written by a stock generated
    client as BSON, read back over gRPC as the same values and over REST as relaxed Extended
    JSON; and written as Extended JSON over REST, read back over gRPC as typed values."""
    import datetime

    import bson
    import grpc
    when = datetime.datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=datetime.timezone.utc)
    doc = {"_id": "typed", "max": 2 ** 63 - 1, "min": -2 ** 63, "odd": 2 ** 53 + 1, "small": 7,
           "when": when, "raw": bson.Binary(b"\x00\xff", 4), "f": 2.5}
    md = (("x-api-key", server.api_key),)
    with grpc.insecure_channel(server.target) as ch:
        docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
        docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="typed", document=pb.doc(doc)), metadata=md,
                       timeout=10)
        got = pb.undoc(docs.Get(pb.document_pb2.GetRequest(collection="typed", id="typed"), metadata=md,
                                timeout=10).document)
        assert {k: got[k] for k in doc} == doc and list(got)[3:] == list(doc)[1:]
        r = http.get(http.base + "/collections/typed/typed", headers=http.key, timeout=5)
        ej = r.json()["document"]
        assert ej["max"] == {"$numberLong": "9223372036854775807"} and ej["min"] == {"$numberLong": "-9223372036854775808"}
        assert ej["odd"] == {"$numberLong": "9007199254740993"} and ej["small"] == 7 and ej["f"] == 2.5
        assert ej["when"] == {"$date": "2024-02-29T12:34:56.789Z"}
        assert ej["raw"] == {"$binary": {"base64": "AP8=", "subType": "04"}}
        # and the other way: Extended JSON in over REST, typed values out over gRPC
        r = http.post(http.base + "/collections/typed", json={"_id": "from-rest", **{k: ej[k] for k in ej if k[0] != "_"}},
                      headers=http.key, timeout=5)
        assert r.status_code == 200, r.text
        back = pb.undoc(docs.Get(pb.document_pb2.GetRequest(collection="typed", id="from-rest"), metadata=md,
                                 timeout=10).document)
        assert {k: back[k] for k in doc if k != "_id"} == {k: v for k, v in doc.items() if k != "_id"}
        # a date range over REST in Extended JSON
        r = http.post(http.base + "/collections/typed/count", json={"query": {"when": {"$gte": {"$date": "2024-01-01T00:00:00Z"}}}},
                      headers=http.key, timeout=5)
        assert r.json()["count"] == 2
