"""AsyncNexaDB: the NexaDB API for asyncio, on grpc.aio.

    async with AsyncNexaDB('localhost', 6970, api_key='...') as db:
        users = db.collection('users')
        uid = await users.insert({'name': 'Alice', 'age': 28})
        async for u in users.find_iter({'age': {'$gt': 25}}):
            print(u['name'])
        vecs = await db.vector_collection('articles', dimensions=384)   # awaited: it may create

NexaDB, Collection and VectorCollection have their counterparts here, with the same methods
taking the same arguments and giving the same answers and errors: the requests and the
conversion of results are the same code (_calls.py), and a method documented no differently
carries the sync one's docstring. What differs:
- AsyncNexaDB must be made inside a running event loop (its channel belongs to that loop),
  and is closed with `await db.close()` or `async with`.
- db.vector_collection(...) is a coroutine, as it creates the collection when given
  dimensions; db.collection(name) stays a plain method.
- Every method that sends something is a coroutine. find_iter, aggregate_iter and a vector
  collection's find are not (nothing is sent until the loop starts): they return an
  AsyncCursor, read with `async for`, closed with `await cursor.aclose()`. watch() is not
  either (the call starts at once, nothing is awaited): it returns an AsyncChangeStream.
Many calls may run at once on one AsyncNexaDB (asyncio.gather): the channel multiplexes them.
"""
from __future__ import annotations

import asyncio
from typing import (Any, AsyncIterator, BinaryIO, Callable, Dict, Iterable, List, Mapping,
                    Optional, Sequence, TypeVar)

import grpc
import grpc.aio

from . import _calls, errors
from ._calls import Call, Query, SortSpec, Stream
from ._connection import Connection
from ._results import BaseCursor, Document, Results, SearchResult, add_page
from ._watch import BaseChangeStream
from .client import Collection, NexaDB, VectorCollection

__all__ = ["AsyncNexaDB", "AsyncCollection", "AsyncVectorCollection", "AsyncCursor", "AsyncChangeStream"]

_T = TypeVar("_T")


def _docs_from(sync_cls: type) -> Callable[[_T], _T]:
    """Class decorator: a public method without a docstring takes the one of the sync
    method it mirrors, so help() documents it and the text is written once."""
    def apply(cls):
        for name, f in vars(cls).items():
            if not name.startswith("_") and callable(f) and f.__doc__ is None:
                f.__doc__ = getattr(sync_cls, name).__doc__
        return cls
    return apply


class AsyncCursor(BaseCursor):
    """Results of a streaming call (find_iter, aggregate_iter, a vector collection's find),
    read lazily with `async for`.

    As Cursor: the server sends a page of documents per message and the next message is
    read only when the current page is used up; each `async for` runs the query again;
    nothing is sent until then; a follower's redirect to the leader is followed before the
    first page arrives. Leaving a loop early cancels its stream: the loop's iterator
    is an async generator whose `finally` cancels the call, run by its aclose() or, after a
    break or an exception, by asyncio a turn or two of the event loop later (it closes
    abandoned async generators). `await cursor.aclose()` (or `async with cursor:`) cancels
    every stream of the cursor at once, right away.
    """

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._read()

    async def _read(self) -> AsyncIterator[Any]:
        route = self._route()
        while True:
            call = self._start(route)
            started = False
            try:
                async for msg in call:
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

    async def to_list(self) -> List[Any]:
        return [d async for d in self]

    async def first(self) -> Optional[Any]:
        """The first item, or None; the rest of the stream is cancelled."""
        it = self._read()
        try:
            async for d in it:
                return d
            return None
        finally:
            await it.aclose()

    async def aclose(self) -> None:
        """Cancels the streams being read; a loop still reading one in another task gets
        asyncio.CancelledError (grpc.aio's signal for a call cancelled locally)."""
        self._cancel_all()

    async def __aenter__(self) -> "AsyncCursor":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


