"""NexaDB, Collection and VectorCollection: the brief's Python API over gRPC.

One NexaDB holds one gRPC channel, reused by every collection handle made from it
(channels multiplex calls; make one per process and share it, it is thread-safe).
Documents go in and come out as plain dicts (key order and types kept: int, float,
datetime, bytes; _convert.py), carried as BSON. Every failure raises a NexaDBError carrying
the gRPC status code (see errors.py).
"""
from __future__ import annotations

import os
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping, NamedTuple,
                    Optional, Sequence, Tuple, Union)

import grpc

from . import errors
from ._convert import floats, from_document, to_document
from .v1 import admin_pb2, common_pb2, document_pb2, vector_pb2

DEFAULT_PORT = 6970  # gRPC. The brief's 6969 is the server's HTTP/JSON (REST) port.

Document = Dict[str, Any]
SortSpec = Union[str, Mapping[str, int], Sequence[Tuple[str, int]], None]

_METRICS = {
    "cosine": common_pb2.VECTOR_METRIC_COSINE,
    "dot": common_pb2.VECTOR_METRIC_DOT,
    "l2": common_pb2.VECTOR_METRIC_L2,
}


def _sort_items(sort: SortSpec) -> List[Tuple[str, int]]:
    """'age', '-age', {'age': -1, 'name': 1} or [('age', -1), ...] -> [(field, 1 or -1)]."""
    if sort is None:
        return []
    if isinstance(sort, str):
        items: Iterable = [(sort[1:], -1)] if sort.startswith("-") else [(sort, 1)]
    elif isinstance(sort, Mapping):
        items = sort.items()
    else:
        items = sort
    out = []
    for field, direction in items:
        if direction not in (1, -1):
            raise ValueError(f"sort direction for {field!r} must be 1 or -1, not {direction!r}")
        out.append((field, direction))
    return out


def _sort_document(sort: SortSpec) -> Optional[common_pb2.Document]:
    """The sort as MongoDB writes it, {'age': -1, 'name': 1}, in order; None for no sort."""
    items = _sort_items(sort)
    return to_document(dict(items), "sort") if items else None


class _Service:
    """The methods of one gRPC service as callables on a shared channel, named as in the
    proto (self._docs.Find, ...)."""

    def __init__(self, channel: grpc.Channel, module: Any, service: str):
        desc = module.DESCRIPTOR.services_by_name[service]
        for m in desc.methods:
            out_cls = _message_class(m.output_type)
            path = f"/{desc.full_name}/{m.name}"
            make = channel.unary_stream if m.server_streaming else channel.unary_unary
            setattr(self, m.name, make(path, request_serializer=_serialize,
                                       response_deserializer=out_cls.FromString))


def _serialize(msg: Any) -> bytes:
    return msg.SerializeToString()


def _message_class(desc: Any) -> Any:
    from google.protobuf import message_factory
    return message_factory.GetMessageClass(desc)


class Results(list):
    """What find() and aggregate() return: a list of the documents (len, indexing,
    truthiness, iteration; read once from the server), with what the last response said:
    next_page_token (pass it back as page_token to read on after a limit; '' when
    everything was sent) and explain (the plan and its counters, when explain=True)."""

    next_page_token: str = ""
    explain: Optional[Dict[str, Any]] = None


class Cursor:
    """Results of a streaming call (find_iter, aggregate_iter, a vector collection's find),
    read lazily.

    The server sends a page of documents per message; iterating reads the next message
    only when the current page is used up, so a large result never sits in memory whole.
    Each `iter()` of a Cursor runs the query again from the start (`for d in cursor`
    twice works); `close()` cancels a stream that is being read.
    """

    def __init__(self, start: Callable[[], Any], method: str,
                 item: Callable[[Any], Any] = from_document):
        self._start = start
        self._method = method
        self._item = item  # one entry of a message's `documents` -> what iterating yields
        self._calls: List[Any] = []

    def __iter__(self) -> Iterator[Any]:
        call = self._start()
        self._calls.append(call)
        try:
            for msg in call:
                for s in msg.documents:
                    yield self._item(s)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e, self._method) from None
        finally:
            call.cancel()  # no-op when the stream has ended
            self._calls.remove(call)

    def to_list(self) -> List[Any]:
        return list(self)

    def first(self) -> Optional[Any]:
        for d in self:
            self.close()
            return d
        return None

    def close(self) -> None:
        for call in list(self._calls):
            call.cancel()

    def __enter__(self) -> "Cursor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SearchResult(NamedTuple):
    """One vector search hit; unpacks as the brief's (doc_id, similarity, doc)."""
    doc_id: str
    similarity: float
    doc: Document


