"""What the standard suite does not check: filters run on the server (the true top k among
matches), scores per metric, atomic replacement, MMR, the retriever, the async path on
grpc.aio, TLS by URL and clear errors. Against a real nexadb-server."""
import asyncio
import threading
from typing import List

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

import nexadb
from langchain_nexadb import NexaDBVectorStore, relevance_score


class TableEmbeddings(Embeddings):
    """Texts of the form 'x,y,z' embed as that vector, so tests know the geometry exactly."""

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> List[float]:
        return [float(x) for x in text.split(",")]


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


@pytest.fixture
def store(connect, coll_name):
    s = NexaDBVectorStore(DeterministicFakeEmbedding(size=16), coll_name, **connect)
    yield s
    s.delete_collection()
    s.close()


def test_filtered_search_is_the_true_top_k_among_matches(store):
    emb = store.embeddings
    texts = [f"doc {i}" for i in range(60)]
    metas = [{"group": i % 6, "n": i, "tags": ["even" if i % 2 == 0 else "odd"]} for i in range(60)]
    store.add_texts(texts, metas, ids=[f"d{i}" for i in range(60)])
    q = emb.embed_query("a query")
    sims = {f"d{i}": float(unit(emb.embed_query(t)) @ unit(q)) for i, t in enumerate(texts)}

    def expected(pred, k):
        ids = sorted((f"d{i}" for i in range(60) if pred(metas[i])), key=lambda d: -sims[d])
        return ids[:k]

    cases = [
        ({"group": 3}, lambda m: m["group"] == 3),
        ({"n": {"$gte": 40}}, lambda m: m["n"] >= 40),
        ({"group": {"$in": [1, 2]}, "n": {"$lt": 30}}, lambda m: m["group"] in (1, 2) and m["n"] < 30),
        ({"$or": [{"group": 0}, {"n": 7}]}, lambda m: m["group"] == 0 or m["n"] == 7),
        ({"tags": "even", "group": {"$ne": 2}}, lambda m: m["n"] % 2 == 0 and m["group"] != 2),
    ]
    for flt, pred in cases:
        got = store.similarity_search_by_vector(q, k=4, filter=flt)
        assert [d.id for d in got] == expected(pred, 4), flt
        assert all(pred(d.metadata) for d in got)
        agot = asyncio.run(store.asimilarity_search_by_vector(q, k=4, filter=flt))
        assert [d.id for d in agot] == [d.id for d in got]
    # a filter nothing matches
    assert store.similarity_search("doc 1", k=3, filter={"group": 99}) == []


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_scores_per_metric(connect, coll_name, metric):
    s = NexaDBVectorStore(TableEmbeddings(), coll_name, metric=metric, **connect)
    try:
        vecs = {"a": [1.0, 0.0, 0.0], "b": [0.6, 0.8, 0.0], "c": [0.0, 0.0, 1.0]}
        s.add_texts([",".join(map(str, v)) for v in vecs.values()], ids=list(vecs))
        q = [0.8, 0.6, 0.0]
        got = s.similarity_search_with_score_by_vector(q, k=3)
        qa = np.array(q)

        def raw(v):
            v = np.array(v)
            if metric == "cosine":
                return float(unit(v) @ unit(qa))
            if metric == "dot":
                return float(v @ qa)
            return -float(((v - qa) ** 2).sum())
        want = sorted(vecs, key=lambda k: -raw(vecs[k]))
        assert [d.id for d, _ in got] == want
        for d, score in got:
            assert score == pytest.approx(raw(vecs[d.id]), abs=1e-5)
        # relevance: in [0, 1], 1 for the closest possible, in the same order
        rel = s.similarity_search_with_relevance_scores(",".join(map(str, q)), k=3)
        assert [d.id for d, _ in rel] == want
        f = relevance_score(metric)
        for (d, r), (_, score) in zip(rel, got):
            assert 0.0 <= r <= 1.0 and r == pytest.approx(f(score), abs=1e-6)
        assert s.metric == metric
        # score_threshold applies to relevance; min_score to the raw score, on the server
        top = f(got[0][1])
        kept = s.similarity_search_with_relevance_scores(",".join(map(str, q)), k=3,
                                                         score_threshold=top - 1e-6)
        assert [d.id for d, _ in kept] == [want[0]]
        assert [d.id for d, _ in s.similarity_search_with_score_by_vector(
            q, k=3, min_score=got[1][1] - 1e-6)] == want[:2]
    finally:
        s.delete_collection()
        s.close()


