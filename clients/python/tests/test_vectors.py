"""VectorCollection against the real server."""
import math

import grpc
import pytest

import nexadb


def unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


@pytest.fixture
def vecs(db, coll_name):
    vc = db.vector_collection(coll_name, dimensions=4)
    yield vc
    vc.drop()


def test_create_is_idempotent_and_dimension_conflict_raises(db, vecs):
    again = db.vector_collection(vecs.name, dimensions=4)
    assert again.name == vecs.name
    with pytest.raises(nexadb.NexaDBError):
        db.vector_collection(vecs.name, dimensions=8)
    info = {c["name"]: c for c in db.list_vector_collections()}[vecs.name]
    assert info["dimensions"] == 4 and info["kind"] == "vectors"


def test_insert_and_search_brief_shape(vecs):
    a = vecs.insert({"name": "a"}, vector=[1, 0, 0, 0])
    b = vecs.insert({"name": "b"}, vector=[0.9, 0.1, 0, 0])
    vecs.insert({"name": "c"}, vector=[0, 0, 1, 0])
    results = vecs.search([1, 0, 0, 0], limit=2)
    assert len(results) == 2
    (id0, s0, d0), (id1, s1, d1) = results
    assert (id0, d0["name"]) == (a, "a") and id1 == b
    assert s0 == pytest.approx(1.0, abs=1e-5) and s0 >= s1
    assert s1 == pytest.approx(unit([0.9, 0.1, 0, 0])[0], abs=1e-5)


def test_wrong_dimension_is_invalid_argument(vecs):
    with pytest.raises(nexadb.InvalidArgumentError) as e:
        vecs.insert({"x": 1}, vector=[1, 2, 3])
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(nexadb.InvalidArgumentError):
        vecs.search([1, 2, 3, 4, 5])


def test_filter_min_score_include_vectors(vecs):
    vecs.insert_many([{"kind": "x", "i": 0}, {"kind": "y", "i": 1}, {"kind": "x", "i": 2}],
                     [[1, 0, 0, 0], [1, 0.1, 0, 0], [0, 1, 0, 0]])
    hits = vecs.search([1, 0, 0, 0], limit=10, filter={"kind": "x"})
    assert [h.doc["i"] for h in hits] == [0, 2]
    hits = vecs.search([1, 0, 0, 0], limit=10, min_score=0.5, include_vectors=True)
    assert [h.doc["i"] for h in hits] == [0, 1]
    assert hits[0].vector == pytest.approx([1, 0, 0, 0])


def test_get_upsert_delete_batch(vecs):
    vid = vecs.insert({"_id": "v1", "n": 1}, vector=[0, 0, 0, 2])
    assert vid == "v1"
    got = vecs.get("v1", include_vector=True)
    assert got["n"] == 1 and got["_vector"] == pytest.approx([0, 0, 0, 1])
    with pytest.raises(nexadb.AlreadyExistsError):
        vecs.insert({"_id": "v1"}, vector=[1, 0, 0, 0])
    assert vecs.upsert("v1", {"n": 2}, [1, 0, 0, 0]) is False
    assert vecs.upsert("v2", {"n": 3}, [0, 1, 0, 0]) is True
    assert vecs.get("v1")["n"] == 2
    batch = vecs.search_batch([[1, 0, 0, 0], [0, 1, 0, 0]], limit=1)
    assert [r[0].doc_id for r in batch] == ["v1", "v2"]
    assert vecs.delete("v1") is True and vecs.delete("v1") is False
    assert vecs.get("v1") is None


def test_document_indexes_serve_filters_and_unique_refuses(vecs, db):
    docs = [{"_id": f"d{i}", "cat": f"c{i % 7}", "sku": i} for i in range(210)]
    vecs.insert_many(docs, [[1.0, i / 210, (i % 7) / 7, 0.5] for i in range(210)])
    q = [1.0, 0.3, 0.5, 0.5]
    before = vecs.search(q, limit=5, filter={"cat": "c3"})
    info = vecs.create_index("cat")
    assert info["fields"] == [("cat", 1)] and not info["unique"], info
    assert vecs.create_index({"sku": 1}, unique=True, name="by_sku")["unique"]
    assert {i["name"] for i in vecs.list_indexes()} == {info["name"], "by_sku"}
    after = vecs.search(q, limit=5, filter={"cat": "c3"})
    assert [h.doc_id for h in after] == [h.doc_id for h in before] and len(after) == 5
    assert all(h.doc["cat"] == "c3" for h in after)
    # the index is maintained by writes: a new c3 document is found through it
    vecs.insert({"_id": "new", "cat": "c3", "sku": 1000}, vector=q)
    assert vecs.search(q, limit=1, filter={"cat": "c3"})[0].doc_id == "new"
    # unique: a duplicate sku is refused and neither its document nor its vector is stored
    with pytest.raises(nexadb.AlreadyExistsError):
        vecs.insert({"_id": "dup", "cat": "c0", "sku": 5}, vector=q)
    assert vecs.get("dup") is None and vecs.info()["count"] == 211
    # the document collection of the same name is another collection with its own indexes
    assert vecs.name not in {c["name"] for c in db.list_collections()}
    assert vecs.drop_index("by_sku") is True and vecs.drop_index("by_sku") is False
    vecs.insert({"_id": "dup", "cat": "c0", "sku": 5}, vector=q)
    with pytest.raises(nexadb.NotFoundError):
        db.vector_collection("no_such_vectors").list_indexes()
    with pytest.raises(nexadb.NotFoundError, match="no vector collection 'no_such_vectors'"):
        db.vector_collection("no_such_vectors").info()


