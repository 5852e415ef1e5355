#!/usr/bin/env python3
"""Writes the text and protobuf seed corpora of the fuzz targets (the binary
engine files come from seedgen.c). Usage, from the repository root:

    .venv/bin/python tests/fuzz/seeds.py <build>/service/rest_routes_gen.c

Request examples per RPC are JSON; for `handlers` they are serialised to
protobuf wire bytes (the route byte is the method's index in the dispatch
table: Health, AdminService, DocumentService, VectorService, each in
descriptor order), for `rest_json` written as JSON bodies, and for
`rest_http` as "VERB /path" lines plus bodies. Run by hand when the protos
change; the output is committed.
"""
import importlib
import json
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests/fuzz/corpus"
GOOGLEAPIS = "/usr/share/gocode/src/github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis"

DOC = {"name": "Alice", "age": 28, "city": "Paris", "tags": ["a", "b"], "profile": {"level": 3, "active": True}}
VEC = [0.1, 0.2, 0.3, 0.4]
EXAMPLES = {
    "Check": [{}, {"service": "nexadb.v1.DocumentService"}],
    "Status": [{}], "Stats": [{}],
    "CreateCollection": [{"collection": "users"}],
    "DropCollection": [{"collection": "users"}],
    "ListCollections": [{}],
    "InsertOne": [{"collection": "users", "document": DOC}, {"collection": "users", "document": {"_id": "u1", "n": None}}],
    "InsertMany": [{"collection": "users", "documents": [DOC, {"name": "Bob", "age": 35}]}],
    "Get": [{"collection": "users", "id": "u1"}],
    "Find": [{"collection": "users", "filter": {"age": {"$gt": 25}, "$or": [{"city": "Paris"}, {"tags": {"$in": ["a"]}}]},
              "sort": {"age": -1, "name": 1}, "limit": 10, "skip": 1,
              "projection": {"name": 1}, "page_size": 2}],
    "FindOne": [{"collection": "users", "filter": {"name": {"$regex": "^A"}}}],
    "Count": [{"collection": "users", "filter": {"profile.active": True}}],
    "Update": [{"collection": "users", "id": "u1", "update": {"$set": {"age": 29}, "$push": {"tags": "c"}}},
               {"collection": "users", "id": "u1", "update": {"age": 30}}],
    "UpdateMany": [{"collection": "users", "filter": {"age": {"$lt": 30}}, "update": {"$inc": {"age": 1}}, "upsert": True}],
    "Delete": [{"collection": "users", "id": "u1"}],
    "DeleteMany": [{"collection": "users", "filter": {"age": {"$gte": 100}}}],
    "Aggregate": [{"collection": "users", "pipeline": [{"$match": {"age": {"$gt": 20}}},
                                                       {"$group": {"_id": "$city", "n": {"$sum": 1}, "avg": {"$avg": "$age"}}},
                                                       {"$sort": {"n": -1}}, {"$limit": 5}]}],
    "CreateIndex": [{"collection": "users", "fields": [{"field": "age", "direction": "SORT_DIRECTION_ASCENDING"}],
                     "unique": False, "name": "age_1"}],
    "DropIndex": [{"collection": "users", "name": "age_1"}],
    "ListIndexes": [{"collection": "users"}],
    "CreateVectorCollection": [{"collection": "emb", "dimensions": 4, "metric": "cosine"}],
    "DropVectorCollection": [{"collection": "emb"}],
    "ListVectorCollections": [{}],
    "InsertVector": [{"collection": "emb", "document": DOC, "vector": VEC}],
    "InsertVectors": [{"collection": "emb", "documents": [{"document": DOC, "vector": VEC}, {"id": "v2", "vector": VEC}]}],
    "UpsertVector": [{"collection": "emb", "id": "v1", "document": DOC, "vector": VEC}],
    "GetVector": [{"collection": "emb", "id": "v1"}],
    "DeleteVector": [{"collection": "emb", "id": "v1"}],
    "Search": [{"collection": "emb", "vector": VEC, "limit": 3, "filter": {"age": {"$gt": 1}}, "include_vectors": True}],
    "SearchBatch": [{"collection": "emb", "queries": [{"vector": VEC, "limit": 2}], "limit": 2}],
}


