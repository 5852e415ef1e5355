"""Sorts and $group beyond --query-memory-bytes spill to files in <data-dir>/spill instead of
failing: correct results, memory bounded well below the data, no file left behind, also
after a SIGKILL in the middle of a spilling sort."""
import os
import signal
import threading
import time
import urllib.request

import grpc

N = 12000
PAD = "p" * 1000  # ~12 MB of documents against a 1 MiB bound


def vm_hwm_kib(pid):
    """The process's peak resident set size (VmHWM), KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def sanitized(pid):
    """An ASan build keeps freed memory in quarantine: its RSS says nothing about bounds."""
    with open(f"/proc/{pid}/maps") as f:
        return any("libasan" in line for line in f)


def reset_hwm(pid):
    """Resets VmHWM to the current RSS (Linux: writing 5 to clear_refs)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def load(pb, s):
    md = (("x-api-key", s.api_key),)
    with grpc.insecure_channel(s.target) as ch:
        docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
        for start in range(0, N, 1000):
            docs.InsertMany(pb.document_pb2.InsertManyRequest(collection="big", documents=[
                pb.doc({"_id": f"d{i:05d}", "k": (i * 7919) % 5000, "g": i % 37, "pad": PAD})
                for i in range(start, start + 1000)]), metadata=md, timeout=60)


def sorted_find(pb, s, **kw):
    md = (("x-api-key", s.api_key),)
    with grpc.insecure_channel(s.target, options=[("grpc.max_receive_message_length", 64 << 20)]) as ch:
        docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
        pages = list(docs.Find(pb.document_pb2.FindRequest(collection="big", sort=pb.doc({"k": 1}),
                                                           projection=pb.doc({"k": 1}), explain=True, **kw),
                               metadata=md, timeout=120))
    return [pb.undoc(d) for p in pages for d in p.documents], pb.undoc(pages[-1].explain)


def test_sort_and_group_spill_with_bounded_memory_and_no_files_left(pb, server_factory):
    s = server_factory(extra_args=["--query-memory-bytes", str(1 << 20)]).start()
    load(pb, s)
    spill = os.path.join(s.data_dir, "spill")
    reset_hwm(s.proc.pid)
    before = vm_hwm_kib(s.proc.pid)
    got, plan = sorted_find(pb, s)
    grew = vm_hwm_kib(s.proc.pid) - before
    assert [d["k"] for d in got] == sorted(d["k"] for d in got) and len(got) == N
    assert [d["_id"] for d in got] == [d["_id"] for d in sorted(got, key=lambda d: (d["k"], d["_id"]))]
    assert plan["spilled_bytes"] > 10 * (1 << 20), plan  # ~12 MB of documents went through files
    if not sanitized(s.proc.pid):
        assert grew < 8 * 1024, f"peak RSS grew {grew} KiB sorting ~12 MB with a 1 MiB bound"
    assert os.listdir(spill) == []
    # a $group of many groups spills too, with the same answer as the arithmetic gives
    md = (("x-api-key", s.api_key),)
    with grpc.insecure_channel(s.target) as ch:
        docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
        out = [pb.undoc(d) for p in docs.Aggregate(pb.document_pb2.AggregateRequest(collection="big", pipeline=[
            pb.doc({"$group": {"_id": "$k", "n": {"$sum": 1}, "pads": {"$push": "$pad"}}}),
            pb.doc({"$project": {"n": 1}}), pb.doc({"$sort": {"_id": 1}})]), metadata=md, timeout=120)
            for d in p.documents]
    assert [d["_id"] for d in out] == list(range(5000))
    assert sum(d["n"] for d in out) == N
    assert os.listdir(spill) == []
    s.stop()


def test_sigkill_during_a_spilling_sort_leaves_no_garbage(pb, server_factory):
    s = server_factory(extra_args=["--query-memory-bytes", str(1 << 20)]).start()
    load(pb, s)
    spill = os.path.join(s.data_dir, "spill")
    def query():  # killed in the middle, or (rarely) just done: the files are what matters
        try:
            sorted_find(pb, s)
        except grpc.RpcError:
            pass

    t = threading.Thread(target=query)
    t.start()
    # kill it while it holds spill files (open, never named: "<spill>/#<inode> (deleted)" in /proc)
    deadline, seen = time.time() + 20, []
    while not seen and time.time() < deadline:
        fds = f"/proc/{s.proc.pid}/fd"
        for fd in os.listdir(fds):
            try:
                target = os.readlink(os.path.join(fds, fd))
            except OSError:
                continue
            if target.startswith(spill + "/"):
                seen.append(target)
    assert seen, "never caught the sort holding a spill file"
    assert all(t.endswith("(deleted)") for t in seen), seen
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait()
    t.join(timeout=30)
    # unlinked as they were made: nothing named in the directory, even after a crash
    assert os.listdir(spill) == []
    s2 = server_factory(extra_args=["--query-memory-bytes", str(1 << 20)]).start()
    got, _ = sorted_find(pb, s2, limit=10)
    assert [d["k"] for d in got] == sorted((i * 7919) % 5000 for i in range(N))[:10]
    assert os.listdir(spill) == []
    s2.stop()


def metrics(s):
    req = urllib.request.Request(f"{s.http_base}/metrics", headers={"X-API-Key": s.api_key})
    with urllib.request.urlopen(req) as r:
        return r.read().decode()


def test_an_index_build_sorts_through_the_spill_dir_while_writes_go_on(pb, server_factory):
    """CreateIndex over 12,000 documents with a 1 MiB sort bound: sorted runs spilled and ingested
    while another client keeps inserting into the same collection (its acknowledged inserts move
    during the build); the index counts exactly the collection's documents afterwards, /metrics
    counts the build, and the spill directory is empty."""
    s = server_factory(extra_args=["--query-memory-bytes", str(1 << 20)]).start()
    load(pb, s)
    md = (("x-api-key", s.api_key),)
    acked, stop = [0], threading.Event()

    def writer():
        with grpc.insecure_channel(s.target) as ch:
            docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
            while not stop.is_set():
                docs.InsertOne(pb.document_pb2.InsertOneRequest(
                    collection="big", document=pb.doc({"_id": f"w{acked[0]:06d}", "k": acked[0] % 5000})),
                    metadata=md, timeout=30)
                acked[0] += 1

    t = threading.Thread(target=writer)
    t.start()
    while acked[0] < 5:
        time.sleep(0.01)
    with grpc.insecure_channel(s.target) as ch:
        docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
        before = acked[0]
        docs.CreateIndex(pb.document_pb2.CreateIndexRequest(
            collection="big", fields=[pb.document_pb2.IndexField(field="k")]), metadata=md, timeout=120)
        during = acked[0] - before
        stop.set()
        t.join()
        total = docs.Count(pb.document_pb2.CountRequest(collection="big"), metadata=md, timeout=60).count
        indexed = docs.Count(pb.document_pb2.CountRequest(collection="big", filter=pb.doc({"k": {"$gte": 0}})),
                             metadata=md, timeout=60).count
    assert during >= 3, f"only {during} inserts acknowledged during the build"
    assert total == N + acked[0]
    assert indexed == total
    text = metrics(s)
    assert 'nexadb_index_builds_total{result="ok"} 1' in text
    assert "nexadb_index_builds_running 0" in text
    assert 'nexadb_index_build_documents{state="total"} 0' in text
    assert os.listdir(os.path.join(s.data_dir, "spill")) == []
