"""A real nexadb-server for tests: free ports in a temp dir, port and API key read from its
JSON log lines. Shared by clients/python/tests and clients/examples/tests."""
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def server_binary() -> str:
    path = os.environ.get("NEXADB_SERVER", str(ROOT / "build/test/service/nexadb-server"))
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"nexadb-server not built at {path}; run `make test`")
    return path


class Server:
    def __init__(self, data_dir: Path, extra_args=()):
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None
        self.http_port = None
        self.api_key = None
        self.lines = []

    def start(self, timeout=20):
        self.proc = subprocess.Popen(
            [server_binary(), "--data-dir", str(self.data_dir), "--grpc-addr", "127.0.0.1:0",
             "--http-addr", "127.0.0.1:0", *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError(f"server exited early ({self.proc.wait()}): {self.lines}")
            rec = json.loads(line)
            self.lines.append(rec)
            if rec.get("msg") == "gRPC listening":
                self.port = rec["port"]
            if rec.get("msg") == "HTTP listening":
                self.http_port = rec["port"]
            if "api_key" in rec:
                self.api_key = rec["api_key"]
            if rec.get("msg") == "nexadb-server ready":
                break
        else:
            raise RuntimeError("server did not become ready")
        if self.api_key is None and (self.data_dir / "api_key").exists():
            self.api_key = (self.data_dir / "api_key").read_text().split()[0]
        # keep reading stderr so the server never blocks on a full pipe
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
