"""VectorService through the real server over gRPC, checked against a brute-force reference;
FindVectors paging over gRPC and REST; concurrent upserts of one id against readers."""
import math
import random
import threading

import grpc
import pytest
import requests
from google.protobuf import wrappers_pb2






def normalise(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


@pytest.fixture
def vec(pb, channel):
    return pb.vector_pb2_grpc.VectorServiceStub(channel)


@pytest.fixture
def filled(pb, vec, auth):
    """A 16-d cosine collection of 300 documents with known vectors."""
    v = pb.vector_pb2
    name = f"emb{random.randrange(1 << 30)}"
    vec.CreateVectorCollection(v.CreateVectorCollectionRequest(collection=name, dimensions=16), metadata=auth, timeout=10)
    rng = random.Random(7)
    rows = [[rng.gauss(0, 1) for _ in range(16)] for _ in range(300)]
    docs = [v.VectorDocument(document=pb.doc({"n": i, "even": i % 2 == 0}), vector=r) for i, r in enumerate(rows)]
    ids = vec.InsertVectors(v.InsertVectorsRequest(collection=name, documents=docs), metadata=auth, timeout=30).document_ids
    return name, rows, list(ids)


def reference(rows, ids, q, k, keep=lambda i: True):
    qn = normalise(q)
    scored = [(sum(a * b for a, b in zip(normalise(r), qn)), i) for i, r in enumerate(rows) if keep(i)]
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [(ids[i], s) for s, i in scored[:k]]


def test_search_matches_brute_force(pb, vec, auth, filled):
    name, rows, ids = filled
    rng = random.Random(11)
    for _ in range(5):
        q = [rng.gauss(0, 1) for _ in range(16)]
        r = vec.Search(pb.vector_pb2.SearchRequest(collection=name, vector=q, limit=10), metadata=auth, timeout=10)
        want = reference(rows, ids, q, 10)
        assert [h.document_id for h in r.results] == [i for i, _ in want]
        for h, (_, s) in zip(r.results, want):
            assert h.similarity == pytest.approx(s, abs=1e-5)
            assert pb.undoc(h.document)["n"] == ids.index(h.document_id)


def test_filtered_search_is_true_top_k_among_matches(pb, vec, auth, filled):
    name, rows, ids = filled
    q = [random.Random(3).gauss(0, 1) for _ in range(16)]
    r = vec.Search(pb.vector_pb2.SearchRequest(collection=name, vector=q, limit=7, filter=pb.doc({"even": False})),
                   metadata=auth, timeout=10)
    want = reference(rows, ids, q, 7, keep=lambda i: i % 2 == 1)
    assert [h.document_id for h in r.results] == [i for i, _ in want]
    r = vec.Search(pb.vector_pb2.SearchRequest(collection=name, vector=q, limit=7, filter=pb.doc({"n": {"$lt": 0}})),
                   metadata=auth, timeout=10)
    assert list(r.results) == []


def test_min_score_and_vectors(pb, vec, auth, filled):
    name, rows, ids = filled
    q = rows[5]
    r = vec.Search(pb.vector_pb2.SearchRequest(collection=name, vector=q, limit=50, include_vectors=True,
                                               min_score=wrappers_pb2.FloatValue(value=0.5)),
                   metadata=auth, timeout=10)
    assert r.results[0].document_id == ids[5]
    assert r.results[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert all(h.similarity >= 0.5 - 1e-6 for h in r.results)
    assert list(r.results[0].vector) == pytest.approx(normalise(rows[5]), abs=1e-6)


def test_batch_equals_single_searches(pb, vec, auth, filled):
    name, rows, ids = filled
    v = pb.vector_pb2
    rng = random.Random(5)
    qs = [[rng.gauss(0, 1) for _ in range(16)] for _ in range(4)]
    b = vec.SearchBatch(v.SearchBatchRequest(collection=name, queries=[v.SearchQuery(vector=q) for q in qs], limit=5),
                        metadata=auth, timeout=10)
    assert len(b.results) == 4
    for q, res in zip(qs, b.results):
        one = vec.Search(v.SearchRequest(collection=name, vector=q, limit=5), metadata=auth, timeout=10)
        assert [h.document_id for h in res.results] == [h.document_id for h in one.results]


def test_get_upsert_delete(pb, vec, auth, filled):
    name, rows, ids = filled
    v = pb.vector_pb2
    g = vec.GetVector(v.GetVectorRequest(collection=name, id=ids[3], include_vector=True), metadata=auth, timeout=10)
    assert pb.undoc(g.document)["n"] == 3 and len(g.vector) == 16
    u = vec.UpsertVector(v.UpsertVectorRequest(collection=name, id=ids[3], document=pb.doc({"n": 3, "new": True}),
                                               vector=[1.0] + [0.0] * 15), metadata=auth, timeout=10)
    assert not u.inserted
    g = vec.GetVector(v.GetVectorRequest(collection=name, id=ids[3], include_vector=True), metadata=auth, timeout=10)
    assert pb.undoc(g.document)["new"] is True and list(g.vector)[:2] == [1.0, 0.0]
    assert vec.DeleteVector(v.DeleteVectorRequest(collection=name, id=ids[3]), metadata=auth, timeout=10).success
    with pytest.raises(grpc.RpcError) as e:
        vec.GetVector(v.GetVectorRequest(collection=name, id=ids[3]), metadata=auth, timeout=10)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    r = vec.Search(v.SearchRequest(collection=name, vector=[1.0] + [0.0] * 15, limit=300), metadata=auth, timeout=10)
    assert ids[3] not in [h.document_id for h in r.results] and len(r.results) == 299


@pytest.mark.parametrize("vector,needle", [
    ([0.1] * 15, "dimensions"),
    ([float("nan")] + [0.1] * 15, "NaN"),
    ([float("inf")] + [0.1] * 15, "Inf"),
    ([0.0] * 16, "zero"),
])
def test_bad_vectors_are_invalid_argument(pb, vec, auth, filled, vector, needle):
    name, _, _ = filled
    with pytest.raises(grpc.RpcError) as e:
        vec.InsertVector(pb.vector_pb2.InsertVectorRequest(collection=name, document=pb.doc({"x": 1}), vector=vector),
                         metadata=auth, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle.lower() in e.value.details().lower()


def test_bad_batches_are_invalid_argument(pb, vec, auth, filled):
    """Replays two fuzz_handlers findings: InsertVectors whose vectors all have the wrong
    dimension count (the engine stepped through a NULL array), and SearchBatch with an
    empty query vector (the service copied from a NULL one)."""
    name, _, _ = filled
    v = pb.vector_pb2
    docs = [v.VectorDocument(document=pb.doc({"i": i}), vector=[0.1, 0.2, 0.3, 0.4]) for i in range(3)]
    with pytest.raises(grpc.RpcError) as e:
        vec.InsertVectors(v.InsertVectorsRequest(collection=name, documents=docs), metadata=auth, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "has 4 dimensions" in e.value.details()
    docs[1] = v.VectorDocument(document=pb.doc({"i": 1}), vector=[0.1] * 16)
    with pytest.raises(grpc.RpcError) as e:
        vec.InsertVectors(v.InsertVectorsRequest(collection=name, documents=docs), metadata=auth, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "documents[1].vector" in e.value.details()
    for queries in ([v.SearchQuery()], [v.SearchQuery(), v.SearchQuery()], [v.SearchQuery(vector=[1.0] * 16), v.SearchQuery()]):
        with pytest.raises(grpc.RpcError) as e:
            vec.SearchBatch(v.SearchBatchRequest(collection=name, queries=queries, limit=2), metadata=auth, timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()


def test_collection_rules(pb, vec, auth):
    v = pb.vector_pb2
    with pytest.raises(grpc.RpcError) as e:
        vec.CreateVectorCollection(v.CreateVectorCollectionRequest(collection="zero", dimensions=0), metadata=auth, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    vec.CreateVectorCollection(v.CreateVectorCollectionRequest(collection="dup", dimensions=4), metadata=auth, timeout=10)
    vec.CreateVectorCollection(v.CreateVectorCollectionRequest(collection="dup", dimensions=4, if_not_exists=True),
                               metadata=auth, timeout=10)
    with pytest.raises(grpc.RpcError) as e:
        vec.CreateVectorCollection(v.CreateVectorCollectionRequest(collection="dup", dimensions=8, if_not_exists=True),
                                   metadata=auth, timeout=10)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as e:
        vec.Search(v.SearchRequest(collection="nope", vector=[1.0]), metadata=auth, timeout=10)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    names = [c.name for c in vec.ListVectorCollections(v.ListVectorCollectionsRequest(), metadata=auth, timeout=10).collections]
    assert "dup" in names
    assert vec.DropVectorCollection(v.DropVectorCollectionRequest(collection="dup"), metadata=auth, timeout=10).dropped


def test_vectors_survive_restart(pb, server_factory):
    s = server_factory("vrestart").start()
    v = pb.vector_pb2
    q = [0.3, -0.2, 0.9, 0.1]
    with grpc.insecure_channel(s.target) as ch:
        stub = pb.vector_pb2_grpc.VectorServiceStub(ch)
        auth = (("x-api-key", s.api_key),)
        stub.CreateVectorCollection(v.CreateVectorCollectionRequest(collection="keep", dimensions=4), metadata=auth, timeout=10)
        rng = random.Random(1)
        stub.InsertVectors(v.InsertVectorsRequest(collection="keep", documents=[
            v.VectorDocument(document=pb.doc({"i": i}), vector=[rng.gauss(0, 1) for _ in range(4)]) for i in range(50)]),
            metadata=auth, timeout=10)
        before = [(h.document_id, h.similarity) for h in
                  stub.Search(v.SearchRequest(collection="keep", vector=q, limit=5), metadata=auth, timeout=10).results]
    assert s.stop() == 0
    s2 = server_factory("vrestart").start()
    with grpc.insecure_channel(s2.target) as ch:
        stub = pb.vector_pb2_grpc.VectorServiceStub(ch)
        auth = (("x-api-key", s2.api_key),)
        after = [(h.document_id, h.similarity) for h in
                 stub.Search(v.SearchRequest(collection="keep", vector=q, limit=5), metadata=auth, timeout=10).results]
    assert after == before


def test_find_vectors_pages_in_id_order_with_tokens(pb, vec, auth, filled):
    name, rows, ids = filled
    v = pb.vector_pb2
    pages = list(vec.FindVectors(v.FindVectorsRequest(collection=name, page_size=64), metadata=auth, timeout=10))
    assert [len(p.documents) for p in pages] == [64, 64, 64, 64, 44]
    assert [p.count for p in pages] == [64, 128, 192, 256, 300]
    assert all(p.next_page_token for p in pages[:-1]) and pages[-1].next_page_token == ""
    docs = [x for p in pages for x in p.documents]
    assert [pb.undoc(x.document)["_id"] for x in docs] == sorted(ids)
    for x in docs:
        i = ids.index(pb.undoc(x.document)["_id"])
        assert pb.undoc(x.document)["n"] == i
        assert list(x.vector) == pytest.approx(normalise(rows[i]), abs=1e-6)
    one = docs[17]
    g = vec.GetVector(v.GetVectorRequest(collection=name, id=pb.undoc(one.document)["_id"], include_vector=True), metadata=auth,
                      timeout=10)
    assert list(g.vector) == list(one.vector) and pb.undoc(g.document) == pb.undoc(one.document)  # the stored vector, bit for bit
    # a token resumes after its page, whatever the new page size
    rest = [pb.undoc(x.document)["_id"] for p in vec.FindVectors(v.FindVectorsRequest(
        collection=name, page_token=pages[1].next_page_token, page_size=1000), metadata=auth, timeout=10)
        for x in p.documents]
    assert rest == sorted(ids)[128:]
    # filter and limit
    odd = [x for p in vec.FindVectors(v.FindVectorsRequest(collection=name, filter=pb.doc({"even": False}), limit=10),
                                      metadata=auth, timeout=10) for x in p.documents]
    assert [pb.undoc(x.document)["_id"] for x in odd] == sorted(ids[1::2])[:10]


def test_find_vectors_errors(pb, vec, auth, filled):
    name, _, _ = filled
    v = pb.vector_pb2
    for req, code in [(v.FindVectorsRequest(collection="nope"), grpc.StatusCode.NOT_FOUND),
                      (v.FindVectorsRequest(collection=name, page_token="zz"), grpc.StatusCode.INVALID_ARGUMENT),
                      (v.FindVectorsRequest(collection=name, limit=-1), grpc.StatusCode.INVALID_ARGUMENT),
                      (v.FindVectorsRequest(collection=name, filter=pb.doc({"n": {"$bogus": 1}})),
                       grpc.StatusCode.INVALID_ARGUMENT)]:
        with pytest.raises(grpc.RpcError) as e:
            list(vec.FindVectors(req, metadata=auth, timeout=10))
        assert e.value.code() == code, req


def test_find_vectors_over_rest_merges_pages(server, filled):
    name, rows, ids = filled
    r = requests.post(f"{server.http_base}/vector/{name}/find", json={"query": {"even": True}, "page_size": 7},
                      headers={"X-API-Key": server.api_key}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 150 and body["next_page_token"] == ""
    assert [d["document"]["_id"] for d in body["documents"]] == sorted(ids[0::2])
    first = body["documents"][0]
    assert first["vector"] == pytest.approx(normalise(rows[ids.index(first["document"]["_id"])]), abs=1e-6)


def test_concurrent_upserts_of_one_id_never_show_a_torn_version(pb, server):
    """Writers upsert one id with {"v": i} and the vector [i, 1, 0] (dot metric, stored as
    given) while readers Get and Search it: every call succeeds and every read shows a
    document and a vector of the same version."""
    v = pb.vector_pb2
    name = f"hot{random.randrange(1 << 30)}"
    md = (("x-api-key", server.api_key),)
    writers, per_writer = 4, 120

    def stub():
        ch = grpc.insecure_channel(server.target)
        return ch, pb.vector_pb2_grpc.VectorServiceStub(ch)

    ch, s = stub()
    s.CreateVectorCollection(v.CreateVectorCollectionRequest(collection=name, dimensions=3,
                                                             metric=pb.common_pb2.VECTOR_METRIC_DOT),
                             metadata=md, timeout=10)
    first = s.UpsertVector(v.UpsertVectorRequest(collection=name, id="hot", document=pb.doc({"v": 0}), vector=[0, 1, 0]),
                           metadata=md, timeout=10)
    assert first.inserted
    created = pb.undoc(s.GetVector(v.GetVectorRequest(collection=name, id="hot"), metadata=md, timeout=10).document)["_created_at"]
    done = threading.Event()
    errors, reads, inserted = [], [], []

    def write(w):
        c, st = stub()
        try:
            for j in range(per_writer):
                i = w * per_writer + j + 1
                r = st.UpsertVector(v.UpsertVectorRequest(collection=name, id="hot", document=pb.doc({"v": i, "w": w}),
                                                          vector=[float(i), 1.0, 0.0]), metadata=md, timeout=30)
                inserted.append(r.inserted)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"writer {w}: {e!r}")
        finally:
            c.close()

    def read(k):
        c, st = stub()
        try:
            while not done.is_set():
                g = st.GetVector(v.GetVectorRequest(collection=name, id="hot", include_vector=True), metadata=md,
                                 timeout=30)
                doc = pb.undoc(g.document)
                if list(g.vector) != [float(doc["v"]), 1.0, 0.0] or doc["_created_at"] != created:
                    errors.append(f"Get saw {doc} with {list(g.vector)}")
                hits = st.Search(v.SearchRequest(collection=name, vector=[1, 0, 0], limit=5, include_vectors=True),
                                 metadata=md, timeout=30).results
                for h in hits:  # a document replaced during the search is left out, never mismatched
                    if h.similarity != pb.undoc(h.document)["v"] or list(h.vector) != [float(pb.undoc(h.document)["v"]), 1.0, 0.0]:
                        errors.append(f"Search saw {pb.undoc(h.document)} scored {h.similarity} with {list(h.vector)}")
                reads.append(len(hits))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"reader {k}: {e!r}")
        finally:
            c.close()

    ws = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    rs = [threading.Thread(target=read, args=(k,)) for k in range(3)]
    for t in rs + ws:
        t.start()
    for t in ws:
        t.join()
    done.set()
    for t in rs:
        t.join()
    assert not errors, errors[:5]
    assert len(inserted) == writers * per_writer and not any(inserted)
    assert reads
    final = s.GetVector(v.GetVectorRequest(collection=name, id="hot", include_vector=True), metadata=md, timeout=10)
    assert list(final.vector) == [float(pb.undoc(final.document)["v"]), 1.0, 0.0]
    assert len(list(s.FindVectors(v.FindVectorsRequest(collection=name), metadata=md, timeout=10))[0].documents) == 1
    ch.close()
