"""NexaDB, Collection and VectorCollection: the brief's Python API over gRPC.

One NexaDB holds one gRPC channel, reused by every collection handle made from it
(channels multiplex calls; make one per process and share it, it is thread-safe).
Documents go in and come out as plain dicts (key order and types kept: int, float,
datetime, bytes; _convert.py), carried as BSON. Every failure raises a NexaDBError carrying
the gRPC status code (see errors.py).

Each method builds its request and reads its answer through _calls.py, which aio.py's
asyncio client shares; what is here is only how a call is sent and waited for.
"""
from __future__ import annotations

import time
from typing import Any, BinaryIO, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence

import grpc

from . import _calls, errors
from ._calls import Call, Query, SortSpec, Stream
from ._connection import DEFAULT_PORT, Connection
from ._results import BaseCursor, Document, Results, SearchResult, VectorDocument, add_page
from ._watch import BaseChangeStream

__all__ = ["NexaDB", "Collection", "VectorCollection", "Cursor", "ChangeStream", "Results", "SearchResult",
           "VectorDocument", "DEFAULT_PORT", "Document", "SortSpec"]


class Cursor(BaseCursor):
    """Results of a streaming call (find_iter, aggregate_iter, a vector collection's find),
    read lazily.

    The server sends a page of documents per message; iterating reads the next message
    only when the current page is used up, so a large result never sits in memory whole.
    Each `iter()` of a Cursor runs the query again from the start (`for d in cursor`
    twice works); `close()` cancels a stream that is being read. A cluster follower's
    redirect to the leader is followed before the first page arrives, as NexaDB's calls do.
    """

    def __iter__(self) -> Iterator[Any]:
        route = self._route()
        while True:
            call = self._start(route)
            started = False
            try:
                for msg in call:
                    started = True
                    for s in msg.documents:
                        yield self._item(s)
                return
            except grpc.RpcError as e:
                if started or not route.follow(e):
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
        self._cancel_all()

    def __enter__(self) -> "Cursor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ChangeStream(BaseChangeStream):
    """A change stream (Collection.watch, NexaDB.watch): an iterator of change events, dicts
    in MongoDB's shape ({'_id': {'_data': token}, 'operationType', 'wallTime', 'ns',
    'documentKey', 'fullDocument', 'updateDescription'}), in commit order.

    watch() returns once the stream is in place (the server's first message read), so every
    change committed after it returns comes; iterating blocks until the next event. Iteration
    ends after a collection's 'invalidate' event (it was dropped) or close(); close() may be
    called from another thread, and `with coll.watch() as stream:` closes it on leaving.
    stream.resume_token is where the stream stands (the last event handed out, or later as
    heartbeats move it past events the pipeline dropped): watch(resume_after=token) takes it.
    When the connection drops (UNAVAILABLE), the stream reconnects once by itself, waiting
    for the server up to the client's timeout, and resumes after resume_token, so no event is
    lost or repeated; a second failure before the server answers raises. OUT_OF_RANGE: the
    token is older than the server's change log.
    """

    def __init__(self, db: "NexaDB", make: Callable[[Optional[str]], Stream], resume_after: Optional[str]):
        super().__init__(db, make, resume_after)
        self._call = db._invoke(self._request(), None)
        try:  # the server's first message says the stream is in place
            self._take(next(self._call))
        except StopIteration:
            self._closed = True
        except grpc.RpcError as e:
            self._closed = True
            raise errors.from_rpc_error(e, "Watch") from None

    def __iter__(self) -> "ChangeStream":
        return self

    def __next__(self) -> Document:
        while not self._events:
            if self._closed:
                raise StopIteration
            try:
                msg = next(self._call)
            except StopIteration:
                self._closed = True
                raise
            except grpc.RpcError as e:
                if self._closed:
                    raise StopIteration from None
                if not self._may_resume(e):
                    self._closed = True
                    raise errors.from_rpc_error(e, "Watch") from None
                self._reconnect(e)
                continue
            self._take(msg)
        return self._pop()

    def _reconnect(self, cause: grpc.RpcError) -> None:
        """Calls again after resume_token once the channel is ready, reading the new stream's
        first message; attempts that meet UNAVAILABLE are made again until the timeout."""
        deadline = self._deadline()
        while not self._closed:
            try:
                grpc.channel_ready_future(self._db._channel).result(timeout=self._remaining(deadline))
            except grpc.FutureTimeoutError:
                self._closed = True
                raise errors.from_rpc_error(cause, "Watch") from None
            self._call = self._db._invoke(self._request(), None)
            try:
                self._take(next(self._call))
                return
            except StopIteration:
                self._closed = True
                return
            except grpc.RpcError as e:
                if self._closed:
                    return
                if not self._may_retry(e, deadline):
                    self._closed = True
                    raise errors.from_rpc_error(e, "Watch") from None
                cause = e
                time.sleep(0.05)

    def close(self) -> None:
        """Stops the stream: the call is cancelled, iteration (in any thread) ends."""
        self._mark_closed()

    def __enter__(self) -> "ChangeStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NexaDB(Connection):
    """A connection to a NexaDB server.

    NexaDB(host='localhost', port=6970, api_key=None, *, tls=False,
           root_certificates=None, client_cert=None, client_key=None, timeout=30.0,
           options=(), read_concern='linearizable')

    api_key defaults to $NEXADB_API_KEY. tls=True uses TLS with the system's CA roots, or
    root_certificates (PEM bytes) when given. client_cert and client_key (PEM bytes, both or
    neither) are this client's certificate chain and key, for a server that requires client
    certificates (mTLS). Any of the three implies tls. timeout is the deadline in seconds for each
    unary call (None: no deadline); streams (find, aggregate) have none by default.

    In a cluster, any node will do: when a follower refuses a call as not the leader, naming
    it (UNAVAILABLE with the trailer nexadb-leader, which says the node ran nothing of it),
    the call is sent again to the leader, at most 3 times per call and within its timeout,
    and the client's later calls go there too (db.address says where calls go). The leader's
    channel uses the same credentials, options and API key. A follower that knows no leader,
    or the transport's UNAVAILABLE or UNKNOWN (a write that may have been applied), raises as
    before; after the transport's UNAVAILABLE from a leader it was redirected to, the client
    goes back to host:port, whose node names the next leader. Change streams (watch) and
    backup() follow no redirect; they go where db.address says.

    read_concern says which node answers a read in a cluster, and from what:
    'linearizable' (the default; nothing sent): the leader, after confirming it still leads
    (a follower passes the read on, or under TLS redirects it). 'local': the node called,
    from what it has applied, possibly behind (every call sends nexadb-read-concern: local).
    'session' (read-your-writes): the node called, once it has applied db.log_index, the
    largest log entry this client's successful calls were answered with (a write answers with
    the entry it went into; the trailer nexadb-log-index): every call sends
    nexadb-read-after: <log_index>, or nexadb-read-concern: local while there is none; the
    node waits for the entry up to the call's timeout (10 s without one).
    db.advance_log_index(n) raises log_index, to read another client's writes (its
    log_index). Writes go to the leader whatever the read concern; after a redirect the
    client calls the leader, so its reads go there too. Streamed results (find, aggregate)
    send the headers but do not raise log_index.
    """

    _grpc = grpc

    # -- plumbing ------------------------------------------------------------------------

    def _run(self, call: Call) -> Any:
        route = self._route(self.timeout)
        while True:
            try:
                response, rpc = route.send(call, with_call=True)
            except grpc.RpcError as e:
                if route.follow(e):
                    continue
                return call.failed(e)
            self._observe(rpc.trailing_metadata())
            return call.result(response)

    def _cursor(self, stream: Stream, timeout: Optional[float]) -> Cursor:
        return Cursor(lambda: self._route(timeout), stream)

    def _collect(self, stream: Stream, timeout: Optional[float]) -> Results:
        """Reads a whole stream of document pages into Results, following a follower's
        redirect to the leader until the first page arrives."""
        route = self._route(timeout)
        while True:
            out, started = Results(), False
            try:
                for msg in route.send(stream):
                    started = True
                    add_page(out, msg)
                return out
            except grpc.RpcError as e:
                if started or not route.follow(e):
                    raise errors.from_rpc_error(e, stream.method) from None

    def close(self) -> None:
        """Closes the channels (to the leader too, after a redirect); handles made from this
        NexaDB stop working."""
        for channel in self._close_channels():
            channel.close()

    def __enter__(self) -> "NexaDB":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- collections ---------------------------------------------------------------------

    def collection(self, name: str) -> "Collection":
        """A handle on a document collection (created by the server on first insert)."""
        return Collection(self, name)

    def vector_collection(self, name: str, dimensions: Optional[int] = None,
                          metric: str = "cosine", *, index: Optional[str] = None, m: int = 0,
                          ef_construction: int = 0, quantization: str = "none",
                          oversample: int = 0) -> "VectorCollection":
        """A handle on a vector collection. With dimensions, creates it unless one with the
        same dimensions and metric exists (a different one raises AlreadyExistsError).
        index: 'exact' (every vector scored; the default) or 'hnsw' (a graph built in the
        background, searched approximately once the collection outgrows exact search), with
        m and ef_construction (0: the server's defaults, 16 and 200) and quantization 'none',
        'int8' (the graph's vectors as int8 codes, a quarter of the bytes) or 'float16' (half
        floats, half the bytes), where each search rescores oversample x limit of its hits
        with the float32 vectors (4 by default); a
        collection that exists with another kind of index raises AlreadyExistsError
        (set_index changes it)."""
        ix = None if index is None else _calls.vector_index(index, m, ef_construction, quantization,
                                                            oversample)
        create = _calls.create_vector_collection(name, dimensions, metric, ix)
        if create is not None:
            self._run(create)
        return VectorCollection(self, name, dimensions)

    def create_collection(self, name: str) -> Dict[str, Any]:
        return self._run(_calls.create_collection(name))

    def drop_collection(self, name: str) -> bool:
        """Drops a document collection; False when there was none."""
        return self._run(_calls.drop_collection(name))

    def list_collections(self) -> List[Dict[str, Any]]:
        return self._run(_calls.list_collections())

    def drop_vector_collection(self, name: str) -> bool:
        return self._run(_calls.drop_vector_collection(name))

    def list_vector_collections(self) -> List[Dict[str, Any]]:
        return self._run(_calls.list_vector_collections())

    def watch(self, pipeline: Optional[Sequence[Mapping[str, Any]]] = None,
              resume_after: Optional[str] = None, full_document: Optional[str] = None) -> "ChangeStream":
        """A change stream of every document collection (Collection.watch watches one):
        each event's ns says which. Events of dropping a collection come as 'drop', and this
        stream goes on."""
        return ChangeStream(self, lambda token: _calls.watch("", pipeline, token, full_document),
                            resume_after)

    # -- server --------------------------------------------------------------------------

    def status(self) -> Dict[str, Any]:
        """{'status': 'ok', 'version': ..., 'uptime_seconds': ...}; needs no API key."""
        return self._run(_calls.status())

    def stats(self) -> Dict[str, Any]:
        """Database statistics: collections, total_documents, engine figures, rss_bytes..."""
        return self._run(_calls.stats())

    def backup(self, name: Optional[str] = None, *, archive: Optional[BinaryIO] = None,
               previous: Optional[str] = None, previous_listing: Optional[bytes] = None,
               progress: Optional[Callable[[Dict[str, Any]], None]] = None,
               timeout: Optional[float] = None) -> Dict[str, Any]:
        """A consistent backup of the whole database as of one point in its log, while writes
        go on; needs a read-write key.

        backup('nightly') writes it into that directory under the server's --backup-dir
        (previous='lastnight': links the tables that one holds). backup(archive=f) streams it
        as a tar archive into the binary file f instead (previous_listing: the BACKUP entry
        of an earlier archive, whose tables are then left out). progress, when given, is
        called with each message's progress dict. Returns the last message: {'sequence', 'done',
        'path', 'progress': {...}}. `nexadb-server --restore` restores either.
        """
        stream = _calls.backup(name, archive is not None, previous, previous_listing)
        last: Dict[str, Any] = {}
        try:
            for msg in self._invoke(stream, timeout):
                last = _calls.backup_message(msg, archive, progress)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e, stream.method) from None
        return _calls.backup_result(last)


