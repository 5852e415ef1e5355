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
    cur = users.find({"n": {"$lt": 2}}, sort="n")
    assert [d["n"] for d in cur] == [0, 1]
    assert [d["n"] for d in cur] == [0, 1]  # iterating again runs the query again
    assert cur.first() == users.find_one({"n": 0})
    assert [d["n"] for d in users.find({"tag": "even"}, sort=[("n", 1)], skip=1, limit=2)] == [2, 4]
    docs = users.find({"n": {"$lt": 3}}, sort="n", projection={"sq": 1}).to_list()
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
        users.find({"a": {"$bogus": 1}}).to_list()
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details
    with pytest.raises(nexadb.InvalidArgumentError):
        users.count({"a": {"$gt": 1, "$regex": "("}})
    with pytest.raises(nexadb.InvalidArgumentError):
        users.aggregate([{"$nosuchstage": {}}]).to_list()


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
    ]).to_list()
    assert out == [{"_id": "Electronics", "count": 2, "avg_price": 612.5},
                   {"_id": "Furniture", "count": 1, "avg_price": 300}]


def test_streaming_find_spans_many_messages_and_is_lazy(db, users, server):
    n = 5000
    for start in range(0, n, 1000):
        users.insert_many([{"i": i, "pad": "x" * 100} for i in range(start, start + 1000)])
    # the server pages the stream: with page_size 128 the same query needs many messages
    from nexadb.v1 import document_pb2
    call = db._docs.Find(document_pb2.FindRequest(collection=users.name, page_size=128),
                         metadata=db._metadata, timeout=30)
    pages = [len(m.documents) for m in call]
    assert sum(pages) == n and len(pages) >= n // 128 and max(pages) <= 128
    # the SDK cursor yields every document across those pages...
    seen = {d["i"] for d in users.find(page_size=128)}
    assert seen == set(range(n))
    # ...and with the server's default page size too
    assert sum(1 for _ in users.find()) == n
    # lazily: taking a few and closing cancels the rest of the stream
    cur = users.find(page_size=64)
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
            anon.collection(coll_name).find().to_list()


def test_key_order_reaches_the_server(users, server):
    """Struct is a protobuf map; the SDK writes its entries in the dict's order, so the
    stored key order is the caller's (read back over REST, which keeps it) and a compound
    sort sorts by its first key first."""
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
        got = users.aggregate([{"$match": {"g": {"$exists": True}}}, {"$sort": spec}]).to_list()
        assert [(d["g"], d["n"]) for d in got] == want, spec
        got = users.find({"g": {"$exists": True}}, sort=spec).to_list()
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
    assert uniq["unique"] is True
    with pytest.raises(nexadb.NexaDBError):
        c.insert({"city": "LA", "age": 30})  # violates the unique index on age
    names = {i["name"] for i in c.list_indexes()}
    assert {idx["name"], "by_tags", uniq["name"]} <= names
    assert c.count({"city": "SF", "age": {"$gt": 20}}) == 1
    assert c.drop_index("by_tags") is True
    assert c.drop_index("by_tags") is False
    assert "by_tags" not in {i["name"] for i in c.list_indexes()}
    c.drop()