class VectorDocument(NamedTuple):
    """A stored document with its stored vector (unit length under cosine), as a vector
    collection's find yields them; unpacks as (doc, vector)."""
    doc: Document
    vector: List[float]


def _vector_document(vd: Any) -> VectorDocument:
    return VectorDocument(from_document(vd.document), list(vd.vector))


class _Hit(SearchResult):
    """A SearchResult that also carries .vector (empty unless include_vectors)."""
    vector: List[float]


class NexaDB:
    """A connection to a NexaDB server.

    NexaDB(host='localhost', port=6970, api_key=None, *, tls=False,
           root_certificates=None, client_cert=None, client_key=None, timeout=30.0)

    api_key defaults to $NEXADB_API_KEY. tls=True uses TLS with the system's CA roots, or
    root_certificates (PEM bytes) when given. client_cert and client_key (PEM bytes, both or
    neither) are this client's certificate chain and key, for a server that requires client
    certificates (mTLS). Any of the three implies tls. timeout is the deadline in seconds for each
    unary call (None: no deadline); streams (find, aggregate) have none by default.
    """

    def __init__(self, host: str = "localhost", port: int = DEFAULT_PORT,
                 api_key: Optional[str] = None, *, tls: bool = False,
                 root_certificates: Optional[bytes] = None, client_cert: Optional[bytes] = None,
                 client_key: Optional[bytes] = None, timeout: Optional[float] = 30.0,
                 options: Sequence[Tuple[str, Any]] = ()):
        if api_key is None:
            api_key = os.environ.get("NEXADB_API_KEY") or None
        self.host = host
        self.port = int(port)
        self.timeout = timeout
        self._metadata: Tuple[Tuple[str, str], ...] = (("x-api-key", api_key),) if api_key else ()
        target = f"{host}:{self.port}"
        opts = [("grpc.max_receive_message_length", 64 << 20),
                ("grpc.max_send_message_length", 64 << 20), *options]
        if (client_cert is None) != (client_key is None):
            raise ValueError("client_cert and client_key go together")
        if tls or root_certificates is not None or client_cert is not None:
            creds = grpc.ssl_channel_credentials(root_certificates=root_certificates,
                                                 private_key=client_key, certificate_chain=client_cert)
            self._channel = grpc.secure_channel(target, creds, options=opts)
        else:
            self._channel = grpc.insecure_channel(target, options=opts)
        self._docs = _Service(self._channel, document_pb2, "DocumentService")
        self._vecs = _Service(self._channel, vector_pb2, "VectorService")
        self._admin = _Service(self._channel, admin_pb2, "AdminService")

    # -- plumbing ------------------------------------------------------------------------

    def _call(self, rpc: Any, request: Any, method: str) -> Any:
        try:
            return rpc(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e, method) from None

    def _stream(self, rpc: Any, request: Any, method: str, timeout: Optional[float],
                item: Callable[[Any], Any] = from_document) -> Cursor:
        return Cursor(lambda: rpc(request, timeout=timeout, metadata=self._metadata), method, item)

    def _collect(self, rpc: Any, request: Any, method: str, timeout: Optional[float]) -> Results:
        """Reads a whole stream of document pages into Results."""
        out = Results()
        try:
            find = "explain" in request.DESCRIPTOR.fields_by_name  # Find; else Aggregate
            for msg in rpc(request, timeout=timeout, metadata=self._metadata):
                out.extend(from_document(d) for d in msg.documents)
                if find:
                    out.next_page_token = msg.next_page_token
                    if msg.HasField("explain"):
                        out.explain = from_document(msg.explain)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e, method) from None
        return out

    def close(self) -> None:
        """Closes the channel; handles made from this NexaDB stop working."""
        self._channel.close()

    def __enter__(self) -> "NexaDB":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- collections ---------------------------------------------------------------------

    def collection(self, name: str) -> "Collection":
        """A handle on a document collection (created by the server on first insert)."""
        return Collection(self, name)

    def vector_collection(self, name: str, dimensions: Optional[int] = None,
                          metric: str = "cosine") -> "VectorCollection":
        """A handle on a vector collection. With dimensions, creates it unless one with the
        same dimensions and metric exists (a different one raises AlreadyExistsError)."""
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {sorted(_METRICS)}, not {metric!r}")
        if dimensions is not None:
            self._call(self._vecs.CreateVectorCollection,
                       vector_pb2.CreateVectorCollectionRequest(
                           collection=name, dimensions=int(dimensions), metric=_METRICS[metric],
                           if_not_exists=True),
                       "CreateVectorCollection")
        return VectorCollection(self, name, dimensions)

    def create_collection(self, name: str) -> Dict[str, Any]:
        r = self._call(self._docs.CreateCollection,
                       document_pb2.CreateCollectionRequest(collection=name), "CreateCollection")
        return _collection_info(r.collection)

    def drop_collection(self, name: str) -> bool:
        """Drops a document collection; False when there was none."""
        r = self._call(self._docs.DropCollection,
                       document_pb2.DropCollectionRequest(collection=name), "DropCollection")
        return r.dropped

    def list_collections(self) -> List[Dict[str, Any]]:
        r = self._call(self._docs.ListCollections, document_pb2.ListCollectionsRequest(),
                       "ListCollections")
        return [_collection_info(c) for c in r.collections]

    def drop_vector_collection(self, name: str) -> bool:
        r = self._call(self._vecs.DropVectorCollection,
                       vector_pb2.DropVectorCollectionRequest(collection=name),
                       "DropVectorCollection")
        return r.dropped

    def list_vector_collections(self) -> List[Dict[str, Any]]:
        r = self._call(self._vecs.ListVectorCollections,
                       vector_pb2.ListVectorCollectionsRequest(), "ListVectorCollections")
        return [_collection_info(c) for c in r.collections]

    # -- server --------------------------------------------------------------------------

    def status(self) -> Dict[str, Any]:
        """{'status': 'ok', 'version': ..., 'uptime_seconds': ...}; needs no API key."""
        return _message_dict(self._call(self._admin.Status, admin_pb2.StatusRequest(), "Status"))

    def stats(self) -> Dict[str, Any]:
        """Database statistics: collections, total_documents, engine figures, rss_bytes..."""
        return _message_dict(self._call(self._admin.Stats, admin_pb2.StatsRequest(), "Stats"))