class Collection:
    """A document collection. Made by NexaDB.collection(name); cheap, holds no state
    beyond the name and the shared channel."""

    def __init__(self, db: NexaDB, name: str):
        self.db = db
        self.name = name

    def __repr__(self) -> str:
        return f"Collection({self.name!r})"

    # -- writes --------------------------------------------------------------------------

    def insert(self, document: Mapping[str, Any]) -> str:
        """Inserts one document; returns its id (its '_id' string if it has one)."""
        return self.db._run(_calls.insert_one(self.name, document))

    def insert_many(self, documents: Iterable[Mapping[str, Any]]) -> List[str]:
        """Inserts documents in one atomic batch; returns their ids in order."""
        return self.db._run(_calls.insert_many(self.name, documents))

    def update(self, id: str, fields: Mapping[str, Any]) -> bool:
        """Merges fields into the document with this id (update operators such as $inc are
        accepted too); False when there is no such document."""
        return self.db._run(_calls.update(self.name, id, fields))

    def update_many(self, query: Mapping[str, Any], update: Mapping[str, Any],
                    upsert: bool = False) -> int:
        """Applies update (plain fields, or operators) to every match; returns the number of
        documents modified."""
        return self.db._run(_calls.update_many(self.name, query, update, upsert))

    def delete(self, id: str) -> bool:
        """Deletes the document with this id; False when there was none."""
        return self.db._run(_calls.delete(self.name, id))

    def delete_many(self, query: Query = None) -> int:
        """Deletes every match (every document when query is None or {}); returns the count."""
        return self.db._run(_calls.delete_many(self.name, query))

    # -- reads ---------------------------------------------------------------------------

    def find(self, query: Query = None, limit: int = 0, *, skip: int = 0, sort: SortSpec = None,
             projection: Query = None, page_token: str = "", explain: bool = False,
             page_size: int = 0, timeout: Optional[float] = None) -> Results:
        """Documents matching query (all when None), as a list of dicts (Results).

        limit=0 means no limit. sort: 'field', '-field', {'a': 1, 'b': -1} or
        [('a', 1), ...]. With a limit, results.next_page_token passed back as page_token
        reads the next page; explain=True fills results.explain. For results too large to
        hold, find_iter streams them instead.
        """
        return self.db._collect(_calls.find(self.name, query, limit, skip, sort, projection,
                                            page_token, explain, page_size), timeout)

    def find_iter(self, query: Query = None, limit: int = 0, *, skip: int = 0,
                  sort: SortSpec = None, projection: Query = None, page_token: str = "",
                  page_size: int = 0, timeout: Optional[float] = None) -> Cursor:
        """find() as a lazy Cursor: pages are read from the server as iteration reaches them,
        so a large result never sits in memory whole. Nothing is sent until it is iterated."""
        return self.db._cursor(_calls.find(self.name, query, limit, skip, sort, projection,
                                           page_token, False, page_size), timeout)

    def find_one(self, query: Query = None, *, sort: SortSpec = None,
                 projection: Query = None) -> Optional[Document]:
        """The first match (after sort), or None."""
        return self.db._run(_calls.find_one(self.name, query, sort, projection))

    def find_by_id(self, id: str) -> Optional[Document]:
        """The document with this id, or None."""
        return self.db._run(_calls.get(self.name, id))

    def count(self, query: Query = None) -> int:
        """Documents matching query (all when None)."""
        return self.db._run(_calls.count(self.name, query))

    def aggregate(self, pipeline: Sequence[Mapping[str, Any]], *, page_size: int = 0,
                  timeout: Optional[float] = None) -> Results:
        """Runs an aggregation pipeline; its output as a list of dicts (Results)."""
        return self.db._collect(_calls.aggregate(self.name, pipeline, page_size), timeout)

    def aggregate_iter(self, pipeline: Sequence[Mapping[str, Any]], *, page_size: int = 0,
                       timeout: Optional[float] = None) -> Cursor:
        """aggregate() as a lazy Cursor, read from the server as iteration reaches it."""
        return self.db._cursor(_calls.aggregate(self.name, pipeline, page_size), timeout)

    def watch(self, pipeline: Optional[Sequence[Mapping[str, Any]]] = None,
              resume_after: Optional[str] = None, full_document: Optional[str] = None) -> ChangeStream:
        """The collection's changes as they are committed, as MongoDB's watch():

            with users.watch([{'$match': {'operationType': 'insert'}}]) as stream:
                for event in stream:
                    print(event['fullDocument'], stream.resume_token)

        pipeline: stages applied to each event ($match, $project, $addFields, $set, $unset,
        $replaceRoot, $replaceWith). resume_after: a token (an event's _id['_data'] or
        stream.resume_token) to start after; None starts with the next change, counted from
        when the server receives the call. full_document='updateLookup': update events
        carry the document as it is when read. The stream ends after the collection's
        'invalidate' event (its drop). See ChangeStream."""
        return ChangeStream(self.db, lambda token: _calls.watch(self.name, pipeline, token, full_document),
                            resume_after)

    # -- collection and indexes ----------------------------------------------------------

    def drop(self) -> bool:
        return self.db.drop_collection(self.name)

    def create_index(self, fields: SortSpec, *, unique: bool = False, name: str = "",
                     expire_after_seconds: Optional[int] = None) -> Dict[str, Any]:
        """Builds a secondary index. fields as for sort: 'city', {'city': 1, 'age': -1}...

        expire_after_seconds makes a TTL index (one field), as MongoDB's expireAfterSeconds:
        the server deletes a document once the datetime in that field is more than this many
        seconds old (its pass runs every --ttl-interval-seconds, 60 by default); a document
        whose field is missing or holds no datetime never expires."""
        return self.db._run(_calls.create_index(self.name, fields, unique, name, expire_after_seconds))

    def drop_index(self, name: str) -> bool:
        return self.db._run(_calls.drop_index(self.name, name))

    def list_indexes(self) -> List[Dict[str, Any]]:
        return self.db._run(_calls.list_indexes(self.name))