def test_find_yields_documents_with_vectors_in_id_order(vecs):
    ids = vecs.insert_many([{"_id": f"d{i:03}", "i": i, "odd": i % 2 == 1} for i in range(25)],
                           [[1, i, 0, 0] for i in range(25)])
    got = list(vecs.find(page_size=4))
    assert [d["_id"] for d, _ in got] == sorted(ids)
    for doc, vector in got:
        assert vector == pytest.approx(unit([1, doc["i"], 0, 0]), abs=1e-6)
        assert vector == vecs.get(doc["_id"], include_vector=True)["_vector"]  # the stored vector itself
    odd = vecs.find({"odd": True}, limit=3).to_list()
    assert [v.doc["i"] for v in odd] == [1, 3, 5] and all(len(v.vector) == 4 for v in odd)
    assert isinstance(odd[0], nexadb.VectorDocument)
    with pytest.raises(nexadb.NotFoundError):
        list(vecs.db.vector_collection("no_such_vectors").find())


def wait_indexed(vc, rows):
    import time
    deadline = time.time() + 120
    while time.time() < deadline:
        info = vc.info()
        if not info["index_building"] and info["indexed"] == rows:
            return info
        time.sleep(0.1)
    raise AssertionError(f"not indexed in 120 s: {vc.info()}")


def test_hnsw_index_search_options_and_explain(db, coll_name):
    import random
    rng = random.Random(4)
    centres = [[rng.gauss(0, 1) for _ in range(64)] for _ in range(32)]
    rows = [[c + rng.gauss(0, 0.5) for c in centres[i % 32]] for i in range(17000)]  # 4.4 MB: past exact's size
    vc = db.vector_collection(coll_name, dimensions=64, metric="l2", index="hnsw", m=12)
    try:
        info = vc.info()
        assert info["index"] == {"kind": "hnsw", "m": 12, "ef_construction": 200, "quantization": "none",
                                 "oversample": 0}
        for at in range(0, len(rows), 2000):
            vc.insert_many([{"_id": f"r{i}", "even": i % 2 == 0} for i in range(at, min(at + 2000, len(rows)))],
                           rows[at:at + 2000])
        info = wait_indexed(vc, len(rows))
        assert info["index_bytes"] > 0
        e = vc.explain(rows[5], limit=3, ef=40)
        assert e["plan"]["path"] == "hnsw" and e["plan"]["ef"] == 40 and e["plan"]["graph_nodes"] == len(rows)
        assert e["results"][0].doc_id == "r5"
        assert vc.explain(rows[5], limit=3, exact=True)["plan"]["path"] == "exact"
        hits = vc.search(rows[6], limit=5, filter={"even": True}, ef=64)
        assert hits[0].doc_id == "r6" and all(h.doc["even"] for h in hits)
        with pytest.raises(nexadb.AlreadyExistsError):
            db.vector_collection(coll_name, dimensions=64, metric="l2", index="exact")
        with pytest.raises(nexadb.InvalidArgumentError, match="m must be"):
            vc.set_index("hnsw", m=100)
        with pytest.raises(ValueError, match="index must be one of"):
            vc.set_index("ivf")
        info = vc.set_index("hnsw", m=12, quantization="int8", oversample=3)
        assert info["index"] == {"kind": "hnsw", "m": 12, "ef_construction": 200, "quantization": "int8",
                                 "oversample": 3}
        info = wait_indexed(vc, len(rows))
        e = vc.explain(rows[7], limit=3, ef=64)
        assert e["plan"]["path"] == "hnsw" and e["results"][0].doc_id == "r7"
        assert e["results"][0].similarity == 0.0, "int8 hits are rescored: exact l2 distance 0"
        info = vc.set_index("hnsw", m=12, quantization="float16")
        assert info["index"]["quantization"] == "float16" and info["index"]["oversample"] == 4
        wait_indexed(vc, len(rows))
        e = vc.explain(rows[8], limit=3, ef=64)
        assert e["plan"]["path"] == "hnsw" and e["results"][0].doc_id == "r8"
        assert e["results"][0].similarity == 0.0, "float16 hits are rescored: exact l2 distance 0"
        with pytest.raises(ValueError, match="quantization must be one of"):
            vc.set_index("hnsw", quantization="pq")
        assert vc.set_index("exact")["index"]["kind"] == "exact"
        assert vc.explain(rows[5], limit=3)["plan"]["path"] == "exact"
    finally:
        vc.drop()
