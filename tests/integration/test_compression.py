"""--compression: the tables' blocks written from then on are LZ4- or zstd-compressed (README,
"Configuration"); a data directory written under one setting opens and reads under another, and a
value the server does not know stops it at start, naming the flag."""
import os
import subprocess

import grpc

from conftest import server_binary

MiB = 1 << 20


def table_bytes(data_dir):
    kv = os.path.join(data_dir, "kv")
    return sum(os.path.getsize(os.path.join(kv, f)) for f in os.listdir(kv) if f.endswith(".sst"))


def stub(pb, s):
    return pb.document_pb2_grpc.DocumentServiceStub(grpc.insecure_channel(s.target)), (("x-api-key", s.api_key),)


def load(pb, s, n_calls):
    docs, md = stub(pb, s)
    for b in range(n_calls):  # documents of ~300 bytes, most of them one repeated letter
        docs.InsertMany(pb.document_pb2.InsertManyRequest(collection="c", documents=[
            pb.doc({"_id": f"d{b * 1000 + i:06d}", "pad": "x" * 250, "age": i % 90}) for i in range(1000)]),
            metadata=md, timeout=60)


def test_compressed_tables_are_smaller_and_read_under_any_setting(pb, server_factory):
    sizes = {}
    for kind in ("none", "lz4", "zstd"):
        s = server_factory(kind, extra_args=["--compression", kind, "--memtable-bytes", str(MiB),
                                             "--change-retention-seconds", "0"]).start()
        load(pb, s, 12)
        s.stop()
        sizes[kind] = table_bytes(s.data_dir)
    assert sizes["none"] > 3 * MiB, sizes
    assert sizes["lz4"] < sizes["none"] / 3, sizes
    assert sizes["zstd"] < sizes["none"] / 3, sizes

    # the lz4 directory under the other settings: every document reads back, new tables mix in
    for kind in ("none", "zstd"):
        s = server_factory("lz4", extra_args=["--compression", kind, "--memtable-bytes", str(MiB)]).start()
        docs, md = stub(pb, s)
        assert docs.Count(pb.document_pb2.CountRequest(collection="c"), metadata=md, timeout=30).count == 12000
        got = docs.Get(pb.document_pb2.GetRequest(collection="c", id="d011999"), metadata=md, timeout=30)
        assert pb.undoc(got.document)["pad"] == "x" * 250
        s.stop()


def test_an_unknown_compression_stops_the_server_naming_the_flag(tmp_path):
    r = subprocess.run([server_binary(), "--data-dir", str(tmp_path / "d"), "--compression", "snappy"],
                       capture_output=True, timeout=10, text=True)
    assert r.returncode == 2
    assert "--compression: expected none, lz4 or zstd, got 'snappy'" in r.stderr