class VectorCollection:
    """A vector collection: documents stored with an embedding, searched by similarity.
    Made by NexaDB.vector_collection(name, dimensions=...)."""

    def __init__(self, db: NexaDB, name: str, dimensions: Optional[int] = None):
        self.db = db
        self.name = name
        self.dimensions = dimensions

    def __repr__(self) -> str:
        return f"VectorCollection({self.name!r}, dimensions={self.dimensions})"

    def insert(self, document: Mapping[str, Any], vector: Sequence[float]) -> str:
        """Inserts a document with its vector; returns its id. ALREADY_EXISTS if its '_id'
        is taken (use upsert to replace)."""
        return self.db._run(_calls.insert_vector(self.name, document, vector))

    def insert_many(self, documents: Sequence[Mapping[str, Any]],
                    vectors: Sequence[Sequence[float]]) -> List[str]:
        """Inserts documents[i] with vectors[i], all in one atomic batch; returns the ids."""
        return self.db._run(_calls.insert_vectors(self.name, documents, vectors))

    def upsert(self, id: str, document: Mapping[str, Any], vector: Sequence[float]) -> bool:
        """Inserts or replaces the document and vector with this id; True when inserted."""
        return self.db._run(_calls.upsert_vector(self.name, id, document, vector))

    def get(self, id: str, include_vector: bool = False) -> Optional[Document]:
        """The document with this id, or None. With include_vector the dict has a
        '_vector' key holding the stored vector (unit length under cosine)."""
        return self.db._run(_calls.get_vector(self.name, id, include_vector))

    def delete(self, id: str) -> bool:
        return self.db._run(_calls.delete_vector(self.name, id))

    def search(self, query_vector: Sequence[float], limit: int = 10, *, filter: Query = None,
               min_score: Optional[float] = None, include_vectors: bool = False,
               ef: Optional[int] = None, exact: bool = False) -> List[SearchResult]:
        """The limit most similar documents, best first, as (doc_id, similarity, doc)
        tuples (each also has .vector when include_vectors). Under an HNSW index, ef is the
        candidates kept while searching the graph (higher: better recall, slower; None: the
        server's 128) and exact=True scores every vector instead."""
        o = _calls.SearchOptions(filter, min_score, include_vectors, ef, exact)
        return self.db._run(_calls.search(self.name, self.dimensions, query_vector, limit, o))

    def explain(self, query_vector: Sequence[float], limit: int = 10, *, filter: Query = None,
                min_score: Optional[float] = None, ef: Optional[int] = None,
                exact: bool = False) -> Dict[str, Any]:
        """search() that also says how it ran: {'plan': {'path': 'hnsw' | 'exact' |
        'exact_postfiltered' | 'hnsw_postfiltered' | 'hnsw_filtered' | 'hnsw_exact_filtered' |
        'hnsw_filtered_fallback', 'graph_nodes',
        'exact_rows', 'candidates', 'ef'}, 'results': [...]}."""
        o = _calls.SearchOptions(filter, min_score, False, ef, exact)
        return self.db._run(_calls.search(self.name, self.dimensions, query_vector, limit, o,
                                          explain=True))

    def search_batch(self, query_vectors: Sequence[Sequence[float]], limit: int = 10, *,
                     filter: Query = None, min_score: Optional[float] = None,
                     include_vectors: bool = False, ef: Optional[int] = None,
                     exact: bool = False) -> List[List[SearchResult]]:
        """search() for several query vectors in one pass; one result list per query."""
        o = _calls.SearchOptions(filter, min_score, include_vectors, ef, exact)
        return self.db._run(_calls.search_batch(self.name, query_vectors, limit, o))

    def set_index(self, index: str, *, m: int = 0, ef_construction: int = 0,
                  quantization: str = "none", oversample: int = 0) -> Dict[str, Any]:
        """Changes the index: 'hnsw' (or new m / ef_construction / quantization) builds a
        graph in the background while searches go on; 'exact' drops it. Returns info()."""
        ix = _calls.vector_index(index, m, ef_construction, quantization, oversample)
        return self.db._run(_calls.set_vector_index(self.name, ix))

    def info(self) -> Dict[str, Any]:
        """The collection: count, dimensions, metric, index ({'kind', 'm',
        'ef_construction'}), indexed (rows in the graph), index_building, index_bytes."""
        return self.db._run(_calls.vector_collection_info(self.name))

    def create_index(self, fields: SortSpec, *, unique: bool = False, name: str = "",
                     expire_after_seconds: Optional[int] = None) -> Dict[str, Any]:
        """Builds a secondary index over the documents' fields (fields as for sort: 'category',
        {'category': 1, 'year': -1}...), kept up to date by every write: filtered searches and
        find() reach their matches through it instead of reading every document; unique=True
        refuses a second document with the same value. expire_after_seconds makes a TTL index
        as Collection.create_index does: an expired document is deleted with its vector."""
        return self.db._run(_calls.create_index(self.name, fields, unique, name,
                                                expire_after_seconds, vectors=True))

    def drop_index(self, name: str) -> bool:
        return self.db._run(_calls.drop_index(self.name, name, vectors=True))

    def list_indexes(self) -> List[Dict[str, Any]]:
        return self.db._run(_calls.list_indexes(self.name, vectors=True))

    def find(self, query: Query = None, limit: int = 0, *, page_size: int = 0,
             timeout: Optional[float] = None) -> Cursor:
        """The documents matching query (all when None) with their stored vectors, in _id
        order from one snapshot, as a lazy Cursor of VectorDocument(doc, vector) pairs
        (for export). limit=0 means no limit. Nothing is sent until it is iterated."""
        return self.db._cursor(_calls.find_vectors(self.name, query, limit, page_size), timeout)

    def drop(self) -> bool:
        return self.db.drop_vector_collection(self.name)