def stubs():
    from grpc_tools import protoc
    import grpc_tools
    out = tempfile.mkdtemp(prefix="nexadb-seeds-")
    well_known = str(Path(grpc_tools.__file__).parent / "_proto")
    protos = [str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto/nexadb/v1").glob("*.proto")]
    if protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"-I{GOOGLEAPIS}", f"-I{well_known}", f"--python_out={out}", *protos]):
        sys.exit("protoc failed")
    sys.path.insert(0, out)
    mods = [importlib.import_module(f"nexadb.v1.{n}_pb2") for n in ("admin", "document", "vector")]
    health = importlib.import_module("grpc_health.v1.health_pb2")
    return health, mods


def wire_json(desc, example):
    """example with each nexadb.v1.Document (plain JSON here) as the protobuf JSON of its
    BSON bytes, {"bson": "<base64>"}, so json_format can parse it."""
    import base64
    import bson
    out = {}
    for k, v in example.items():
        f = desc.fields_by_name.get(k)
        if f is None or f.message_type is None:
            out[k] = v
            continue
        one = ((lambda x: {"bson": base64.b64encode(bson.encode(x)).decode()})
               if f.message_type.full_name == "nexadb.v1.Document" else (lambda x: wire_json(f.message_type, x)))
        out[k] = [one(x) for x in v] if isinstance(v, list) else one(v)
    return out


