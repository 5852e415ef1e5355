"""AsyncNexaDB (nexadb.aio) against the real server: the sync tests' flows, awaited.

Each test runs its coroutine in a fresh event loop (asyncio.run), with an AsyncNexaDB made
inside it: a grpc.aio channel belongs to the loop it was made in.
"""
import asyncio
import datetime
import inspect
import subprocess

import grpc
import pytest

import nexadb
from nexadb import AsyncNexaDB
from testserver import ROOT, Server


@pytest.fixture
def run(server):
    """run(body): awaits body(db) with an AsyncNexaDB on the test server, in a new loop."""
    def run_body(body):
        async def main():
            async with AsyncNexaDB("127.0.0.1", server.port, api_key=server.api_key) as db:
                return await body(db)
        return asyncio.run(main())
    return run_body


def test_api_mirrors_the_sync_client():
    """Every public method of the sync classes exists on the async ones with the same
    parameters, as a coroutine except those that send nothing (handles and cursors),
    documented where the sync one is."""
    for sync_cls, async_cls, plain in (
            (nexadb.NexaDB, nexadb.AsyncNexaDB, {"collection", "watch", "advance_log_index"}),
            (nexadb.Collection, nexadb.AsyncCollection, {"find_iter", "aggregate_iter", "watch"}),
            (nexadb.VectorCollection, nexadb.AsyncVectorCollection, {"find"})):
        for name, f in inspect.getmembers(sync_cls, inspect.isfunction):
            if name.startswith("_"):
                continue
            af = getattr(async_cls, name)
            assert inspect.signature(af).parameters == inspect.signature(f).parameters, name
            assert inspect.iscoroutinefunction(af) != (name in plain), f"{async_cls.__name__}.{name}"
            assert af.__doc__ or not f.__doc__, f"{async_cls.__name__}.{name} has no docstring"
    assert nexadb.AsyncCollection.insert.__doc__ == nexadb.Collection.insert.__doc__
    assert inspect.signature(nexadb.AsyncNexaDB) == inspect.signature(nexadb.NexaDB)


def test_made_outside_a_loop_is_refused():
    with pytest.raises(RuntimeError, match="inside a running event loop"):
        AsyncNexaDB("127.0.0.1", 1)


def test_brief_quick_start(run, coll_name):
    async def body(db):
        users = db.collection(coll_name)
        uid = await users.insert({"name": "Alice Johnson", "email": "alice@example.com", "age": 28,
                                  "tags": ["python", "database"]})
        assert isinstance(uid, str) and uid
        got = [(u["name"], u["age"]) for u in await users.find({"age": {"$gt": 25}})]
        assert got == [("Alice Johnson", 28)] and type(got[0][1]) is int
        assert await users.update(uid, {"age": 29}) is True
        assert (await users.find_by_id(uid))["age"] == 29
        assert await users.delete(uid) is True
        assert await users.find_by_id(uid) is None
        assert await users.drop() is True
    run(body)


def test_values_keep_their_types(run, coll_name):
    when = datetime.datetime(2024, 2, 29, 23, 59, 58, 123000, tzinfo=datetime.timezone.utc)
    doc = {"z": 2**63 - 1, "a": -2**63, "m": 2**53 + 1, "f": 2.5, "when": when,
           "raw": b"\x00\xffbytes", "nested": [{"b": 1, "a": [when, None]}], "t": True}

    async def body(db):
        c = db.collection(coll_name)
        uid = await c.insert(doc)
        got = await c.find_by_id(uid)
        assert list(got)[3:] == list(doc)  # after _id, _created_at, _updated_at: the caller's order
        assert {k: got[k] for k in doc} == doc
        assert type(got["f"]) is float and got["when"].tzinfo is not None
        assert await c.count({"m": 2**53}) == 0 and await c.count({"m": 2**53 + 1}) == 1
        with pytest.raises(ValueError):
            await c.insert({"x": 2**64})
        await c.drop()
    run(body)