def _message_dict(msg: Any) -> Dict[str, Any]:
    """A plain dict of a response message with every field present (defaults included):
    numbers as int/float, enums as their lower-case name without the type prefix
    (VECTOR_METRIC_COSINE -> 'cosine'), nested messages as dicts. Generic over the
    descriptor, so fields the server adds later appear without a client change."""
    out: Dict[str, Any] = {}
    for f in msg.DESCRIPTOR.fields:
        v = getattr(msg, f.name)
        if f.type == f.TYPE_MESSAGE:
            if f.message_type.full_name == "nexadb.v1.Document":
                conv = from_document
            else:
                conv = _message_dict
            if _is_repeated(f):
                out[f.name] = [conv(x) for x in v]
            elif conv is from_document and not msg.HasField(f.name):
                out[f.name] = None
            else:  # an unset message reads as its defaults, as in protobuf itself
                out[f.name] = conv(v)
        elif f.type == f.TYPE_ENUM:
            names = [_enum_name(f.enum_type, x) for x in v] if _is_repeated(f) else _enum_name(f.enum_type, v)
            out[f.name] = names
        else:
            out[f.name] = list(v) if _is_repeated(f) else v
    return out


def _is_repeated(f: Any) -> bool:
    rep = getattr(f, "is_repeated", None)  # protobuf >= 5.29; .label is deprecated there
    return rep if rep is not None else f.label == f.LABEL_REPEATED


def _enum_name(enum_type: Any, number: int) -> Any:
    ev = enum_type.values_by_number.get(number)
    if ev is None:
        return number
    prefix = "".join("_" + c if c.isupper() else c for c in enum_type.name).lstrip("_").upper() + "_"
    name = ev.name
    return (name[len(prefix):] if name.startswith(prefix) else name).lower()


def _collection_info(c: common_pb2.CollectionInfo) -> Dict[str, Any]:
    return _message_dict(c)


