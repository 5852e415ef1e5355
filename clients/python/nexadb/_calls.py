"""Every operation of the SDK as data, independent of how it is sent: the request message,
the service and method it goes to, and how its answer reads as Python values. NexaDB sends
them on a grpc channel and AsyncNexaDB awaits them on a grpc.aio one; both build them here,
so validation, request shapes and result conversion exist once.

A function here raises TypeError or ValueError for bad arguments, before anything is sent.
"""
from __future__ import annotations

from operator import attrgetter
from typing import (Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional,
                    Sequence, Tuple, Union)

import grpc

from . import errors
from ._connection import ADMIN, DOCS, VECS
from ._convert import floats, from_document, to_document
from ._results import Document, hits, index_info, message_dict, vector_document
from .v1 import admin_pb2, common_pb2, document_pb2, vector_pb2

SortSpec = Union[str, Mapping[str, int], Sequence[Tuple[str, int]], None]
Query = Optional[Mapping[str, Any]]

METRICS = {
    "cosine": common_pb2.VECTOR_METRIC_COSINE,
    "dot": common_pb2.VECTOR_METRIC_DOT,
    "l2": common_pb2.VECTOR_METRIC_L2,
}

RAISE = object()  # Call.not_found's default: NOT_FOUND raises NotFoundError like any error


class Call(NamedTuple):
    """A unary RPC: service (a Connection attribute, _connection.py) and method name, the
    request, the function that turns the response into what the SDK method returns, and
    what NOT_FOUND answers instead of raising (update/delete: False, find_by_id: None)."""
    service: str
    method: str
    request: Any
    result: Callable[[Any], Any]
    not_found: Any = RAISE

    def failed(self, e: grpc.RpcError) -> Any:
        """The answer for a failed RPC: not_found for NOT_FOUND when the call has one; else
        raises the NexaDBError (grpc's RpcError and grpc.aio's AioRpcError alike)."""
        err = errors.from_rpc_error(e, self.method)
        if self.not_found is not RAISE and isinstance(err, errors.NotFoundError):
            return self.not_found
        raise err from None


class Stream(NamedTuple):
    """A server-streaming RPC (Find, Aggregate, FindVectors): its messages carry pages of
    documents; item turns one entry of a page into what iterating yields."""
    service: str
    method: str
    request: Any
    item: Callable[[Any], Any] = from_document


# -- arguments -------------------------------------------------------------------------------

def sort_items(sort: SortSpec) -> List[Tuple[str, int]]:
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
    items = sort_items(sort)
    return to_document(dict(items), "sort") if items else None


def _metric(metric: str) -> int:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, not {metric!r}")
    return METRICS[metric]


INDEXES = {"exact": common_pb2.VectorIndex.KIND_EXACT, "hnsw": common_pb2.VectorIndex.KIND_HNSW}
QUANTIZATIONS = {"none": common_pb2.VectorIndex.QUANTIZATION_NONE,
                 "int8": common_pb2.VectorIndex.QUANTIZATION_INT8,
                 "float16": common_pb2.VectorIndex.QUANTIZATION_FLOAT16}


def vector_index(index: str, m: int = 0, ef_construction: int = 0, quantization: str = "none",
                 oversample: int = 0) -> common_pb2.VectorIndex:
    """A VectorIndex: 'exact', or 'hnsw' with m and ef_construction (0: the server's
    defaults, 16 and 200) and quantization 'none', 'int8' or 'float16' (with oversample,
    the hits rescored per hit wanted; 0: 4)."""
    if index not in INDEXES:
        raise ValueError(f"index must be one of {sorted(INDEXES)}, not {index!r}")
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {sorted(QUANTIZATIONS)}, not {quantization!r}")
    return common_pb2.VectorIndex(kind=INDEXES[index], m=int(m), ef_construction=int(ef_construction),
                                  quantization=QUANTIZATIONS[quantization], oversample=int(oversample))


def _filter(query: Query) -> Optional[common_pb2.Document]:
    return to_document(query, "query")


def _found_document(r: Any) -> Optional[Document]:
    return from_document(r.document) if r.HasField("document") else None


# -- collections and the server ----------------------------------------------------------------

def create_collection(name: str) -> Call:
    return Call(DOCS, "CreateCollection", document_pb2.CreateCollectionRequest(collection=name),
                lambda r: message_dict(r.collection))


def drop_collection(name: str) -> Call:
    return Call(DOCS, "DropCollection", document_pb2.DropCollectionRequest(collection=name),
                attrgetter("dropped"))


def list_collections() -> Call:
    return Call(DOCS, "ListCollections", document_pb2.ListCollectionsRequest(),
                lambda r: [message_dict(c) for c in r.collections])