def test_find_pages_explain_sort_projection(run, coll_name):
    async def body(db):
        c = db.collection(coll_name)
        ids = await c.insert_many([{"i": i, "sq": i * i} for i in range(25)])
        assert len(set(ids)) == 25
        first = await c.find(sort="i", limit=10)
        assert isinstance(first, nexadb.Results) and [d["i"] for d in first] == list(range(10))
        second = await c.find(sort="i", limit=10, page_token=first.next_page_token)
        assert [d["i"] for d in second] == list(range(10, 20))
        third = await c.find(sort="i", limit=10, page_token=second.next_page_token)
        assert [d["i"] for d in third] == list(range(20, 25)) and third.next_page_token == ""
        plan = (await c.find({"i": {"$gt": 20}}, explain=True)).explain
        assert plan["plan"] == "COLLSCAN" and plan["returned"] == 4
        docs = await c.find({"i": {"$lt": 3}}, sort=[("i", -1)], projection={"sq": 1})
        assert [d["sq"] for d in docs] == [4, 1, 0] and {k for d in docs for k in d} == {"_id", "sq"}
        assert (await c.find_one({"i": {"$gt": 5}}, sort="-i"))["i"] == 24
        assert await c.find_one({"i": -1}) is None
        await c.drop()
    run(body)


def test_find_iter_streams_and_cancels_when_left_early(run, coll_name):
    async def body(db):
        c = db.collection(coll_name)
        await c.insert_many([{"i": i, "pad": "x" * 100} for i in range(2000)])
        cur = c.find_iter(sort="i", page_size=50)
        assert [d["i"] async for d in cur] == list(range(2000))
        assert len(await cur.to_list()) == 2000  # each iteration runs the query again
        assert (await cur.first())["i"] == 0

        calls = _record_calls(cur)
        async for d in cur:
            if d["i"] == 10:
                break
        for _ in range(100):  # asyncio closes the abandoned iterator a turn or two later
            if calls[-1].cancelled():
                break
            await asyncio.sleep(0)
        assert calls[-1].cancelled() and await calls[-1].code() == grpc.StatusCode.CANCELLED

        it = cur.__aiter__()
        assert (await it.__anext__())["i"] == 0
        await it.aclose()
        assert calls[-1].cancelled()

        async with cur:
            async for d in cur:
                break
            await cur.aclose()
            assert calls[-1].cancelled()
        assert await c.count() == 2000
        await c.drop()
    run(body)


def _record_calls(cursor):
    """The grpc.aio calls cursor starts from now on, to see whether each was cancelled."""
    calls = []
    start = cursor._start
    cursor._start = lambda route: calls.append(start(route)) or calls[-1]
    return calls


def test_aggregate_and_aggregate_iter(run, coll_name):
    async def body(db):
        c = db.collection(coll_name)
        await c.insert_many([
            {"name": "Laptop", "category": "Electronics", "price": 1200},
            {"name": "Mouse", "category": "Electronics", "price": 25},
            {"name": "Desk", "category": "Furniture", "price": 300},
        ])
        pipeline = [{"$group": {"_id": "$category", "count": {"$sum": 1}, "avg_price": {"$avg": "$price"}}},
                    {"$sort": {"count": -1}}]
        want = [{"_id": "Electronics", "count": 2, "avg_price": 612.5},
                {"_id": "Furniture", "count": 1, "avg_price": 300}]
        assert await c.aggregate(pipeline) == want
        assert [d async for d in c.aggregate_iter(pipeline, page_size=1)] == want
        await c.drop()
    run(body)


def test_updates_and_deletes(run, coll_name):
    async def body(db):
        c = db.collection(coll_name)
        await c.insert_many([{"city": "SF", "status": "active", "n": 1},
                             {"city": "SF", "status": "inactive", "n": 1},
                             {"city": "NY", "status": "inactive", "n": 1}])
        assert await c.update("no-such-id", {"n": 1}) is False
        assert await c.delete("no-such-id") is False
        assert await c.find_by_id("no-such-id") is None
        assert await c.update_many({"city": "SF"}, {"$inc": {"n": 1}}) == 2
        assert await c.count({"n": 2}) == 2
        assert await c.delete_many({"status": "inactive"}) == 2
        assert await c.count() == 1
        assert await c.delete_many() == 1
        await c.drop()
    run(body)


