"""TLS on both ports (issue 16): handshakes with good, expired and wrong-CA certificates,
client certificates (mTLS), HTTPS, reloading certificates without a restart, and the
keepalive policy. Certificates are made fresh by tests/tls/mkcerts.sh; none is committed.
The SDKs' own TLS tests are in clients/*/ (Python, Node, Go)."""
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest
import requests

from conftest import ROOT, server_binary

MKCERTS = ROOT / "tests/tls/mkcerts.sh"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    subprocess.run([str(MKCERTS), str(d)], check=True)
    return d


def read(p):
    return Path(p).read_bytes()


def channel(target, certs, ca="ca.crt", client=None):
    """A TLS channel with a subchannel pool of its own, so it never reuses another test's
    connection (a reload test must see a new handshake)."""
    key = chain = None
    if client is not None:
        key, chain = read(certs / f"{client}.key"), read(certs / f"{client}.crt")
    creds = grpc.ssl_channel_credentials(root_certificates=read(certs / ca), private_key=key,
                                         certificate_chain=chain)
    return grpc.secure_channel(target, creds, options=[("grpc.use_local_subchannel_pool", 1)])


def health(pb, ch, timeout=5):
    return pb.health_pb2_grpc.HealthStub(ch).Check(pb.health_pb2.HealthCheckRequest(), timeout=timeout)


def handshake_fails(pb, ch):
    with pytest.raises(grpc.RpcError) as e:
        health(pb, ch)
    ch.close()
    return e.value.code() == grpc.StatusCode.UNAVAILABLE


def tls_args(certs, cert="server", client_ca=None):
    args = ["--tls-cert", str(certs / f"{cert}.crt"), "--tls-key", str(certs / f"{cert}.key")]
    if client_ca:
        args += ["--tls-client-ca", str(certs / client_ca)]
    return args


def https(server, path="/status"):
    return f"https://127.0.0.1:{server.http_port}{path}"


def test_tls_good_cert_both_ports(server_factory, pb, certs):
    s = server_factory(extra_args=tls_args(certs)).start()
    assert any(r["msg"] == "TLS on both ports" for r in s.lines)
    ch = channel(s.target, certs)
    assert health(pb, ch).status == pb.health_pb2.HealthCheckResponse.SERVING
    stub = pb.admin_pb2_grpc.AdminServiceStub(ch)
    stub.Stats(pb.admin_pb2.StatsRequest(), metadata=(("x-api-key", s.api_key),), timeout=5)
    ch.close()
    r = requests.get(https(s), verify=str(certs / "ca.crt"), timeout=5)
    assert r.status_code == 200
    r = requests.get(https(s, "/collections"), verify=str(certs / "ca.crt"),
                     headers={"X-API-Key": s.api_key}, timeout=5)
    assert r.status_code == 200, r.text


def test_tls_no_plaintext_when_configured(server_factory, pb, certs):
    s = server_factory(extra_args=tls_args(certs)).start()
    ch = grpc.insecure_channel(s.target)
    assert handshake_fails(pb, ch)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{s.http_port}/status", timeout=5)


def test_tls_wrong_ca_refused(server_factory, pb, certs):
    s = server_factory(extra_args=tls_args(certs)).start()
    assert handshake_fails(pb, channel(s.target, certs, ca="other-ca.crt"))
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https(s), verify=str(certs / "other-ca.crt"), timeout=5)


def test_tls_expired_cert_refused(server_factory, pb, certs):
    s = server_factory(extra_args=tls_args(certs, cert="expired")).start()
    assert handshake_fails(pb, channel(s.target, certs))
    with pytest.raises(requests.exceptions.SSLError, match="expired"):
        requests.get(https(s), verify=str(certs / "ca.crt"), timeout=5)