def test_relevance_score_functions():
    assert relevance_score("cosine")(1.0) == 1.0 and relevance_score("cosine")(-1.0) == 0.0
    assert relevance_score("dot")(5.0) == 1.0 and relevance_score("dot")(-5.0) == 0.0
    assert relevance_score("l2")(0.0) == 1.0
    assert relevance_score("l2")(-4.0) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="metric"):
        relevance_score("hamming")


def test_existing_collection_metric_is_adopted_or_checked(connect, coll_name):
    s = NexaDBVectorStore(TableEmbeddings(), coll_name, metric="l2", **connect)
    s.add_texts(["1,2"], ids=["p"])
    try:
        other = NexaDBVectorStore(TableEmbeddings(), coll_name, **connect)
        assert other.metric == "l2"
        wrong = NexaDBVectorStore(TableEmbeddings(), coll_name, metric="cosine", **connect)
        with pytest.raises(ValueError, match="uses metric 'l2', not 'cosine'"):
            wrong.similarity_search("1,2", k=1)
        with pytest.raises(ValueError, match="uses metric 'l2'"):
            asyncio.run(wrong.asimilarity_search("1,2", k=1))
        # different dimensions: the write is refused, naming the collection
        with pytest.raises(ValueError, match=coll_name):
            other.add_texts(["1,2,3"])
    finally:
        s.delete_collection()


def test_upsert_replaces_atomically(store):
    """Readers searching and reading while one id is rewritten 200 times never see two copies
    of it, nor a text from one version with metadata from another: each replacement is one
    atomic write. (A search overlapping a replacement may leave that document out: the server
    reads hits back at a snapshot taken after scoring and drops a row replaced meanwhile rather
    than return it with another version's score; vector/README.md, "Invariants".)"""
    store.add_texts(["v0"], [{"version": 0}], ids=["x"])
    store.add_texts([f"other {i}" for i in range(20)])
    q = store.embeddings.embed_query("v0")
    stop = threading.Event()
    seen, bad = [], []

    def reader():
        while not stop.is_set():
            docs = store.similarity_search_by_vector(q, k=25)
            xs = [d for d in docs if d.id == "x"] + store.get_by_ids(["x"])
            if not 1 <= len(xs) <= 2 or any(d.page_content != f"v{d.metadata['version']}" for d in xs):
                bad.append(xs)
            seen.append(xs[-1].metadata["version"])

    t = threading.Thread(target=reader)
    t.start()
    try:
        for v in range(1, 201):
            store.add_documents([Document(page_content=f"v{v}", metadata={"version": v}, id="x")])
    finally:
        stop.set()
        t.join()
    assert not bad, bad[:3]
    assert len(seen) > 1 and seen == sorted(seen)  # versions only move forward
    assert store.get_by_ids(["x"]) == [Document(id="x", page_content="v200", metadata={"version": 200})]
    assert [d.id for d in store.similarity_search_by_vector(q, k=25)].count("x") == 1


def test_add_batches_mixing_new_and_existing_ids(connect, coll_name):
    s = NexaDBVectorStore(DeterministicFakeEmbedding(size=8), coll_name, batch_size=3, **connect)
    try:
        s.add_texts(["a", "b"], ids=["1", "2"])
        ids = s.add_texts(["A", "B", "c", "d", "e"], [{"i": i} for i in range(5)],
                          ids=["1", "2", None, "4", "5"])
        assert ids[:2] == ["1", "2"] and ids[3:] == ["4", "5"] and len(ids[2]) == 36
        got = {d.id: d for d in s.get_by_ids(ids)}
        assert [got[i].page_content for i in ids] == ["A", "B", "c", "d", "e"]
        assert asyncio.run(s.aadd_texts(["AA", "f"], ids=["1", "6"])) == ["1", "6"]
        assert [d.page_content for d in s.get_by_ids(["1", "6"])] == ["AA", "f"]
        assert len(list(nexadb.NexaDB.from_url(**connect).vector_collection(coll_name).find())) == 6
        # an id given twice in one call keeps its last text
        assert s.add_texts(["p", "q"], ids=["7", "7"]) == ["7", "7"]
        asyncio.run(s.aadd_texts(["r", "s"], ids=["8", "8"]))
        assert [d.page_content for d in s.get_by_ids(["7", "8"])] == ["q", "s"]
    finally:
        s.delete_collection()


