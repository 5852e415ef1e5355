"""Every Collection method against the real server, the brief's examples included."""
import grpc
import pytest

import nexadb


@pytest.fixture
def users(db, coll_name):
    c = db.collection(coll_name)
    yield c
    c.drop()


def test_brief_quick_start(users):
    uid = users.insert({"name": "Alice Johnson", "email": "alice@example.com", "age": 28,
                        "tags": ["python", "database"]})
    assert isinstance(uid, str) and uid
    results = users.find({"age": {"$gt": 25}})
    got = [(u["name"], u["age"]) for u in results]
    assert got == [("Alice Johnson", 28)]
    assert type(got[0][1]) is int
    assert users.update(uid, {"age": 29}) is True
    assert users.find_by_id(uid)["age"] == 29
    assert users.delete(uid) is True
    assert users.find_by_id(uid) is None


def test_insert_and_read_back_types(users):
    doc = {"s": "x", "i": 7, "f": 2.5, "b": False, "n": None, "arr": [1, [2], {"k": "v"}],
           "profile": {"bio": "eng", "loc": {"city": "SF"}}}
    uid = users.insert(doc)
    got = users.find_by_id(uid)
    assert got["_id"] == uid
    assert "_created_at" in got and "_updated_at" in got
    for k, v in doc.items():
        assert got[k] == v, k
    assert type(got["i"]) is int and type(got["f"]) is float


def test_insert_with_own_id_and_duplicate(users):
    assert users.insert({"_id": "fixed-1", "a": 1}) == "fixed-1"
    with pytest.raises(nexadb.AlreadyExistsError) as e:
        users.insert({"_id": "fixed-1", "a": 2})
    assert e.value.code == grpc.StatusCode.ALREADY_EXISTS


def test_insert_many_count_find_one(users):
    ids = users.insert_many([{"name": n, "age": a, "city": c} for n, a, c in
                             [("a", 20, "SF"), ("b", 30, "NY"), ("c", 40, "SF"), ("d", 50, "LA")]])
    assert len(ids) == 4 and len(set(ids)) == 4
    assert users.find_by_id(ids[2])["name"] == "c"
    assert users.count() == 4
    assert users.count({"city": "SF"}) == 2
    assert users.count({"age": {"$gte": 30, "$lt": 50}}) == 2
    assert users.find_one({"city": "NY"})["name"] == "b"
    assert users.find_one({"city": "Paris"}) is None
    assert users.find_one({"city": "SF"}, sort={"age": -1})["name"] == "c"


def test_find_limit_skip_sort_projection(users):
    users.insert_many([{"n": i, "sq": i * i, "tag": "even" if i % 2 == 0 else "odd"}
                       for i in range(10)])
    assert [d["n"] for d in users.find(sort="-n", limit=3)] == [9, 8, 7]
    cur = users.find_iter({"n": {"$lt": 2}}, sort="n")
    assert [d["n"] for d in cur] == [0, 1]
    assert [d["n"] for d in cur] == [0, 1]  # iterating a Cursor again runs the query again
    assert cur.first() == users.find_one({"n": 0})
    assert [d["n"] for d in users.find({"tag": "even"}, sort=[("n", 1)], skip=1, limit=2)] == [2, 4]
    docs = users.find({"n": {"$lt": 3}}, sort="n", projection={"sq": 1})
    assert [set(d) for d in docs] == [{"_id", "sq"}] * 3
    assert [d["sq"] for d in docs] == [0, 1, 4]


def test_query_operators_from_the_brief(users):
    users.insert_many([
        {"name": "John Smith", "age": 25, "tags": ["python"], "email": "j@x", "profile": {"age": 30}},
        {"name": "Ann", "age": 31, "tags": ["java", "c++"], "phone": "1"},
    ])
    names = lambda q: sorted(d["name"] for d in users.find(q))  # noqa: E731
    assert names({"age": {"$eq": 25}}) == ["John Smith"]
    assert names({"age": {"$ne": 25}}) == ["Ann"]
    assert names({"age": {"$lte": 31}}) == ["Ann", "John Smith"]
    assert names({"tags": {"$in": ["python", "javascript"]}}) == ["John Smith"]
    assert names({"tags": {"$nin": ["java", "c++"]}}) == ["John Smith"]
    assert names({"name": {"$regex": "John"}}) == ["John Smith"]
    assert names({"email": {"$exists": True}}) == ["John Smith"]
    assert names({"phone": {"$exists": False}}) == ["John Smith"]
    assert names({"profile.age": {"$gt": 25}}) == ["John Smith"]


def test_bad_filter_is_invalid_argument(users):
    users.insert({"a": 1})
    with pytest.raises(nexadb.InvalidArgumentError) as e:
        users.find({"a": {"$bogus": 1}})
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details
    with pytest.raises(nexadb.InvalidArgumentError):
        users.count({"a": {"$gt": 1, "$regex": "("}})
    with pytest.raises(nexadb.InvalidArgumentError):
        users.aggregate([{"$nosuchstage": {}}])


