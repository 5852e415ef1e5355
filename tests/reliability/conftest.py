"""Fixtures for the reliability suite: the integration suite's real-server
fixtures (tests/integration/conftest.py), loaded under another module name so
both folders can be collected in one pytest run."""
import importlib.util
import os
import signal
import sys
from pathlib import Path

import pytest

_here = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("ndb_integration_conftest", _here.parent / "integration/conftest.py")
_it = importlib.util.module_from_spec(_spec)
sys.modules["ndb_integration_conftest"] = _it
_spec.loader.exec_module(_it)

Server = _it.Server
pb = _it.pb
server_factory = _it.server_factory
ROOT = _it.ROOT
sys.path.insert(0, str(ROOT / "bench/load"))


def rss_kb(pid):
    """Resident set size of a process in KiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.fixture
def keyed_server(tmp_path, server_factory):
    """A server with an rw key and an ro key from --api-key-file."""
    rw, ro = "rw-" + "a1" * 16, "ro-" + "b2" * 16
    kf = tmp_path / "keys"
    kf.write_text(f"{rw} rw\n{ro} ro\n")
    kf.chmod(0o600)  # a key file others can read is refused
    s = server_factory("keyed", extra_args=["--api-key-file", str(kf)]).start()
    s.rw_key, s.ro_key = rw, ro
    return s
