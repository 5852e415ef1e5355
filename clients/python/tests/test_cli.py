"""The nexadb CLI, run as the installed console script against the real server."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = ["status", "stats", "collections", "insert", "find", "count", "aggregate", "update",
            "delete", "search", "index", "import", "export", "backup", "shell"]


def cli_path() -> str:
    exe = Path(sys.executable).parent / "nexadb"
    assert exe.exists(), f"console script not installed at {exe}"
    return str(exe)


def run(server, *args, input=None, key=True, check=True):
    env = dict(os.environ)
    env.pop("NEXADB_API_KEY", None)
    if key:
        env["NEXADB_API_KEY"] = server.api_key
    r = subprocess.run([cli_path(), "--host", "127.0.0.1", "--port", str(server.port), *args],
                       input=input, capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_help_on_everything(capsys):
    r = subprocess.run([cli_path(), "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for c in COMMANDS:
        assert c in r.stdout
    from nexadb.cli import main  # in-process: one interpreter start per command is slow
    for c in COMMANDS:
        with pytest.raises(SystemExit) as e:
            main([c, "--help"])
        assert e.value.code == 0, c
        out = capsys.readouterr().out
        assert out.startswith(f"usage: nexadb {c}"), c
        assert "-h, --help" in out


def test_python_dash_m():
    r = subprocess.run([sys.executable, "-m", "nexadb", "--help"], capture_output=True, text=True,
                       cwd="/")
    assert r.returncode == 0 and "import" in r.stdout


def test_status_and_stats(server):
    st = json.loads(run(server, "status", key=False).stdout)
    assert st["status"] == "ok"
    stats = json.loads(run(server, "stats").stdout)
    assert stats["rss_bytes"] > 0


def test_missing_key_exit_1_with_code(server):
    r = run(server, "stats", key=False, check=False)
    assert r.returncode == 1
    assert "UNAUTHENTICATED" in r.stderr


def test_bad_json_is_usage_error(server):
    r = run(server, "find", "users", "{not json", check=False)
    assert r.returncode == 2
    assert "query: not valid JSON" in r.stderr
    r = run(server, "aggregate", "users", '{"a": 1}', check=False)
    assert r.returncode == 2 and "JSON array" in r.stderr


def test_import_reports_bad_line(server, tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('[1, 2]\n')
    r = run(server, "import", "users", str(f), check=False)
    assert r.returncode == 2
    assert "bad.jsonl:1: expected a JSON object" in r.stderr


def test_delete_needs_a_target(server):
    r = run(server, "delete", "users", check=False)
    assert r.returncode == 2 and "--all" in r.stderr


def test_shell_help_and_errors(server):
    r = run(server, "shell", input="help\nfind\nnosuch\nuse users\nexit\n")
    assert "Documented commands" in r.stdout
    assert "error: no collection: `use NAME` first" in r.stdout
    assert "error: unknown command 'nosuch'" in r.stdout


def test_backup_directory_and_archive(server, db, tmp_path, coll_name):
    from testserver import server_binary
    db.collection(coll_name).insert_many([{"_id": f"d{i}", "i": i} for i in range(500)])
    r = run(server, "backup", "cli-" + coll_name)
    res = json.loads(r.stdout)
    assert res["sequence"] > 0 and res["path"].endswith("/backups/cli-" + coll_name)
    assert res["bytes_done"] == res["bytes_total"] > 0 and res["files_done"] == res["files_total"]
    arch = tmp_path / "b.tar"
    res = json.loads(run(server, "backup", "--archive", str(arch)).stdout)
    assert res["path"] == str(arch) and arch.exists() and not (tmp_path / "b.tar.partial").exists()
    inc = tmp_path / "inc.tar"
    run(server, "backup", "--archive", str(inc), "--previous-archive", str(arch))
    for b in (str(arch), f"{inc},{arch}"):
        v = subprocess.run([server_binary(), "--verify-backup", b], capture_output=True, text=True, timeout=60)
        assert v.returncode == 0, v.stderr
    # the SDK: an archive into any binary file, progress told as it goes
    import io
    buf, seen = io.BytesIO(), []
    last = db.backup(archive=buf, progress=seen.append)
    assert last["done"] and buf.getvalue()[-1024:] == bytes(1024) and seen[-1]["bytes_done"] > 0
    for args, msg in [((), "NAME"), (("x", "--archive", str(tmp_path / "y")), "NAME"),
                      (("--archive", str(tmp_path / "z"), "--previous", "x"), "--previous")]:
        r = run(server, "backup", *args, check=False)
        assert r.returncode == 2 and msg in r.stderr, r.stderr
    r = run(server, "backup", "cli-" + coll_name, check=False)  # exists already
    assert r.returncode == 1 and "ALREADY_EXISTS" in r.stderr