class Collection:
    """A document collection. Made by NexaDB.collection(name); cheap, holds no state
    beyond the name and the shared channel."""

    def __init__(self, db: NexaDB, name: str):
        self.db = db
        self.name = name

    def __repr__(self) -> str:
        return f"Collection({self.name!r})"

    def _call(self, method: str, request: Any) -> Any:
        return self.db._call(getattr(self.db._docs, method), request, method)

    # -- writes --------------------------------------------------------------------------

    def insert(self, document: Mapping[str, Any]) -> str:
        """Inserts one document; returns its id (its '_id' string if it has one)."""
        return self._call("InsertOne", document_pb2.InsertOneRequest(
            collection=self.name, document=to_document(document, required=True))).document_id

    def insert_many(self, documents: Iterable[Mapping[str, Any]]) -> List[str]:
        """Inserts documents in one atomic batch; returns their ids in order."""
        req = document_pb2.InsertManyRequest(
            collection=self.name, documents=[to_document(d, f"documents[{i}]", required=True)
                                             for i, d in enumerate(documents)])
        return list(self._call("InsertMany", req).document_ids)

    def update(self, id: str, fields: Mapping[str, Any]) -> bool:
        """Merges fields into the document with this id (update operators such as $inc are
        accepted too); False when there is no such document."""
        req = document_pb2.UpdateRequest(collection=self.name, id=id,
                                         update=to_document(fields, "fields", required=True))
        try:
            return self._call("Update", req).success
        except errors.NotFoundError:
            return False

    def update_many(self, query: Mapping[str, Any], update: Mapping[str, Any],
                    upsert: bool = False) -> int:
        """Applies update (plain fields, or operators) to every match; returns the number of
        documents modified."""
        req = document_pb2.UpdateManyRequest(collection=self.name, upsert=upsert,
                                             filter=to_document(query, "query"),
                                             update=to_document(update, "update", required=True))
        return self._call("UpdateMany", req).modified_count

    def delete(self, id: str) -> bool:
        """Deletes the document with this id; False when there was none."""
        try:
            return self._call("Delete", document_pb2.DeleteRequest(collection=self.name, id=id)).success
        except errors.NotFoundError:
            return False

    def delete_many(self, query: Optional[Mapping[str, Any]] = None) -> int:
        """Deletes every match (every document when query is None or {}); returns the count."""
        req = document_pb2.DeleteManyRequest(collection=self.name, filter=to_document(query, "query"))
        return self._call("DeleteMany", req).deleted_count

    # -- reads ---------------------------------------------------------------------------

    def _find_request(self, query, limit, skip, sort, projection, page_size, page_token,
                      explain) -> document_pb2.FindRequest:
        return document_pb2.FindRequest(
            collection=self.name, skip=int(skip), limit=int(limit), page_size=int(page_size),
            page_token=page_token, explain=explain, filter=to_document(query, "query"),
            projection=to_document(projection, "projection"), sort=_sort_document(sort))

    def find(self, query: Optional[Mapping[str, Any]] = None, limit: int = 0, *,
             skip: int = 0, sort: SortSpec = None,
             projection: Optional[Mapping[str, Any]] = None, page_token: str = "",
             explain: bool = False, page_size: int = 0,
             timeout: Optional[float] = None) -> Results:
        """Documents matching query (all when None), as a list of dicts (Results).

        limit=0 means no limit. sort: 'field', '-field', {'a': 1, 'b': -1} or
        [('a', 1), ...]. With a limit, results.next_page_token passed back as page_token
        reads the next page; explain=True fills results.explain. For results too large to
        hold, find_iter streams them instead.
        """
        req = self._find_request(query, limit, skip, sort, projection, page_size, page_token, explain)
        return self.db._collect(self.db._docs.Find, req, "Find", timeout)

    def find_iter(self, query: Optional[Mapping[str, Any]] = None, limit: int = 0, *,
                  skip: int = 0, sort: SortSpec = None,
                  projection: Optional[Mapping[str, Any]] = None, page_token: str = "",
                  page_size: int = 0, timeout: Optional[float] = None) -> Cursor:
        """find() as a lazy Cursor: pages are read from the server as iteration reaches them,
        so a large result never sits in memory whole. Nothing is sent until it is iterated."""
        req = self._find_request(query, limit, skip, sort, projection, page_size, page_token, False)
        return self.db._stream(self.db._docs.Find, req, "Find", timeout)

    def find_one(self, query: Optional[Mapping[str, Any]] = None, *, sort: SortSpec = None,
                 projection: Optional[Mapping[str, Any]] = None) -> Optional[Document]:
        """The first match (after sort), or None."""
        req = document_pb2.FindOneRequest(collection=self.name, filter=to_document(query, "query"),
                                          projection=to_document(projection, "projection"),
                                          sort=_sort_document(sort))
        r = self._call("FindOne", req)
        return from_document(r.document) if r.HasField("document") else None

    def find_by_id(self, id: str) -> Optional[Document]:
        """The document with this id, or None."""
        try:
            r = self._call("Get", document_pb2.GetRequest(collection=self.name, id=id))
        except errors.NotFoundError:
            return None
        return from_document(r.document)

    def count(self, query: Optional[Mapping[str, Any]] = None) -> int:
        """Documents matching query (all when None)."""
        return self._call("Count", document_pb2.CountRequest(
            collection=self.name, filter=to_document(query, "query"))).count

    def _aggregate_request(self, pipeline, page_size) -> document_pb2.AggregateRequest:
        if isinstance(pipeline, Mapping):
            raise TypeError("pipeline must be a list of stages, not a dict")
        return document_pb2.AggregateRequest(
            collection=self.name, page_size=int(page_size),
            pipeline=[to_document(st, f"pipeline[{i}]", required=True) for i, st in enumerate(pipeline)])

    def aggregate(self, pipeline: Sequence[Mapping[str, Any]], *, page_size: int = 0,
                  timeout: Optional[float] = None) -> Results:
        """Runs an aggregation pipeline; its output as a list of dicts (Results)."""
        return self.db._collect(self.db._docs.Aggregate, self._aggregate_request(pipeline, page_size),
                                "Aggregate", timeout)

    def aggregate_iter(self, pipeline: Sequence[Mapping[str, Any]], *, page_size: int = 0,
                       timeout: Optional[float] = None) -> Cursor:
        """aggregate() as a lazy Cursor, read from the server as iteration reaches it."""
        return self.db._stream(self.db._docs.Aggregate, self._aggregate_request(pipeline, page_size),
                               "Aggregate", timeout)

    # -- collection and indexes ----------------------------------------------------------

    def drop(self) -> bool:
        return self.db.drop_collection(self.name)

    def create_index(self, fields: SortSpec, *, unique: bool = False,
                     name: str = "") -> Dict[str, Any]:
        """Builds a secondary index. fields as for sort: 'city', {'city': 1, 'age': -1}..."""
        req = document_pb2.CreateIndexRequest(collection=self.name, unique=unique, name=name)
        for field, direction in _sort_items(fields):
            req.fields.add(field=field, direction=(common_pb2.SORT_DIRECTION_ASCENDING if direction == 1
                                                   else common_pb2.SORT_DIRECTION_DESCENDING))
        return _index_info(self._call("CreateIndex", req).index)

    def drop_index(self, name: str) -> bool:
        return self._call("DropIndex", document_pb2.DropIndexRequest(
            collection=self.name, name=name)).dropped

    def list_indexes(self) -> List[Dict[str, Any]]:
        r = self._call("ListIndexes", document_pb2.ListIndexesRequest(collection=self.name))
        return [_index_info(i) for i in r.indexes]


