"""Runs the examples as a user would: as scripts, against a real nexadb-server."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "clients/examples"
sys.path.insert(0, str(ROOT / "clients/python/tests"))
from testserver import Server  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "heavy: needs .cache/venv-examples (install-semantic.sh) or, "
                            "for the LangChain and LlamaIndex examples, .cache/venv-integrations "
                            "(clients/integrations/install.sh --with-minilm)")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("srv") / "data").start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def run_example(server, tmp_path_factory):
    """run_example([interpreter..., script], cwd=...) -> stdout; fails on a non-zero exit."""
    node_path = tmp_path_factory.mktemp("node_path")
    (node_path / "nexadb").symlink_to(ROOT / "clients/js")  # require('nexadb') -> clients/js

    def run(cmd, cwd=EXAMPLES, timeout=120):
        env = dict(os.environ, NEXADB_HOST="127.0.0.1", NEXADB_PORT=str(server.port),
                   NEXADB_URL=f"grpc://127.0.0.1:{server.port}",
                   NEXADB_API_KEY=server.api_key, NODE_PATH=str(node_path))
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                           timeout=timeout)
        assert r.returncode == 0, f"{cmd} failed:\n{r.stdout}\n{r.stderr}"
        return r.stdout
    return run
