"""Writes gRPC request frames (5-byte prefix + protobuf) for h2load, encoding the protobuf by hand
(no stubs needed) and documents with pymongo's bson.

usage: grpc_req.py <kind> <out> [args...]
  status                       AdminService/Status request (empty)
  get <collection> <id>        DocumentService/Get request
  find <collection> <json-filter> <limit>   DocumentService/Find request
  vectors <collection> <n> <dims>           VectorService/InsertVectors request: n documents
                               {"row": i} (no _id, so the server generates ids) with random vectors
  vector <collection> <dims>   VectorService/InsertVector request: one such document
"""
import json
import random
import struct
import sys

import bson


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def string(num, s):
    return field(num, 2, s.encode())


def document(num, d):  # a nexadb.v1.Document field: {bytes bson = 1}
    return field(num, 2, field(1, 2, bson.encode(d)))


def floats(num, dims, rng):  # repeated float, packed
    return field(num, 2, struct.pack(f"<{dims}f", *(rng.uniform(-1, 1) for _ in range(dims))))


def main():
    kind, out = sys.argv[1], sys.argv[2]
    if kind == "status":
        msg = b""
    elif kind == "get":
        msg = string(1, sys.argv[3]) + string(2, sys.argv[4])
    elif kind == "find":
        msg = string(1, sys.argv[3]) + document(102, json.loads(sys.argv[4])) + field(6, 0, varint(int(sys.argv[5])))
    elif kind == "vectors":
        rng, dims = random.Random(1), int(sys.argv[5])
        msg = string(1, sys.argv[3]) + b"".join(
            field(2, 2, document(101, {"row": i}) + floats(2, dims, rng)) for i in range(int(sys.argv[4])))
    elif kind == "vector":
        msg = string(1, sys.argv[3]) + document(102, {"row": 0}) + floats(3, int(sys.argv[4]), random.Random(1))
    else:
        sys.exit(f"unknown kind {kind}")
    with open(out, "wb") as f:
        f.write(b"\x00" + struct.pack(">I", len(msg)) + msg)


main()
