"""Both packages are typed (py.typed): mypy --strict passes over them as installed."""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# kept between runs (mypy rechecks what changed): the first run reads all of langchain-core and
# llama-index-core, ~35 s; later ones take seconds
CACHE = HERE.parents[2] / ".cache/mypy-integrations"


def test_mypy_strict(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(HERE.parent / "mypy.ini"),
                        "--cache-dir", str(CACHE),
                        "-p", "langchain_nexadb", "-p", "llama_index.vector_stores.nexadb"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success: no issues found in 4 source files" in r.stdout