def create_vector_collection(name: str, dimensions: Optional[int], metric: str,
                             index: Optional[common_pb2.VectorIndex] = None) -> Optional[Call]:
    """The call creating the collection unless one with the same dimensions and metric
    (and, when given, kind of index) exists; None without dimensions (a handle on an
    existing collection needs no call). The metric is checked either way."""
    enum = _metric(metric)
    if dimensions is None:
        return None
    req = vector_pb2.CreateVectorCollectionRequest(
        collection=name, dimensions=int(dimensions), metric=enum, if_not_exists=True)
    if index is not None:
        req.index.CopyFrom(index)
    return Call(VECS, "CreateVectorCollection", req, lambda r: None)


def set_vector_index(name: str, index: common_pb2.VectorIndex) -> Call:
    return Call(VECS, "SetVectorIndex", vector_pb2.SetVectorIndexRequest(collection=name, index=index),
                lambda r: message_dict(r.collection))


def vector_collection_info(name: str) -> Call:
    """The collection's entry of ListVectorCollections (NotFoundError when absent)."""
    def pick(r: Any) -> Dict[str, Any]:
        for c in r.collections:
            if c.name == name:
                return message_dict(c)
        raise errors.NotFoundError(grpc.StatusCode.NOT_FOUND, f"no vector collection '{name}'",
                                   "ListVectorCollections")
    return Call(VECS, "ListVectorCollections", vector_pb2.ListVectorCollectionsRequest(), pick)


def drop_vector_collection(name: str) -> Call:
    return Call(VECS, "DropVectorCollection", vector_pb2.DropVectorCollectionRequest(collection=name),
                attrgetter("dropped"))


def list_vector_collections() -> Call:
    return Call(VECS, "ListVectorCollections", vector_pb2.ListVectorCollectionsRequest(),
                lambda r: [message_dict(c) for c in r.collections])


def status() -> Call:
    return Call(ADMIN, "Status", admin_pb2.StatusRequest(), message_dict)


def stats() -> Call:
    return Call(ADMIN, "Stats", admin_pb2.StatsRequest(), message_dict)


def backup(name: Optional[str], archive: bool, previous: Optional[str],
           previous_listing: Optional[bytes]) -> Stream:
    """AdminService/Backup: a directory backup `name` on the server (incremental from the
    backup named `previous`), or an archive streamed back (incremental against
    `previous_listing`, the BACKUP entry of an earlier archive). Its messages carry progress
    (and archive chunks); the last has done set."""
    if (name is None) == (not archive):
        raise ValueError("give a backup name (a directory on the server) or archive, not both")
    if previous is not None and archive:
        raise ValueError("previous names a directory backup; an archive takes previous_listing")
    if previous_listing is not None and not archive:
        raise ValueError("previous_listing is for archives; a directory backup takes previous")
    req = admin_pb2.BackupRequest(name=name or "", archive=archive, previous=previous or "",
                                  previous_listing=previous_listing or b"")
    return Stream(ADMIN, "Backup", req, message_dict)


def backup_message(msg: Any, archive: Any, progress: Optional[Callable[[Dict[str, Any]], None]]
                   ) -> Dict[str, Any]:
    """One Backup message: its archive chunk written to archive, progress told; what
    NexaDB.backup returns when it is the last."""
    if archive is not None and msg.archive_chunk:
        archive.write(msg.archive_chunk)
    out = {"sequence": msg.sequence, "done": msg.done, "path": msg.path,
           "progress": message_dict(msg.progress)}
    if progress is not None:
        progress(out["progress"])
    return out


def backup_result(last: Dict[str, Any]) -> Dict[str, Any]:
    """The last message's dict, once the stream has ended: an error unless it said done."""
    if not last.get("done"):
        raise errors.NexaDBError(grpc.StatusCode.UNKNOWN, "the stream ended before the backup was complete",
                                 "Backup")
    return last


# -- documents -------------------------------------------------------------------------------

def insert_one(coll: str, document: Mapping[str, Any]) -> Call:
    return Call(DOCS, "InsertOne", document_pb2.InsertOneRequest(
        collection=coll, document=to_document(document, required=True)), attrgetter("document_id"))


def insert_many(coll: str, documents: Iterable[Mapping[str, Any]]) -> Call:
    req = document_pb2.InsertManyRequest(
        collection=coll, documents=[to_document(d, f"documents[{i}]", required=True)
                                    for i, d in enumerate(documents)])
    return Call(DOCS, "InsertMany", req, lambda r: list(r.document_ids))


def update(coll: str, id: str, fields: Mapping[str, Any]) -> Call:
    req = document_pb2.UpdateRequest(collection=coll, id=id,
                                     update=to_document(fields, "fields", required=True))
    return Call(DOCS, "Update", req, attrgetter("success"), not_found=False)