def message(desc, example):
    from google.protobuf import json_format
    from google.protobuf import message_factory
    cls = message_factory.GetMessageClass(desc)
    return json_format.ParseDict(wire_json(desc, example), cls(), ignore_unknown_fields=True)


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def main():
    routes_c = Path(sys.argv[1]).read_text()
    rest_routes = re.findall(r'\{"(GET|POST|PUT|DELETE|PATCH)", "([^"]+)", "([^"]*)", "[^"]*", "/[\w.]+/(\w+)"\}', routes_c)
    health, (admin, document, vector) = stubs()
    services = [health.DESCRIPTOR.services_by_name["Health"], admin.DESCRIPTOR.services_by_name["AdminService"],
                document.DESCRIPTOR.services_by_name["DocumentService"], vector.DESCRIPTOR.services_by_name["VectorService"]]
    route = 0
    for svc in services:
        for m in svc.methods:
            for i, ex in enumerate(EXAMPLES.get(m.name, [])):
                write("handlers", f"{m.name}-{i}", bytes([route]) + message(m.input_type, ex).SerializeToString())
            route += 1
    methods = {m.name: m for svc in services for m in svc.methods}
    for i, (verb, pattern, body, rpc) in enumerate(rest_routes):
        for j, ex in enumerate(EXAMPLES.get(rpc, [])):
            message(methods[rpc].input_type, ex)  # the example is a valid request
            write("rest_json", f"{rpc}-{verb}-{j}", bytes([i, 0]) + json.dumps(ex).encode())
            path = re.sub(r"\{(\w+)\}", lambda mm: str(ex.get(mm.group(1), "x")), pattern)
            if body == "*":
                payload = {k: v for k, v in ex.items() if f"{{{k}}}" not in pattern}
            elif body:
                payload = ex.get(body, {})
            else:
                payload = None
            if payload is None:
                q = "&".join(f"{k}={quote(json.dumps(v) if isinstance(v, (dict, list)) else str(v))}"
                             for k, v in ex.items() if f"{{{k}}}" not in pattern)
                line = f"{verb} {path}" + (f"?{q}" if q else "")
                data = line.encode() + b"\n"
            else:
                data = f"{verb} {path}\n".encode() + json.dumps(payload).encode()
            write("rest_http", f"{rpc}-{verb}-{j}", bytes([0]) + data)
        write("rest_json", f"query-{i}", bytes([i, 1, 1]) + b'{"age":{"$gt":25}}')
    write("rest_http", "raw-get", b"\x01GET /collections/users?limit=2 HTTP/1.1\r\nHost: x\r\nX-API-Key: fuzz-key-0123456789abcdef\r\n\r\n")
    write("rest_http", "raw-chunked", b"\x01POST /collections/users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
          b"X-API-Key: fuzz-key-0123456789abcdef\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n")
    write("rest_http", "metrics", b"\x00GET /metrics\n")
    write("rest_http", "openapi", b"\x00GET /openapi.json\n")
    write("rest_http", "ndjson", b"\x04POST /collections/users/query\n{\"query\":{}}")
    # doc_query: filter \0 document \0 update \0 projection \0 sort
    q = [
        ['{"age":{"$gt":25,"$lte":40},"tags":{"$all":["a"]}}', json.dumps(DOC), '{"$set":{"a.b":1},"$inc":{"age":2}}', '{"name":1,"profile.level":1}', '{"age":-1,"name":1}'],
        ['{"$or":[{"name":{"$regex":"^Al","$options":"i"}},{"city":{"$nin":["Oslo"]}}],"$and":[{"n":null}]}', '{"name":"Al","n":null,"arr":[{"x":1},{"x":2}]}', '{"$unset":{"n":""},"$rename":{"name":"nm"},"$addToSet":{"arr":{"x":3}}}', '{"arr":0}', '{"arr.x":1}'],
        ['{"arr":{"$elemMatch":{"x":{"$gte":2}}},"arr.x":{"$exists":true},"$nor":[{"a":{"$type":"string"}}],"s":{"$size":2},"m":{"$mod":[3,1]}}', '{"arr":[{"x":1},{"x":2}],"s":[1,2],"m":4}', '{"$pull":{"arr":{"x":{"$lt":2}}},"$mul":{"m":2},"$min":{"m":1},"$max":{"z":5},"$push":{"s":{"$each":[3,4],"$slice":-3}}}', '{"_id":0}', '{}'],
    ]
    for i, parts in enumerate(q):
        write("doc_query", f"q{i}", "\0".join(parts).encode())
    aggs = [
        EXAMPLES["Aggregate"][0]["pipeline"],
        [{"$unwind": "$tags"}, {"$group": {"_id": "$tags", "ages": {"$push": "$age"}, "mx": {"$max": "$score"}, "mn": {"$min": "$score"}, "first": {"$first": "$name"}}}],
        [{"$project": {"name": 1, "lvl": "$profile.level", "_id": 0}}, {"$skip": 2}, {"$count": "n"}],
        [{"$match": {"profile.active": True}}, {"$sort": {"age": -1, "name": 1}}, {"$limit": 3}, {"$addFields": {"x": {"$add": ["$age", 1]}}}],
        {"age": {"$gt": 30}},
    ]
    for i, p in enumerate(aggs):
        write("doc_agg", f"p{i}", json.dumps(p).encode())
    # doc_codec: BSON (mode 2) and Extended JSON (mode 1) with every stored type
    import datetime
    import bson
    typed = {"when": datetime.datetime(2024, 2, 29, 12, 0, 0, 123000, tzinfo=datetime.timezone.utc),
             "raw": bson.Binary(b"\x00\xff", 4), "big": 2**62, "neg": -2**63, "f": 2.5, "n": None, "t": True,
             "arr": [1, "x", {"k": [2.5]}]}
    write("doc_codec", "bson-0", bytes([2]) + bson.encode(DOC))
    write("doc_codec", "bson-1", bytes([2]) + bson.encode(typed))
    write("doc_codec", "ejson-0", bytes([1]) + json.dumps(
        {"d": {"$date": "2024-02-29T12:00:00.123Z"}, "old": {"$date": {"$numberLong": "-5"}},
         "b": {"$binary": {"base64": "AP8=", "subType": "04"}}, "l": {"$numberLong": "9007199254740993"}}).encode())


if __name__ == "__main__":
    main()