def _index_info(i: document_pb2.IndexInfo) -> Dict[str, Any]:
    d = _message_dict(i)
    d["fields"] = [(f.field, -1 if f.direction == common_pb2.SORT_DIRECTION_DESCENDING else 1)
                   for f in i.fields]
    return d


class VectorCollection:
    """A vector collection: documents stored with an embedding, searched by similarity.
    Made by NexaDB.vector_collection(name, dimensions=...)."""

    def __init__(self, db: NexaDB, name: str, dimensions: Optional[int] = None):
        self.db = db
        self.name = name
        self.dimensions = dimensions

    def __repr__(self) -> str:
        return f"VectorCollection({self.name!r}, dimensions={self.dimensions})"

    def _call(self, method: str, request: Any) -> Any:
        return self.db._call(getattr(self.db._vecs, method), request, method)

    def insert(self, document: Mapping[str, Any], vector: Sequence[float]) -> str:
        """Inserts a document with its vector; returns its id. ALREADY_EXISTS if its '_id'
        is taken (use upsert to replace)."""
        req = vector_pb2.InsertVectorRequest(collection=self.name, vector=floats(vector),
                                             document=to_document(document, required=True))
        return self._call("InsertVector", req).document_id

    def insert_many(self, documents: Sequence[Mapping[str, Any]],
                    vectors: Sequence[Sequence[float]]) -> List[str]:
        """Inserts documents[i] with vectors[i], all in one atomic batch; returns the ids."""
        if len(documents) != len(vectors):
            raise ValueError(f"{len(documents)} documents but {len(vectors)} vectors")
        req = vector_pb2.InsertVectorsRequest(collection=self.name, documents=[
            vector_pb2.VectorDocument(vector=floats(v, f"vectors[{i}]"),
                                      document=to_document(d, f"documents[{i}]", required=True))
            for i, (d, v) in enumerate(zip(documents, vectors))])
        return list(self._call("InsertVectors", req).document_ids)

    def upsert(self, id: str, document: Mapping[str, Any], vector: Sequence[float]) -> bool:
        """Inserts or replaces the document and vector with this id; True when inserted."""
        req = vector_pb2.UpsertVectorRequest(collection=self.name, id=id, vector=floats(vector),
                                             document=to_document(document, required=True))
        return self._call("UpsertVector", req).inserted

    def get(self, id: str, include_vector: bool = False) -> Optional[Document]:
        """The document with this id, or None. With include_vector the dict has a
        '_vector' key holding the stored vector (unit length under cosine)."""
        try:
            r = self._call("GetVector", vector_pb2.GetVectorRequest(
                collection=self.name, id=id, include_vector=include_vector))
        except errors.NotFoundError:
            return None
        doc = from_document(r.document)
        if include_vector:
            doc["_vector"] = list(r.vector)
        return doc

    def delete(self, id: str) -> bool:
        return self._call("DeleteVector", vector_pb2.DeleteVectorRequest(
            collection=self.name, id=id)).success

    def search(self, query_vector: Sequence[float], limit: int = 10, *,
               filter: Optional[Mapping[str, Any]] = None, min_score: Optional[float] = None,
               include_vectors: bool = False) -> List[SearchResult]:
        """The limit most similar documents, best first, as (doc_id, similarity, doc)
        tuples (each also has .vector when include_vectors)."""
        base = vector_pb2.SearchRequest(collection=self.name, vector=floats(query_vector, "query_vector"),
                                        limit=int(limit), include_vectors=include_vectors,
                                        dimensions=int(self.dimensions or 0))
        if min_score is not None:
            base.min_score.value = float(min_score)
        if filter is not None:
            base.filter.CopyFrom(to_document(filter, "filter"))
        return _hits(self._call("Search", base).results)

    def search_batch(self, query_vectors: Sequence[Sequence[float]], limit: int = 10, *,
                     filter: Optional[Mapping[str, Any]] = None,
                     min_score: Optional[float] = None,
                     include_vectors: bool = False) -> List[List[SearchResult]]:
        """search() for several query vectors in one pass; one result list per query."""
        base = vector_pb2.SearchBatchRequest(collection=self.name, limit=int(limit),
                                             include_vectors=include_vectors)
        for i, q in enumerate(query_vectors):
            base.queries.add(vector=floats(q, f"query_vectors[{i}]"))
        if min_score is not None:
            base.min_score.value = float(min_score)
        if filter is not None:
            base.filter.CopyFrom(to_document(filter, "filter"))
        return [_hits(r.results) for r in self._call("SearchBatch", base).results]

    def find(self, query: Optional[Mapping[str, Any]] = None, limit: int = 0, *,
             page_size: int = 0, timeout: Optional[float] = None) -> Cursor:
        """The documents matching query (all when None) with their stored vectors, in _id
        order from one snapshot, as a lazy Cursor of VectorDocument(doc, vector) pairs
        (for export). limit=0 means no limit. Nothing is sent until it is iterated."""
        req = vector_pb2.FindVectorsRequest(collection=self.name, limit=int(limit), page_size=int(page_size),
                                            filter=to_document(query, "query"))
        return self.db._stream(self.db._vecs.FindVectors, req, "FindVectors", timeout, _vector_document)

    def drop(self) -> bool:
        return self.db.drop_vector_collection(self.name)


def _hits(results) -> List[SearchResult]:
    out = []
    for h in results:
        hit = _Hit(h.document_id, float(h.similarity), from_document(h.document))
        hit.vector = list(h.vector)
        out.append(hit)
    return out