class AsyncChangeStream(BaseChangeStream):
    """ChangeStream for asyncio: `async for event in stream`, `await stream.aclose()` or
    `async with coll.watch() as stream:`. As ChangeStream, except that the stream is in place
    (every change committed after that comes) once `async with` has entered or the first
    `__anext__` has begun reading: watch() itself is no coroutine; resume_token follows events and heartbeats; a dropped connection (UNAVAILABLE)
    is resumed once after resume_token, waiting for the server up to the client's timeout;
    iteration ends after a collection's 'invalidate' event or aclose() (from another task
    too)."""

    def __init__(self, db: "AsyncNexaDB", make: Callable[[Optional[str]], Stream],
                 resume_after: Optional[str]):
        super().__init__(db, make, resume_after)
        self._call = db._invoke(self._request(), None)
        self._started = False

    async def _start(self) -> None:
        """Reads the server's first message: the stream is then in place."""
        self._started = True
        try:
            msg = await self._call.read()
        except grpc.RpcError as e:
            self._closed = True
            raise errors.from_rpc_error(e, "Watch") from None
        if msg is grpc.aio.EOF:
            self._closed = True
        else:
            self._take(msg)

    def __aiter__(self) -> "AsyncChangeStream":
        return self

    async def __anext__(self) -> Document:
        if not self._started:
            await self._start()
        while not self._events:
            if self._closed:
                raise StopAsyncIteration
            try:
                msg = await self._call.read()
            except asyncio.CancelledError:
                if self._closed:  # aclose() cancelled the call: grpc.aio's signal for it
                    raise StopAsyncIteration from None
                raise
            except grpc.RpcError as e:
                if self._closed:
                    raise StopAsyncIteration from None
                if not self._may_resume(e):
                    self._closed = True
                    raise errors.from_rpc_error(e, "Watch") from None
                await self._reconnect(e)
                continue
            if msg is grpc.aio.EOF:
                self._closed = True
                raise StopAsyncIteration
            self._take(msg)
        return self._pop()

    async def _reconnect(self, cause: grpc.RpcError) -> None:
        """As ChangeStream's: calls again once the channel is ready, reading the new stream's
        first message, trying again after UNAVAILABLE until the timeout."""
        deadline = self._deadline()
        while not self._closed:
            try:
                await asyncio.wait_for(self._db._channel.channel_ready(), self._remaining(deadline))
            except asyncio.TimeoutError:
                self._closed = True
                raise errors.from_rpc_error(cause, "Watch") from None
            self._call = self._db._invoke(self._request(), None)
            try:
                msg = await self._call.read()
            except asyncio.CancelledError:
                if self._closed:
                    return
                raise
            except grpc.RpcError as e:
                if self._closed:
                    return
                if not self._may_retry(e, deadline):
                    self._closed = True
                    raise errors.from_rpc_error(e, "Watch") from None
                cause = e
                await asyncio.sleep(0.05)
                continue
            if msg is grpc.aio.EOF:
                self._closed = True
            else:
                self._take(msg)
            return

    async def aclose(self) -> None:
        """Stops the stream: the call is cancelled, iteration (in any task) ends."""
        self._mark_closed()

    async def __aenter__(self) -> "AsyncChangeStream":
        if not self._started:
            await self._start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


