"""Fixtures: a real nexadb-server (clients/python/tests/testserver.py, from $NEXADB_SERVER) and
stores on it. The packages under test are the installed ones (clients/integrations/install.sh
into .cache/venv-integrations), never the source tree."""
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "clients/python/tests"))
from testserver import Server  # noqa: E402


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("srv") / "data").start()
    yield s
    s.stop()


@pytest.fixture(scope="session", autouse=True)
def installed_package():
    import llama_index.vector_stores.nexadb as pkg
    assert not Path(pkg.__file__).resolve().is_relative_to(ROOT / "clients/llamaindex"), \
        "tests must import the installed llama_index.vector_stores.nexadb (clients/integrations/install.sh)"


@pytest.fixture
def coll_name():
    return "li_" + uuid.uuid4().hex[:12]


@pytest.fixture
def connect(server):
    """The store's connection arguments for the test server."""
    return {"url": f"grpc://127.0.0.1:{server.port}", "api_key": server.api_key}
