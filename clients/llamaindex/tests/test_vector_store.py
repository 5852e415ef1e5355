"""The LlamaIndex vector store against a real nexadb-server: add and query, every filter
operator and condition LlamaIndex defines (compared with LlamaIndex's own in-memory
SimpleVectorStore), delete by document, delete_nodes, get_nodes, reload after a server
restart, MMR, the async forms on grpc.aio, and clear errors."""
import asyncio
import math
from typing import List

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.types import (FilterCondition, FilterOperator, MetadataFilter,
                                                  MetadataFilters, VectorStoreQuery,
                                                  VectorStoreQueryMode)

import nexadb
from conftest import Server
from llama_index.vector_stores.nexadb import NexaDBVectorStore, to_nexadb_filter


class LetterEmbedding(BaseEmbedding):
    """Letter counts a..z, normalised: deterministic, and texts sharing words are close."""

    @staticmethod
    def _embed(text: str) -> List[float]:
        v = [0.0] * 26
        for ch in text.lower():
            if "a" <= ch <= "z":
                v[ord(ch) - 97] += 1.0
        n = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / n if n else 0.0 for x in v] if any(v) else [1.0] + [0.0] * 25

    def _get_query_embedding(self, query: str) -> List[float]:
        return self._embed(query)

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return self._embed(query)

    def _get_text_embedding(self, text: str) -> List[float]:
        return self._embed(text)


@pytest.fixture
def store(connect, coll_name):
    s = NexaDBVectorStore(coll_name, **connect)
    yield s
    s.clear()
    s.close()


def node(i: int, text: str, emb: List[float], doc: str = "d0", **md) -> TextNode:
    n = TextNode(id_=f"n{i}", text=text, embedding=emb, metadata=md)
    n.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc)
    return n


def axis(i: int, dims: int = 8, tilt: float = 0.0) -> List[float]:
    v = [0.0] * dims
    v[i % dims] = 1.0
    v[(i + 1) % dims] = tilt
    return v


# metadata with every shape the operators care about: strings, ints, floats, string lists,
# missing keys, empty values
CORPUS = [
    dict(kind="article", n=1, score=0.5, tags=["db", "vector"], title="Vector search at scale", note="x"),
    dict(kind="article", n=2, score=1.5, tags=["db"], title="Document stores", note=""),
    dict(kind="post", n=3, score=2.5, tags=["ml", "vector"], title="Embeddings explained", note=[]),
    dict(kind="post", n=4, score=3.5, tags=[], title="LSM trees in practice"),
    dict(kind="note", n=5, score=4.5, tags=["ml"], title="vector DATABASES compared", note="y"),
    dict(kind="note", n=6, tags=["db", "ml", "vector"], title="On filters"),
]


def filter_cases():
    F, O = MetadataFilter, FilterOperator
    single = [
        F(key="kind", value="post", operator=O.EQ),
        F(key="n", value=3, operator=O.EQ),
        F(key="kind", value="post", operator=O.NE),
        F(key="n", value=3, operator=O.GT),
        F(key="score", value=2.5, operator=O.GTE),
        F(key="n", value=3, operator=O.LT),
        F(key="score", value=2.5, operator=O.LTE),
        F(key="kind", value=["post", "note"], operator=O.IN),
        F(key="n", value=[1, 6], operator=O.NIN),
        F(key="tags", value=["ml", "nothing"], operator=O.ANY),
        F(key="tags", value=["db", "vector"], operator=O.ALL),
        F(key="title", value="vector", operator=O.TEXT_MATCH),
        F(key="title", value="vector", operator=O.TEXT_MATCH_INSENSITIVE),
        F(key="title", value="s (", operator=O.TEXT_MATCH),  # regex characters taken literally
        F(key="tags", value="ml", operator=O.CONTAINS),
        F(key="note", value=None, operator=O.IS_EMPTY),
        F(key="tags", value=None, operator=O.IS_EMPTY),
    ]
    cases = [MetadataFilters(filters=[f]) for f in single]
    for cond in (FilterCondition.AND, FilterCondition.OR, FilterCondition.NOT):
        cases.append(MetadataFilters(filters=[F(key="kind", value="article", operator=O.NE),
                                              F(key="tags", value="vector", operator=O.CONTAINS)],
                                     condition=cond))
    return cases


