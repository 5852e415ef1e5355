"""The wheels build-wheels.sh makes: their files, their metadata, and that each imports from
the wheel alone (installed into an empty target directory; dependencies from the venv)."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

WHEELS = {
    "langchain_nexadb": ("langchain-nexadb", "langchain_nexadb",
                         {"langchain_nexadb/__init__.py", "langchain_nexadb/vectorstores.py",
                          "langchain_nexadb/py.typed"},
                         {"nexadb>=0.2.0", "langchain-core<2,>=1.0", "numpy>=1.26"}),
    "llama_index_vector_stores_nexadb": (
        "llama-index-vector-stores-nexadb", "llama_index.vector_stores.nexadb",
        {"llama_index/vector_stores/nexadb/__init__.py", "llama_index/vector_stores/nexadb/base.py",
         "llama_index/vector_stores/nexadb/py.typed"},
        {"nexadb>=0.2.0", "llama-index-core<0.15,>=0.13"}),
}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run([str(ROOT / "clients/integrations/build-wheels.sh"), str(out)], check=True,
                   capture_output=True)
    return out


@pytest.mark.parametrize("stem", sorted(WHEELS))
def test_wheel(wheels, stem, tmp_path):
    name, module, files, requires = WHEELS[stem]
    [whl] = wheels.glob(f"{stem}-0.1.0-py3-none-any.whl")
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        meta = z.read(f"{stem}-0.1.0.dist-info/METADATA").decode()
    code = {n for n in names if not n.startswith(f"{stem}-0.1.0.dist-info/")}
    assert code == files  # no tests, examples or namespace __init__ files
    assert f"Name: {name}" in meta
    assert {line.split(": ", 1)[1].split(";")[0].strip() for line in meta.splitlines()
            if line.startswith("Requires-Dist: ")} == requires
    assert "## " in meta  # the README is the long description
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--disable-pip-version-check", "--target", str(target), str(whl)], check=True)
    # the wheel's copy first on the path, the venv's dependencies after it
    r = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(target)!r}); "
                        f"import {module} as m; print(m.__file__); print(m.NexaDBVectorStore.__name__)"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    path, cls = r.stdout.splitlines()
    assert path.startswith(str(target)) and cls == "NexaDBVectorStore"
