"""Fixtures: a real nexadb-server on free ports in a temp dir, and SDK handles on it.

The binary is $NEXADB_SERVER (ctest sets it). Its JSON log lines on stderr give the bound
gRPC port ("gRPC listening") and the generated API key (or <data-dir>/api_key). The SDK under
test is the installed package (clients/python/install.sh), never the source tree.
"""
import subprocess
import uuid
from pathlib import Path

import pytest

from testserver import ROOT, Server


def pytest_configure(config):
    config.addinivalue_line("markers", "package: builds the sdist and wheel and installs each into a "
                            "clean virtualenv (ctest clients_python_package)")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("srv") / "data").start()
    yield s
    s.stop()


@pytest.fixture(scope="session", autouse=True)
def installed_sdk():
    import nexadb
    src = ROOT / "clients/python/nexadb"
    assert not Path(nexadb.__file__).resolve().is_relative_to(src), \
        "tests must import the installed SDK (run clients/python/install.sh), not the source tree"
    return nexadb


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """Certificates made fresh by tests/tls/mkcerts.sh (CAs, server certificates for localhost
    and 127.0.0.1, client certificates), in a directory."""
    d = tmp_path_factory.mktemp("certs")
    subprocess.run([str(ROOT / "tests/tls/mkcerts.sh"), str(d)], check=True)
    return d


@pytest.fixture(scope="session")
def db(server):
    from nexadb import NexaDB
    d = NexaDB("127.0.0.1", server.port, api_key=server.api_key)
    yield d
    d.close()


@pytest.fixture
def coll_name():
    """A fresh collection name per test, so tests sharing the server never collide."""
    return "t_" + uuid.uuid4().hex[:12]