def test_update_variants(users):
    uid = users.insert({"name": "x", "n": 1, "keep": True})
    assert users.update(uid, {"n": 2, "new": "y"}) is True
    d = users.find_by_id(uid)
    assert (d["n"], d["new"], d["keep"], d["name"]) == (2, "y", True, "x")
    assert users.update(uid, {"$inc": {"n": 5}}) is True
    assert users.find_by_id(uid)["n"] == 7
    assert users.update("no-such-id", {"n": 1}) is False


def test_update_many_and_delete_many(users):
    users.insert_many([{"city": "SF", "status": "active"}, {"city": "SF", "status": "inactive"},
                       {"city": "NY", "status": "inactive"}])
    assert users.update_many({"city": "SF"}, {"country": "USA"}) == 2
    assert users.count({"country": "USA"}) == 2
    assert users.update_many({"city": "Paris"}, {"country": "FR"}) == 0
    assert users.delete_many({"status": "inactive"}) == 2
    assert users.count() == 1
    assert users.delete("no-such-id") is False


def test_aggregate_brief_pipeline(users):
    users.insert_many([
        {"name": "Laptop", "category": "Electronics", "price": 1200, "stock": 50},
        {"name": "Mouse", "category": "Electronics", "price": 25, "stock": 200},
        {"name": "Desk", "category": "Furniture", "price": 300, "stock": 15},
    ])
    out = users.aggregate([
        {"$group": {"_id": "$category", "count": {"$sum": 1}, "avg_price": {"$avg": "$price"}}},
        {"$sort": {"count": -1}},
    ])
    assert out == [{"_id": "Electronics", "count": 2, "avg_price": 612.5},
                   {"_id": "Furniture", "count": 1, "avg_price": 300}]


def test_streaming_find_spans_many_messages_and_is_lazy(db, users, server):
    n = 5000
    for start in range(0, n, 1000):
        users.insert_many([{"i": i, "pad": "x" * 100} for i in range(start, start + 1000)])
    # the server pages the stream: with page_size 128 the same query needs many messages
    from nexadb.v1 import document_pb2
    call = db._endpoint._docs.Find(document_pb2.FindRequest(collection=users.name, page_size=128),
                                   metadata=db._metadata, timeout=30)
    pages = [len(m.documents) for m in call]
    assert sum(pages) == n and len(pages) >= n // 128 and max(pages) <= 128
    # the SDK's streaming cursor yields every document across those pages...
    seen = {d["i"] for d in users.find_iter(page_size=128)}
    assert seen == set(range(n))
    # ...and find() collects them all, with the server's default page size too
    assert len(users.find()) == n
    # lazily: taking a few and closing cancels the rest of the stream
    cur = users.find_iter(page_size=64)
    it = iter(cur)
    first = [next(it) for _ in range(10)]
    assert len(first) == 10
    cur.close()
    assert users.count() == n


def test_collections_listing_and_drop(db, coll_name):
    c = db.collection(coll_name)
    c.insert({"a": 1})
    names = {x["name"]: x for x in db.list_collections()}
    assert coll_name in names and names[coll_name]["count"] == 1
    assert c.drop() is True
    assert c.drop() is False
    assert coll_name not in {x["name"] for x in db.list_collections()}


def test_write_without_key_is_refused(server, coll_name, monkeypatch):
    monkeypatch.delenv("NEXADB_API_KEY", raising=False)
    with nexadb.NexaDB("127.0.0.1", server.port) as anon:
        with pytest.raises(nexadb.AuthenticationError):
            anon.collection(coll_name).insert({"a": 1})
        with pytest.raises(nexadb.AuthenticationError):
            anon.collection(coll_name).find()


def test_key_order_reaches_the_server(users, server):
    """A document travels as BSON, so the stored key order is the caller's (read back over
    REST, which keeps it) and a compound sort sorts by its first key first."""
    import json
    import urllib.request
    keys = ["zeta", "alpha", "mid", "beta", "omega", "gamma", "kappa", "delta", "eps", "iota"]
    uid = users.insert({k: i for i, k in enumerate(keys)})
    req = urllib.request.Request(f"http://127.0.0.1:{server.http_port}/collections/{users.name}/{uid}",
                                 headers={"x-api-key": server.api_key})
    with urllib.request.urlopen(req, timeout=10) as r:
        doc = json.loads(r.read(), object_pairs_hook=lambda pairs: pairs)
    pairs = dict(doc)["document"] if isinstance(doc, list) else doc["document"]
    stored = [k for k, _ in pairs if not k.startswith("_")]
    assert stored == keys

    users.insert_many([{"g": "b", "n": 1}, {"g": "a", "n": 2}, {"g": "a", "n": 1}, {"g": "b", "n": 2}])
    for spec, want in (({"n": -1, "g": 1}, [("a", 2), ("b", 2), ("a", 1), ("b", 1)]),
                       ({"g": 1, "n": -1}, [("a", 2), ("a", 1), ("b", 2), ("b", 1)])):
        got = users.aggregate([{"$match": {"g": {"$exists": True}}}, {"$sort": spec}])
        assert [(d["g"], d["n"]) for d in got] == want, spec
        got = users.find({"g": {"$exists": True}}, sort=spec)
        assert [(d["g"], d["n"]) for d in got] == want, spec