def test_collections_indexes_and_server(run, coll_name):
    async def body(db):
        info = await db.create_collection(coll_name)
        assert info["name"] == coll_name and info["kind"] == "documents"
        c = db.collection(coll_name)
        await c.insert_many([{"city": "SF", "age": 30}, {"city": "NY", "age": 40}])
        idx = await c.create_index({"city": 1, "age": -1})
        assert idx["fields"] == [("city", 1), ("age", -1)]
        assert idx["name"] in {i["name"] for i in await c.list_indexes()}
        assert await c.drop_index(idx["name"]) is True and await c.drop_index(idx["name"]) is False
        assert {x["name"]: x["count"] for x in await db.list_collections()}[coll_name] == 2
        assert await db.drop_collection(coll_name) is True
        assert await db.drop_collection(coll_name) is False
        assert (await db.status())["status"] == "ok"
        assert (await db.stats())["rss_bytes"] > 0
    run(body)


def test_vectors(run, coll_name):
    async def body(db):
        handle = db.vector_collection(coll_name, dimensions=4)
        assert inspect.isawaitable(handle)
        vecs = await handle
        assert vecs.dimensions == 4
        assert coll_name in {v["name"] for v in await db.list_vector_collections()}
        with pytest.raises(nexadb.AlreadyExistsError):
            await db.vector_collection(coll_name, dimensions=8)
        a = await vecs.insert({"name": "a"}, vector=[1, 0, 0, 0])
        ids = await vecs.insert_many([{"name": "b"}, {"name": "c"}], [[0.9, 0.1, 0, 0], [0, 0, 1, 0]])
        (id0, s0, d0), (id1, _, _) = await vecs.search([1, 0, 0, 0], limit=2)
        assert (id0, d0["name"], id1) == (a, "a", ids[0]) and s0 == pytest.approx(1.0, abs=1e-5)
        hits = await vecs.search([1, 0, 0, 0], limit=10, filter={"name": "c"}, include_vectors=True)
        assert [h.doc_id for h in hits] == [ids[1]] and hits[0].vector == pytest.approx([0, 0, 1, 0])
        batch = await vecs.search_batch([[1, 0, 0, 0], [0, 0, 1, 0]], limit=1)
        assert [r[0].doc_id for r in batch] == [a, ids[1]]
        assert await vecs.upsert(a, {"name": "a2"}, [0, 1, 0, 0]) is False
        got = await vecs.get(a, include_vector=True)
        assert got["name"] == "a2" and got["_vector"] == pytest.approx([0, 1, 0, 0])
        found = [v async for v in vecs.find(page_size=1)]
        assert sorted(v.doc["_id"] for v in found) == sorted([a, *ids])
        assert all(isinstance(v, nexadb.VectorDocument) and len(v.vector) == 4 for v in found)
        assert await vecs.delete(a) is True and await vecs.get(a) is None
        plain = await db.vector_collection(coll_name)  # no dimensions: a handle, nothing sent
        assert plain.name == coll_name and plain.dimensions is None
        assert await vecs.drop() is True
        assert await db.drop_vector_collection(coll_name) is False
    run(body)


def test_vector_index_and_explain(run, coll_name):
    async def body(db):
        vecs = await db.vector_collection(coll_name, dimensions=4, index="hnsw", ef_construction=50)
        assert (await vecs.info())["index"] == {"kind": "hnsw", "m": 16, "ef_construction": 50,
                                                "quantization": "none", "oversample": 0}
        a = await vecs.insert({"name": "a"}, vector=[1, 0, 0, 0])
        e = await vecs.explain([1, 0, 0, 0], limit=1, ef=20)
        assert e["plan"]["path"] == "exact", "a collection this small is searched exactly"
        assert [h.doc_id for h in e["results"]] == [a]
        assert [h.doc_id for h in await vecs.search([1, 0, 0, 0], limit=1, ef=20, exact=True)] == [a]
        assert [r[0].doc_id for r in await vecs.search_batch([[1, 0, 0, 0]], limit=1, ef=20)] == [a]
        assert (await vecs.set_index("exact"))["index"]["kind"] == "exact"
        assert await vecs.drop() is True
    run(body)


