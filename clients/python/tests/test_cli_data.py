"""The CLI's data commands against the real server: insert, find, count, aggregate, update,
delete, search, import/export of JSON lines with the progress bar (vector collections with
their vectors, round trips included), and the shell.

They call nexadb.cli.main in-process (test_cli.py runs the installed console script itself):
an interpreter start per command made this file the suite's slowest."""
import io
import json
import sys
from types import SimpleNamespace

import pytest

from nexadb.cli import main


@pytest.fixture
def run(capsys, monkeypatch):
    def go(server, *args, input=None, check=True):
        monkeypatch.setattr(sys, "stdin", io.StringIO(input or ""))
        capsys.readouterr()
        rc = main(["--host", "127.0.0.1", "--port", str(server.port), "--api-key", server.api_key,
                   *args])
        out = capsys.readouterr()
        r = SimpleNamespace(returncode=rc, stdout=out.out, stderr=out.err)
        if check:
            assert rc == 0, r.stderr
        return r
    return go


def lines(out):
    return [json.loads(x) for x in out.splitlines() if x.strip()]


def test_insert_find_count_aggregate_update_delete(run, server, coll_name):
    uid = run(server, "insert", coll_name, '{"name": "Alice", "age": 28, "city": "SF"}').stdout.strip()
    ids = run(server, "insert", coll_name, '[{"name": "Bob", "age": 35, "city": "NY"}, '
              '{"name": "Cy", "age": 41, "city": "SF"}]').stdout.split()
    assert len(ids) == 2 and uid not in ids
    run(server, "insert", coll_name, input='{"name": "Dee", "age": 19, "city": "LA"}')
    docs = lines(run(server, "find", coll_name, '{"age": {"$gt": 25}}', "--sort=-age").stdout)
    assert [d["name"] for d in docs] == ["Cy", "Bob", "Alice"]
    assert docs[2]["age"] == 28
    assert lines(run(server, "find", coll_name, "--limit", "1", "--sort", "age",
                     "--projection", '{"name": 1}').stdout) == [
        {"_id": lines(run(server, "find", coll_name, '{"name": "Dee"}').stdout)[0]["_id"], "name": "Dee"}]
    assert run(server, "count", coll_name).stdout.strip() == "4"
    assert run(server, "count", coll_name, '{"city": "SF"}').stdout.strip() == "2"
    agg = lines(run(server, "aggregate", coll_name,
                    '[{"$group": {"_id": "$city", "n": {"$sum": 1}}}, {"$sort": {"n": -1, "_id": 1}}]').stdout)
    assert agg[0] == {"_id": "SF", "n": 2}
    assert run(server, "update", coll_name, '{"age": 29}', "--id", uid).stdout.strip() == "updated"
    assert run(server, "update", coll_name, '{"country": "USA"}', "--query", '{"city": "SF"}').stdout.strip() == "2"
    r = run(server, "update", coll_name, '{"a": 1}', "--id", "nope", check=False)
    assert r.returncode == 1 and "not found" in r.stdout
    assert run(server, "delete", coll_name, uid).stdout.strip() == "deleted"
    assert run(server, "delete", coll_name, "--query", '{"city": "SF"}').stdout.strip() == "1"
    assert run(server, "delete", coll_name, "--all").stdout.strip() == "2"


def test_bad_filter_exit_1_with_code(run, server, coll_name):
    run(server, "insert", coll_name, '{"a": 1}')
    r = run(server, "find", coll_name, '{"a": {"$bogus": 1}}', check=False)
    assert r.returncode == 1 and "INVALID_ARGUMENT" in r.stderr


def test_import_export_roundtrip_with_progress(run, server, coll_name, tmp_path):
    src = tmp_path / "in.jsonl"
    n = 2500
    src.write_text("".join(json.dumps({"i": i, "tag": "t%d" % (i % 7)}) + "\n" for i in range(n)))
    r = run(server, "import", coll_name, str(src), "--batch", "400", "--progress", "always")
    assert f"imported {n} documents" in r.stderr
    assert "100.0%" in r.stderr and f"{n}/{n}" in r.stderr
    assert run(server, "count", coll_name).stdout.strip() == str(n)
    out = tmp_path / "out.jsonl"
    r = run(server, "export", coll_name, str(out), "--progress", "always", "--batch", "300")
    assert f"exported {n} documents" in r.stderr and "100.0%" in r.stderr
    back = lines(out.read_text())
    assert sorted(d["i"] for d in back) == list(range(n))
    assert all("_id" in d for d in back)
    # a filtered export to stdout, no progress bar
    r = run(server, "export", coll_name, "--query", '{"tag": "t3"}', "--progress", "never")
    assert len(lines(r.stdout)) == len([i for i in range(n) if i % 7 == 3])
    assert "%" not in r.stderr