def test_mtls(server_factory, pb, certs):
    s = server_factory(extra_args=tls_args(certs, client_ca="ca.crt")).start()
    ch = channel(s.target, certs, client="client")
    assert health(pb, ch).status == pb.health_pb2.HealthCheckResponse.SERVING
    ch.close()
    for bad in (None, "client-other", "client-expired"):
        assert handshake_fails(pb, channel(s.target, certs, client=bad)), bad
    ca = str(certs / "ca.crt")
    cert = lambda n: (str(certs / f"{n}.crt"), str(certs / f"{n}.key"))
    assert requests.get(https(s), verify=ca, cert=cert("client"), timeout=5).status_code == 200
    for bad in (None, cert("client-other"), cert("client-expired")):
        with pytest.raises(requests.exceptions.RequestException):
            requests.get(https(s), verify=ca, cert=bad, timeout=5)


def test_tls_flags_checked_at_start(tmp_path, certs):
    for args, words in ((["--tls-key", str(certs / "server.key")], "--tls-key needs --tls-cert"),
                        (["--tls-cert", str(certs / "server.crt")], "--tls-cert needs --tls-key"),
                        (["--tls-client-ca", str(certs / "ca.crt")], "--tls-client-ca needs --tls-cert and --tls-key"),
                        (["--tls-cert", str(certs / "server.crt"), "--tls-key", str(certs / "client.key")],
                         "--tls-key"),
                        (["--tls-cert", str(certs / "nope.crt"), "--tls-key", str(certs / "server.key")],
                         "nope.crt")):
        p = subprocess.run([server_binary(), "--data-dir", str(tmp_path / "d"), "--grpc-addr", "127.0.0.1:0",
                            "--http-addr", "127.0.0.1:0", *args], capture_output=True, text=True, timeout=20)
        assert p.returncode != 0 and words in p.stderr, (args, p.stderr)