def test_create_collection_and_indexes(db, coll_name):
    info = db.create_collection(coll_name)
    assert info["name"] == coll_name and info["count"] == 0 and info["kind"] == "documents"
    with pytest.raises(nexadb.AlreadyExistsError):
        db.create_collection(coll_name)
    c = db.collection(coll_name)
    c.insert_many([{"city": "SF", "age": 30, "tags": ["a", "b"]}, {"city": "NY", "age": 40}])
    idx = c.create_index({"city": 1, "age": -1})
    assert idx["fields"] == [("city", 1), ("age", -1)] and idx["unique"] is False
    assert idx["name"]
    multi = c.create_index("tags", name="by_tags")
    assert multi["name"] == "by_tags" and multi["multikey"] is True
    uniq = c.create_index("age", unique=True)
    assert uniq["unique"] is True and uniq["expire_after_seconds"] is None
    with pytest.raises(nexadb.NexaDBError):
        c.insert({"city": "LA", "age": 30})  # violates the unique index on age
    ttl = c.create_index("seen", expire_after_seconds=3600)
    assert ttl["expire_after_seconds"] == 3600
    with pytest.raises(nexadb.InvalidArgumentError):
        c.create_index({"a": 1, "b": 1}, expire_after_seconds=10)  # a TTL index has one field
    names = {i["name"] for i in c.list_indexes()}
    assert {idx["name"], "by_tags", uniq["name"], ttl["name"]} <= names
    assert c.count({"city": "SF", "age": {"$gt": 20}}) == 1
    assert c.drop_index("by_tags") is True
    assert c.drop_index("by_tags") is False
    assert "by_tags" not in {i["name"] for i in c.list_indexes()}
    c.drop()


def test_values_keep_their_types(users):
    """int64 extremes, dates with milliseconds, binary, nested arrays and key order come
    back as they went in (BSON on the wire; engine/doc stores them typed)."""
    import datetime
    when = datetime.datetime(2024, 2, 29, 23, 59, 58, 123000, tzinfo=datetime.timezone.utc)
    doc = {"z": 2**63 - 1, "a": -2**63, "m": 2**53 + 1, "small": 42, "f": 2.5,
           "when": when, "naive": datetime.datetime(1969, 12, 31, 23, 59, 59, 999000),
           "raw": b"\x00\xffbytes", "nested": [{"b": 1, "a": [when, None]}], "t": True, "n": None}
    uid = users.insert(doc)
    got = users.find_by_id(uid)
    assert list(got)[3:] == list(doc)
    assert got["z"] == 2**63 - 1 and got["a"] == -2**63 and got["m"] == 2**53 + 1
    assert type(got["small"]) is int and type(got["f"]) is float
    assert got["when"] == when and got["when"].tzinfo is not None
    assert got["naive"] == datetime.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=datetime.timezone.utc)
    assert got["raw"] == b"\x00\xffbytes" and got["nested"] == doc["nested"]
    # they compare as MongoDB's types: a date range, an exact int64
    assert [d["_id"] for d in users.find({"when": {"$gt": datetime.datetime(2024, 1, 1)}})] == [uid]
    assert users.count({"m": 2**53}) == 0 and users.count({"m": 2**53 + 1}) == 1
    assert users.count({"raw": {"$type": "binData"}}) == 1
    assert users.update(uid, {"$inc": {"m": 1}}) and users.find_by_id(uid)["m"] == 2**53 + 2
    with pytest.raises(ValueError):
        users.insert({"x": 2**64})


def test_find_is_a_list_with_pages_and_explain(users):
    users.insert_many([{"i": i} for i in range(25)])
    first = users.find(sort="i", limit=10)
    assert isinstance(first, list) and len(first) == 10 and first and first[0]["i"] == 0
    assert first.next_page_token
    second = users.find(sort="i", limit=10, page_token=first.next_page_token)
    assert [d["i"] for d in second] == list(range(10, 20))
    third = users.find(sort="i", limit=10, page_token=second.next_page_token)
    assert [d["i"] for d in third] == list(range(20, 25)) and third.next_page_token == ""
    none = users.find({"i": -1})
    assert not none and len(none) == 0
    plan = users.find({"i": {"$gt": 20}}, explain=True).explain
    assert plan["plan"] == "COLLSCAN" and plan["returned"] == 4
