"""pytest fixtures both integrations' tests share (their conftest.py imports them): a real
nexadb-server for the session (clients/python/tests/testserver.py, from $NEXADB_SERVER), the
store's connection arguments for it, and a check that the package under test is the installed
one (clients/integrations/install.sh), never the source tree."""
import importlib
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "clients/python/tests"))
from testserver import Server  # noqa: E402

__all__ = ["ROOT", "Server", "server", "connect", "coll_name", "assert_installed"]


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


def assert_installed(module: str, source: str) -> None:
    path = Path(importlib.import_module(module).__file__).resolve()
    assert not path.is_relative_to(ROOT / source), \
        f"tests must import the installed {module} (clients/integrations/install.sh), not {source}"
