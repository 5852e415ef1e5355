"""AdminService/Backup and nexadb-server --restore / --verify-backup against real servers.

A backup taken while writers run restores to exactly a prefix of each writer's acknowledged
inserts (every one acknowledged before the backup began, none begun after it ended, no gaps);
indexes and vector collections come back with the documents; an archive streamed to the client
restores too, and one with a flipped byte or cut short is refused, naming the file, with nothing
written into the data directory; a server killed with SIGKILL during a backup restarts with its
data and leaves a backup that verify refuses as incomplete (or one that is whole)."""
import json
import os
import random
import signal
import subprocess
import threading
import time
import urllib.request

import grpc
import pytest

from conftest import server_binary

WRITERS = 3


def stubs(pb, s):
    ch = grpc.insecure_channel(s.target, options=[("grpc.max_receive_message_length", 64 << 20)])
    return (ch, pb.document_pb2_grpc.DocumentServiceStub(ch), pb.vector_pb2_grpc.VectorServiceStub(ch),
            pb.admin_pb2_grpc.AdminServiceStub(ch), (("x-api-key", s.api_key),))


def seed(pb, docs, vecs, md):
    """Documents, an index and a vector collection (all in the log: the engine's 64 MiB memtable
    holds them; a restart writes them out to tables)."""
    d, v = pb.document_pb2, pb.vector_pb2
    docs.InsertMany(d.InsertManyRequest(collection="people", documents=[
        pb.doc({"_id": f"p{i}", "name": f"n{i}", "age": i % 90, "bio": "x" * (i % 300)}) for i in range(3000)]),
        metadata=md, timeout=60)
    docs.CreateIndex(d.CreateIndexRequest(collection="people", fields=[d.IndexField(field="age")]), metadata=md,
                     timeout=60)
    vecs.CreateVectorCollection(v.CreateVectorCollectionRequest(collection="emb", dimensions=8), metadata=md,
                                timeout=10)
    for i in range(200):
        vecs.InsertVector(v.InsertVectorRequest(collection="emb", document=pb.doc({"_id": f"v{i}", "i": i}),
                                                vector=[float((i * 7 + j) % 13) for j in range(8)]),
                          metadata=md, timeout=10)


def writer(pb, target, key, w, acked, started, backup_done, stop):
    with grpc.insecure_channel(target) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        n = 0
        while not stop.is_set():
            n += 1
            if not backup_done.is_set():
                started[w] = n
            stub.InsertOne(pb.document_pb2.InsertOneRequest(
                collection="acks", document=pb.doc({"_id": f"w{w}-{n:07d}", "w": w, "n": n})),
                metadata=(("x-api-key", key),), timeout=30)
            acked[w] = n


def backup(pb, admin, md, **req):
    msgs = list(admin.Backup(pb.admin_pb2.BackupRequest(**req), metadata=md, timeout=300))
    assert msgs and msgs[-1].done and not any(m.done for m in msgs[:-1])
    seq = {m.sequence for m in msgs}
    assert len(seq) == 1 and msgs[0].sequence > 0, "one log point from the first message on"
    done = [m.progress.bytes_done for m in msgs]
    assert done == sorted(done) and msgs[-1].progress.bytes_done == msgs[-1].progress.bytes_total
    assert msgs[-1].progress.files_done == msgs[-1].progress.files_total > 0
    return msgs


def run_tool(*args, timeout=120):
    p = subprocess.run([server_binary(), *args], capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(x) for x in p.stderr.splitlines() if x.startswith("{")]
    return p.returncode, lines


def restore(src, data_dir, *extra):
    rc, lines = run_tool("--restore", src, "--data-dir", data_dir, *extra)
    assert rc == 0, lines
    return lines[-1]


def all_docs(pb, docs, md, coll):
    return {pb.undoc(x)["_id"]: pb.undoc(x) for page in docs.Find(pb.document_pb2.FindRequest(collection=coll),
                                                                    metadata=md, timeout=60) for x in page.documents}