def update_many(coll: str, query: Mapping[str, Any], update: Mapping[str, Any],
                upsert: bool) -> Call:
    req = document_pb2.UpdateManyRequest(collection=coll, upsert=upsert, filter=_filter(query),
                                         update=to_document(update, "update", required=True))
    return Call(DOCS, "UpdateMany", req, attrgetter("modified_count"))


def delete(coll: str, id: str) -> Call:
    return Call(DOCS, "Delete", document_pb2.DeleteRequest(collection=coll, id=id),
                attrgetter("success"), not_found=False)


def delete_many(coll: str, query: Query) -> Call:
    req = document_pb2.DeleteManyRequest(collection=coll, filter=_filter(query))
    return Call(DOCS, "DeleteMany", req, attrgetter("deleted_count"))


def find(coll: str, query: Query, limit: int, skip: int, sort: SortSpec,
         projection: Query, page_token: str, explain: bool, page_size: int) -> Stream:
    return Stream(DOCS, "Find", document_pb2.FindRequest(
        collection=coll, skip=int(skip), limit=int(limit), page_size=int(page_size),
        page_token=page_token, explain=explain, filter=_filter(query),
        projection=to_document(projection, "projection"), sort=_sort_document(sort)))


def find_one(coll: str, query: Query, sort: SortSpec, projection: Query) -> Call:
    req = document_pb2.FindOneRequest(collection=coll, filter=_filter(query),
                                      projection=to_document(projection, "projection"),
                                      sort=_sort_document(sort))
    return Call(DOCS, "FindOne", req, _found_document)


def get(coll: str, id: str) -> Call:
    return Call(DOCS, "Get", document_pb2.GetRequest(collection=coll, id=id),
                lambda r: from_document(r.document), not_found=None)


def count(coll: str, query: Query) -> Call:
    return Call(DOCS, "Count", document_pb2.CountRequest(collection=coll, filter=_filter(query)),
                attrgetter("count"))


def aggregate(coll: str, pipeline: Sequence[Mapping[str, Any]], page_size: int) -> Stream:
    if isinstance(pipeline, Mapping):
        raise TypeError("pipeline must be a list of stages, not a dict")
    return Stream(DOCS, "Aggregate", document_pb2.AggregateRequest(
        collection=coll, page_size=int(page_size),
        pipeline=[to_document(st, f"pipeline[{i}]", required=True) for i, st in enumerate(pipeline)]))


FULL_DOCUMENT = (None, "", "default", "updateLookup")


def watch(coll: str, pipeline: Optional[Sequence[Mapping[str, Any]]], resume_after: Optional[str],
          full_document: Optional[str], page_size: int = 0) -> Stream:
    """DocumentService/Watch: the change events of coll (every document collection when coll
    is ""), after resume_after (a token) or from the next change. Its messages carry events
    (token, event document) and the stream's position (resume_token), events or none."""
    if isinstance(pipeline, Mapping):
        raise TypeError("pipeline must be a list of stages, not a dict")
    if full_document not in FULL_DOCUMENT:
        raise ValueError(f"full_document must be 'default' or 'updateLookup', not {full_document!r}")
    return Stream(DOCS, "Watch", document_pb2.WatchRequest(
        collection=coll, resume_after=resume_after or "", full_document=full_document or "",
        page_size=int(page_size),
        pipeline=[to_document(st, f"pipeline[{i}]", required=True) for i, st in enumerate(pipeline or [])]))


def create_index(coll: str, fields: SortSpec, unique: bool, name: str,
                 expire_after_seconds: Optional[int], vectors: bool = False) -> Call:
    """DocumentService's CreateIndex (a document collection) or, with vectors, VectorService's
    CreateDocumentIndex (a vector collection's documents)."""
    kind = vector_pb2.CreateDocumentIndexRequest if vectors else document_pb2.CreateIndexRequest
    req = kind(collection=coll, unique=unique, name=name)
    if expire_after_seconds is not None:
        req.ttl.expire_after_seconds = expire_after_seconds
    for field, direction in sort_items(fields):
        req.fields.add(field=field, direction=(common_pb2.SORT_DIRECTION_ASCENDING if direction == 1
                                               else common_pb2.SORT_DIRECTION_DESCENDING))
    if vectors:
        return Call(VECS, "CreateDocumentIndex", req, lambda r: index_info(r.index))
    return Call(DOCS, "CreateIndex", req, lambda r: index_info(r.index))


