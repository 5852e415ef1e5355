"""Health and recovery on a full disk, for real: the data directory is on a small tmpfs.

A full disk makes the storage engine refuse writes: readiness (nexadb.v1.DocumentService)
turns NOT_SERVING, liveness ("") stays SERVING, Status and GET /status say why (ENOSPC),
reads go on; once space is freed, writes resume by themselves and readiness is SERVING
again; every acknowledged write survives a restart and no failed one appears. A server whose
disk is full starts, serves reads, and says why readiness is NOT_SERVING.

Mounting needs root (CAP_SYS_ADMIN); without it the tests are skipped, saying so.
"""
import errno
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request

import grpc
import pytest

from conftest import Server

SERVING = 1
NOT_SERVING = 2
PAD = "x" * 2048  # a WAL chunk (1 MiB) fills in a few hundred inserts


@pytest.fixture
def disk(tmp_path):
    """A 16 MiB tmpfs; unmounted at the end."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path):
    """Writes path until the file system is full (ENOSPC)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 1 << 12):
            while True:
                try:
                    os.write(fd, b"\xa5" * size)
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    break
    finally:
        os.close(fd)


def start(tmp_path, mnt, name="data"):
    s = Server(str(mnt / name))
    s.log_path = str(tmp_path / f"{name}.log")  # not on the disk that fills
    return s.start()


def doc(pb, i):
    return pb.doc({"_id": f"k{i}", "i": i, "pad": PAD})


def health(pb, ch, service):
    return pb.health_pb2_grpc.HealthStub(ch).Check(pb.health_pb2.HealthCheckRequest(service=service),
                                                    timeout=5).status


def wait_for(pred, timeout=10, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def rest_status(s):
    with urllib.request.urlopen(s.http_base + "/status", timeout=5) as r:
        return json.loads(r.read())


def check_present(pb, ch, key, acked, failed):
    stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
    auth = (("x-api-key", key),)
    for i in acked:
        r = stub.Get(pb.document_pb2.GetRequest(collection="c", id=f"k{i}"), metadata=auth, timeout=10)
        assert pb.undoc(r.document)["i"] == i
    for i in failed:
        with pytest.raises(grpc.RpcError) as e:
            stub.Get(pb.document_pb2.GetRequest(collection="c", id=f"k{i}"), metadata=auth, timeout=10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND, f"failed insert k{i} is there"


def test_full_disk_stops_readiness_and_writes_resume_when_space_is_freed(pb, tmp_path, disk):
    s = start(tmp_path, disk)
    key = (("x-api-key", s.api_key),)
    ch = grpc.insecure_channel(s.target)
    docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
    admin = pb.admin_pb2_grpc.AdminServiceStub(ch)
    docs.CreateCollection(pb.document_pb2.CreateCollectionRequest(collection="c"), metadata=key, timeout=10)
    assert health(pb, ch, "nexadb.v1.DocumentService") == SERVING
    st = admin.Status(pb.admin_pb2.StatusRequest(), timeout=5)
    assert (st.health, st.reason) == ("SERVING", "")

    # readiness watchers see every change
    seen, watch = [], pb.health_pb2_grpc.HealthStub(ch).Watch(
        pb.health_pb2.HealthCheckRequest(service="nexadb.v1.DocumentService"), timeout=60)

    def follow():
        try:
            for r in watch:
                seen.append(r.status)
        except grpc.RpcError:
            pass
    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()

    acked, failed = [], []
    i = 0
    for _ in range(50):
        docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="c", document=doc(pb, i)), metadata=key, timeout=10)
        acked.append(i)
        i += 1
    fill(disk / "filler")
    first_error = None
    while i < 5000 and first_error is None:
        try:
            docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="c", document=doc(pb, i)), metadata=key,
                           timeout=10)
            acked.append(i)
        except grpc.RpcError as e:
            first_error = e
            failed.append(i)
        i += 1
    assert first_error is not None, "inserts never failed on a full disk"
    # the write that met the full disk: RESOURCE_EXHAUSTED (gRPC's code for a full file system)
    assert first_error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, first_error
    assert "ENOSPC" in first_error.details(), first_error.details()
    # later writes: UNAVAILABLE (retry later), saying why
    with pytest.raises(grpc.RpcError) as e:
        docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="c", document=doc(pb, i)), metadata=key, timeout=10)
    failed.append(i)
    i += 1
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE and "ENOSPC" in e.value.details(), e.value

    wait_for(lambda: health(pb, ch, "nexadb.v1.DocumentService") == NOT_SERVING, 5, "readiness NOT_SERVING")
    assert health(pb, ch, "nexadb.v1.VectorService") == NOT_SERVING
    assert health(pb, ch, "") == SERVING, "liveness stays up: a restart would not free space"
    st = admin.Status(pb.admin_pb2.StatusRequest(), timeout=5)
    assert st.status == "ok" and st.health == "NOT_SERVING"
    assert "no space left on device (ENOSPC)" in st.reason and "WAL" in st.reason, st.reason
    body = rest_status(s)
    assert body["health"] == "NOT_SERVING" and "ENOSPC" in body["reason"], body
    # reads go on
    check_present(pb, ch, s.api_key, acked, failed)
    r = docs.Count(pb.document_pb2.CountRequest(collection="c"), metadata=key, timeout=10)
    assert r.count == len(acked)
    # still full: still NOT_SERVING a few retries later
    time.sleep(2.5)
    assert health(pb, ch, "nexadb.v1.DocumentService") == NOT_SERVING

    os.unlink(disk / "filler")
    wait_for(lambda: health(pb, ch, "nexadb.v1.DocumentService") == SERVING, 10, "readiness SERVING again")
    st = admin.Status(pb.admin_pb2.StatusRequest(), timeout=5)
    assert (st.health, st.reason) == ("SERVING", "")
    for _ in range(50):
        docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="c", document=doc(pb, i)), metadata=key, timeout=10)
        acked.append(i)
        i += 1
    wait_for(lambda: seen[-1:] == [SERVING] and NOT_SERVING in seen, 5, f"the watch to follow (saw {seen})")
    assert seen[0] == SERVING and seen.index(NOT_SERVING) > 0, seen
    watch.cancel()
    ch.close()
    assert s.stop() == 0
    assert any(r.get("msg", "").startswith("storage engine refuses writes") for r in s.lines)
    assert any(r.get("msg", "").startswith("storage engine accepts writes again") for r in s.lines)

    s = start(tmp_path, disk)
    with grpc.insecure_channel(s.target) as ch:
        check_present(pb, ch, s.api_key, acked, failed)
        assert health(pb, ch, "nexadb.v1.DocumentService") == SERVING
    assert s.stop() == 0