def test_backup_under_writes_restores_the_state_at_its_log_point(pb, server_factory, tmp_path):
    s = server_factory("src").start()
    ch, docs, vecs, admin, md = stubs(pb, s)
    seed(pb, docs, vecs, md)
    acked, started = [0] * WRITERS, [0] * WRITERS
    backup_done, stop = threading.Event(), threading.Event()
    threads = [threading.Thread(target=writer, args=(pb, s.target, s.api_key, w, acked, started, backup_done, stop))
               for w in range(WRITERS)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    acked_at_start = list(acked)
    msgs = backup(pb, admin, md, name="b1")
    backup_done.set()
    started_at_end = list(started)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    assert msgs[-1].path == os.path.join(s.data_dir, "backups", "b1")
    assert os.path.exists(os.path.join(msgs[-1].path, "BACKUP"))
    assert sum(acked) > sum(acked_at_start), "writes went on during the backup"
    # /metrics tells of it
    with urllib.request.urlopen(urllib.request.Request(f"{s.http_base}/metrics",
                                                       headers={"X-API-Key": s.api_key})) as r:
        text = r.read().decode()
    assert 'nexadb_backups_total{result="ok"} 1' in text
    assert "nexadb_backup_running 0" in text
    assert f"nexadb_backup_last_sequence {msgs[-1].sequence}" in text
    total = msgs[-1].progress.bytes_total
    assert f'nexadb_backup_bytes{{state="done"}} {total}' in text
    assert f'nexadb_backup_bytes{{state="total"}} {total}' in text

    info = restore(msgs[-1].path, str(tmp_path / "restored"))
    assert info["sequence"] == msgs[-1].sequence
    r = server_factory("restored").start()
    rch, rdocs, rvecs, radmin, rmd = stubs(pb, r)
    got = all_docs(pb, rdocs, rmd, "acks")
    for w in range(WRITERS):
        ns = sorted(d["n"] for d in got.values() if d["w"] == w)
        k = len(ns)
        assert ns == list(range(1, k + 1)), f"writer {w}: not a prefix of its inserts"
        assert acked_at_start[w] <= k <= started_at_end[w], (w, acked_at_start[w], k, started_at_end[w])
    # documents, the index and the vectors came along (vectors rebuilt from the log at open)
    people = all_docs(pb, rdocs, rmd, "people")
    assert len(people) == 3000 and people["p42"]["bio"] == "x" * 42
    idx = rdocs.ListIndexes(pb.document_pb2.ListIndexesRequest(collection="people"), metadata=rmd, timeout=10)
    assert "age_1" in [i.name for i in idx.indexes]
    q = [float((5 * 7 + j) % 13) for j in range(8)]
    hits = rvecs.Search(pb.vector_pb2.SearchRequest(collection="emb", vector=q, limit=1), metadata=rmd, timeout=10)
    assert hits.results[0].document_id == "v5"
    ch.close()
    rch.close()


def restarted(pb, s, ch):
    """The server stopped and started again: what the log held is in tables now."""
    ch.close()
    s.stop()
    s.start()
    return stubs(pb, s)


def test_incremental_directory_backup_and_rest(pb, server_factory, tmp_path):
    s = server_factory("inc").start()
    ch, docs, vecs, admin, md = stubs(pb, s)
    seed(pb, docs, vecs, md)
    ch, docs, vecs, admin, md = restarted(pb, s, ch)
    b1 = backup(pb, admin, md, name="full")
    docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="people", document=pb.doc({"_id": "late"})),
                   metadata=md, timeout=10)
    b2 = backup(pb, admin, md, name="inc", previous="full")
    assert b2[-1].sequence > b1[-1].sequence
    assert 0 < b2[-1].progress.files_reused < b2[-1].progress.files_total
    assert b2[-1].progress.bytes_reused > 0
    tables = [n for n in os.listdir(b1[-1].path) if n.endswith(".sst")]
    assert tables and all(os.stat(os.path.join(b1[-1].path, n)).st_ino ==
                          os.stat(os.path.join(b2[-1].path, n)).st_ino for n in tables), "linked, not copied"
    # refused requests
    for req, code in [({"name": "full"}, grpc.StatusCode.ALREADY_EXISTS),
                      ({"name": "../x"}, grpc.StatusCode.INVALID_ARGUMENT),
                      ({}, grpc.StatusCode.INVALID_ARGUMENT),
                      ({"name": "y", "archive": True}, grpc.StatusCode.INVALID_ARGUMENT),
                      ({"name": "z", "previous": "missing"}, grpc.StatusCode.INVALID_ARGUMENT)]:
        with pytest.raises(grpc.RpcError) as e:
            list(admin.Backup(pb.admin_pb2.BackupRequest(**req), metadata=md, timeout=30))
        assert e.value.code() == code, (req, e.value.details())
    with pytest.raises(grpc.RpcError) as e:
        list(admin.Backup(pb.admin_pb2.BackupRequest(name="nokey"), timeout=30))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # over REST: a directory backup answers with the merged stream; an archive is refused
    def post(body):
        req = urllib.request.Request(f"{s.http_base}/admin/backup", data=json.dumps(body).encode(),
                                     headers={"X-API-Key": s.api_key, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
    status, body = post({"name": "viarest"})
    assert status == 200 and body["done"] is True and body["path"].endswith("/backups/viarest"), body
    assert body["progress"]["bytes_done"] == body["progress"]["bytes_total"]
    status, body = post({"archive": True})
    assert status == 400 and "gRPC" in body["message"], body
    # the incremental directory restores by itself
    restore(b2[-1].path, str(tmp_path / "r"))
    r = server_factory("r").start()
    rch, rdocs, _, _, rmd = stubs(pb, r)
    assert len(all_docs(pb, rdocs, rmd, "people")) == 3001
    ch.close()
    rch.close()


def stream_archive(pb, admin, md, path, **req):
    msgs = 0
    last = None
    with open(path, "wb") as f:
        for m in admin.Backup(pb.admin_pb2.BackupRequest(archive=True, **req), metadata=md, timeout=300):
            f.write(m.archive_chunk)
            assert len(m.archive_chunk) <= 1 << 20
            msgs += 1
            last = m
    assert last.done and msgs > 1
    return last


def test_archive_restores_and_a_damaged_one_is_refused(pb, server_factory, tmp_path):
    s = server_factory("arc").start()
    ch, docs, vecs, admin, md = stubs(pb, s)
    seed(pb, docs, vecs, md)
    ch, docs, vecs, admin, md = restarted(pb, s, ch)
    arch = str(tmp_path / "full.tar")
    last = stream_archive(pb, admin, md, arch)
    rc, lines = run_tool("--verify-backup", arch)
    assert rc == 0 and lines[-1]["sequence"] == last.sequence, lines
    listing = subprocess.run(["tar", "-tf", arch], capture_output=True, text=True, check=True).stdout.split()
    assert listing[-1] == "BACKUP" and "CURRENT" in listing
    # incremental: only what the first lacks
    docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="people", document=pb.doc({"_id": "late"})),
                   metadata=md, timeout=10)
    with open(arch, "rb") as f:
        data = f.read()
    names = subprocess.run(["tar", "-xOf", arch, "BACKUP"], capture_output=True, check=True).stdout
    inc = str(tmp_path / "inc.tar")
    stream_archive(pb, admin, md, inc, previous_listing=names)
    assert os.path.getsize(inc) < len(data)
    rc, lines = run_tool("--verify-backup", inc)
    assert rc == 1 and "base" in lines[-1]["error"], lines
    restore(f"{inc},{arch}", str(tmp_path / "r"))
    r = server_factory("r").start()
    rch, rdocs, _, _, rmd = stubs(pb, r)
    assert "late" in all_docs(pb, rdocs, rmd, "people")
    rch.close()
    # a flipped byte inside the first entry (a table): refused, naming it, nothing restored
    bad = str(tmp_path / "bad.tar")
    with open(bad, "wb") as f:
        f.write(data[:512 + 1000] + bytes([data[512 + 1000] ^ 0x10]) + data[512 + 1001:])
    first = listing[0]
    target = tmp_path / "bad_restore"
    rc, lines = run_tool("--restore", bad, "--data-dir", str(target))
    assert rc == 1 and first in lines[-1]["error"] and "checksum" in lines[-1]["error"], lines
    assert sorted(os.listdir(target)) == ["LOCK"], "a refused restore wrote into the data directory"
    # cut short: incomplete
    cut = str(tmp_path / "cut.tar")
    with open(cut, "wb") as f:
        f.write(data[:len(data) // 2])
    rc, lines = run_tool("--verify-backup", cut)
    assert rc == 1 and "incomplete" in lines[-1]["error"], lines
    # a data directory that is not empty is refused
    rc, lines = run_tool("--restore", arch, "--data-dir", s.data_dir)
    assert rc == 1 and "not empty" in lines[-1]["error"], lines
    ch.close()


def test_sigkill_during_a_backup(pb, server_factory, tmp_path):
    s = server_factory("kill").start()
    ch, docs, vecs, admin, md = stubs(pb, s)
    seed(pb, docs, vecs, md)
    for b in range(4):  # 8 MB: more than flow control lets through to a reader that stalls
        docs.InsertMany(pb.document_pb2.InsertManyRequest(collection="people", documents=[
            pb.doc({"_id": f"big{b}-{i}", "pad": "y" * 1000}) for i in range(2000)]), metadata=md, timeout=60)
    ids = set(all_docs(pb, docs, md, "people"))
    # an archive whose reader stalls keeps the backup in progress: kill the server then
    part = str(tmp_path / "part.tar")
    stream = admin.Backup(pb.admin_pb2.BackupRequest(archive=True), metadata=md, timeout=60)
    with open(part, "wb") as f:
        f.write(next(stream).archive_chunk)
    with urllib.request.urlopen(urllib.request.Request(f"{s.http_base}/metrics",
                                                       headers={"X-API-Key": s.api_key})) as r:
        assert "nexadb_backup_running 1" in r.read().decode()
    s.stop(signal.SIGKILL)
    stream.cancel()
    rc, lines = run_tool("--verify-backup", part)
    assert rc == 1 and "incomplete" in lines[-1]["error"], lines
    # a directory backup killed at a random moment
    s.start()
    ch.close()
    ch, docs, vecs, admin, md = stubs(pb, s)
    def run():
        try:
            list(admin.Backup(pb.admin_pb2.BackupRequest(name="k"), metadata=md, timeout=60))
        except grpc.RpcError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    time.sleep(random.uniform(0.0, 0.05))
    s.stop(signal.SIGKILL)
    t.join(timeout=30)
    bdir = os.path.join(s.data_dir, "backups", "k")
    if os.path.isdir(bdir):
        rc, lines = run_tool("--verify-backup", bdir)
        if os.path.exists(os.path.join(bdir, "BACKUP")):
            assert rc == 0, lines
        else:
            assert rc == 1 and "incomplete" in lines[-1]["error"], lines
    # the database restarts with everything
    s.start()
    ch.close()
    ch, docs, vecs, admin, md = stubs(pb, s)
    assert set(all_docs(pb, docs, md, "people")) == ids
    ch.close()
