"""Issue 16, files and secrets: the data directory is 0700 and its files 0600
(an older, more open directory keeps working, with a warning); a key file
others can read is refused unless --allow-insecure-key-file; GET /metrics
needs a key (a read-only one will do) unless --metrics-no-auth."""
import json
import os
import stat
import subprocess

import grpc
import pytest
import requests

from conftest import server_binary


def _write_some(pb, s):
    md = (("x-api-key", s.api_key),)
    with grpc.insecure_channel(s.target) as ch:
        docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
        vecs = pb.vector_pb2_grpc.VectorServiceStub(ch)
        vecs.CreateVectorCollection(pb.vector_pb2.CreateVectorCollectionRequest(collection="v", dimensions=4),
                                    metadata=md)
        for i in range(50):
            d = pb.doc({"_id": f"d{i}", "n": i})
            docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="c", document=d), metadata=md)
            vecs.InsertVector(pb.vector_pb2.InsertVectorRequest(collection="v", document=d,
                                                                vector=[1.0, float(i), 0.5, 0.25]), metadata=md)
        vecs.Search(pb.vector_pb2.SearchRequest(collection="v", vector=[1, 2, 3, 4], limit=3), metadata=md)


def _modes(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            out[os.path.relpath(p, root)] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


@pytest.fixture
def umask022():
    old = os.umask(0o022)  # the common default, which used to let 0644/0755 through
    yield
    os.umask(old)


def test_data_directory_and_files_are_private(pb, server_factory, umask022):
    s = server_factory("private").start()
    _write_some(pb, s)
    assert s.stop() == 0
    assert stat.S_IMODE(os.stat(s.data_dir).st_mode) == 0o700
    modes = _modes(s.data_dir)
    assert any(p.startswith("kv/") for p in modes) and any(p.startswith("vseg") for p in modes), modes
    exposed = {p: oct(m) for p, m in modes.items() if m & 0o077}
    assert not exposed, f"readable by others: {exposed}"


def test_an_older_open_data_directory_still_works(pb, server_factory, umask022):
    s = server_factory("older").start()
    _write_some(pb, s)
    assert s.stop() == 0
    # as an older release left it: 0755 directories, 0644 files
    for dirpath, dirnames, filenames in os.walk(s.data_dir):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            if f != "api_key":
                os.chmod(os.path.join(dirpath, f), 0o644)
    s2 = server_factory("older").start()
    warn = [r for r in s2.lines if r.get("msg") == "the data directory is open to users other than its owner"]
    assert warn and warn[0]["mode"] == "0755", s2.lines
    md = (("x-api-key", s2.api_key),)
    with grpc.insecure_channel(s2.target) as ch:
        docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
        assert docs.Count(pb.document_pb2.CountRequest(collection="c"), metadata=md).count == 50
        d = pb.doc({"_id": "new"})
        docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="c", document=d), metadata=md)
    assert s2.stop() == 0


def _start_fails(args, data_dir, timeout=20):
    r = subprocess.run([server_binary(), "--data-dir", str(data_dir), "--grpc-addr", "127.0.0.1:0",
                        "--http-addr", "127.0.0.1:0", *args], capture_output=True, timeout=timeout)
    assert r.returncode != 0, r.stderr.decode()[-2000:]
    return [json.loads(ln) for ln in r.stderr.decode().splitlines() if ln.startswith("{")]


def _key_file(tmp_path, mode, owner_not_root=False):
    kf = tmp_path / f"keys-{mode:o}"
    kf.write_text("rw-" + "a1" * 16 + " rw\n" + "ro-" + "b2" * 16 + " ro\n")
    kf.chmod(mode)
    if owner_not_root and os.geteuid() == 0:
        os.chown(kf, 65534, 65534)  # root-owned files may be group-readable (Kubernetes Secrets)
    return kf


@pytest.mark.parametrize("mode,owner_not_root", [(0o644, False), (0o604, False), (0o640, True), (0o660, False)])
def test_a_key_file_others_can_read_is_refused(tmp_path, mode, owner_not_root):
    kf = _key_file(tmp_path, mode, owner_not_root)
    lines = _start_fails(["--api-key-file", str(kf)], tmp_path / "data")
    err = [r for r in lines if r.get("msg") == "cannot load API keys"]
    assert err, lines
    assert str(kf) in err[0]["error"] and f"mode 0{mode:o}" in err[0]["error"]
    assert "--allow-insecure-key-file" in err[0]["error"]


def test_a_generated_key_file_made_readable_is_refused(server_factory, tmp_path):
    s = server_factory("gen").start()
    assert s.stop() == 0
    key = os.path.join(s.data_dir, "api_key")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    os.chmod(key, 0o644)
    lines = _start_fails([], s.data_dir)
    assert any(r.get("msg") == "cannot load API keys" and "api_key" in r["error"] for r in lines), lines


def test_allow_insecure_key_file_loads_it_with_a_warning(server_factory, tmp_path):
    kf = _key_file(tmp_path, 0o644)
    s = server_factory("insecure", extra_args=["--api-key-file", str(kf), "--allow-insecure-key-file"]).start()
    warn = [r for r in s.lines if r.get("msg", "").startswith("loading an API key file that users other")]
    assert warn and warn[0]["level"] == "warn" and warn[0]["mode"] == "0644", s.lines
    r = requests.get(f"{s.http_base}/stats", headers={"X-API-Key": "rw-" + "a1" * 16}, timeout=10)
    assert r.status_code == 200


def test_private_and_root_group_key_files_load(server_factory, tmp_path):
    for mode in (0o600, 0o400) + ((0o440, 0o640) if os.geteuid() == 0 else ()):
        kf = _key_file(tmp_path, mode)
        s = server_factory(f"ok{mode:o}", extra_args=["--api-key-file", str(kf)]).start()
        assert requests.get(f"{s.http_base}/stats", headers={"X-API-Key": "ro-" + "b2" * 16},
                            timeout=10).status_code == 200
        assert s.stop() == 0


def test_metrics_needs_a_key_and_a_read_only_one_will_do(server_factory, tmp_path):
    kf = _key_file(tmp_path, 0o600)
    s = server_factory("metrics", extra_args=["--api-key-file", str(kf)]).start()
    url = f"{s.http_base}/metrics"
    r = requests.get(url, timeout=10)
    assert r.status_code == 401 and r.json()["code"] == 16, r.text
    assert "nexadb_" not in r.text
    assert requests.get(url, headers={"X-API-Key": "wrong-" + "c3" * 16}, timeout=10).status_code == 401
    for h in ({"X-API-Key": "ro-" + "b2" * 16}, {"Authorization": "Bearer " + "ro-" + "b2" * 16},
              {"X-API-Key": "rw-" + "a1" * 16}):
        r = requests.get(url, headers=h, timeout=10)
        assert r.status_code == 200 and "nexadb_requests_total" in r.text, (h, r.status_code)
    assert s.stop() == 0
    # the flag opens it again
    s = server_factory("metrics-open", extra_args=["--api-key-file", str(kf), "--metrics-no-auth"]).start()
    assert requests.get(f"{s.http_base}/metrics", timeout=10).status_code == 200
    assert requests.get(f"{s.http_base}/stats", timeout=10).status_code == 401  # only /metrics
    s.stop()
    env = dict(os.environ, NEXADB_METRICS_NO_AUTH="true")
    s = server_factory("metrics-env", extra_args=["--api-key-file", str(kf)], env=env).start()
    assert requests.get(f"{s.http_base}/metrics", timeout=10).status_code == 200
