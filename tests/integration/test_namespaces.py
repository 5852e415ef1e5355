"""Document collections and vector collections are separate namespaces.

The brief's Example 1 (an e-commerce catalogue in the document collection
`products`) and then its Example 2 (semantic search, here in a vector
collection also named `products`) in one server, over gRPC and over REST:
each kind keeps its own documents, dropping one kind leaves the other
intact, and the listings and Stats say which kind each collection is.
Example 2's embeddings are stand-ins (seeded 384-d vectors per text): the
point is where the documents live, not what the model says.
"""
import random

import grpc
import pytest
import requests

PRODUCTS = [{"name": "Laptop", "category": "Electronics", "price": 1200, "stock": 50},
            {"name": "Mouse", "category": "Electronics", "price": 25, "stock": 200},
            {"name": "Desk", "category": "Furniture", "price": 300, "stock": 15}]
ARTICLES = ["Python is a popular programming language for data science",
            "Machine learning models require large datasets",
            "JavaScript is used for web development"]


def embed(text):
    rng = random.Random(text)
    return [rng.gauss(0, 1) for _ in range(384)]




def kinds(collections, name):
    return sorted(c.kind for c in collections if c.name == name)


@pytest.fixture
def stubs(pb, server_factory):
    s = server_factory("ns").start()
    ch = grpc.insecure_channel(s.target)
    md = (("x-api-key", s.api_key),)
    yield (pb.document_pb2_grpc.DocumentServiceStub(ch), pb.vector_pb2_grpc.VectorServiceStub(ch),
           pb.admin_pb2_grpc.AdminServiceStub(ch), md)
    ch.close()


def test_same_name_both_kinds_over_grpc(pb, stubs):
    docs, vecs, admin, md = stubs
    d, v, c = pb.document_pb2, pb.vector_pb2, pb.common_pb2
    # Example 1: documents in `products`
    docs.InsertMany(d.InsertManyRequest(collection="products", documents=[pb.doc(p) for p in PRODUCTS]), metadata=md, timeout=10)
    cheap = [x for page in docs.Find(d.FindRequest(collection="products", filter=pb.doc({"price": {"$lt": 500}})), metadata=md,
                                     timeout=10) for x in page.documents]
    assert sorted(pb.undoc(x)["name"] for x in cheap) == ["Desk", "Mouse"]
    # Example 2: a vector collection of the same name
    vecs.CreateVectorCollection(v.CreateVectorCollectionRequest(collection="products", dimensions=384), metadata=md,
                                timeout=10)
    vids = [vecs.InsertVector(v.InsertVectorRequest(collection="products", document=pb.doc({"text": t}), vector=embed(t)),
                              metadata=md, timeout=10).document_id for t in ARTICLES]
    hits = vecs.Search(v.SearchRequest(collection="products", vector=embed(ARTICLES[1]), limit=3), metadata=md,
                       timeout=10).results
    assert [h.document_id for h in hits][0] == vids[1] and len(hits) == 3
    assert all(set(pb.undoc(h.document)) == {"_id", "_created_at", "_updated_at", "text"} for h in hits)

    # each kind sees only its own documents
    found = [x for page in docs.Find(d.FindRequest(collection="products"), metadata=md, timeout=10) for x in page.documents]
    assert sorted(pb.undoc(x)["name"] for x in found) == ["Desk", "Laptop", "Mouse"]
    assert docs.Count(d.CountRequest(collection="products"), metadata=md, timeout=10).count == 3
    with pytest.raises(grpc.RpcError) as e:
        docs.Get(d.GetRequest(collection="products", id=vids[0]), metadata=md, timeout=10)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    exported = [x for page in vecs.FindVectors(v.FindVectorsRequest(collection="products"), metadata=md, timeout=10)
                for x in page.documents]
    assert sorted(pb.undoc(x.document)["text"] for x in exported) == sorted(ARTICLES)
    assert all(len(x.vector) == 384 for x in exported)

    # the listings and Stats say which kind each is
    K = c.CollectionInfo.Kind
    listed = docs.ListCollections(d.ListCollectionsRequest(), metadata=md, timeout=10).collections
    assert kinds(listed, "products") == [K.KIND_DOCUMENTS]
    listed = vecs.ListVectorCollections(v.ListVectorCollectionsRequest(), metadata=md, timeout=10).collections
    assert kinds(listed, "products") == [K.KIND_VECTORS]
    stats = admin.Stats(pb.admin_pb2.StatsRequest(), metadata=md, timeout=10)
    both = {ci.kind: ci for ci in stats.collections if ci.name == "products"}
    assert sorted(both) == [K.KIND_DOCUMENTS, K.KIND_VECTORS]
    assert both[K.KIND_DOCUMENTS].count == 3 and both[K.KIND_VECTORS].count == 3
    assert both[K.KIND_VECTORS].dimensions == 384 and both[K.KIND_DOCUMENTS].dimensions == 0
    assert stats.total_documents == 6

    # dropping the document collection leaves the vector collection intact
    assert docs.DropCollection(d.DropCollectionRequest(collection="products"), metadata=md, timeout=10).dropped
    hits = vecs.Search(v.SearchRequest(collection="products", vector=embed(ARTICLES[0]), limit=10), metadata=md,
                       timeout=10).results
    assert sorted(h.document_id for h in hits) == sorted(vids)
    g = vecs.GetVector(v.GetVectorRequest(collection="products", id=vids[2], include_vector=True), metadata=md, timeout=10)
    assert pb.undoc(g.document)["text"] == ARTICLES[2] and len(g.vector) == 384
    assert not docs.DropCollection(d.DropCollectionRequest(collection="products"), metadata=md, timeout=10).dropped

    # and dropping the vector collection leaves the document collection intact
    docs.InsertMany(d.InsertManyRequest(collection="products", documents=[pb.doc(p) for p in PRODUCTS]), metadata=md, timeout=10)
    assert vecs.DropVectorCollection(v.DropVectorCollectionRequest(collection="products"), metadata=md, timeout=10).dropped
    assert docs.Count(d.CountRequest(collection="products"), metadata=md, timeout=10).count == 3
    with pytest.raises(grpc.RpcError) as e:
        vecs.Search(v.SearchRequest(collection="products", vector=embed("x")), metadata=md, timeout=10)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert not vecs.DropVectorCollection(v.DropVectorCollectionRequest(collection="products"), metadata=md,
                                         timeout=10).dropped
    stats = admin.Stats(pb.admin_pb2.StatsRequest(), metadata=md, timeout=10)
    assert kinds(stats.collections, "products") == [K.KIND_DOCUMENTS]


