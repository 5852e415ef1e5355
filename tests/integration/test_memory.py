"""Memory you can plan for: AdminService/Stats and /metrics say where the resident set goes
(anonymous apart from mapped file pages, and the memtables and block cache within it; the
vector graphs' figure is each collection's index_bytes, which test_vector_index checks), the figures agree with the kernel's own accounting of the process, and with
small --memtable-bytes and --block-cache-bytes the anonymous memory stays within those
budgets plus the documented constant (README, "Sizing a node") after a load."""
import concurrent.futures
import re
import threading
import time

import grpc
import requests

MiB = 1 << 20
# README "Sizing a node": what the server holds beyond its memtables, block cache and
# graphs (threads' stacks and arenas, connections, buffers, the allocator's slack).
CONSTANT = 120 * MiB


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return {k: int(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in f) if v.strip().endswith("kB")}


def test_memory_figures_match_the_process_and_stay_within_budget(pb, server_factory):
    s = server_factory(extra_args=["--memtable-bytes", str(8 * MiB), "--block-cache-bytes", str(8 * MiB)]).start()
    ch = grpc.insecure_channel(s.target)
    md = (("x-api-key", s.api_key),)
    docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
    admin = pb.admin_pb2_grpc.AdminServiceStub(ch)
    for b in range(60):  # 120,000 documents of ~300 bytes: several memtables' worth, flushed
        docs.InsertMany(pb.document_pb2.InsertManyRequest(collection="m", documents=[
            pb.doc({"i": b * 2000 + i, "pad": "x" * 250, "age": i % 90}) for i in range(2000)]),
            metadata=md, timeout=60)
    docs.CreateIndex(pb.document_pb2.CreateIndexRequest(
        collection="m", fields=[pb.document_pb2.IndexField(field="age")]), metadata=md, timeout=120)
    assert docs.Count(pb.document_pb2.CountRequest(collection="m", filter=pb.doc({"age": {"$gt": 30}})),
                      metadata=md, timeout=60).count > 0
    # 6,000 vectors of 256 dimensions, under the 64 MiB a segment takes: all of them in memory rows
    v = pb.vector_pb2
    vec = pb.vector_pb2_grpc.VectorServiceStub(ch)
    vec.CreateVectorCollection(v.CreateVectorCollectionRequest(collection="v", dimensions=256), metadata=md, timeout=10)
    for at in range(0, 6000, 2000):
        vec.InsertVectors(v.InsertVectorsRequest(collection="v", documents=[
            v.VectorDocument(document=pb.doc({"_id": f"v{i:05d}"}), vector=[(i * 7 + j) % 13 + 1.0 for j in range(256)])
            for i in range(at, at + 2000)]), metadata=md, timeout=60)
    r = admin.Stats(pb.admin_pb2.StatsRequest(), metadata=md, timeout=10)
    kernel = proc_status(s.proc.pid)
    m = r.memory
    # the kernel's figures, read a moment apart: within 8 MiB of each other
    assert abs(m.resident_anonymous - kernel["RssAnon"]) < 8 * MiB, (m, kernel["RssAnon"])
    assert abs(m.resident_file - kernel["RssFile"]) < 8 * MiB, (m, kernel["RssFile"])
    # uncompressed tables (the default) are read in place from their mapping: file pages, no cache
    assert m.block_cache_capacity == 8 * MiB and 0 <= m.block_cache <= m.block_cache_capacity, m
    assert 0 < m.memtables <= 2 * 8 * MiB + MiB, m
    assert m.vector_graphs == sum(c.index_bytes for c in r.collections)
    # the rows (1 KiB each) and their ids, and no more than a segment's worth of row pages
    assert m.vector_rows == sum(c.memory_bytes for c in r.collections)
    assert 6000 * 1024 < m.vector_rows < 6000 * 1024 + 80 * MiB, m
    # the budget: two memtables, the cache, the graphs, the vectors' memory rows, the constant
    budget = 2 * 8 * MiB + 8 * MiB + m.vector_graphs + m.vector_rows + CONSTANT
    assert m.resident_anonymous < budget, (m.resident_anonymous / MiB, budget / MiB)
    text = requests.get(f"{s.http_base}/metrics", headers={"X-API-Key": s.api_key}, timeout=10).text
    got = dict(re.findall(r'^nexadb_memory_bytes\{kind="(\w+)"\} (\d+)$', text, re.M))
    assert set(got) == {"anonymous", "file", "shared", "memtables", "block_cache", "block_cache_capacity",
                        "vector_graphs", "vector_rows"}, got
    assert int(got["block_cache_capacity"]) == 8 * MiB
    assert abs(int(got["anonymous"]) - m.resident_anonymous) < 16 * MiB
    ch.close()


def test_concurrent_bulk_writes_stay_within_budget(pb, server_factory):
    """Sixteen clients sending InsertMany calls of 10,000 documents (3 MB each) at once: every
    worker thread handles large buffers, and the peak anonymous memory, read every 20 ms, stays
    within the budgets plus the constant (the allocator keeps one arena per core; README,
    "Sizing a node")."""
    s = server_factory(extra_args=["--memtable-bytes", str(8 * MiB), "--block-cache-bytes", str(8 * MiB)]).start()
    md = (("x-api-key", s.api_key),)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], proc_status(s.proc.pid)["RssAnon"])
            time.sleep(0.02)

    def write(w):
        docs = pb.document_pb2_grpc.DocumentServiceStub(grpc.insecure_channel(s.target))
        for b in range(4):
            docs.InsertMany(pb.document_pb2.InsertManyRequest(collection="m", documents=[
                pb.doc({"w": w, "i": b * 10000 + i, "pad": "y" * 250}) for i in range(10000)]),
                metadata=md, timeout=120)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            list(ex.map(write, range(16)))
    finally:
        done.set()
        sampler.join()
    budget = 2 * 8 * MiB + 8 * MiB + CONSTANT
    assert peak[0] < budget, (peak[0] / MiB, budget / MiB)