def test_every_operator_and_condition_matches_llamaindex_reference(store):
    """Each FilterOperator and FilterCondition, run by the server, selects the nodes that
    LlamaIndex's in-memory SimpleVectorStore selects (its filter semantics are the reference)."""
    nodes = [node(i, md["title"], axis(i), **md) for i, md in enumerate(CORPUS)]
    store.add(nodes)
    ref = SimpleVectorStore()
    ref.add([n.model_copy() for n in nodes])
    assert {op for op in FilterOperator} == {
        FilterOperator(f.filters[0].operator) for f in filter_cases() if len(f.filters) == 1}
    q = [1.0] * 8
    for filters in filter_cases():
        query = VectorStoreQuery(query_embedding=q, similarity_top_k=len(nodes), filters=filters)
        want = sorted(ref.query(query).ids)
        got = store.query(query)
        assert sorted(got.ids) == want, (filters, to_nexadb_filter(filters))
        assert sorted(asyncio.run(store.aquery(query)).ids) == want
        assert sorted(n.node_id for n in store.get_nodes(filters=filters)) == want


def test_filtered_query_is_the_true_top_k_among_matches(store):
    nodes = [node(i, f"t{i}", axis(i, tilt=0.1 * i), group=i % 3) for i in range(24)]
    store.add(nodes)
    q = axis(5, tilt=0.3)
    f = MetadataFilters(filters=[MetadataFilter(key="group", value=2)])
    got = store.query(VectorStoreQuery(query_embedding=q, similarity_top_k=3, filters=f))

    def cos(a, b):
        return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    want = sorted((n for n in nodes if n.metadata["group"] == 2), key=lambda n: -cos(n.embedding, q))[:3]
    assert got.ids == [n.node_id for n in want]
    assert got.similarities == pytest.approx([cos(n.embedding, q) for n in want], abs=1e-5)
    assert [n.get_content() for n in got.nodes] == [n.get_content() for n in want]


def test_nested_filters_and_doc_and_node_ids(store):
    nodes = [node(i, md["title"], axis(i), doc=f"doc{i % 2}", **md) for i, md in enumerate(CORPUS)]
    store.add(nodes)
    F, O = MetadataFilter, FilterOperator
    nested = MetadataFilters(condition=FilterCondition.OR, filters=[
        F(key="kind", value="article"),
        MetadataFilters(filters=[F(key="kind", value="note"), F(key="n", value=5, operator=O.GT)])])
    q = VectorStoreQuery(query_embedding=[1.0] * 8, similarity_top_k=10, filters=nested)
    assert sorted(store.query(q).ids) == ["n0", "n1", "n5"]
    q = VectorStoreQuery(query_embedding=[1.0] * 8, similarity_top_k=10, doc_ids=["doc1"])
    assert sorted(store.query(q).ids) == ["n1", "n3", "n5"]
    q = VectorStoreQuery(query_embedding=[1.0] * 8, similarity_top_k=10, node_ids=["n2", "n3"],
                         doc_ids=["doc1"])
    assert store.query(q).ids == ["n3"]
    q = VectorStoreQuery(query_embedding=[1.0] * 8, similarity_top_k=10)
    assert sorted(store.query(q, nexadb_filter={"n": {"$mod": [2, 0]}}).ids) == ["n1", "n3", "n5"]


def test_add_query_and_get_nodes_round_trip(store):
    n = node(1, "The quick brown fox", axis(1), doc="docA", author="ada", year=2024,
             nested={"a": [1, 2]})
    n.relationships[NodeRelationship.NEXT] = RelatedNodeInfo(node_id="n2")
    assert store.add([n]) == ["n1"]
    got = store.query(VectorStoreQuery(query_embedding=axis(1), similarity_top_k=1))
    assert got.ids == ["n1"] and got.similarities == [pytest.approx(1.0)]
    back = got.nodes[0]
    assert back.get_content() == "The quick brown fox"
    assert back.metadata == {"author": "ada", "year": 2024, "nested": {"a": [1, 2]}}
    assert back.ref_doc_id == "docA" and back.next_node.node_id == "n2"
    [g] = store.get_nodes(node_ids=["n1"])
    assert g.get_content() == "The quick brown fox" and g.embedding == pytest.approx(axis(1))
    assert store.get_nodes(node_ids=["missing"]) == []
    # re-adding an id replaces the node
    n2 = node(1, "The lazy dog", axis(2), doc="docA", author="bob")
    store.add([n2])
    [g] = store.get_nodes()
    assert (g.get_content(), g.metadata) == ("The lazy dog", {"author": "bob"})