def drop_index(coll: str, name: str, vectors: bool = False) -> Call:
    if vectors:
        return Call(VECS, "DropDocumentIndex", vector_pb2.DropDocumentIndexRequest(collection=coll, name=name),
                    attrgetter("dropped"))
    return Call(DOCS, "DropIndex", document_pb2.DropIndexRequest(collection=coll, name=name),
                attrgetter("dropped"))


def list_indexes(coll: str, vectors: bool = False) -> Call:
    if vectors:
        return Call(VECS, "ListDocumentIndexes", vector_pb2.ListDocumentIndexesRequest(collection=coll),
                    lambda r: [index_info(i) for i in r.indexes])
    return Call(DOCS, "ListIndexes", document_pb2.ListIndexesRequest(collection=coll),
                lambda r: [index_info(i) for i in r.indexes])


# -- vectors ---------------------------------------------------------------------------------

def insert_vector(coll: str, document: Mapping[str, Any], vector: Sequence[float]) -> Call:
    req = vector_pb2.InsertVectorRequest(collection=coll, vector=floats(vector),
                                         document=to_document(document, required=True))
    return Call(VECS, "InsertVector", req, attrgetter("document_id"))


def insert_vectors(coll: str, documents: Sequence[Mapping[str, Any]],
                   vectors: Sequence[Sequence[float]]) -> Call:
    if len(documents) != len(vectors):
        raise ValueError(f"{len(documents)} documents but {len(vectors)} vectors")
    req = vector_pb2.InsertVectorsRequest(collection=coll, documents=[
        vector_pb2.VectorDocument(vector=floats(v, f"vectors[{i}]"),
                                  document=to_document(d, f"documents[{i}]", required=True))
        for i, (d, v) in enumerate(zip(documents, vectors))])
    return Call(VECS, "InsertVectors", req, lambda r: list(r.document_ids))


def upsert_vector(coll: str, id: str, document: Mapping[str, Any], vector: Sequence[float]) -> Call:
    req = vector_pb2.UpsertVectorRequest(collection=coll, id=id, vector=floats(vector),
                                         document=to_document(document, required=True))
    return Call(VECS, "UpsertVector", req, attrgetter("inserted"))


def get_vector(coll: str, id: str, include_vector: bool) -> Call:
    """The document as a dict, with include_vector its stored vector under '_vector'."""
    def result(r: Any) -> Document:
        doc = from_document(r.document)
        if include_vector:
            doc["_vector"] = list(r.vector)
        return doc
    return Call(VECS, "GetVector", vector_pb2.GetVectorRequest(
        collection=coll, id=id, include_vector=include_vector), result, not_found=None)


def delete_vector(coll: str, id: str) -> Call:
    return Call(VECS, "DeleteVector", vector_pb2.DeleteVectorRequest(collection=coll, id=id),
                attrgetter("success"))


class SearchOptions(NamedTuple):
    """What Search and SearchBatch share beyond the query vectors and limit."""
    filter: Query = None
    min_score: Optional[float] = None
    include_vectors: bool = False
    ef: Optional[int] = None
    exact: bool = False


def _search_options(req: Any, o: SearchOptions) -> None:
    req.include_vectors = o.include_vectors
    req.exact = o.exact
    if o.ef is not None:
        req.ef = int(o.ef)
    if o.min_score is not None:
        req.min_score.value = float(o.min_score)
    if o.filter is not None:
        req.filter.CopyFrom(to_document(o.filter, "filter"))


def search(coll: str, dimensions: Optional[int], query_vector: Sequence[float], limit: int,
           o: SearchOptions, explain: bool = False) -> Call:
    """Search; with explain the answer is {'plan': ..., 'results': [...]}."""
    req = vector_pb2.SearchRequest(collection=coll, vector=floats(query_vector, "query_vector"),
                                   limit=int(limit), dimensions=int(dimensions or 0), explain=explain)
    _search_options(req, o)
    if explain:
        return Call(VECS, "Search", req,
                    lambda r: {"plan": message_dict(r.plan), "results": hits(r.results)})
    return Call(VECS, "Search", req, lambda r: hits(r.results))


def search_batch(coll: str, query_vectors: Sequence[Sequence[float]], limit: int,
                 o: SearchOptions) -> Call:
    req = vector_pb2.SearchBatchRequest(collection=coll, limit=int(limit))
    for i, q in enumerate(query_vectors):
        req.queries.add(vector=floats(q, f"query_vectors[{i}]"))
    _search_options(req, o)
    return Call(VECS, "SearchBatch", req, lambda r: [hits(b.results) for b in r.results])


def find_vectors(coll: str, query: Query, limit: int, page_size: int) -> Stream:
    return Stream(VECS, "FindVectors", vector_pb2.FindVectorsRequest(
        collection=coll, limit=int(limit), page_size=int(page_size), filter=_filter(query)),
        vector_document)
