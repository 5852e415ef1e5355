"""NexaDBVectorStore: a LangChain VectorStore over one NexaDB vector collection.

Each LangChain Document is one document of the collection, stored with its embedding:

    {"_id": <Document.id>, "<text_key>": <page_content>, <metadata keys and values>...}

Metadata keys sit at the top level of the stored document, so a `filter` is NexaDB's filter
language (MongoDB's operators: {"year": {"$gte": 2020}, "tags": {"$in": ["db"]}}) written
on the metadata keys, sent to the server unchanged and applied there before ranking: a
filtered search returns the true top k among the matching documents. The server keeps `_id`,
`_created_at` and `_updated_at` for itself; metadata may not use them, nor the text key.

Sync methods use the SDK's NexaDB (grpc); the `a...` methods use its AsyncNexaDB (grpc.aio),
one per running event loop, never a thread pool.
"""
from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from nexadb import AlreadyExistsError, AsyncNexaDB, AsyncVectorCollection, NexaDB, NotFoundError
from nexadb import SearchResult, VectorCollection

RESERVED = ("_id", "_created_at", "_updated_at")  # fields the server sets on every document
METRICS = ("cosine", "dot", "l2")
Filter = Optional[Mapping[str, Any]]


def relevance_score(metric: str) -> Callable[[float], float]:
    """The function LangChain's *_with_relevance_scores apply to a raw score (the server's
    similarity, higher is closer) to get a relevance in [0, 1], 1 the closest:
    - cosine: (1 + similarity) / 2, from cosine similarity in [-1, 1];
    - dot: the same, clamped to [0, 1] (exact for unit-length embeddings, whose dot product is
      their cosine similarity; others' dot products are unbounded);
    - l2: 1 / (1 + distance), the score being the negated squared Euclidean distance.
    """
    if metric == "cosine":
        return lambda s: (1.0 + s) / 2.0
    if metric == "dot":
        return lambda s: min(1.0, max(0.0, (1.0 + s) / 2.0))
    if metric == "l2":
        return lambda s: 1.0 / (1.0 + math.sqrt(max(0.0, -s)))
    raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")


