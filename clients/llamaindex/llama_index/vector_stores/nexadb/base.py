"""NexaDBVectorStore: a LlamaIndex vector store on one NexaDB vector collection.

Each node is one document of the collection, stored with its embedding:

    {"_id": <node_id>, "<text_key>": <node text>, <node metadata keys and values>...,
     "_node_content": <the node as JSON, text removed>, "_node_type": <class name>,
     "doc_id" / "document_id" / "ref_doc_id": <the source document's id>}

(LlamaIndex's node_to_metadata_dict). Metadata keys sit at the top level, so MetadataFilters
become a NexaDB filter on them (to_nexadb_filter) that the server applies before ranking: a
filtered query returns the true top k among the matching nodes. The server keeps `_id`,
`_created_at` and `_updated_at` for itself; metadata may not use them, nor the text key.

Sync methods use the SDK's NexaDB (grpc); the async ones its AsyncNexaDB (grpc.aio), one per
running event loop, never a thread pool.
"""
from __future__ import annotations

import asyncio
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings
from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (BasePydanticVectorStore, FilterCondition,
                                                  FilterOperator, MetadataFilter, MetadataFilters,
                                                  VectorStoreQuery, VectorStoreQueryMode,
                                                  VectorStoreQueryResult)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
from nexadb import AlreadyExistsError, AsyncNexaDB, AsyncVectorCollection, NexaDB, NotFoundError
from nexadb import SearchResult, VectorCollection

RESERVED = ("_id", "_created_at", "_updated_at")  # fields the server sets on every document
METRICS = ("cosine", "dot", "l2")
MMR_PREFETCH = 4  # an MMR query ranks similarity_top_k * this many candidates


# -- MetadataFilters -> a NexaDB filter ----------------------------------------------------------

def _condition(op: FilterOperator, key: str, value: Any) -> Dict[str, Any]:
    """One MetadataFilter as a NexaDB (MongoDB-style) filter on the top-level key."""
    if op == FilterOperator.EQ:
        return {key: {"$eq": value}}
    simple = {FilterOperator.NE: "$ne", FilterOperator.GT: "$gt", FilterOperator.GTE: "$gte",
              FilterOperator.LT: "$lt", FilterOperator.LTE: "$lte"}
    if op in simple:
        return {key: {simple[op]: value}}
    if op in (FilterOperator.IN, FilterOperator.NIN, FilterOperator.ANY, FilterOperator.ALL):
        if not isinstance(value, list):
            raise ValueError(f"filter on {key!r}: operator {op.value!r} needs a list, not {value!r}")
        # IN/NIN: the value is one of the list; ANY: the array shares an element with the list
        # (MongoDB's $in matches an array holding any of the values); ALL: holds every one
        return {key: {{FilterOperator.IN: "$in", FilterOperator.NIN: "$nin",
                       FilterOperator.ANY: "$in", FilterOperator.ALL: "$all"}[op]: value}}
    if op == FilterOperator.CONTAINS:  # the metadata array holds the value
        return {key: {"$elemMatch": {"$eq": value}}}
    if op in (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE):
        if not isinstance(value, str):
            raise ValueError(f"filter on {key!r}: operator {op.value!r} needs a string, not {value!r}")
        rx: Dict[str, Any] = {"$regex": re.escape(value)}  # a substring, taken literally
        if op == FilterOperator.TEXT_MATCH_INSENSITIVE:
            rx["$options"] = "i"
        return {key: rx}
    if op == FilterOperator.IS_EMPTY:  # missing, null, "" or []
        return {"$or": [{key: {"$exists": False}}, {key: None}, {key: ""}, {key: {"$size": 0}}]}
    raise ValueError(f"filter on {key!r}: unsupported operator {op!r}")


def to_nexadb_filter(filters: Optional[MetadataFilters]) -> Optional[Dict[str, Any]]:
    """MetadataFilters (nested ones too) as a NexaDB filter; None for no filters. Conditions:
    and -> $and, or -> $or, not -> $nor (none of the filters matches)."""
    if filters is None or not filters.filters:
        return None
    parts = []
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            sub = to_nexadb_filter(f)
            if sub is not None:
                parts.append(sub)
        elif isinstance(f, MetadataFilter):
            parts.append(_condition(FilterOperator(f.operator), f.key, f.value))
        else:
            raise TypeError(f"filters must be MetadataFilter or MetadataFilters, not {type(f).__name__}")
    if not parts:
        return None
    cond = filters.condition or FilterCondition.AND
    if cond == FilterCondition.AND:
        return parts[0] if len(parts) == 1 else {"$and": parts}
    if cond == FilterCondition.OR:
        return {"$or": parts}
    if cond == FilterCondition.NOT:
        return {"$nor": parts}
    raise ValueError(f"unsupported filter condition {cond!r}")


