"""Fixtures for integration tests: a real nexadb-server on free ports, real gRPC stubs.

The server binary comes from $NEXADB_SERVER (ctest sets it); Python stubs are
generated from proto/ with grpcio-tools into a temporary directory (and
imported from there, ahead of the installed SDK's copies), so the tests
exercise the same .proto files the server was built from.
"""
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOGLEAPIS = "/usr/share/gocode/src/github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a minute or more; run by `make test-slow`, not `make test`")


def server_binary() -> str:
    path = os.environ.get("NEXADB_SERVER", str(ROOT / "build/test/service/nexadb-server"))
    if not os.access(path, os.X_OK):
        pytest.exit(f"nexadb-server not built at {path}; run `make test`", returncode=2)
    return path


@pytest.fixture(scope="session")
def pb():
    """Generated modules: pb.document_pb2, pb.document_pb2_grpc, ..., pb.health_pb2(_grpc), and
    pb.doc(dict) -> nexadb.v1.Document, pb.undoc(Document) -> dict (BSON, with pymongo's bson)."""
    from grpc_tools import protoc
    import grpc_tools

    out = tempfile.mkdtemp(prefix="nexadb-stubs-")
    well_known = str(Path(grpc_tools.__file__).parent / "_proto")
    protos = [str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto/nexadb/v1").glob("*.proto")]
    args = ["protoc", f"-I{ROOT / 'proto'}", f"-I{GOOGLEAPIS}", f"-I{well_known}",
            f"--python_out={out}", f"--grpc_python_out={out}", *protos]
    if protoc.main(args) != 0:
        pytest.exit("generating Python stubs failed", returncode=2)
    # A regular package, first on the path: these stubs, not those of an
    # installed Python SDK (package nexadb too), which may predate proto/.
    for pkg in ("nexadb", "nexadb/v1"):
        Path(out, pkg, "__init__.py").touch()
    for name in [m for m in sys.modules if m == "nexadb" or m.startswith("nexadb.")]:
        del sys.modules[name]
    sys.path.insert(0, out)
    import importlib

    class Modules:
        pass

    m = Modules()
    for name in ("common", "document", "vector", "admin"):
        setattr(m, f"{name}_pb2", importlib.import_module(f"nexadb.v1.{name}_pb2"))
        setattr(m, f"{name}_pb2_grpc", importlib.import_module(f"nexadb.v1.{name}_pb2_grpc"))
    # documents as a stock generated client sends them: BSON in nexadb.v1.Document
    import datetime

    import bson
    from bson.codec_options import CodecOptions
    utc = CodecOptions(tz_aware=True, tzinfo=datetime.timezone.utc)
    m.doc = lambda d: m.common_pb2.Document(bson=bson.encode(d))
    m.undoc = lambda x: bson.decode(x.bson, codec_options=utc) if x.bson else {}
    # the standard health service, from grpcio-health-checking
    m.health_pb2 = importlib.import_module("grpc_health.v1.health_pb2")
    m.health_pb2_grpc = importlib.import_module("grpc_health.v1.health_pb2_grpc")
    return m


class Server:
    """A running nexadb-server; start() waits until it logs that it is ready."""

    def __init__(self, data_dir: str, extra_args=(), env=None, nofile=None):
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.env = env
        self.nofile = nofile  # (soft, hard) RLIMIT_NOFILE for the server, or None to inherit ours
        self.proc = None
        self.port = None
        self.http_port = None
        self.api_key = None
        self.log_path = os.path.join(data_dir + ".log")
        self.lines = []

    def start(self, timeout=20):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [server_binary(), "--data-dir", self.data_dir, "--grpc-addr", "127.0.0.1:0",
             "--http-addr", "127.0.0.1:0", *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env,
            preexec_fn=None if self.nofile is None else
            lambda: resource.setrlimit(resource.RLIMIT_NOFILE, self.nofile))
        deadline = time.time() + timeout
        import json
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError(f"server exited early with {self.proc.wait()}: {self.lines}")
            self.log.write(line)
            rec = json.loads(line)
            self.lines.append(rec)
            if rec["msg"] == "gRPC listening":
                self.port = rec["port"]
            if rec["msg"] == "HTTP listening":
                self.http_port = rec["port"]
            if "api_key" in rec:
                self.api_key = rec["api_key"]
            if rec["msg"] == "nexadb-server ready":
                break
        else:
            raise RuntimeError("server did not become ready")
        if self.api_key is None:
            key_file = Path(self.data_dir) / "api_key"
            if key_file.exists():
                self.api_key = key_file.read_text().split()[0]
        # keep draining stderr so the server never blocks on a full pipe
        import threading

        def pump():
            for line in self.proc.stderr:
                self.log.write(line)
                try:
                    self.lines.append(json.loads(line))
                except ValueError:
                    self.lines.append({"raw": line.decode(errors="replace")})
        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()
        return self

    @property
    def target(self):
        return f"127.0.0.1:{self.port}"

    @property
    def http_base(self):
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.pump.join(timeout=5)
        self.log.close()
        return rc


@pytest.fixture
def server_factory(tmp_path):
    servers = []

    def make(name="data", extra_args=(), env=None, nofile=None):
        s = Server(str(tmp_path / name), extra_args, env, nofile)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(str(tmp_path_factory.mktemp("srv") / "data")).start()
    yield s
    s.stop()


@pytest.fixture
def channel(server):
    ch = grpc.insecure_channel(server.target)
    yield ch
    ch.close()


@pytest.fixture
def auth(server):
    return (("x-api-key", server.api_key),)
