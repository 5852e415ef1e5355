"""pytest fixtures both integrations' tests share (their conftest.py imports them): a real
nexadb-server for the session (clients/python/tests/testserver.py, from $NEXADB_SERVER), the
store's connection arguments for it, and a check that the package under test is the installed
one (clients/integrations/install.sh), never the source tree."""
import importlib
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "clients/python/tests"))
from testserver import Server  # noqa: E402

__all__ = ["ROOT", "Server", "server", "connect", "coll_name", "tls_server", "assert_installed"]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("srv") / "data").start()
    yield s
    s.stop()


@pytest.fixture
def connect(server):
    """The store's connection arguments for the test server."""
    return {"url": f"grpc://127.0.0.1:{server.port}", "api_key": server.api_key}


@pytest.fixture
def coll_name():
    """A fresh collection name per test, so tests sharing the server never collide."""
    return "it_" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory):
    """A server requiring TLS and a client certificate (certificates from tests/tls/mkcerts.sh)
    and the store arguments that reach it: {"server", "certs", "tls"} where tls holds
    root_certificates, client_cert and client_key (PEM bytes)."""
    certs = tmp_path_factory.mktemp("certs")
    subprocess.run([str(ROOT / "tests/tls/mkcerts.sh"), str(certs)], check=True, capture_output=True)
    s = Server(tmp_path_factory.mktemp("tls") / "data",
               ["--tls-cert", str(certs / "server.crt"), "--tls-key", str(certs / "server.key"),
                "--tls-client-ca", str(certs / "ca.crt")]).start()
    pem = lambda n: (certs / n).read_bytes()  # noqa: E731
    yield {"server": s, "certs": certs, "tls": {"root_certificates": pem("ca.crt"),
                                                "client_cert": pem("client.crt"),
                                                "client_key": pem("client.key")}}
    s.stop()


def assert_installed(module: str, source: str) -> None:
    path = Path(importlib.import_module(module).__file__).resolve()
    assert not path.is_relative_to(ROOT / source), \
        f"tests must import the installed {module} (clients/integrations/install.sh), not {source}"