def test_errors_map_to_their_classes(run, coll_name, server, monkeypatch):
    async def body(db):
        c = db.collection(coll_name)
        await c.insert({"_id": "fixed", "a": 1})
        with pytest.raises(nexadb.AlreadyExistsError) as e:
            await c.insert({"_id": "fixed"})
        assert e.value.code == grpc.StatusCode.ALREADY_EXISTS and e.value.method == "InsertOne"
        with pytest.raises(nexadb.InvalidArgumentError):
            await c.find({"a": {"$bogus": 1}})
        with pytest.raises(nexadb.InvalidArgumentError):
            [d async for d in c.find_iter({"a": {"$bogus": 1}})]
        with pytest.raises(nexadb.InvalidArgumentError):
            await c.aggregate([{"$nosuchstage": {}}])
        with pytest.raises(nexadb.NotFoundError):
            await (await db.vector_collection("no_such_vectors")).find().to_list()
        with pytest.raises(ValueError, match="sort direction"):
            await c.find(sort={"a": 2})
        with pytest.raises(ValueError, match="metric"):
            await db.vector_collection("v", dimensions=3, metric="hamming")
        await c.drop()
    run(body)

    monkeypatch.delenv("NEXADB_API_KEY", raising=False)

    async def anonymous():
        async with AsyncNexaDB("127.0.0.1", server.port) as db:
            assert (await db.status())["status"] == "ok"  # Status needs no key
            with pytest.raises(nexadb.AuthenticationError):
                await db.collection(coll_name).insert({"a": 1})
    asyncio.run(anonymous())

    monkeypatch.setenv("NEXADB_API_KEY", server.api_key)

    async def from_environment():
        async with AsyncNexaDB("127.0.0.1", server.port) as db:
            assert (await db.stats())["rss_bytes"] > 0
    asyncio.run(from_environment())


def test_from_rpc_error_takes_aio_errors():
    e = grpc.aio.AioRpcError(grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), grpc.aio.Metadata(),
                             details="no such thing")
    err = nexadb.errors.from_rpc_error(e, "Get")
    assert isinstance(err, nexadb.NotFoundError)
    assert (err.code, err.details, err.method) == (grpc.StatusCode.NOT_FOUND, "no such thing", "Get")


def test_unreachable_server_is_unavailable():
    async def body():
        async with AsyncNexaDB("127.0.0.1", 1, api_key="k", timeout=2) as db:
            with pytest.raises(nexadb.UnavailableError):
                await db.status()
            with pytest.raises(nexadb.UnavailableError):
                await db.collection("c").find_iter().to_list()
    asyncio.run(body())


def test_many_concurrent_calls_share_one_channel(run, coll_name):
    async def body(db):
        c = db.collection(coll_name)
        ids = await asyncio.gather(*(c.insert({"i": i}) for i in range(200)))
        assert len(set(ids)) == 200
        assert await c.count() == 200
        counts = await asyncio.gather(*(c.count({"i": {"$lt": n}}) for n in range(0, 200, 10)))
        assert counts == list(range(0, 200, 10))
        await c.drop()
    run(body)


def test_mtls(tmp_path_factory):
    certs = tmp_path_factory.mktemp("certs")
    subprocess.run([str(ROOT / "tests/tls/mkcerts.sh"), str(certs)], check=True, capture_output=True)
    srv = Server(tmp_path_factory.mktemp("mtls") / "data",
                 ["--tls-cert", str(certs / "server.crt"), "--tls-key", str(certs / "server.key"),
                  "--tls-client-ca", str(certs / "ca.crt")]).start()
    pem = lambda n: (certs / n).read_bytes()  # noqa: E731

    async def body():
        async with AsyncNexaDB("localhost", srv.port, api_key=srv.api_key, timeout=5,
                               root_certificates=pem("ca.crt"), client_cert=pem("client.crt"),
                               client_key=pem("client.key")) as db:
            assert (await db.stats())["rss_bytes"] > 0
        async with AsyncNexaDB("localhost", srv.port, api_key=srv.api_key, timeout=5,
                               root_certificates=pem("ca.crt"),
                               options=[("grpc.use_local_subchannel_pool", 1)]) as db:
            with pytest.raises(nexadb.UnavailableError):
                await db.stats()  # the server wants a client certificate
        with pytest.raises(ValueError, match="go together"):
            AsyncNexaDB("localhost", srv.port, client_cert=pem("client.crt"))
    try:
        asyncio.run(body())
    finally:
        srv.stop()


def test_backup_archive(run, coll_name):
    import io

    async def body(db):
        await db.collection(coll_name).insert({"a": 1})
        buf, seen = io.BytesIO(), []
        last = await db.backup(archive=buf, progress=seen.append)
        assert last["done"] and last["sequence"] > 0 and buf.getvalue()[-1024:] == bytes(1024)
        assert seen[-1]["bytes_done"] == seen[-1]["bytes_total"] > 0
    run(body)