def test_delete_by_filter(store):
    store.add_texts([f"t{i}" for i in range(10)], [{"n": i} for i in range(10)],
                    ids=[str(i) for i in range(10)])
    assert store.delete(filter={"n": {"$lt": 3}}) is True
    assert [d.id for d in store.get_by_ids([str(i) for i in range(10)])] == [str(i) for i in range(3, 10)]
    assert asyncio.run(store.adelete(filter={"n": {"$gte": 8}})) is True
    assert len(store.similarity_search("t5", k=10)) == 5
    with pytest.raises(ValueError, match="ids or filter"):
        store.delete()
    with pytest.raises(ValueError, match="not both"):
        store.delete(["1"], filter={"n": 1})
    with pytest.raises(TypeError, match="one string"):
        store.delete("1")


def test_max_marginal_relevance(connect, coll_name):
    s = NexaDBVectorStore(TableEmbeddings(), coll_name, **connect)
    try:
        # a and a2 nearly the same; b less close to the query but different from a
        s.add_texts(["1,0.1,0", "1,0.11,0", "0.3,0,1", "0,1,0"], ids=["a", "a2", "b", "far"])
        q = "1,0,0.5"
        assert [d.id for d in s.similarity_search(q, k=2)] == ["a", "a2"]
        mmr = s.max_marginal_relevance_search(q, k=2, fetch_k=4, lambda_mult=0.5)
        assert [d.id for d in mmr] == ["a", "b"]
        assert [d.id for d in asyncio.run(s.amax_marginal_relevance_search(
            q, k=2, fetch_k=4, lambda_mult=0.5))] == ["a", "b"]
        # lambda_mult=1 is plain similarity
        assert [d.id for d in s.max_marginal_relevance_search(q, k=2, lambda_mult=1.0)] == ["a", "a2"]
        # with a filter, only matching documents are candidates
        assert [d.id for d in s.max_marginal_relevance_search(
            q, k=2, filter={"_id": {"$in": ["a2", "far"]}})] == ["a2", "far"]
        with pytest.raises(ValueError, match="lambda_mult"):
            s.max_marginal_relevance_search(q, lambda_mult=2)
    finally:
        s.delete_collection()


def test_retriever_and_from_texts(connect, coll_name):
    emb = DeterministicFakeEmbedding(size=8)
    s = NexaDBVectorStore.from_texts(["alpha", "beta", "gamma"], emb, [{"k": 1}, {"k": 2}, {"k": 3}],
                                     ids=["1", "2", "3"], collection_name=coll_name, **connect)
    try:
        assert [d.id for d in s.as_retriever(search_kwargs={"k": 1}).invoke("beta")] == ["2"]
        r = s.as_retriever(search_kwargs={"k": 2, "filter": {"k": {"$ne": 2}}})
        assert [d.id for d in r.invoke("beta")] == [d.id for d in s.similarity_search(
            "beta", k=2, filter={"k": {"$ne": 2}})]
        assert len(r.invoke("beta")) == 2 and "2" not in [d.id for d in r.invoke("beta")]
        mmr = s.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 3})
        assert mmr.invoke("gamma")[0].id == "3"
        thr = s.as_retriever(search_type="similarity_score_threshold",
                             search_kwargs={"k": 3, "score_threshold": 0.999})
        assert [d.id for d in thr.invoke("alpha")] == ["1"]
        assert [d.id for d in asyncio.run(r.ainvoke("beta"))] == [d.id for d in r.invoke("beta")]
    finally:
        s.delete_collection()

    async def afrom():
        a = await NexaDBVectorStore.afrom_texts(["x", "y"], emb, collection_name=coll_name,
                                                ids=["x", "y"], **connect)
        try:
            return [d.id for d in await a.asimilarity_search("y", k=1)]
        finally:
            await a.adelete_collection()
            await a.aclose()
    assert asyncio.run(afrom()) == ["y"]