def test_import_vectors_and_search(run, server, coll_name, tmp_path):
    src = tmp_path / "v.jsonl"
    src.write_text("\n".join(json.dumps({"name": n, "emb": v}) for n, v in
                             [("a", [1, 0, 0]), ("b", [0, 1, 0]), ("c", [0.9, 0.1, 0])]) + "\n")
    run(server, "import", coll_name, str(src), "--vector-field", "emb", "--dimensions", "3")
    hits = lines(run(server, "search", coll_name, "[1, 0, 0]", "--limit", "2").stdout)
    assert [h["document"]["name"] for h in hits] == ["a", "c"]
    assert "emb" not in hits[0]["document"]
    assert abs(hits[0]["similarity"] - 1) < 1e-5


def test_index_shows_changes_and_follows_the_build(run, server, coll_name, tmp_path):
    import random
    rng = random.Random(2)
    src = tmp_path / "v.jsonl"
    src.write_text("\n".join(json.dumps({"i": i, "emb": [rng.gauss(0, 1) for _ in range(32)]})
                             for i in range(3000)) + "\n")
    run(server, "import", coll_name, str(src), "--vector-field", "emb", "--progress", "never")
    shown = lines(run(server, "index", coll_name).stdout)
    assert shown == [{"collection": coll_name, "index": "exact", "rows": 3000}]
    r = run(server, "index", coll_name, "--hnsw", "--m", "8", "--wait", "--progress", "always")
    (done,) = lines(r.stdout)
    assert done["index"] == "hnsw" and done["m"] == 8 and done["ef_construction"] == 200
    assert done["quantization"] == "none" and "oversample" not in done
    assert done["indexed"] == 3000 and done["building"] is False and done["index_bytes"] > 0
    assert "rows" in r.stderr and "100.0%" in r.stderr
    listed = [c for c in lines(run(server, "collections").stdout) if c["name"] == coll_name]
    assert listed[0]["index"]["kind"] == "hnsw" and listed[0]["indexed"] == 3000
    out = lines(run(server, "search", coll_name, json.dumps([1.0] * 32), "--limit", "3", "--ef", "50",
                    "--explain").stdout)
    assert out[0]["plan"]["path"] == "exact" and len(out) == 4  # 3,000 rows of 32: searched exactly
    r = run(server, "index", coll_name, "--m", "8", check=False)
    assert r.returncode == 2 and "go with --hnsw" in r.stderr
    (q8,) = lines(run(server, "index", coll_name, "--hnsw", "--quantization", "int8", "--oversample", "3",
                      "--wait", "--progress", "never").stdout)
    assert q8["quantization"] == "int8" and q8["oversample"] == 3 and q8["indexed"] == 3000
    (h16,) = lines(run(server, "index", coll_name, "--hnsw", "--quantization", "float16", "--wait",
                       "--progress", "never").stdout)
    assert h16["quantization"] == "float16" and h16["oversample"] == 4 and h16["indexed"] == 3000
    r = run(server, "index", coll_name, "--hnsw", "--m", "100", check=False)
    assert r.returncode == 1 and "m must be 2 to 64" in r.stderr
    assert lines(run(server, "index", coll_name, "--exact").stdout)[0]["index"] == "exact"


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_export_import_of_vectors_round_trips(run, server, coll_name, tmp_path, metric):
    """Export a vector collection with its vectors, import it under another name (its
    dimensions inferred from the first vector): identical search results, scores and all."""
    import random
    from nexadb import NexaDB
    rng = random.Random(5)
    src = tmp_path / "v.jsonl"
    src.write_text("".join(json.dumps({"name": f"n{i}", "emb": [rng.gauss(0, 1) for _ in range(24)]}) + "\n"
                           for i in range(300)))
    run(server, "import", coll_name, str(src), "--vector-field", "emb", "--metric", metric, "--batch", "70")
    out = tmp_path / "out.jsonl"
    r = run(server, "export", coll_name, str(out), "--vector-field", "emb", "--batch", "64")
    assert "exported 300 documents with their vectors in 'emb'" in r.stderr
    back = lines(out.read_text())
    assert len(back) == 300 and all(len(d["emb"]) == 24 and "_id" in d for d in back)
    run(server, "import", coll_name + "_copy", str(out), "--vector-field", "emb", "--metric", metric)
    with NexaDB("127.0.0.1", server.port, api_key=server.api_key) as db:
        info = {c["name"]: c for c in db.list_vector_collections()}[coll_name + "_copy"]
        assert (info["dimensions"], info["metric"], info["count"]) == (24, metric, 300)
        queries = [[rng.gauss(0, 1) for _ in range(24)] for _ in range(5)]
        before, after = (db.vector_collection(n).search_batch(queries, limit=50) for n in (coll_name, coll_name + "_copy"))
        assert [[(h.doc_id, h.similarity) for h in q] for q in after] == \
               [[(h.doc_id, h.similarity) for h in q] for q in before]
        assert [h.doc["name"] for h in after[0]] == [h.doc["name"] for h in before[0]]
        # a second export of the copy is the same file but for the times the database set
        run(server, "export", coll_name + "_copy", str(tmp_path / "again.jsonl"), "--vector-field", "emb")
        strip = lambda ds: [{k: v for k, v in d.items() if k not in ("_created_at", "_updated_at")} for d in ds]
        assert strip(lines((tmp_path / "again.jsonl").read_text())) == strip(back)


