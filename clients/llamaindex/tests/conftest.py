"""Fixtures (clients/integrations/fixtures.py): a real nexadb-server, connection arguments for
it, fresh collection names, a server requiring mTLS; the package under test must be the installed one."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integrations"))
from fixtures import (ROOT, Server, assert_installed, coll_name, connect, server,  # noqa: E402,F401
                      tls_server)


@pytest.fixture(scope="session", autouse=True)
def installed_package():
    assert_installed("llama_index.vector_stores.nexadb", "clients/llamaindex")