def test_delete_by_document_and_delete_nodes(store):
    nodes = [node(i, f"text {i}", axis(i), doc=f"doc{i % 3}", n=i) for i in range(9)]
    store.add(nodes)
    store.delete("doc1")
    assert sorted(n.node_id for n in store.get_nodes()) == ["n0", "n2", "n3", "n5", "n6", "n8"]
    store.delete("no-such-doc")
    store.delete_nodes(node_ids=["n0", "n404"])
    store.delete_nodes(filters=MetadataFilters(filters=[
        MetadataFilter(key="n", value=6, operator=FilterOperator.GTE)]))
    assert sorted(n.node_id for n in store.get_nodes()) == ["n2", "n3", "n5"]
    # ids and filters together: nodes matching both
    store.delete_nodes(node_ids=["n2", "n3"], filters=MetadataFilters(filters=[
        MetadataFilter(key="n", value=3)]))
    assert sorted(n.node_id for n in store.get_nodes()) == ["n2", "n5"]
    with pytest.raises(ValueError, match="clear"):
        store.delete_nodes()
    q = VectorStoreQuery(query_embedding=axis(5), similarity_top_k=5)
    assert store.query(q).ids == ["n5", "n2"] or store.query(q).ids[0] == "n5"
    store.clear()
    assert store.get_nodes() == [] and store.query(q).ids == []
    store.delete("doc0")  # on a dropped collection: nothing to do


def test_reload_after_server_restart(tmp_path, coll_name):
    """An index built through VectorStoreIndex, read back by a new store after the server
    restarted on the same data directory: texts, metadata and relationships survive, and a
    retriever over VectorStoreIndex.from_vector_store finds them."""
    data = tmp_path / "data"
    srv = Server(data).start()
    emb = LetterEmbedding()
    docs = [Document(text="NexaDB stores documents and vectors together", id_="doc-a",
                     metadata={"source": "readme"}),
            Document(text="Bananas are yellow fruit rich in potassium", id_="doc-b",
                     metadata={"source": "wiki"})]
    try:
        store = NexaDBVectorStore(coll_name, f"grpc://127.0.0.1:{srv.port}", srv.api_key)
        from llama_index.core import StorageContext
        VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(
            vector_store=store), embed_model=emb)
        before = sorted((n.node_id, n.get_content(), n.metadata["source"], n.ref_doc_id)
                        for n in store.get_nodes())
        store.close()
    finally:
        srv.stop()
    srv = Server(data).start()
    try:
        store = NexaDBVectorStore(coll_name, f"grpc://127.0.0.1:{srv.port}", srv.api_key)
        after = sorted((n.node_id, n.get_content(), n.metadata["source"], n.ref_doc_id)
                       for n in store.get_nodes())
        assert after == before and len(after) == 2
        index = VectorStoreIndex.from_vector_store(store, embed_model=emb)
        hits = index.as_retriever(similarity_top_k=1).retrieve("yellow bananas")
        assert hits[0].node.ref_doc_id == "doc-b" and "potassium" in hits[0].node.get_content()
        filtered = index.as_retriever(similarity_top_k=2, filters=MetadataFilters(
            filters=[MetadataFilter(key="source", value="readme")])).retrieve("yellow bananas")
        assert [h.node.ref_doc_id for h in filtered] == ["doc-a"]
        store.delete("doc-a")
        assert [n.ref_doc_id for n in store.get_nodes()] == ["doc-b"]
    finally:
        srv.stop()


