"""The foundation's contract, checked from a real client against the real binary."""
import os
import pathlib
import re
import signal
import stat
import subprocess
import time

import grpc
import pytest

from conftest import server_binary


def test_health_serving(pb, channel):
    stub = pb.health_pb2_grpc.HealthStub(channel)
    r = stub.Check(pb.health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert r.status == pb.health_pb2.HealthCheckResponse.SERVING
    r = stub.Check(pb.health_pb2.HealthCheckRequest(service="nexadb.v1.DocumentService"), timeout=5)
    assert r.status == pb.health_pb2.HealthCheckResponse.SERVING


def test_health_unknown_service_is_not_found(pb, channel):
    stub = pb.health_pb2_grpc.HealthStub(channel)
    with pytest.raises(grpc.RpcError) as e:
        stub.Check(pb.health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_status_needs_no_key(pb, channel):
    stub = pb.admin_pb2_grpc.AdminServiceStub(channel)
    r = stub.Status(pb.admin_pb2.StatusRequest(), timeout=5)
    assert r.status == "ok"
    assert r.version


def test_missing_key_is_unauthenticated(pb, channel):
    stub = pb.admin_pb2_grpc.AdminServiceStub(channel)
    with pytest.raises(grpc.RpcError) as e:
        stub.Stats(pb.admin_pb2.StatsRequest(), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "API key" in e.value.details()


def test_wrong_key_is_unauthenticated(pb, channel, server):
    stub = pb.admin_pb2_grpc.AdminServiceStub(channel)
    wrong = server.api_key[:-1] + ("0" if server.api_key[-1] != "0" else "1")
    for md in ((("x-api-key", wrong),), (("authorization", f"Bearer {wrong}"),), (("x-api-key", "short"),)):
        with pytest.raises(grpc.RpcError) as e:
            stub.Stats(pb.admin_pb2.StatsRequest(), timeout=5, metadata=md)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_key_and_bearer_both_accepted(pb, channel, server):
    stub = pb.admin_pb2_grpc.AdminServiceStub(channel)
    r = stub.Stats(pb.admin_pb2.StatsRequest(), timeout=5, metadata=(("x-api-key", server.api_key),))
    assert r.rss_bytes > 0
    r = stub.Stats(pb.admin_pb2.StatsRequest(), timeout=5,
                   metadata=(("authorization", f"Bearer {server.api_key}"),))
    assert r.rss_bytes > 0


def test_unknown_method_is_unimplemented(channel, auth):
    call = channel.unary_unary("/nexadb.v1.DocumentService/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as e:
        call(b"", timeout=5, metadata=auth)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_garbage_request_is_invalid_argument(channel, auth):
    call = channel.unary_unary("/nexadb.v1.AdminService/Stats")
    with pytest.raises(grpc.RpcError) as e:
        call(b"\xff\xff\xff\xff", timeout=5, metadata=auth)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_oversized_message_is_resource_exhausted(pb, server_factory):
    s = server_factory(extra_args=["--max-message-bytes", "65536"]).start()
    with grpc.insecure_channel(s.target, options=[("grpc.max_send_message_length", 1 << 26)]) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        doc = pb.document_pb2.InsertOneRequest(collection="big")
        doc.document.CopyFrom(pb.doc({"blob": "x" * 65536}))
        assert doc.ByteSize() > 65536
        with pytest.raises(grpc.RpcError) as e:
            stub.InsertOne(doc, timeout=5, metadata=(("x-api-key", s.api_key),))
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # the server keeps serving
        h = pb.health_pb2_grpc.HealthStub(ch).Check(pb.health_pb2.HealthCheckRequest(), timeout=5)
        assert h.status == pb.health_pb2.HealthCheckResponse.SERVING


def test_generated_key_file_is_private_and_reused(server_factory):
    s = server_factory("keydir").start()
    key_file = os.path.join(s.data_dir, "api_key")
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    first = s.api_key
    assert len(first) == 64
    assert s.stop() == 0
    s2 = server_factory("keydir")
    s2.start()
    assert s2.api_key == first
    assert not any("api_key" in rec for rec in s2.lines), "the key is printed only when generated"


def test_key_by_env_and_no_generated_file(pb, server_factory):
    env = dict(os.environ, NEXADB_API_KEY="env-key-0123456789abcdef")
    s = server_factory("envkey", env=env).start()
    assert not os.path.exists(os.path.join(s.data_dir, "api_key"))
    with grpc.insecure_channel(s.target) as ch:
        r = pb.admin_pb2_grpc.AdminServiceStub(ch).Stats(
            pb.admin_pb2.StatsRequest(), timeout=5, metadata=(("x-api-key", "env-key-0123456789abcdef"),))
        assert r.uptime_seconds >= 0


def test_read_only_key_cannot_write(pb, server_factory, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# test keys\nrw-key-0123456789abcdef rw\nro-key-0123456789abcdef ro\n")
    keys.chmod(0o600)  # a key file others can read is refused
    s = server_factory("rokey", extra_args=["--api-key-file", str(keys)]).start()
    with grpc.insecure_channel(s.target) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        req = pb.document_pb2.CreateCollectionRequest(collection="c")
        with pytest.raises(grpc.RpcError) as e:
            stub.CreateCollection(req, timeout=5, metadata=(("x-api-key", "ro-key-0123456789abcdef"),))
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        r = pb.admin_pb2_grpc.AdminServiceStub(ch).Stats(
            pb.admin_pb2.StatsRequest(), timeout=5, metadata=(("x-api-key", "ro-key-0123456789abcdef"),))
        assert r.rss_bytes > 0


def test_data_dir_is_locked(server_factory):
    s = server_factory("locked").start()
    r = subprocess.run([server_binary(), "--data-dir", s.data_dir, "--grpc-addr", "127.0.0.1:0"],
                       capture_output=True, timeout=10)
    assert r.returncode != 0
    assert b"in use by another nexadb-server" in r.stderr


def test_bad_flag_exits_2_with_message():
    r = subprocess.run([server_binary(), "--shutdown-grace", "many"], capture_output=True, timeout=10)
    assert r.returncode == 2
    assert b"--shutdown-grace" in r.stderr
    r = subprocess.run([server_binary(), "--no-such-flag"], capture_output=True, timeout=10)
    assert r.returncode == 2


def test_help_lists_every_flag_with_its_variable():
    r = subprocess.run([server_binary(), "--help"], capture_output=True, timeout=10, text=True)
    assert r.returncode == 0
    for flag, env in (("--data-dir", "NEXADB_DATA_DIR"), ("--grpc-addr", "NEXADB_GRPC_ADDR"),
                      ("--http-addr", "NEXADB_HTTP_ADDR"), ("--api-key", "NEXADB_API_KEY"),
                      ("--log-level", "NEXADB_LOG_LEVEL")):
        assert flag in r.stdout and env in r.stdout


def test_version_names_the_release_and_the_source_revision():
    r = subprocess.run([server_binary(), "--version"], capture_output=True, timeout=10, text=True)
    assert r.returncode == 0
    m = re.fullmatch(r"nexadb-server (\d+\.\d+\.\d+) \(revision ([0-9a-f]{12}(-dirty)?)\)\n", r.stdout)
    assert m, r.stdout
    root = pathlib.Path(__file__).resolve().parents[2]
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                          text=True)
    # From a git checkout (not a source tarball) with nothing uncommitted, the binary names HEAD; a
    # -dirty build names the commit it was built on, which may be HEAD's parent by now.
    if head.returncode == 0 and not m.group(3):
        assert m.group(2) == head.stdout.strip()


def test_sigterm_exits_cleanly_and_watch_sees_not_serving(pb, server_factory):
    s = server_factory("term").start()
    ch = grpc.insecure_channel(s.target)
    watch = pb.health_pb2_grpc.HealthStub(ch).Watch(pb.health_pb2.HealthCheckRequest(service=""), timeout=30)
    first = next(watch)
    assert first.status == pb.health_pb2.HealthCheckResponse.SERVING
    t0 = time.time()
    s.proc.send_signal(signal.SIGTERM)
    seen = []
    try:
        for r in watch:
            seen.append(r.status)
    except grpc.RpcError:
        pass  # the stream ends when the server closes it
    rc = s.proc.wait(timeout=10)
    assert rc == 0
    assert time.time() - t0 < 10
    assert pb.health_pb2.HealthCheckResponse.NOT_SERVING in seen
    ch.close()


def test_sigterm_lets_inflight_calls_finish(pb, server_factory):
    """Calls already running when SIGTERM arrives get their answers; calls the server
    had not yet taken up end promptly with CANCELLED or UNAVAILABLE (the C core's
    shutdown cancels calls still queued in the transport), never a hang."""
    s = server_factory("drain").start()
    with grpc.insecure_channel(s.target) as ch:
        stub = pb.admin_pb2_grpc.AdminServiceStub(ch)
        futures = [stub.Stats.future(pb.admin_pb2.StatsRequest(), timeout=10,
                                     metadata=(("x-api-key", s.api_key),)) for _ in range(200)]
        futures[0].result()  # the server is taking calls up: the rest are in flight or queued
        s.proc.send_signal(signal.SIGTERM)
        ok = unavailable = 0
        for f in futures:
            try:
                f.result()
                ok += 1
            except grpc.RpcError as e:
                assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), e
                unavailable += 1
        assert ok > 0
        assert s.proc.wait(timeout=10) == 0
