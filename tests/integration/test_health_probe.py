"""nexadb-health, the probe the container image's HEALTHCHECK runs: exit 0 only when the
server's grpc.health.v1 Check answers SERVING, 2 when nothing answers, over plaintext or TLS."""
import os
import signal
import subprocess
from pathlib import Path

from conftest import server_binary
from test_tls import certs, tls_args  # noqa: F401 (certs is a fixture)


def probe(*args, env=None):
    exe = Path(server_binary()).with_name("nexadb-health")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NEXADB_")}
    full_env.update(env or {})
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=30, env=full_env)


def test_serving_server_exits_0(server_factory):
    s = server_factory().start()
    r = probe("--addr", s.target)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("SERVING")


def test_listen_address_from_the_environment_with_a_wildcard_host(server_factory):
    s = server_factory().start()
    port = s.target.rsplit(":", 1)[1]
    r = probe(env={"NEXADB_GRPC_ADDR": f"0.0.0.0:{port}"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"127.0.0.1:{port} ")


def test_no_server_exits_2(server_factory):
    s = server_factory().start()
    target = s.target
    s.proc.send_signal(signal.SIGTERM)
    s.proc.wait(timeout=30)
    r = probe("--addr", target, "--timeout", "2")
    assert r.returncode == 2
    assert "nexadb-health:" in r.stderr


def test_tls_with_and_without_the_ca(server_factory, certs):  # noqa: F811
    s = server_factory(extra_args=tls_args(certs)).start()
    assert probe("--addr", s.target, "--tls-ca", str(certs / "ca.crt")).returncode == 0
    assert probe("--addr", s.target, env={"NEXADB_HEALTH_TLS_CA": str(certs / "ca.crt")}).returncode == 0
    assert probe("--addr", s.target, "--timeout", "2").returncode == 2  # plaintext to a TLS port
    assert probe("--addr", s.target, "--tls-ca", str(certs / "other-ca.crt"), "--timeout", "2").returncode == 2


def test_bad_usage_exits_2():
    for args in (["--timeout", "0"], ["--timeout", "x"], ["--addr", "nohostport"], ["--tls-ca", "/nonexistent"],
                 ["extra"]):
        r = probe(*args)
        assert r.returncode == 2, args
        assert r.stderr, args