@_docs_from(NexaDB)
class AsyncNexaDB(Connection):
    """A connection to a NexaDB server for asyncio.

    AsyncNexaDB(host='localhost', port=6970, api_key=None, *, tls=False,
                root_certificates=None, client_cert=None, client_key=None, timeout=30.0,
                options=(), read_concern='linearizable')

    The arguments are NexaDB's (API key from $NEXADB_API_KEY, TLS and mTLS, the per-call
    timeout, the read concern with db.log_index and db.advance_log_index), and so is the
    following of a cluster follower's redirect to the leader
    (db.address says where calls go). Make it inside a running event loop, the one that will use it: a grpc.aio
    channel belongs to one loop. Close it with `await db.close()` or `async with`.
    """

    _grpc = grpc.aio

    def _open(self, target: str, creds: Optional[grpc.ChannelCredentials], opts: list) -> Any:
        """Refuses to open outside a running loop: grpc.aio would bind the channel to
        another loop, and the first call would fail far from the cause."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("AsyncNexaDB must be created inside a running event loop "
                               "(in a coroutine); use NexaDB outside asyncio") from None
        return super()._open(target, creds, opts)

    # -- plumbing ------------------------------------------------------------------------

    async def _run(self, call: Call) -> Any:
        route = self._route(self.timeout)
        while True:
            rpc = route.send(call)
            try:
                response = await rpc
            except grpc.RpcError as e:  # grpc.aio.AioRpcError
                if route.follow(e):
                    continue
                return call.failed(e)
            self._observe(await rpc.trailing_metadata())
            return call.result(response)

    def _cursor(self, stream: Stream, timeout: Optional[float]) -> AsyncCursor:
        return AsyncCursor(lambda: self._route(timeout), stream)

    async def _collect(self, stream: Stream, timeout: Optional[float]) -> Results:
        """Reads a whole stream of document pages into Results, following a follower's
        redirect to the leader until the first page arrives."""
        route = self._route(timeout)
        while True:
            out, started = Results(), False
            try:
                async for msg in route.send(stream):
                    started = True
                    add_page(out, msg)
                return out
            except grpc.RpcError as e:
                if started or not route.follow(e):
                    raise errors.from_rpc_error(e, stream.method) from None

    async def close(self) -> None:
        """Closes the channels (to the leader too, after a redirect), cancelling calls still
        running; handles made from this AsyncNexaDB stop working."""
        for channel in self._close_channels():
            await channel.close()

    async def __aenter__(self) -> "AsyncNexaDB":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- collections ---------------------------------------------------------------------

    def collection(self, name: str) -> "AsyncCollection":
        return AsyncCollection(self, name)

    def watch(self, pipeline: Optional[Sequence[Mapping[str, Any]]] = None,
              resume_after: Optional[str] = None, full_document: Optional[str] = None) -> AsyncChangeStream:
        return AsyncChangeStream(self, lambda token: _calls.watch("", pipeline, token, full_document),
                                 resume_after)

    async def vector_collection(self, name: str, dimensions: Optional[int] = None,
                                metric: str = "cosine", *, index: Optional[str] = None, m: int = 0,
                                ef_construction: int = 0, quantization: str = "none",
                                oversample: int = 0) -> "AsyncVectorCollection":
        """A handle on a vector collection; a coroutine, unlike collection(), because with
        dimensions it creates the collection unless one with the same dimensions and metric
        exists (a different one raises AlreadyExistsError). index: 'exact' (the default)
        or 'hnsw' (with m and ef_construction; 0: the server's defaults), as in
        NexaDB.vector_collection."""
        ix = None if index is None else _calls.vector_index(index, m, ef_construction, quantization,
                                                            oversample)
        create = _calls.create_vector_collection(name, dimensions, metric, ix)
        if create is not None:
            await self._run(create)
        return AsyncVectorCollection(self, name, dimensions)

    async def create_collection(self, name: str) -> Dict[str, Any]:
        return await self._run(_calls.create_collection(name))

    async def drop_collection(self, name: str) -> bool:
        return await self._run(_calls.drop_collection(name))

    async def list_collections(self) -> List[Dict[str, Any]]:
        return await self._run(_calls.list_collections())

    async def drop_vector_collection(self, name: str) -> bool:
        return await self._run(_calls.drop_vector_collection(name))

    async def list_vector_collections(self) -> List[Dict[str, Any]]:
        return await self._run(_calls.list_vector_collections())

    # -- server --------------------------------------------------------------------------

    async def status(self) -> Dict[str, Any]:
        return await self._run(_calls.status())

    async def stats(self) -> Dict[str, Any]:
        return await self._run(_calls.stats())

    async def backup(self, name: Optional[str] = None, *, archive: Optional[BinaryIO] = None,
                     previous: Optional[str] = None, previous_listing: Optional[bytes] = None,
                     progress: Optional[Callable[[Dict[str, Any]], None]] = None,
                     timeout: Optional[float] = None) -> Dict[str, Any]:
        stream = _calls.backup(name, archive is not None, previous, previous_listing)
        last: Dict[str, Any] = {}
        try:
            async for msg in self._invoke(stream, timeout):
                last = _calls.backup_message(msg, archive, progress)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e, stream.method) from None
        return _calls.backup_result(last)


@_docs_from(Collection)
class AsyncCollection:
    """A document collection for asyncio: Collection's methods as coroutines, except
    find_iter and aggregate_iter, which return an AsyncCursor. Made by
    AsyncNexaDB.collection(name)."""

    def __init__(self, db: AsyncNexaDB, name: str):
        self.db = db
        self.name = name

    def __repr__(self) -> str:
        return f"AsyncCollection({self.name!r})"

    # -- writes --------------------------------------------------------------------------

    async def insert(self, document: Mapping[str, Any]) -> str:
        return await self.db._run(_calls.insert_one(self.name, document))

    async def insert_many(self, documents: Iterable[Mapping[str, Any]]) -> List[str]:
        return await self.db._run(_calls.insert_many(self.name, documents))

    async def update(self, id: str, fields: Mapping[str, Any]) -> bool:
        return await self.db._run(_calls.update(self.name, id, fields))

    async def update_many(self, query: Mapping[str, Any], update: Mapping[str, Any],
                          upsert: bool = False) -> int:
        return await self.db._run(_calls.update_many(self.name, query, update, upsert))

    async def delete(self, id: str) -> bool:
        return await self.db._run(_calls.delete(self.name, id))

    async def delete_many(self, query: Query = None) -> int:
        return await self.db._run(_calls.delete_many(self.name, query))

    # -- reads ---------------------------------------------------------------------------

    async def find(self, query: Query = None, limit: int = 0, *, skip: int = 0,
                   sort: SortSpec = None, projection: Query = None, page_token: str = "",
                   explain: bool = False, page_size: int = 0,
                   timeout: Optional[float] = None) -> Results:
        return await self.db._collect(_calls.find(self.name, query, limit, skip, sort, projection,
                                                  page_token, explain, page_size), timeout)

    def find_iter(self, query: Query = None, limit: int = 0, *, skip: int = 0,
                  sort: SortSpec = None, projection: Query = None, page_token: str = "",
                  page_size: int = 0, timeout: Optional[float] = None) -> AsyncCursor:
        """find() as a lazy AsyncCursor for `async for`: pages are read from the server as
        iteration reaches them. A plain method: nothing is sent until it is iterated."""
        return self.db._cursor(_calls.find(self.name, query, limit, skip, sort, projection,
                                           page_token, False, page_size), timeout)

    async def find_one(self, query: Query = None, *, sort: SortSpec = None,
                       projection: Query = None) -> Optional[Document]:
        return await self.db._run(_calls.find_one(self.name, query, sort, projection))

    async def find_by_id(self, id: str) -> Optional[Document]:
        return await self.db._run(_calls.get(self.name, id))

    async def count(self, query: Query = None) -> int:
        return await self.db._run(_calls.count(self.name, query))

    async def aggregate(self, pipeline: Sequence[Mapping[str, Any]], *, page_size: int = 0,
                        timeout: Optional[float] = None) -> Results:
        return await self.db._collect(_calls.aggregate(self.name, pipeline, page_size), timeout)

    def aggregate_iter(self, pipeline: Sequence[Mapping[str, Any]], *, page_size: int = 0,
                       timeout: Optional[float] = None) -> AsyncCursor:
        """aggregate() as a lazy AsyncCursor for `async for`; nothing is sent until it is
        iterated."""
        return self.db._cursor(_calls.aggregate(self.name, pipeline, page_size), timeout)

    def watch(self, pipeline: Optional[Sequence[Mapping[str, Any]]] = None,
              resume_after: Optional[str] = None, full_document: Optional[str] = None) -> AsyncChangeStream:
        return AsyncChangeStream(self.db, lambda token: _calls.watch(self.name, pipeline, token, full_document),
                                 resume_after)

    # -- collection and indexes ----------------------------------------------------------

    async def drop(self) -> bool:
        return await self.db.drop_collection(self.name)

    async def create_index(self, fields: SortSpec, *, unique: bool = False, name: str = "",
                           expire_after_seconds: Optional[int] = None) -> Dict[str, Any]:
        return await self.db._run(_calls.create_index(self.name, fields, unique, name, expire_after_seconds))

    async def drop_index(self, name: str) -> bool:
        return await self.db._run(_calls.drop_index(self.name, name))

    async def list_indexes(self) -> List[Dict[str, Any]]:
        return await self.db._run(_calls.list_indexes(self.name))


@_docs_from(VectorCollection)
class AsyncVectorCollection:
    """A vector collection for asyncio: VectorCollection's methods as coroutines, except
    find, which returns an AsyncCursor. Made by `await AsyncNexaDB.vector_collection(...)`."""

    def __init__(self, db: AsyncNexaDB, name: str, dimensions: Optional[int] = None):
        self.db = db
        self.name = name
        self.dimensions = dimensions

    def __repr__(self) -> str:
        return f"AsyncVectorCollection({self.name!r}, dimensions={self.dimensions})"

    async def insert(self, document: Mapping[str, Any], vector: Sequence[float]) -> str:
        return await self.db._run(_calls.insert_vector(self.name, document, vector))

    async def insert_many(self, documents: Sequence[Mapping[str, Any]],
                          vectors: Sequence[Sequence[float]]) -> List[str]:
        return await self.db._run(_calls.insert_vectors(self.name, documents, vectors))

    async def upsert(self, id: str, document: Mapping[str, Any], vector: Sequence[float]) -> bool:
        return await self.db._run(_calls.upsert_vector(self.name, id, document, vector))

    async def get(self, id: str, include_vector: bool = False) -> Optional[Document]:
        return await self.db._run(_calls.get_vector(self.name, id, include_vector))

    async def delete(self, id: str) -> bool:
        return await self.db._run(_calls.delete_vector(self.name, id))

    async def search(self, query_vector: Sequence[float], limit: int = 10, *,
                     filter: Query = None, min_score: Optional[float] = None,
                     include_vectors: bool = False, ef: Optional[int] = None,
                     exact: bool = False) -> List[SearchResult]:
        o = _calls.SearchOptions(filter, min_score, include_vectors, ef, exact)
        return await self.db._run(_calls.search(self.name, self.dimensions, query_vector, limit, o))

    async def explain(self, query_vector: Sequence[float], limit: int = 10, *,
                      filter: Query = None, min_score: Optional[float] = None,
                      ef: Optional[int] = None, exact: bool = False) -> Dict[str, Any]:
        o = _calls.SearchOptions(filter, min_score, False, ef, exact)
        return await self.db._run(_calls.search(self.name, self.dimensions, query_vector, limit, o,
                                                explain=True))

    async def search_batch(self, query_vectors: Sequence[Sequence[float]], limit: int = 10, *,
                           filter: Query = None, min_score: Optional[float] = None,
                           include_vectors: bool = False, ef: Optional[int] = None,
                           exact: bool = False) -> List[List[SearchResult]]:
        o = _calls.SearchOptions(filter, min_score, include_vectors, ef, exact)
        return await self.db._run(_calls.search_batch(self.name, query_vectors, limit, o))

    async def set_index(self, index: str, *, m: int = 0, ef_construction: int = 0,
                        quantization: str = "none", oversample: int = 0) -> Dict[str, Any]:
        ix = _calls.vector_index(index, m, ef_construction, quantization, oversample)
        return await self.db._run(_calls.set_vector_index(self.name, ix))

    async def info(self) -> Dict[str, Any]:
        return await self.db._run(_calls.vector_collection_info(self.name))

    async def create_index(self, fields: SortSpec, *, unique: bool = False, name: str = "",
                           expire_after_seconds: Optional[int] = None) -> Dict[str, Any]:
        return await self.db._run(_calls.create_index(self.name, fields, unique, name,
                                                      expire_after_seconds, vectors=True))

    async def drop_index(self, name: str) -> bool:
        return await self.db._run(_calls.drop_index(self.name, name, vectors=True))

    async def list_indexes(self) -> List[Dict[str, Any]]:
        return await self.db._run(_calls.list_indexes(self.name, vectors=True))

    def find(self, query: Query = None, limit: int = 0, *, page_size: int = 0,
             timeout: Optional[float] = None) -> AsyncCursor:
        """The documents matching query (all when None) with their stored vectors, in _id
        order from one snapshot, as a lazy AsyncCursor of VectorDocument(doc, vector) pairs
        (for export). limit=0 means no limit. Nothing is sent until it is iterated."""
        return self.db._cursor(_calls.find_vectors(self.name, query, limit, page_size), timeout)

    async def drop(self) -> bool:
        return await self.db.drop_vector_collection(self.name)