def _and(*filters: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    parts = [dict(f) for f in filters if f]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


# -- the store ---------------------------------------------------------------------------------

class NexaDBVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store on a NexaDB vector collection.

    NexaDBVectorStore(collection_name, url="grpc://localhost:6970", api_key=None, *,
                      metric=None, text_key="text", batch_size=256, root_certificates=None,
                      client_cert=None, client_key=None, timeout=30.0)

    url: grpc:// or http:// (plaintext), grpcs:// or https:// (TLS; root_certificates, PEM
    bytes, for a private CA; client_cert and client_key for mTLS). api_key defaults to
    $NEXADB_API_KEY. The collection is created on the first add with the embeddings'
    dimensions and `metric` (default cosine; an existing collection keeps its own). Query
    similarities are the server's scores, higher is closer: cosine similarity, dot product,
    or the negated squared L2 distance. Nothing is sent by the constructor.
    """

    stores_text: bool = True
    flat_metadata: bool = False

    collection_name: str
    url: str = "grpc://localhost:6970"
    metric: Optional[str] = None
    text_key: str = "text"
    batch_size: int = 256
    timeout: Optional[float] = 30.0

    _client: NexaDB = PrivateAttr()
    _connect: Dict[str, Any] = PrivateAttr()
    _async: Optional[Tuple[asyncio.AbstractEventLoop, AsyncNexaDB]] = PrivateAttr(default=None)

    def __init__(self, collection_name: str, url: str = "grpc://localhost:6970",
                 api_key: Optional[str] = None, *, metric: Optional[str] = None,
                 text_key: str = "text", batch_size: int = 256,
                 root_certificates: Optional[bytes] = None, client_cert: Optional[bytes] = None,
                 client_key: Optional[bytes] = None, timeout: Optional[float] = 30.0,
                 **kwargs: Any):
        if not isinstance(collection_name, str) or not collection_name:
            raise ValueError(f"collection_name must be a non-empty string, not {collection_name!r}")
        if metric is not None and metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
        if not isinstance(text_key, str) or not text_key or text_key in RESERVED:
            raise ValueError(f"text_key must be a non-empty string other than {RESERVED}, "
                             f"not {text_key!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
        super().__init__(collection_name=collection_name, url=url, metric=metric,
                         text_key=text_key, batch_size=batch_size, timeout=timeout, **kwargs)
        self._connect = dict(url=url, api_key=api_key, root_certificates=root_certificates,
                             client_cert=client_cert, client_key=client_key, timeout=timeout)
        self._client = NexaDB.from_url(**self._connect)  # raises ValueError for a bad url

    @classmethod
    def class_name(cls) -> str:
        return "NexaDBVectorStore"

    # -- connections -------------------------------------------------------------------------

    @property
    def client(self) -> NexaDB:
        return self._client

    @property
    def aclient(self) -> AsyncNexaDB:
        """The AsyncNexaDB of the running event loop (a grpc.aio channel belongs to one loop)."""
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            self._async = (loop, AsyncNexaDB.from_url(**self._connect))
        return self._async[1]

    def _coll(self) -> VectorCollection:
        return VectorCollection(self._client, self.collection_name)

    def _acoll(self) -> AsyncVectorCollection:
        return AsyncVectorCollection(self.aclient, self.collection_name)

    def close(self) -> None:
        self._client.close()

    async def aclose(self) -> None:
        if self._async is not None and self._async[0] is asyncio.get_running_loop():
            await self._async[1].close()
            self._async = None

    # -- nodes <-> stored documents ------------------------------------------------------------

    def _prepare(self, nodes: Sequence[BaseNode]) -> Tuple[List[str], List[Dict[str, Any]],
                                                           List[List[float]]]:
        ids, docs, vectors = [], [], []
        for node in nodes:
            if node.embedding is None:
                raise ValueError(f"node {node.node_id!r} has no embedding (embed the nodes "
                                 "first, e.g. through VectorStoreIndex)")
            md = node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata)
            clash = [k for k in md if k in RESERVED or k == self.text_key]
            if clash:
                raise ValueError(f"node {node.node_id!r}: metadata key {clash[0]!r} is reserved "
                                 f"(the server keeps {RESERVED}; the text is stored under "
                                 f"{self.text_key!r})")
            ids.append(node.node_id)
            docs.append({"_id": node.node_id,
                         self.text_key: node.get_content(metadata_mode=MetadataMode.NONE), **md})
            vectors.append(list(node.embedding))
        return ids, docs, vectors

    def _node(self, stored: Mapping[str, Any], vector: Optional[List[float]] = None) -> BaseNode:
        text = stored.get(self.text_key, "")
        md = {k: v for k, v in stored.items() if k not in RESERVED and k != self.text_key}
        if "_node_content" in md:
            node = metadata_dict_to_node(md, text=text)
        else:  # written by something other than LlamaIndex: its fields are the metadata
            node = TextNode(id_=stored["_id"], text=text, metadata=md)
        if vector is not None:
            node.embedding = vector
        return node

    def _create_args(self, vectors: List[List[float]]) -> Tuple[str, int, str]:
        return self.collection_name, len(vectors[0]), self.metric or "cosine"

    def _created(self, e: AlreadyExistsError, vectors: List[List[float]]) -> ValueError:
        return ValueError(f"vector collection {self.collection_name!r} exists with other "
                          f"dimensions or metric than {len(vectors[0])} and "
                          f"{self.metric or 'cosine'!r}: {e.details}")

    # -- writes --------------------------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> List[str]:
        """Stores the nodes with their embeddings; returns their ids. A batch of new ids is one
        atomic InsertVectors; when one of its ids exists, each node of the batch is upserted
        instead (each replacement atomic)."""
        ids, docs, vectors = self._prepare(nodes)
        if not docs:
            return []
        name, dims, metric = self._create_args(vectors)
        try:
            self._client.vector_collection(name, dims, self._existing_metric(metric))
        except AlreadyExistsError as e:
            raise self._created(e, vectors) from None
        coll = self._coll()
        for i in range(0, len(docs), self.batch_size):
            b = slice(i, i + self.batch_size)
            try:
                coll.insert_many(docs[b], vectors[b])
            except AlreadyExistsError:
                for id_, doc, vec in zip(ids[b], docs[b], vectors[b]):
                    coll.upsert(id_, doc, vec)
        return ids

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> List[str]:
        ids, docs, vectors = self._prepare(nodes)
        if not docs:
            return []
        name, dims, metric = self._create_args(vectors)
        db = self.aclient
        try:
            await db.vector_collection(name, dims, await self._aexisting_metric(metric))
        except AlreadyExistsError as e:
            raise self._created(e, vectors) from None
        coll = self._acoll()
        for i in range(0, len(docs), self.batch_size):
            b = slice(i, i + self.batch_size)
            try:
                await coll.insert_many(docs[b], vectors[b])
            except AlreadyExistsError:
                for id_, doc, vec in zip(ids[b], docs[b], vectors[b]):
                    await coll.upsert(id_, doc, vec)
        return ids

    def _existing_metric(self, default: str) -> str:
        """metric None: an existing collection's metric (so adding to it never conflicts)."""
        if self.metric is not None:
            return self.metric
        return _metric_of(self._client.list_vector_collections(), self.collection_name, default)

    async def _aexisting_metric(self, default: str) -> str:
        if self.metric is not None:
            return self.metric
        return _metric_of(await self.aclient.list_vector_collections(), self.collection_name,
                          default)

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Deletes every node of the source document ref_doc_id (one call per node)."""
        self._delete_matching({"ref_doc_id": _str_arg("ref_doc_id", ref_doc_id)})

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await self._adelete_matching({"ref_doc_id": _str_arg("ref_doc_id", ref_doc_id)})

    def delete_nodes(self, node_ids: Optional[List[str]] = None,
                     filters: Optional[MetadataFilters] = None, **delete_kwargs: Any) -> None:
        """Deletes the nodes with these ids and/or matching filters (both: nodes matching
        both). Neither raises ValueError: clear() deletes everything."""
        self._delete_matching(_nodes_filter(node_ids, filters))

    async def adelete_nodes(self, node_ids: Optional[List[str]] = None,
                            filters: Optional[MetadataFilters] = None, **delete_kwargs: Any) -> None:
        await self._adelete_matching(_nodes_filter(node_ids, filters))

    def _delete_matching(self, flt: Dict[str, Any]) -> None:
        coll = self._coll()
        try:
            for vd in coll.find(flt):
                coll.delete(vd.doc["_id"])
        except NotFoundError:  # no collection: nothing to delete
            pass

    async def _adelete_matching(self, flt: Dict[str, Any]) -> None:
        coll = self._acoll()
        try:
            ids = [vd.doc["_id"] async for vd in coll.find(flt)]
            for id_ in ids:
                await coll.delete(id_)
        except NotFoundError:
            pass

    def clear(self) -> None:
        """Drops the collection with every node (the next add creates it again)."""
        self._client.drop_vector_collection(self.collection_name)

    async def aclear(self) -> None:
        await self.aclient.drop_vector_collection(self.collection_name)

    # -- reads ---------------------------------------------------------------------------------

    def get_nodes(self, node_ids: Optional[List[str]] = None,
                  filters: Optional[MetadataFilters] = None) -> List[BaseNode]:
        """The nodes with these ids and/or matching filters (all nodes with neither), each with
        its stored embedding (unit length under cosine), in id order."""
        try:
            return [self._node(vd.doc, list(vd.vector))
                    for vd in self._coll().find(_nodes_filter(node_ids, filters, everything=True))]
        except NotFoundError:
            return []

    async def aget_nodes(self, node_ids: Optional[List[str]] = None,
                         filters: Optional[MetadataFilters] = None) -> List[BaseNode]:
        try:
            return [self._node(vd.doc, list(vd.vector)) async for vd in
                    self._acoll().find(_nodes_filter(node_ids, filters, everything=True))]
        except NotFoundError:
            return []

    def _search_args(self, query: VectorStoreQuery, kwargs: Mapping[str, Any]) -> Tuple[
            List[float], int, Optional[Dict[str, Any]], bool]:
        if query.mode not in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR):
            raise ValueError(f"query mode {query.mode.value!r} is not supported by NexaDB "
                             "(default and mmr are)")
        if query.query_embedding is None:
            raise ValueError("the query has no query_embedding")
        k = query.similarity_top_k
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"similarity_top_k must be a positive integer, not {k!r}")
        flt = _and(to_nexadb_filter(query.filters),
                   {"ref_doc_id": {"$in": list(query.doc_ids)}} if query.doc_ids else None,
                   {"_id": {"$in": list(query.node_ids)}} if query.node_ids else None,
                   kwargs.get("nexadb_filter"))
        mmr = query.mode == VectorStoreQueryMode.MMR
        return list(query.query_embedding), k * MMR_PREFETCH if mmr else k, flt, mmr

    def _result(self, query: VectorStoreQuery, hits: List[SearchResult],
                mmr: bool) -> VectorStoreQueryResult:
        if mmr:
            sims, ids = get_top_k_mmr_embeddings(
                list(query.query_embedding or []), _vectors(hits),
                similarity_top_k=query.similarity_top_k, embedding_ids=list(range(len(hits))),
                mmr_threshold=query.mmr_threshold)
            hits = [hits[i] for i in ids]
            return VectorStoreQueryResult(nodes=[self._node(h.doc) for h in hits],
                                          similarities=list(sims), ids=[h.doc_id for h in hits])
        return VectorStoreQueryResult(nodes=[self._node(h.doc) for h in hits],
                                      similarities=[h.similarity for h in hits],
                                      ids=[h.doc_id for h in hits])

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The similarity_top_k nodes closest to query_embedding among those matching the
        filters, doc_ids and node_ids (and nexadb_filter=, a NexaDB filter, if given), best
        first; similarities are the server's scores. Mode default or mmr (mmr_threshold: the
        weight of similarity against diversity, LlamaIndex's default 0.5 when None)."""
        vec, limit, flt, mmr = self._search_args(query, kwargs)
        try:
            hits = self._coll().search(vec, limit, filter=flt, include_vectors=mmr)
        except NotFoundError:
            hits = []
        return self._result(query, hits, mmr)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        vec, limit, flt, mmr = self._search_args(query, kwargs)
        try:
            hits = await self._acoll().search(vec, limit, filter=flt, include_vectors=mmr)
        except NotFoundError:
            hits = []
        return self._result(query, hits, mmr)


def _metric_of(collections: List[Dict[str, Any]], name: str, default: str) -> str:
    return next((c["metric"] for c in collections if c.get("name") == name), default)


def _str_arg(what: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} must be a non-empty string, not {value!r}")
    return value


def _nodes_filter(node_ids: Optional[Sequence[str]], filters: Optional[MetadataFilters],
                  everything: bool = False) -> Dict[str, Any]:
    if isinstance(node_ids, str):
        raise TypeError("node_ids must be a list of strings, not one string")
    ids = None if node_ids is None else [_str_arg("node_ids[]", i) for i in node_ids]
    flt = _and({"_id": {"$in": ids}} if ids is not None else None, to_nexadb_filter(filters))
    if flt is None:
        if not everything and ids is None:
            raise ValueError("delete_nodes() needs node_ids or filters; clear() deletes everything")
        flt = {}
    return flt


def _vectors(hits: List[SearchResult]) -> List[List[float]]:
    """The stored vectors of hits searched with include_vectors=True (the SDK's hits carry
    them as .vector beside the (doc_id, similarity, doc) fields)."""
    return [list(getattr(h, "vector")) for h in hits]