def test_same_name_both_kinds_over_rest(server_factory):
    s = server_factory("nsrest").start()
    http = requests.Session()
    http.headers["X-API-Key"] = s.api_key

    def call(method, path, body=None, status=200):
        r = http.request(method, s.http_base + path, json=body, timeout=10)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        return r.json()

    call("POST", "/collections/products/bulk", {"documents": PRODUCTS})
    assert call("POST", "/collections/products/query", {"query": {"price": {"$lt": 500}}})["count"] == 2
    call("POST", "/vector/products", {"dimensions": 384})
    vids = [call("POST", "/vector/products/insert", {"document": {"text": t}, "vector": embed(t)})["document_id"]
            for t in ARTICLES]
    res = call("POST", "/vector/products/search", {"vector": embed(ARTICLES[2]), "limit": 3, "dimensions": 384})
    assert res["results"][0]["document_id"] == vids[2] and res["results"][0]["document"]["text"] == ARTICLES[2]

    assert sorted(x["name"] for x in call("GET", "/collections/products")["documents"]) == ["Desk", "Laptop", "Mouse"]
    call("GET", f"/collections/products/{vids[0]}", status=404)
    found = call("POST", "/vector/products/find", {})
    assert found["count"] == 3 and sorted(x["document"]["text"] for x in found["documents"]) == sorted(ARTICLES)
    assert [c["kind"] for c in call("GET", "/collections")["collections"] if c["name"] == "products"] == ["documents"]
    assert [c["kind"] for c in call("GET", "/vector")["collections"] if c["name"] == "products"] == ["vectors"]
    stats = call("GET", "/stats")
    assert sorted(c["kind"] for c in stats["collections"] if c["name"] == "products") == ["documents", "vectors"]

    assert call("DELETE", "/collections/products")["dropped"] is True
    assert len(call("POST", "/vector/products/search", {"vector": embed("q"), "limit": 10})["results"]) == 3
    assert call("GET", f"/vector/products/{vids[1]}")["document"]["text"] == ARTICLES[1]

    call("POST", "/collections/products/bulk", {"documents": PRODUCTS})
    assert call("DELETE", "/vector/products")["dropped"] is True
    assert call("GET", "/collections/products")["count"] == 3
    call("POST", "/vector/products/search", {"vector": embed("q")}, status=404)
    assert [c["name"] for c in call("GET", "/vector")["collections"]] == []
    http.close()
