"""The package as a user gets it (marker `package`, ctest clients_python_package): `python -m
build --sdist --wheel` from clients/python, then each artefact installed by pip into its own
clean virtualenv, from a directory outside the repository, and used there against a real server.

The sdist install is the proof that the sdist is self-contained: pip unpacks it into a
temporary directory and builds the wheel there, with no proto/ beside it, so it only works
because the sdist carries the generated stubs (see setup.py).
"""
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from testserver import ROOT

pytestmark = pytest.mark.package

BUILD_VERSION = "1.6.1"   # pypa/build, in the build environment's virtualenv

# Runs with the clean virtualenv's python in isolated mode (-I: neither the working directory
# nor PYTHONPATH on sys.path), so only the installed package can be imported.
SMOKE = r"""
import os, sys
import nexadb, nexadb_client
assert os.path.realpath(nexadb.__file__).startswith(os.path.realpath(sys.prefix)), nexadb.__file__
db = nexadb.NexaDB("127.0.0.1", int(os.environ["NEXADB_PORT"]), api_key=os.environ["NEXADB_API_KEY"])
users = db.collection(sys.argv[1])
uid = users.insert({"name": "Alice", "age": 28})
found = users.find({"age": {"$gt": 25}})
assert [(d["_id"], d["name"], d["age"], type(d["age"])) for d in found] == [(uid, "Alice", 28, int)], found
assert nexadb_client.NexaDB is nexadb.NexaDB
db.close()
"""


def run(args, cwd, env=None):
    p = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"{args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p.stdout


def venv(path):
    run([sys.executable, "-m", "venv", str(path)], cwd=path.parent)
    return path / "bin"


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory):
    """{'wheel': path, 'sdist': path} built by pypa/build in its own virtualenv."""
    tmp = tmp_path_factory.mktemp("build")
    bin_ = venv(tmp / "venv")
    run([bin_ / "pip", "install", "-q", "--disable-pip-version-check", f"build=={BUILD_VERSION}"], cwd=tmp)
    src = ROOT / "clients/python"
    try:
        run([bin_ / "python", "-m", "build", "--sdist", "--wheel", "-o", str(tmp / "dist"), str(src)], cwd=tmp)
    finally:  # setuptools leaves these in the source tree (gitignored), as install.sh's pip does
        shutil.rmtree(src / "build", ignore_errors=True)
        shutil.rmtree(src / "nexadb.egg-info", ignore_errors=True)
    wheels = list((tmp / "dist").glob("nexadb-*-py3-none-any.whl"))
    sdists = list((tmp / "dist").glob("nexadb-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list((tmp / "dist").iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_installs_and_works(kind, artefacts, server, tmp_path):
    bin_ = venv(tmp_path / "venv")
    run([bin_ / "pip", "install", "-q", "--disable-pip-version-check", str(artefacts[kind])], cwd=tmp_path)
    env = {**os.environ, "NEXADB_PORT": str(server.port), "NEXADB_API_KEY": server.api_key}
    name = "pkg_" + uuid.uuid4().hex[:12]
    run([bin_ / "python", "-I", "-c", SMOKE, name], cwd=tmp_path, env=env)
    # the console script, on the same server
    out = run([bin_ / "nexadb", "--host", "127.0.0.1", "--port", str(server.port), "count", name],
              cwd=tmp_path, env=env)
    assert out.strip() == "1"
