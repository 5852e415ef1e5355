"""DocumentService through the real server over gRPC: the brief's flows and the edges."""
import grpc
import pytest






@pytest.fixture
def docs(pb, channel):
    return pb.document_pb2_grpc.DocumentServiceStub(channel)


def find_all(pb, docs, auth, **kw):
    pages = list(docs.Find(pb.document_pb2.FindRequest(**kw), metadata=auth, timeout=30))
    return pages, [pb.undoc(d) for p in pages for d in p.documents]


def test_quick_start_flow(pb, docs, auth):
    d = pb.document_pb2
    r = docs.InsertOne(d.InsertOneRequest(collection="users", document=pb.doc({
        "name": "Alice Johnson", "email": "alice@example.com", "age": 28, "tags": ["python", "database"]})),
        metadata=auth, timeout=10)
    uid = r.document_id
    assert len(uid) == 24
    got = pb.undoc(docs.Get(d.GetRequest(collection="users", id=uid), metadata=auth, timeout=10).document)
    assert got["_id"] == uid and got["age"] == 28 and got["tags"] == ["python", "database"]
    assert got["_created_at"] == got["_updated_at"] and got["_created_at"].endswith("Z")
    assert list(got)[3:] == ["name", "email", "age", "tags"]  # BSON keeps the order
    _, found = find_all(pb, docs, auth, collection="users", filter=pb.doc({"age": {"$gt": 25}}))
    assert [u["name"] for u in found] == ["Alice Johnson"]
    u = docs.Update(d.UpdateRequest(collection="users", id=uid, update=pb.doc({"age": 29})), metadata=auth, timeout=10)
    assert u.success and pb.undoc(u.document)["age"] == 29
    assert docs.Delete(d.DeleteRequest(collection="users", id=uid), metadata=auth, timeout=10).success
    for call, req in ((docs.Delete, d.DeleteRequest(collection="users", id=uid)),
                      (docs.Get, d.GetRequest(collection="users", id=uid)),
                      (docs.Update, d.UpdateRequest(collection="users", id=uid, update=pb.doc({"age": 1})))):
        with pytest.raises(grpc.RpcError) as e:
            call(req, metadata=auth, timeout=10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND, call


def test_ecommerce_example(pb, docs, auth):
    d = pb.document_pb2
    products = [{"name": "Laptop", "category": "Electronics", "price": 1200, "stock": 50},
                {"name": "Mouse", "category": "Electronics", "price": 25, "stock": 200},
                {"name": "Desk", "category": "Furniture", "price": 300, "stock": 15}]
    r = docs.InsertMany(d.InsertManyRequest(collection="products", documents=[pb.doc(p) for p in products]),
                        metadata=auth, timeout=10)
    assert r.count == 3 and len(set(r.document_ids)) == 3
    _, cheap = find_all(pb, docs, auth, collection="products", filter=pb.doc({"price": {"$lt": 500}}))
    assert sorted(p["name"] for p in cheap) == ["Desk", "Mouse"]
    _, out = find_all(pb, docs, auth, collection="products", filter=pb.doc({"stock": {"$lte": 0}}))
    assert out == []
    pages = list(docs.Aggregate(d.AggregateRequest(collection="products", pipeline=[
        pb.doc({"$group": {"_id": "$category", "count": {"$sum": 1}, "avg_price": {"$avg": "$price"}}}),
        pb.doc({"$sort": {"count": -1}})]), metadata=auth, timeout=10))
    rows = [pb.undoc(x) for p in pages for x in p.documents]
    assert rows == [{"_id": "Electronics", "count": 2, "avg_price": 612.5},
                    {"_id": "Furniture", "count": 1, "avg_price": 300}]


def test_find_streams_pages_and_resumes_with_token(pb, docs, auth):
    d = pb.document_pb2
    docs.InsertMany(d.InsertManyRequest(collection="many", documents=[pb.doc({"i": i}) for i in range(2500)]),
                    metadata=auth, timeout=30)
    pages, found = find_all(pb, docs, auth, collection="many", page_size=1000)
    assert [len(p.documents) for p in pages] == [1000, 1000, 500]
    assert [p.count for p in pages] == [1000, 2000, 2500]
    assert sorted(x["i"] for x in found) == list(range(2500))
    assert pages[0].next_page_token and not pages[-1].next_page_token
    # resume after the first page
    _, rest = find_all(pb, docs, auth, collection="many", page_size=1000, page_token=pages[0].next_page_token)
    assert rest == found[1000:]
    # skip, limit, sort, projection
    _, top = find_all(pb, docs, auth, collection="many", skip=5, limit=3, projection=pb.doc({"i": 1, "_id": 0}),
                      sort=pb.doc({"i": -1}))
    assert top == [{"i": 2494}, {"i": 2493}, {"i": 2492}]
    c = docs.Count(d.CountRequest(collection="many", filter=pb.doc({"i": {"$gte": 2000}})), metadata=auth, timeout=10)
    assert c.count == 500


def test_update_many_delete_many_find_one(pb, docs, auth):
    d = pb.document_pb2
    docs.InsertMany(d.InsertManyRequest(collection="people", documents=[
        pb.doc({"name": n, "city": c, "status": s}) for n, c, s in
        [("a", "SF", "active"), ("b", "SF", "inactive"), ("c", "NY", "inactive")]]), metadata=auth, timeout=10)
    r = docs.UpdateMany(d.UpdateManyRequest(collection="people", filter=pb.doc({"city": "SF"}),
                                            update=pb.doc({"country": "USA"})), metadata=auth, timeout=10)
    assert r.matched_count == 2 and r.modified_count == 2
    one = docs.FindOne(d.FindOneRequest(collection="people", filter=pb.doc({"name": "b"})), metadata=auth, timeout=10)
    assert pb.undoc(one.document)["country"] == "USA"
    none = docs.FindOne(d.FindOneRequest(collection="people", filter=pb.doc({"name": "zz"})), metadata=auth, timeout=10)
    assert not none.HasField("document")
    r = docs.DeleteMany(d.DeleteManyRequest(collection="people", filter=pb.doc({"status": "inactive"})),
                        metadata=auth, timeout=10)
    assert r.deleted_count == 2
    up = docs.UpdateMany(d.UpdateManyRequest(collection="people", filter=pb.doc({"name": "new"}),
                                             update=pb.doc({"$set": {"city": "LA"}}), upsert=True), metadata=auth, timeout=10)
    assert up.upserted_id
    got = pb.undoc(docs.Get(d.GetRequest(collection="people", id=up.upserted_id), metadata=auth, timeout=10).document)
    assert got["name"] == "new" and got["city"] == "LA"


def test_indexes_and_explain(pb, docs, auth):
    d = pb.document_pb2
    docs.InsertMany(d.InsertManyRequest(collection="idx", documents=[pb.doc({"age": i % 50, "n": i}) for i in range(500)]),
                    metadata=auth, timeout=30)
    r = docs.CreateIndex(d.CreateIndexRequest(collection="idx", fields=[d.IndexField(field="age")]), metadata=auth, timeout=30)
    assert r.index.name and [f.field for f in r.index.fields] == ["age"]
    assert [i.name for i in docs.ListIndexes(d.ListIndexesRequest(collection="idx"), metadata=auth, timeout=10).indexes] \
        == [r.index.name]
    pages, found = find_all(pb, docs, auth, collection="idx", filter=pb.doc({"age": 7}), explain=True)
    assert len(found) == 10
    ex = pb.undoc(pages[-1].explain)
    assert ex["index"] == r.index.name and ex["docs_examined"] == 10
    with pytest.raises(grpc.RpcError) as e:
        docs.CreateIndex(d.CreateIndexRequest(collection="idx", fields=[d.IndexField(field="age")], unique=True,
                                              name="age_unique"), metadata=auth, timeout=30)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert docs.DropIndex(d.DropIndexRequest(collection="idx", name=r.index.name), metadata=auth, timeout=10).dropped


def test_collections_lifecycle(pb, docs, auth):
    d = pb.document_pb2
    docs.CreateCollection(d.CreateCollectionRequest(collection="empty_one"), metadata=auth, timeout=10)
    with pytest.raises(grpc.RpcError) as e:
        docs.CreateCollection(d.CreateCollectionRequest(collection="empty_one"), metadata=auth, timeout=10)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    names = {c.name: c for c in docs.ListCollections(d.ListCollectionsRequest(), metadata=auth, timeout=10).collections}
    assert names["empty_one"].count == 0
    assert docs.DropCollection(d.DropCollectionRequest(collection="empty_one"), metadata=auth, timeout=10).dropped
    assert not docs.DropCollection(d.DropCollectionRequest(collection="empty_one"), metadata=auth, timeout=10).dropped


@pytest.mark.parametrize("call,req,needle", [
    ("InsertOne", dict(collection="bad name!", document={"a": 1}), "name"),
    ("Count", dict(collection="users", filter={"age": {"$foo": 1}}), "$foo"),
    ("Count", dict(collection="users", filter={"$and": 5}), "$and"),
    ("UpdateMany", dict(collection="users", filter={}, update={"$inc": {"a": "x"}}), "$inc"),
])
def test_bad_input_is_invalid_argument(pb, docs, auth, call, req, needle):
    d = pb.document_pb2
    msg_type = {"InsertOne": d.InsertOneRequest, "Count": d.CountRequest, "UpdateMany": d.UpdateManyRequest}[call]
    kw = {k: pb.doc(v) if isinstance(v, dict) else v for k, v in req.items()}
    docs.InsertOne(d.InsertOneRequest(collection="users", document=pb.doc({"a": 1})), metadata=auth, timeout=10)
    with pytest.raises(grpc.RpcError) as e:
        getattr(docs, call)(msg_type(**kw), metadata=auth, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in e.value.details()


def test_documents_survive_restart(pb, server_factory):
    s = server_factory("restart").start()
    with grpc.insecure_channel(s.target) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        auth = (("x-api-key", s.api_key),)
        ids = stub.InsertMany(pb.document_pb2.InsertManyRequest(
            collection="keep", documents=[pb.doc({"i": i}) for i in range(100)]), metadata=auth, timeout=10).document_ids
    assert s.stop() == 0
    s2 = server_factory("restart").start()
    with grpc.insecure_channel(s2.target) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        auth = (("x-api-key", s2.api_key),)
        got = stub.Get(pb.document_pb2.GetRequest(collection="keep", id=ids[42]), metadata=auth, timeout=10)
        assert pb.undoc(got.document)["i"] == 42
        assert stub.Count(pb.document_pb2.CountRequest(collection="keep"), metadata=auth, timeout=10).count == 100