def test_a_server_whose_disk_is_full_starts_and_serves_reads(pb, tmp_path, disk):
    s = start(tmp_path, disk)
    key = (("x-api-key", s.api_key),)
    with grpc.insecure_channel(s.target) as ch:
        docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
        docs.CreateCollection(pb.document_pb2.CreateCollectionRequest(collection="c"), metadata=key, timeout=10)
        for i in range(200):
            docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="c", document=doc(pb, i)), metadata=key,
                           timeout=10)
    assert s.stop() == 0
    fill(disk / "filler")

    s = start(tmp_path, disk)  # replays its WAL, which it cannot write out
    key = (("x-api-key", s.api_key),)
    with grpc.insecure_channel(s.target) as ch:
        wait_for(lambda: health(pb, ch, "nexadb.v1.DocumentService") == NOT_SERVING, 5, "readiness NOT_SERVING")
        assert health(pb, ch, "") == SERVING
        st = pb.admin_pb2_grpc.AdminServiceStub(ch).Status(pb.admin_pb2.StatusRequest(), timeout=5)
        assert st.health == "NOT_SERVING" and "ENOSPC" in st.reason and "open" in st.reason, st.reason
        check_present(pb, ch, s.api_key, range(200), [])
        docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="c", document=doc(pb, 200)), metadata=key,
                           timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE and "ENOSPC" in e.value.details(), e.value

        os.unlink(disk / "filler")
        wait_for(lambda: health(pb, ch, "nexadb.v1.DocumentService") == SERVING, 10, "readiness SERVING")
        for i in range(200, 260):
            docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="c", document=doc(pb, i)), metadata=key,
                           timeout=10)
    assert s.stop(signal.SIGKILL) == -signal.SIGKILL  # no clean close: the WAL must carry the new writes

    s = start(tmp_path, disk)
    with grpc.insecure_channel(s.target) as ch:
        check_present(pb, ch, s.api_key, range(260), [])
        assert health(pb, ch, "nexadb.v1.DocumentService") == SERVING
    assert s.stop() == 0