def test_plaintext_only_on_loopback_unless_asked_for(server_factory, tmp_path):
    s = server_factory().start()  # 127.0.0.1: plaintext is fine, said at info level
    assert any(r["msg"] == "no TLS certificate configured: plaintext on loopback only" and r["level"] == "info"
               for r in s.lines)
    for addrs in (["--grpc-addr", "0.0.0.0:0", "--http-addr", "127.0.0.1:0"],
                  ["--grpc-addr", "127.0.0.1:0", "--http-addr", "0.0.0.0:0"]):
        r = subprocess.run([server_binary(), "--data-dir", str(tmp_path / "refused"), *addrs],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 1, r.stderr
        assert "--plaintext" in r.stderr and "0.0.0.0:0" in r.stderr
        assert not (tmp_path / "refused").exists()  # refused before touching the data directory
    s = server_factory("asked", extra_args=["--grpc-addr", "0.0.0.0:0", "--plaintext"]).start()
    assert any(r["msg"].startswith("no TLS certificate configured: both ports speak plaintext") and
               r["level"] == "warn" for r in s.lines)
    assert s.port


def wait_log(s, msg, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(r.get("msg", "").startswith(msg) for r in s.lines):
            return
        time.sleep(0.1)
    raise AssertionError(f"no log line {msg!r}: {s.lines[-5:]}")


def test_tls_reload_on_sighup_and_on_change(server_factory, pb, certs, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(certs / "server.crt", live / "tls.crt")
    shutil.copy(certs / "server.key", live / "tls.key")
    s = server_factory(extra_args=["--tls-cert", str(live / "tls.crt"), "--tls-key", str(live / "tls.key")]).start()
    held = channel(s.target, certs)  # a connection made before the reload
    assert health(pb, held).status == pb.health_pb2.HealthCheckResponse.SERVING

    # 1. SIGHUP: new connections get the certificate signed by the other CA
    shutil.copy(certs / "server2.crt", live / "tls.crt")
    shutil.copy(certs / "server2.key", live / "tls.key")
    s.proc.send_signal(signal.SIGHUP)
    wait_log(s, "SIGHUP: TLS files reloaded")
    ch = channel(s.target, certs, ca="other-ca.crt")
    assert health(pb, ch).status == pb.health_pb2.HealthCheckResponse.SERVING
    ch.close()
    assert handshake_fails(pb, channel(s.target, certs))
    assert requests.get(https(s), verify=str(certs / "other-ca.crt"), timeout=5).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https(s), verify=str(certs / "ca.crt"), timeout=5)
    # the connection made before keeps working
    assert health(pb, held).status == pb.health_pb2.HealthCheckResponse.SERVING
    held.close()

    # 2. a broken pair is refused and the previous one kept
    shutil.copy(certs / "client.key", live / "tls.key")
    s.proc.send_signal(signal.SIGHUP)
    wait_log(s, "SIGHUP: cannot load the TLS files")
    ch = channel(s.target, certs, ca="other-ca.crt")
    assert health(pb, ch).status == pb.health_pb2.HealthCheckResponse.SERVING
    ch.close()

    # 3. no signal: the files changing is enough (checked every 2 s); Kubernetes swaps a symlink
    (live / "new").mkdir()
    shutil.copy(certs / "server.crt", live / "new/tls.crt")
    shutil.copy(certs / "server.key", live / "new/tls.key")
    for name in ("tls.crt", "tls.key"):
        tmp = live / f".{name}.tmp"
        tmp.symlink_to(live / "new" / name)
        os.replace(tmp, live / name)
    wait_log(s, "TLS files changed: new connections use them")
    ch = channel(s.target, certs)
    assert health(pb, ch).status == pb.health_pb2.HealthCheckResponse.SERVING
    ch.close()
    assert requests.get(https(s), verify=str(certs / "ca.crt"), timeout=5).status_code == 200


# ---- keepalive -------------------------------------------------------------------------

def keepalive_run(pb, s, ping_every_s, run_for_s):
    """A client pinging every ping_every_s, with one long-lived stream (a health Watch) and an
    idle stretch, for run_for_s: the stream must survive and the channel never leave READY
    (a GOAWAY too_many_pings ends both)."""
    ms = int(ping_every_s * 1000)
    ch = grpc.insecure_channel(s.target, options=[
        ("grpc.keepalive_time_ms", ms), ("grpc.keepalive_timeout_ms", 5000),
        ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0),
        ("grpc.use_local_subchannel_pool", 1)])
    states = []
    ch.subscribe(lambda st: states.append(st), try_to_connect=True)
    health(pb, ch)
    # idle (no call at all) for the first third: pings without calls
    time.sleep(run_for_s / 3)
    stub = pb.health_pb2_grpc.HealthStub(ch)
    watch = stub.Watch(pb.health_pb2.HealthCheckRequest())
    ended = []

    def drain():
        try:
            for _ in watch:
                pass
        except grpc.RpcError as e:
            ended.append(e.code())
    t = threading.Thread(target=drain, daemon=True)
    t.start()
    time.sleep(run_for_s * 2 / 3)
    assert health(pb, ch).status == pb.health_pb2.HealthCheckResponse.SERVING
    assert not ended, f"the stream ended: {ended}"
    watch.cancel()
    t.join(5)
    assert ended == [grpc.StatusCode.CANCELLED]
    bad = [st for st in states if st != grpc.ChannelConnectivity.READY and st != grpc.ChannelConnectivity.IDLE
           and st != grpc.ChannelConnectivity.CONNECTING]
    assert not bad and states.count(grpc.ChannelConnectivity.READY) == 1, states
    ch.close()


def test_keepalive_pings_accepted_scaled(server_factory, pb):
    # The policy scaled down: clients may ping every --keepalive-min-ping (default 5 s; here
    # 1 s) with or without calls; this client pings every 2 s for 12 s.
    s = server_factory(extra_args=["--keepalive-min-ping", "1"]).start()
    keepalive_run(pb, s, 2, 12)


@pytest.mark.slow
def test_keepalive_10s_for_a_minute(server_factory, pb):
    # the case with the default policy: a client pinging every 10 s for a minute
    s = server_factory().start()
    keepalive_run(pb, s, 10, 63)