def test_export_picks_the_kind(run, server, coll_name, tmp_path):
    src = tmp_path / "v.jsonl"
    src.write_text(json.dumps({"_id": "a", "emb": [1, 0]}) + "\n")
    run(server, "import", coll_name, str(src), "--vector-field", "emb")
    # only a vector collection of that name: exported with its vectors, under "vector"
    r = run(server, "export", coll_name)
    doc, = lines(r.stdout)
    assert doc["_id"] == "a" and doc["vector"] == [1, 0] and "emb" not in doc
    # both kinds: the user must say which
    run(server, "insert", coll_name, '{"kind": "plain"}')
    r = run(server, "export", coll_name, check=False)
    assert r.returncode == 2 and "both a document collection and a vector collection" in r.stderr
    assert "--documents" in r.stderr and "--vector-field" in r.stderr
    assert [d["kind"] for d in lines(run(server, "export", coll_name, "--documents").stdout)] == ["plain"]
    assert lines(run(server, "export", coll_name, "--vector-field", "v").stdout)[0]["v"] == [1, 0]
    r = run(server, "export", coll_name + "_none", "--vector-field", "v", check=False)
    assert r.returncode == 2 and "no vector collection" in r.stderr
    # an import that disagrees with the existing collection says so
    r = run(server, "import", coll_name, str(src), "--vector-field", "emb", "--metric", "dot", check=False)
    assert r.returncode == 2 and "ranks by cosine, not dot" in r.stderr
    r = run(server, "import", coll_name, str(src), "--vector-field", "emb", "--dimensions", "3", check=False)
    assert r.returncode == 2 and "has 2 dimensions, not 3" in r.stderr


def test_shell_session(run, server, coll_name):
    script = "\n".join([
        f"use {coll_name}",
        'insert {"name": "Zed", "age": 50}',
        'insert {"name": "Amy", "age": 20}',
        "count",
        'count {"age": {"$gt": 30}}',
        'find {"age": {"$gt": 30}}',
        'find {} 1',
        'aggregate [{"$group": {"_id": null, "total": {"$sum": "$age"}}}]',
        'find {"age": {"$bogus": 1}}',
        "exit",
    ]) + "\n"
    # the shell reads a pipe as a script (no prompts), so it runs as the real command
    from test_cli import run as run_cli
    out = run_cli(server, "shell", input=script).stdout.splitlines()
    assert len(out[0]) > 0 and len(out[1]) > 0  # two ids
    assert out[2] == "2" and out[3] == "1"
    assert json.loads(out[4])["name"] == "Zed"
    assert len([x for x in out[5:6] if x.startswith("{")]) == 1
    assert json.loads(out[6]) == {"_id": None, "total": 70}
    assert out[7].startswith("error: INVALID_ARGUMENT")
