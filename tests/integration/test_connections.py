"""Connections against descriptors (issue 16): idle connections by the thousand under a
1,024-descriptor limit must not cost a write, and must not stop either port for good.

Before the connection cap and descriptor reserve (service/README.md, "Connections and
descriptors"), 2,000 idle connections per port under `ulimit -n 1024` took every descriptor:
16 of 80 one-MiB writes failed, the engine poisoned itself ("creating a WAL segment failed")
and refused every later write until a restart, and the gRPC listener stopped at its first
EMFILE (0 of 20 new channels connected after the idle connections had gone).
"""
import errno
import glob
import os
import resource
import socket
import time

import grpc
import pytest
import requests

FLOOD_PER_PORT = 2000


@pytest.fixture(autouse=True)
def enough_descriptors_for_the_client():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2 * FLOOD_PER_PORT + 500:
        pytest.skip(f"the test needs {2 * FLOOD_PER_PORT + 500} descriptors; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))




def log_record(server, msg):
    recs = [r for r in server.lines if r.get("msg") == msg]
    assert recs, f"no log line {msg!r}"
    return recs[-1]


def flood(port, n):
    """n TCP connections that never send a byte (non-blocking connects; the kernel completes them)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        e = s.connect_ex(("127.0.0.1", port))
        assert e in (0, errno.EINPROGRESS), os.strerror(e)
        socks.append(s)
    return socks


def still_open(socks):
    """How many of socks the server has not closed: reading what it sent (gRPC's SETTINGS) ends
    in a read that would block, not in EOF or a reset."""
    n = 0
    for s in socks:
        try:
            while s.recv(4096):
                pass
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def wait_until(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def server_fds(server):
    return len(os.listdir(f"/proc/{server.proc.pid}/fd"))


def can_call(pb, server, timeout):
    """A fresh connection (its own subchannel pool) answers an authenticated write."""
    ch = grpc.insecure_channel(server.target, options=[("grpc.use_local_subchannel_pool", 1)])
    try:
        pb.document_pb2_grpc.DocumentServiceStub(ch).InsertOne(
            pb.document_pb2.InsertOneRequest(collection="c", document=pb.doc({"probe": 1})),
            metadata=(("x-api-key", server.api_key),), timeout=timeout)
        return True
    except grpc.RpcError as e:
        assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), e
        return False
    finally:
        ch.close()


def can_http(server, timeout):
    try:
        r = requests.get(f"{server.http_base}/status", timeout=timeout)
        return r.status_code == 200
    except requests.ConnectionError:
        return False


def test_idle_flood_under_1024_descriptors_leaves_writes_acknowledged(pb, server_factory):
    # Handshake and HTTP timeouts long enough that the flood is still there while we write.
    server = server_factory(nofile=(1024, 1024), extra_args=[
        "--handshake-timeout", "60", "--http-timeout", "60"]).start()
    limit = log_record(server, "descriptor limit")
    assert (limit["soft"], limit["hard"]) == (1024, 1024)
    cap = limit["max_connections_per_port"]
    assert 16 <= cap < 512
    auth = (("x-api-key", server.api_key),)
    d = pb.document_pb2

    # Connections made before the flood: one gRPC channel, one HTTP keep-alive session.
    ch = grpc.insecure_channel(server.target)
    docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
    docs.InsertOne(d.InsertOneRequest(collection="c", document=pb.doc({"_id": "before"})), metadata=auth, timeout=10)
    http = requests.Session()
    http.headers["X-API-Key"] = server.api_key
    assert http.get(f"{server.http_base}/status", timeout=10).status_code == 200

    socks = {"grpc": flood(server.port, FLOOD_PER_PORT), "http": flood(server.http_port, FLOOD_PER_PORT)}
    try:
        # The server takes up to the cap on each port and closes the rest at once.
        wait_until(lambda: still_open(socks["grpc"]) <= cap and still_open(socks["http"]) <= cap, 20,
                   "connections beyond the cap closed")
        assert still_open(socks["grpc"]) >= cap // 2  # idle connections are kept until their timeouts
        assert server_fds(server) < 1024 - limit["engine_reserve"] + 2  # the spare may be out

        # While both ports are full, a new connection is refused...
        assert not can_call(pb, server, timeout=3)
        assert not can_http(server, timeout=3)
        # ...and writes on the connections made before are all acknowledged: 80 MiB rolls the
        # memtable (64 MiB), so the engine opens a new WAL segment and writes and opens a table.
        big = "x" * (1 << 20)
        for i in range(80):
            docs.InsertOne(d.InsertOneRequest(collection="c", document=pb.doc({"_id": f"big{i}", "v": big})),
                           metadata=auth, timeout=30)
        wait_until(lambda: glob.glob(os.path.join(server.data_dir, "kv", "*.sst")), 30, "the memtable flushed")
        got = docs.Get(d.GetRequest(collection="c", id="big0"), metadata=auth, timeout=10)
        assert pb.undoc(got.document)["v"] == big
        assert docs.Count(d.CountRequest(collection="c"), metadata=auth, timeout=10).count == 81
        r = http.post(f"{server.http_base}/collections/c", json={"_id": "over-http"}, timeout=10)
        assert r.status_code == 200, r.text
        assert http.get(f"{server.http_base}/collections/c/big1", timeout=10).status_code == 200
    finally:
        for s in socks["grpc"] + socks["http"]:
            s.close()

    # Once the idle connections are gone, both ports accept again.
    wait_until(lambda: can_call(pb, server, timeout=3), 20, "a new gRPC connection accepted")
    wait_until(lambda: can_http(server, timeout=3), 20, "a new HTTP connection accepted")
    docs.InsertOne(d.InsertOneRequest(collection="c", document=pb.doc({"_id": "after"})), metadata=auth, timeout=10)

    assert any(r.get("msg", "").startswith("refusing new connections") for r in server.lines)
    assert not [r for r in server.lines if r.get("level") == "error"], "errors in the server log"


def test_idle_connections_are_reaped_by_the_server(pb, server_factory):
    server = server_factory(nofile=(1024, 1024), extra_args=[
        "--handshake-timeout", "2", "--http-timeout", "2"]).start()
    cap = log_record(server, "descriptor limit")["max_connections_per_port"]
    socks = flood(server.port, cap + 100) + flood(server.http_port, cap + 100)
    try:
        # Connections that never send a byte are closed by the server (gRPC: no HTTP/2 preface
        # within --handshake-timeout; HTTP: nothing within --http-timeout)...
        wait_until(lambda: still_open(socks) == 0, 20, "idle connections closed by the server")
        # ...so new ones are served while the client still holds all of its sockets.
        assert can_call(pb, server, timeout=5)
        assert can_http(server, timeout=5)
    finally:
        for s in socks:
            s.close()


def test_gRPC_connection_without_calls_gets_goaway_after_idle_timeout(pb, server_factory):
    server = server_factory(extra_args=["--idle-timeout", "1"]).start()
    ch = grpc.insecure_channel(server.target, options=[("grpc.use_local_subchannel_pool", 1)])
    grpc.channel_ready_future(ch).result(timeout=10)
    states = []
    ch.subscribe(states.append)
    wait_until(lambda: states and states[-1] == grpc.ChannelConnectivity.IDLE, 10,
               "the server closed the connection without calls")
    # A client reconnects by itself on its next call.
    pb.admin_pb2_grpc.AdminServiceStub(ch).Status(pb.admin_pb2.StatusRequest(), timeout=10)
    ch.close()


def test_soft_descriptor_limit_is_raised_to_the_hard_limit(server_factory):
    server = server_factory(nofile=(1024, 4096)).start()
    rec = log_record(server, "descriptor limit")
    assert (rec["soft_before"], rec["soft"], rec["hard"]) == (1024, 4096, 4096)
    with open(f"/proc/{server.proc.pid}/limits") as f:
        line = next(l for l in f if l.startswith("Max open files"))
    assert line.split()[3:5] == ["4096", "4096"]
    # The budget follows the raised limit: an eighth for tables (at most 1,000), then half each.
    assert rec["engine_open_tables"] == 512
    assert rec["max_connections_per_port"] == (4096 - 512 - 64 - 64) // 2


def test_max_connections_caps_each_port(server_factory):
    server = server_factory(extra_args=["--max-connections", "20"]).start()
    assert log_record(server, "descriptor limit")["max_connections_per_port"] == 20
    grpc_socks, http_socks = flood(server.port, 50), flood(server.http_port, 50)
    try:
        wait_until(lambda: (still_open(grpc_socks), still_open(http_socks)) == (20, 20), 10,
                   "20 connections kept on each port, 30 closed")
    finally:
        for s in grpc_socks + http_socks:
            s.close()
