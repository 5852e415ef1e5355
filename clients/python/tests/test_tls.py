"""TLS and mTLS from the SDK and the CLI against real servers, with certificates made fresh by
tests/tls/mkcerts.sh (the certs fixture, conftest.py): good, expired and wrong-CA server
certificates; client certificates."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testserver import Server


@pytest.fixture(scope="module")
def servers(tmp_path_factory, certs):
    def start(name, cert, client_ca=None):
        args = ["--tls-cert", str(certs / f"{cert}.crt"), "--tls-key", str(certs / f"{cert}.key")]
        if client_ca:
            args += ["--tls-client-ca", str(certs / client_ca)]
        return Server(tmp_path_factory.mktemp(name) / "data", args).start()
    s = {"tls": start("tls", "server"), "expired": start("expired", "expired"),
         "mtls": start("mtls", "server", "ca.crt")}
    yield s
    for v in s.values():
        v.stop()


def connect(server, certs, ca="ca.crt", client=None, **kw):
    from nexadb import NexaDB
    pem = lambda n: (certs / n).read_bytes()
    return NexaDB("localhost", server.port, api_key=server.api_key, timeout=5,
                  root_certificates=pem(ca) if ca else None,
                  client_cert=pem(f"{client}.crt") if client else None,
                  client_key=pem(f"{client}.key") if client else None,
                  options=[("grpc.use_local_subchannel_pool", 1)], **kw)


def ok(server, certs, **kw):
    with connect(server, certs, **kw) as db:
        assert db.status()["status"] == "ok"
        db.stats()


def refused(server, certs, **kw):
    from nexadb.errors import NexaDBError
    with connect(server, certs, **kw) as db:
        with pytest.raises(NexaDBError) as e:
            db.stats()
        assert e.value.code.name == "UNAVAILABLE", e.value


def test_tls_right_ca(servers, certs):
    ok(servers["tls"], certs)


def test_tls_wrong_ca(servers, certs):
    refused(servers["tls"], certs, ca="other-ca.crt")


def test_tls_system_roots_do_not_trust_a_private_ca(servers, certs):
    refused(servers["tls"], certs, ca=None, tls=True)


def test_tls_expired_server_certificate(servers, certs):
    refused(servers["expired"], certs)


def test_mtls(servers, certs):
    ok(servers["mtls"], certs, client="client")
    refused(servers["mtls"], certs)
    refused(servers["mtls"], certs, client="client-other")
    refused(servers["mtls"], certs, client="client-expired")


def test_from_url_grpcs_and_https(servers, certs):
    from nexadb import AsyncNexaDB, NexaDB
    s = servers["mtls"]
    pem = lambda n: (certs / n).read_bytes()
    tls = dict(root_certificates=pem("ca.crt"), client_cert=pem("client.crt"),
               client_key=pem("client.key"), options=[("grpc.use_local_subchannel_pool", 1)])
    with NexaDB.from_url(f"grpcs://localhost:{s.port}", s.api_key, **tls) as db:
        assert db.stats()["rss_bytes"] > 0

    async def main():
        async with AsyncNexaDB.from_url(f"https://localhost:{s.port}", s.api_key, **tls) as db:
            return await db.stats()
    import asyncio
    assert asyncio.run(main())["rss_bytes"] > 0


def test_client_cert_needs_key(certs):
    from nexadb import NexaDB
    with pytest.raises(ValueError):
        NexaDB("localhost", 1, client_cert=(certs / "client.crt").read_bytes())


def cli(server, *args):
    exe = Path(sys.executable).parent / "nexadb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXADB_")}
    env["NEXADB_API_KEY"] = server.api_key
    return subprocess.run([str(exe), "--host", "localhost", "--port", str(server.port), *args, "stats"],
                          capture_output=True, text=True, env=env, timeout=60)


def test_cli_tls_and_mtls(servers, certs):
    ca = ["--ca-file", str(certs / "ca.crt")]
    assert cli(servers["tls"], *ca).returncode == 0
    r = cli(servers["tls"], "--ca-file", str(certs / "other-ca.crt"))
    assert r.returncode == 1 and "UNAVAILABLE" in r.stderr
    client = ["--cert-file", str(certs / "client.crt"), "--key-file", str(certs / "client.key")]
    assert cli(servers["mtls"], *ca, *client).returncode == 0, cli(servers["mtls"], *ca, *client).stderr
    assert cli(servers["mtls"], *ca).returncode == 1
