"""Acknowledged writes survive SIGTERM and SIGKILL; readiness is NOT_SERVING while the WAL replays."""
import signal
import threading
import time

import grpc




def write_until_stopped(pb, target, key, acked, errors, stop, writer):
    with grpc.insecure_channel(target) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        i = 0
        while not stop.is_set():
            try:
                r = stub.InsertOne(pb.document_pb2.InsertOneRequest(
                    collection="acks", document=pb.doc({"writer": writer, "i": i})),
                    metadata=(("x-api-key", key),), timeout=5)
                acked.append((r.document_id, writer, i))
            except grpc.RpcError as e:
                errors.append(e.code())
                if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                    return
            i += 1


def check_all_present(pb, server, acked):
    with grpc.insecure_channel(server.target) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        auth = (("x-api-key", server.api_key),)
        ids = set()
        for page in stub.Find(pb.document_pb2.FindRequest(collection="acks"), metadata=auth, timeout=60):
            for d in page.documents:
                ids.add(pb.undoc(d)["_id"])
        missing = [a for a in acked if a[0] not in ids]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"


def run_writers(pb, s, n=8):
    acked, errors, stop = [], [], threading.Event()
    threads = [threading.Thread(target=write_until_stopped, args=(pb, s.target, s.api_key, acked, errors, stop, w))
               for w in range(n)]
    for t in threads:
        t.start()
    return acked, errors, stop, threads


def test_sigterm_under_write_load_keeps_every_ack(pb, server_factory):
    s = server_factory("term_load", extra_args=["--shutdown-grace", "5"]).start()
    acked, errors, stop, threads = run_writers(pb, s)
    time.sleep(1.5)
    t0 = time.time()
    s.proc.send_signal(signal.SIGTERM)
    rc = s.proc.wait(timeout=15)
    stop.set()
    for t in threads:
        t.join()
    assert rc == 0 and time.time() - t0 < 10
    assert len(acked) > 50
    s2 = server_factory("term_load").start()
    check_all_present(pb, s2, acked)


def test_sigkill_keeps_every_ack(pb, server_factory):
    for round_ in range(3):
        s = server_factory("kill_load").start()
        acked, errors, stop, threads = run_writers(pb, s)
        time.sleep(0.5 + 0.3 * round_)
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join()
        s2 = server_factory("kill_load").start()
        check_all_present(pb, s2, acked)
        s2.stop()


def test_not_serving_until_replay_is_done(pb, server_factory):
    """Fill the WAL, kill, restart: health answers NOT_SERVING before it answers SERVING."""
    s = server_factory("replay").start()
    with grpc.insecure_channel(s.target) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        auth = (("x-api-key", s.api_key),)
        batch = [pb.doc({"i": i, "pad": "x" * 400}) for i in range(2000)]
        for _ in range(40):  # ~35 MB of WAL that the memtable has not flushed
            stub.InsertMany(pb.document_pb2.InsertManyRequest(collection="big", documents=batch),
                            metadata=auth, timeout=60)
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait(timeout=10)

    import subprocess, json
    from conftest import server_binary
    proc = subprocess.Popen([server_binary(), "--data-dir", s.data_dir, "--grpc-addr", "127.0.0.1:0",
                             "--http-addr", "127.0.0.1:0"], stderr=subprocess.PIPE)
    try:
        port = None
        while port is None:
            rec = json.loads(proc.stderr.readline())
            if rec["msg"] == "gRPC listening":
                port = rec["port"]
        # keep reading its log (a line per call) so the server never blocks on a full pipe
        import threading
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
        seen = []
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            health = pb.health_pb2_grpc.HealthStub(ch)
            deadline = time.time() + 60
            while time.time() < deadline:
                st = health.Check(pb.health_pb2.HealthCheckRequest(), timeout=5).status
                if not seen or seen[-1] != st:
                    seen.append(st)
                if st == pb.health_pb2.HealthCheckResponse.SERVING:
                    break
        assert seen[0] == pb.health_pb2.HealthCheckResponse.NOT_SERVING, seen
        assert seen[-1] == pb.health_pb2.HealthCheckResponse.SERVING, seen
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