class NexaDBVectorStore(VectorStore):
    """A LangChain vector store on a NexaDB vector collection.

    NexaDBVectorStore(embedding, collection_name, *, url="grpc://localhost:6970",
                      api_key=None, metric=None, text_key="text", batch_size=256,
                      root_certificates=None, client_cert=None, client_key=None,
                      timeout=30.0)

    url: grpc:// or http:// (plaintext), grpcs:// or https:// (TLS; root_certificates, PEM
    bytes, for a private CA; client_cert and client_key for mTLS). api_key defaults to
    $NEXADB_API_KEY. The collection is created on the first write with the embeddings'
    dimensions and `metric` (default cosine); for an existing collection, metric None takes
    its metric, and a different metric raises ValueError on first use. Nothing is sent by the
    constructor.
    """

    def __init__(self, embedding: Embeddings, collection_name: str, *,
                 url: str = "grpc://localhost:6970", api_key: Optional[str] = None,
                 metric: Optional[str] = None, text_key: str = "text", batch_size: int = 256,
                 root_certificates: Optional[bytes] = None, client_cert: Optional[bytes] = None,
                 client_key: Optional[bytes] = None, timeout: Optional[float] = 30.0):
        if not isinstance(collection_name, str) or not collection_name:
            raise ValueError(f"collection_name must be a non-empty string, not {collection_name!r}")
        if metric is not None and metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
        if not isinstance(text_key, str) or not text_key or text_key in RESERVED:
            raise ValueError(f"text_key must be a non-empty string other than {RESERVED}, "
                             f"not {text_key!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
        self.embedding = embedding
        self.collection_name = collection_name
        self.text_key = text_key
        self.batch_size = batch_size
        self._metric = metric
        self._checked = False  # the collection's metric has been compared with ours
        self._connect: Dict[str, Any] = dict(
            url=url, api_key=api_key, root_certificates=root_certificates,
            client_cert=client_cert, client_key=client_key, timeout=timeout)
        self.client = NexaDB.from_url(**self._connect)  # raises ValueError for a bad url
        self._async: Optional[Tuple[asyncio.AbstractEventLoop, AsyncNexaDB]] = None

    # -- connections and the collection ----------------------------------------------------

    @property
    def embeddings(self) -> Embeddings:
        return self.embedding

    @property
    def metric(self) -> str:
        """The collection's metric: the one given, else the existing collection's, else
        cosine (what a first write creates)."""
        if self._metric is None and not self._checked:
            self._adopt(self.client.list_vector_collections())
        return self._metric or "cosine"

    def _aclient(self) -> AsyncNexaDB:
        """The AsyncNexaDB of the running event loop (a grpc.aio channel belongs to one loop;
        a store used from a new loop opens a new channel there)."""
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            self._async = (loop, AsyncNexaDB.from_url(**self._connect))
        return self._async[1]

    def _sync_coll(self) -> VectorCollection:
        return VectorCollection(self.client, self.collection_name)

    def _async_coll(self) -> AsyncVectorCollection:
        return AsyncVectorCollection(self._aclient(), self.collection_name)

    def _adopt(self, collections: List[Dict[str, Any]]) -> None:
        """Compares the configured metric with the collection's (when it exists), or takes it."""
        info = next((c for c in collections if c.get("name") == self.collection_name), None)
        if info is not None:
            if self._metric is None:
                self._metric = info["metric"]
            elif info["metric"] != self._metric:
                raise ValueError(f"vector collection {self.collection_name!r} uses metric "
                                 f"{info['metric']!r}, not {self._metric!r}")
            self._checked = True

    def _check(self) -> None:
        if not self._checked:
            self._adopt(self.client.list_vector_collections())

    async def _acheck(self) -> None:
        if not self._checked:
            self._adopt(await self._aclient().list_vector_collections())

    def _create(self, dimensions: int) -> None:
        try:
            self.client.vector_collection(self.collection_name, dimensions, self.metric)
        except AlreadyExistsError as e:
            raise ValueError(f"vector collection {self.collection_name!r} exists with other "
                             f"dimensions or metric than {dimensions} and {self.metric!r}: "
                             f"{e.details}") from None
        self._checked = True

    async def _acreate(self, dimensions: int) -> None:
        await self._acheck()
        try:
            await self._aclient().vector_collection(self.collection_name, dimensions,
                                                    self._metric or "cosine")
        except AlreadyExistsError as e:
            raise ValueError(f"vector collection {self.collection_name!r} exists with other "
                             f"dimensions or metric than {dimensions} and "
                             f"{self._metric or 'cosine'!r}: {e.details}") from None
        self._checked = True

    def close(self) -> None:
        """Closes the sync channel (the async one closes with aclose())."""
        self.client.close()

    async def aclose(self) -> None:
        """Closes the running loop's async channel."""
        if self._async is not None and self._async[0] is asyncio.get_running_loop():
            await self._async[1].close()
            self._async = None

    def delete_collection(self) -> bool:
        """Drops the vector collection with all its documents; True if it existed."""
        self._checked = False
        return self.client.drop_vector_collection(self.collection_name)

    async def adelete_collection(self) -> bool:
        self._checked = False
        return await self._aclient().drop_vector_collection(self.collection_name)

    # -- documents <-> stored documents ------------------------------------------------------

    def _prepare(self, texts: Iterable[str], metadatas: Optional[Sequence[Mapping[str, Any]]],
                 ids: Optional[Sequence[Optional[str]]]) -> Tuple[List[str], List[Dict[str, Any]]]:
        """(ids, stored documents) for add_texts; new ids (uuid4) where none is given."""
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be strings")
        if metadatas is None:
            metadatas = [{} for _ in texts]
        if len(metadatas) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(metadatas)} metadatas")
        if ids is None:
            ids = [None] * len(texts)
        ids = list(ids)
        if len(ids) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(ids)} ids")
        out_ids, docs = [], []
        for text, md, id_ in zip(texts, metadatas, ids):
            if id_ is None or id_ == "":
                id_ = str(uuid.uuid4())
            elif not isinstance(id_, str):
                raise TypeError(f"ids must be strings, not {type(id_).__name__} ({id_!r})")
            md = dict(md or {})
            clash = [k for k in md if k in RESERVED or k == self.text_key]
            if clash:
                raise ValueError(f"metadata key {clash[0]!r} is reserved (the server keeps "
                                 f"{RESERVED}; the text is stored under {self.text_key!r})")
            out_ids.append(id_)
            docs.append({"_id": id_, self.text_key: text, **md})
        return out_ids, docs

    def _document(self, stored: Mapping[str, Any]) -> Document:
        text = stored.get(self.text_key, "")
        metadata = {k: v for k, v in stored.items() if k not in RESERVED and k != self.text_key}
        return Document(id=stored["_id"], page_content=text if isinstance(text, str) else str(text),
                        metadata=metadata)

    @staticmethod
    def _batches(ids: List[str], docs: List[Dict[str, Any]], vectors: List[List[float]],
                 size: int) -> Iterable[Tuple[List[str], List[Dict[str, Any]], List[List[float]]]]:
        for i in range(0, len(docs), size):
            yield ids[i:i + size], docs[i:i + size], vectors[i:i + size]

    # -- writes --------------------------------------------------------------------------------

    def add_texts(self, texts: Iterable[str], metadatas: Optional[List[Dict[str, Any]]] = None, *,
                  ids: Optional[List[str]] = None, **kwargs: Any) -> List[str]:
        """Embeds and stores texts; returns their ids. A batch of new ids is one atomic
        InsertVectors; when an id in it exists already, each document of that batch is
        upserted instead (each replacement atomic: the old document and vector, or the new)."""
        _no_kwargs("add_texts", kwargs)
        ids, docs = self._prepare(texts, metadatas, ids)
        if not docs:
            return []
        vectors = self.embedding.embed_documents([d[self.text_key] for d in docs])
        self._create(len(vectors[0]))
        coll = self._sync_coll()
        for b_ids, b_docs, b_vecs in self._batches(ids, docs, vectors, self.batch_size):
            try:
                coll.insert_many(b_docs, b_vecs)
            except AlreadyExistsError:
                for id_, doc, vec in zip(b_ids, b_docs, b_vecs):
                    coll.upsert(id_, doc, vec)
        return ids

    async def aadd_texts(self, texts: Iterable[str], metadatas: Optional[List[Dict[str, Any]]] = None, *,
                         ids: Optional[List[str]] = None, **kwargs: Any) -> List[str]:
        _no_kwargs("aadd_texts", kwargs)
        ids, docs = self._prepare(texts, metadatas, ids)
        if not docs:
            return []
        vectors = await self.embedding.aembed_documents([d[self.text_key] for d in docs])
        await self._acreate(len(vectors[0]))
        coll = self._async_coll()
        for b_ids, b_docs, b_vecs in self._batches(ids, docs, vectors, self.batch_size):
            try:
                await coll.insert_many(b_docs, b_vecs)
            except AlreadyExistsError:
                # in order: an id given twice in one call keeps its last document
                for id_, doc, vec in zip(b_ids, b_docs, b_vecs):
                    await coll.upsert(id_, doc, vec)
        return ids

    def delete(self, ids: Optional[List[str]] = None, **kwargs: Any) -> Optional[bool]:
        """Deletes the documents with these ids (ids no document has are ignored), or with
        filter= every document matching a filter. One call per document: not atomic as a whole.
        Without ids or a filter, raises ValueError (delete_collection() drops everything)."""
        ids, f = _delete_args(ids, kwargs)
        coll = self._sync_coll()
        try:
            for id_ in ids if f is None else [vd.doc["_id"] for vd in coll.find(f)]:
                coll.delete(id_)
        except NotFoundError:  # no collection: nothing to delete
            pass
        return True

    async def adelete(self, ids: Optional[List[str]] = None, **kwargs: Any) -> Optional[bool]:
        ids, f = _delete_args(ids, kwargs)
        coll = self._async_coll()
        try:
            if f is not None:
                ids = [vd.doc["_id"] async for vd in coll.find(f)]
            for id_ in ids:
                await coll.delete(id_)
        except NotFoundError:
            pass
        return True

    # -- reads ---------------------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> List[Document]:
        """The documents with these ids, in the order given; ids no document has are left out."""
        coll = self._sync_coll()
        found = [coll.get(_id_arg(i)) for i in ids]
        return [self._document(d) for d in found if d is not None]

    async def aget_by_ids(self, ids: Sequence[str], /) -> List[Document]:
        coll = self._async_coll()
        found = await asyncio.gather(*(coll.get(_id_arg(i)) for i in ids))
        return [self._document(d) for d in found if d is not None]

    def _hits(self, vector: Sequence[float], k: int, filter: Filter, min_score: Optional[float],
              include_vectors: bool = False) -> List[SearchResult]:
        _k_arg(k)
        self._check()
        try:
            return self._sync_coll().search(vector, k, filter=filter, min_score=min_score,
                                            include_vectors=include_vectors)
        except NotFoundError:
            return []  # no collection yet: nothing was added

    async def _ahits(self, vector: Sequence[float], k: int, filter: Filter,
                     min_score: Optional[float], include_vectors: bool = False) -> List[SearchResult]:
        _k_arg(k)
        await self._acheck()
        try:
            return await self._async_coll().search(vector, k, filter=filter, min_score=min_score,
                                                   include_vectors=include_vectors)
        except NotFoundError:
            return []

    def similarity_search_with_score_by_vector(
            self, embedding: List[float], k: int = 4, filter: Filter = None,
            min_score: Optional[float] = None, **kwargs: Any) -> List[Tuple[Document, float]]:
        """(document, score) pairs, best first: the score is the server's similarity (cosine
        similarity, dot product, or negated squared L2 distance; higher is closer).
        min_score drops hits scoring below it, on the server."""
        _no_kwargs("similarity_search", kwargs)
        return [(self._document(h.doc), h.similarity)
                for h in self._hits(embedding, k, filter, min_score)]

    async def asimilarity_search_with_score_by_vector(
            self, embedding: List[float], k: int = 4, filter: Filter = None,
            min_score: Optional[float] = None, **kwargs: Any) -> List[Tuple[Document, float]]:
        _no_kwargs("asimilarity_search", kwargs)
        return [(self._document(h.doc), h.similarity)
                for h in await self._ahits(embedding, k, filter, min_score)]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: Filter = None,
                                     **kwargs: Any) -> List[Tuple[Document, float]]:
        return self.similarity_search_with_score_by_vector(
            self.embedding.embed_query(query), k, filter, **kwargs)

    async def asimilarity_search_with_score(self, query: str, k: int = 4, filter: Filter = None,
                                            **kwargs: Any) -> List[Tuple[Document, float]]:
        return await self.asimilarity_search_with_score_by_vector(
            await self.embedding.aembed_query(query), k, filter, **kwargs)

    def similarity_search(self, query: str, k: int = 4, filter: Filter = None,
                          **kwargs: Any) -> List[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    async def asimilarity_search(self, query: str, k: int = 4, filter: Filter = None,
                                 **kwargs: Any) -> List[Document]:
        return [d for d, _ in await self.asimilarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_by_vector(self, embedding: List[float], k: int = 4,
                                    filter: Filter = None, **kwargs: Any) -> List[Document]:
        return [d for d, _ in self.similarity_search_with_score_by_vector(embedding, k, filter,
                                                                          **kwargs)]

    async def asimilarity_search_by_vector(self, embedding: List[float], k: int = 4,
                                           filter: Filter = None, **kwargs: Any) -> List[Document]:
        return [d for d, _ in await self.asimilarity_search_with_score_by_vector(
            embedding, k, filter, **kwargs)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return relevance_score(self.metric)

    async def _asimilarity_search_with_relevance_scores(
            self, query: str, k: int = 4, **kwargs: Any) -> List[Tuple[Document, float]]:
        # LangChain's version asks for the metric (a sync call when not yet known) first
        hits = await self.asimilarity_search_with_score(query, k, **kwargs)
        await self._acheck()
        f = relevance_score(self._metric or "cosine")
        return [(d, f(s)) for d, s in hits]

    def _mmr(self, embedding: List[float], hits: List[SearchResult], k: int,
             lambda_mult: float) -> List[Document]:
        if not 0 <= lambda_mult <= 1:
            raise ValueError(f"lambda_mult must be between 0 and 1, not {lambda_mult!r}")
        chosen = maximal_marginal_relevance(np.array(embedding, dtype=np.float32),
                                            _vectors(hits), lambda_mult=lambda_mult, k=k)
        return [self._document(hits[i].doc) for i in chosen]

    def max_marginal_relevance_search_by_vector(
            self, embedding: List[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
            filter: Filter = None, **kwargs: Any) -> List[Document]:
        """Maximal marginal relevance among the fetch_k closest documents (matching filter),
        compared by cosine similarity of their stored vectors as LangChain's MMR does."""
        _no_kwargs("max_marginal_relevance_search", kwargs)
        hits = self._hits(embedding, max(fetch_k, k), filter, None, include_vectors=True)
        return self._mmr(embedding, hits, k, lambda_mult)

    async def amax_marginal_relevance_search_by_vector(
            self, embedding: List[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
            filter: Filter = None, **kwargs: Any) -> List[Document]:
        _no_kwargs("amax_marginal_relevance_search", kwargs)
        hits = await self._ahits(embedding, max(fetch_k, k), filter, None, include_vectors=True)
        return self._mmr(embedding, hits, k, lambda_mult)

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                      lambda_mult: float = 0.5, filter: Filter = None,
                                      **kwargs: Any) -> List[Document]:
        return self.max_marginal_relevance_search_by_vector(
            self.embedding.embed_query(query), k, fetch_k, lambda_mult, filter, **kwargs)

    async def amax_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                             lambda_mult: float = 0.5, filter: Filter = None,
                                             **kwargs: Any) -> List[Document]:
        return await self.amax_marginal_relevance_search_by_vector(
            await self.embedding.aembed_query(query), k, fetch_k, lambda_mult, filter, **kwargs)

    # -- constructors ----------------------------------------------------------------------

    @classmethod
    def from_texts(cls, texts: List[str], embedding: Embeddings,
                   metadatas: Optional[List[Dict[str, Any]]] = None, *, ids: Optional[List[str]] = None,
                   collection_name: str = "langchain", **kwargs: Any) -> "NexaDBVectorStore":
        """A store on collection_name (keyword arguments: the constructor's) holding texts."""
        store = cls(embedding, collection_name, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    async def afrom_texts(cls, texts: List[str], embedding: Embeddings,
                          metadatas: Optional[List[Dict[str, Any]]] = None, *,
                          ids: Optional[List[str]] = None, collection_name: str = "langchain",
                          **kwargs: Any) -> "NexaDBVectorStore":
        store = cls(embedding, collection_name, **kwargs)
        await store.aadd_texts(texts, metadatas, ids=ids)
        return store


def _no_kwargs(method: str, kwargs: Mapping[str, Any]) -> None:
    if kwargs:
        raise TypeError(f"{method}() got unexpected keyword arguments {sorted(kwargs)}")


def _k_arg(k: Any) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, not {k!r}")


def _id_arg(id_: Any) -> str:
    if not isinstance(id_, str) or not id_:
        raise TypeError(f"ids must be non-empty strings, not {id_!r}")
    return id_


def _delete_args(ids: Optional[Sequence[str]],
                 kwargs: Mapping[str, Any]) -> Tuple[List[str], Filter]:
    """Checks delete's arguments, ids or filter= (not both, not neither): (ids, filter)."""
    extra = sorted(set(kwargs) - {"filter"})
    if extra:
        raise TypeError(f"delete() got unexpected keyword arguments {extra}")
    f = kwargs.get("filter")
    if (ids is None) == (f is None):
        raise ValueError("delete() needs ids or filter=, not both; delete_collection() drops "
                         "everything")
    if isinstance(ids, str):
        raise TypeError("ids must be a list of strings, not one string")
    return [_id_arg(i) for i in (ids or [])], f


def _vectors(hits: List[SearchResult]) -> List[List[float]]:
    """The stored vectors of hits searched with include_vectors=True (the SDK's hits carry
    them as .vector beside the (doc_id, similarity, doc) fields)."""
    return [list(getattr(h, "vector")) for h in hits]