def test_async_methods_use_the_asyncio_client(store, connect):
    """With the sync channel closed, every async method still works: none of them runs the
    sync methods in a thread (LangChain's default for stores without async forms)."""
    store.close()

    async def main():
        ids = await store.aadd_texts(["one", "two", "three"], [{"n": 1}, {"n": 2}, {"n": 3}],
                                     ids=["1", "2", "3"])
        assert ids == ["1", "2", "3"]
        assert [d.id for d in await store.asimilarity_search("two", k=1)] == ["2"]
        assert (await store.asimilarity_search_with_score("two", k=1))[0][1] == pytest.approx(1.0)
        v = await store.embeddings.aembed_query("three")
        assert [d.id for d in await store.asimilarity_search_by_vector(v, k=1)] == ["3"]
        assert len(await store.amax_marginal_relevance_search("one", k=2, fetch_k=3)) == 2
        assert [d.id for d in await store.aget_by_ids(["3", "nope", "1"])] == ["3", "1"]
        await store.adelete(["1", "2"])
        assert [d.id for d in await store.asimilarity_search("one", k=3)] == ["3"]
        await store.aclose()
        # a second store whose metric is not yet known: relevance asks for it asynchronously
        other = NexaDBVectorStore(store.embeddings, store.collection_name, **connect)
        other.close()
        [(doc, rel)] = await other.asimilarity_search_with_relevance_scores("three", k=1)
        assert doc.id == "3" and rel == pytest.approx(1.0) and other.metric == "cosine"
        await other.aclose()
    asyncio.run(main())
    with pytest.raises(ValueError):  # the sync channel really is closed
        store.similarity_search("one", k=1)
    store.client = nexadb.NexaDB.from_url(**store._connect)  # for the fixture's cleanup


def test_errors_are_clear(store, connect, coll_name, server):
    with pytest.raises(ValueError, match="scheme"):
        NexaDBVectorStore(store.embeddings, "c", url="mongodb://localhost")
    with pytest.raises(ValueError, match="collection_name"):
        NexaDBVectorStore(store.embeddings, "", **connect)
    with pytest.raises(ValueError, match="metric"):
        NexaDBVectorStore(store.embeddings, "c", metric="manhattan", **connect)
    with pytest.raises(ValueError, match="reserved"):
        store.add_texts(["t"], [{"_created_at": 1}])
    with pytest.raises(ValueError, match="reserved"):
        store.add_texts(["t"], [{"text": "other"}])
    with pytest.raises(ValueError, match="2 texts but 1 metadatas"):
        store.add_texts(["a", "b"], [{}])
    with pytest.raises(TypeError, match="ids must be strings"):
        store.add_texts(["a"], ids=[7])
    with pytest.raises(ValueError, match="k must be a positive integer"):
        store.similarity_search("a", k=0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        store.similarity_search("a", k=1, filters={"a": 1})
    with pytest.raises(TypeError):  # a metadata value BSON cannot hold
        store.add_texts(["a"], [{"s": {1, 2}}])
    store.add_texts(["a"])
    with pytest.raises(nexadb.InvalidArgumentError):  # the server names the bad operator
        store.similarity_search("a", k=1, filter={"n": {"$bogus": 1}})
    bad = NexaDBVectorStore(store.embeddings, coll_name, url=connect["url"], api_key="wrong-key")
    with pytest.raises(nexadb.AuthenticationError):
        bad.similarity_search("a", k=1)


def test_tls_by_url(tls_server, coll_name):
    """A server with a certificate, reached by grpcs:// with its CA (mTLS: client certificate);
    plaintext to it fails."""
    srv = tls_server["server"]
    s = NexaDBVectorStore(DeterministicFakeEmbedding(size=4), coll_name,
                          url=f"grpcs://localhost:{srv.port}", api_key=srv.api_key,
                          **tls_server["tls"])
    s.add_texts(["secure"], ids=["s"])
    assert [d.id for d in s.similarity_search("secure", k=1)] == ["s"]
    assert asyncio.run(s.aget_by_ids(["s"]))[0].page_content == "secure"
    plain = NexaDBVectorStore(DeterministicFakeEmbedding(size=4), coll_name, timeout=5,
                              url=f"grpc://localhost:{srv.port}", api_key=srv.api_key)
    with pytest.raises(nexadb.UnavailableError):
        plain.similarity_search("secure", k=1)