def test_mmr_query(store):
    store.add([node(0, "a", [1.0, 0.1, 0.0]), node(1, "a2", [1.0, 0.11, 0.0]),
               node(2, "b", [0.3, 0.0, 1.0]), node(3, "far", [0.0, 1.0, 0.0])])
    q = [1.0, 0.0, 0.5]
    plain = store.query(VectorStoreQuery(query_embedding=q, similarity_top_k=2))
    assert plain.ids == ["n0", "n1"]
    mmr = store.query(VectorStoreQuery(query_embedding=q, similarity_top_k=2,
                                       mode=VectorStoreQueryMode.MMR, mmr_threshold=0.5))
    assert mmr.ids == ["n0", "n2"] and len(mmr.similarities) == 2


def test_async_forms_use_the_asyncio_client(store):
    """With the sync channel closed every async method still works: none runs the sync
    method in a thread (LlamaIndex's default for stores without async forms)."""
    store.close()

    async def main():
        nodes = [node(i, f"text {i}", axis(i), doc=f"doc{i % 2}", n=i) for i in range(6)]
        assert await store.async_add(nodes) == [f"n{i}" for i in range(6)]
        r = await store.aquery(VectorStoreQuery(query_embedding=axis(3), similarity_top_k=1))
        assert r.ids == ["n3"]
        assert len(await store.aget_nodes()) == 6
        await store.adelete("doc0")
        assert sorted(n.node_id for n in await store.aget_nodes()) == ["n1", "n3", "n5"]
        await store.adelete_nodes(node_ids=["n1"])
        await store.adelete_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="n", value=5)]))
        assert [n.node_id for n in await store.aget_nodes()] == ["n3"]
        await store.aclear()
        assert await store.aget_nodes() == []
        await store.aclose()
    asyncio.run(main())
    with pytest.raises(ValueError):  # the sync channel really is closed
        store.get_nodes()
    store._client = nexadb.NexaDB.from_url(**store._connect)  # for the fixture's cleanup


def test_errors_are_clear(store, connect, coll_name):
    with pytest.raises(ValueError, match="scheme"):
        NexaDBVectorStore("c", "redis://localhost")
    with pytest.raises(ValueError, match="metric"):
        NexaDBVectorStore("c", metric="cityblock", **connect)
    with pytest.raises(ValueError, match="no embedding"):
        store.add([TextNode(id_="x", text="no vector")])
    with pytest.raises(ValueError, match="reserved"):
        store.add([node(1, "t", axis(1), _created_at="now")])
    with pytest.raises(ValueError, match="reserved"):
        store.add([TextNode(id_="c", text="t", embedding=axis(1), metadata={"text": "clash"})])
    q = VectorStoreQuery(query_embedding=axis(1), similarity_top_k=1,
                         mode=VectorStoreQueryMode.HYBRID)
    with pytest.raises(ValueError, match="hybrid"):
        store.query(q)
    with pytest.raises(ValueError, match="similarity_top_k"):
        store.query(VectorStoreQuery(query_embedding=axis(1), similarity_top_k=0))
    with pytest.raises(ValueError, match="query_embedding"):
        store.query(VectorStoreQuery(query_str="x"))
    with pytest.raises(ValueError, match="needs a list"):
        to_nexadb_filter(MetadataFilters(filters=[MetadataFilter(key="k", value="x",
                                                                 operator=FilterOperator.IN)]))
    store.add([node(1, "t", axis(1))])
    with pytest.raises(ValueError, match="other dimensions"):
        store.add([node(2, "t", [1.0, 2.0])])
    bad = NexaDBVectorStore(coll_name, connect["url"], "wrong-key")
    with pytest.raises(nexadb.AuthenticationError):
        bad.get_nodes()


def test_tls_by_url(tls_server, coll_name):
    """A server with a certificate, reached by https:// with its CA (mTLS: client certificate);
    plaintext to it fails."""
    srv = tls_server["server"]
    s = NexaDBVectorStore(coll_name, f"https://localhost:{srv.port}", srv.api_key,
                          **tls_server["tls"])
    s.add([node(1, "secure", axis(1))])
    assert s.query(VectorStoreQuery(query_embedding=axis(1), similarity_top_k=1)).ids == ["n1"]
    assert [n.get_content() for n in asyncio.run(s.aget_nodes())] == ["secure"]
    plain = NexaDBVectorStore(coll_name, f"grpc://localhost:{srv.port}", srv.api_key, timeout=5)
    with pytest.raises(nexadb.UnavailableError):
        plain.get_nodes()
