"""TTL indexes through the server: a document whose indexed date is older than the index's
ttl.expire_after_seconds is deleted by the TTL pass (every --ttl-interval-seconds) within a
bound, also when it expired while the server was down; documents whose field is missing or
holds no date stay; the definition is listed over gRPC and REST and survives a restart; the
pass is counted in /metrics; definitions MongoDB refuses are refused."""
import datetime
import time

import grpc
import pytest
import requests

# The pass runs every second; allow it a few turns on a loaded machine.
BOUND_S = 10


def stub(pb, s):
    ch = grpc.insecure_channel(s.target)
    return ch, pb.document_pb2_grpc.DocumentServiceStub(ch), (("x-api-key", s.api_key),)


def ids(pb, docs, md):
    pages = docs.Find(pb.document_pb2.FindRequest(collection="s", projection=pb.doc({"_id": 1})),
                      metadata=md, timeout=10)
    return sorted(pb.undoc(d)["_id"] for p in pages for d in p.documents)


def wait_for(pred, what):
    deadline = time.time() + BOUND_S
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {BOUND_S} s: {what}")


def test_expired_documents_are_deleted_and_others_kept(pb, server_factory):
    s = server_factory(extra_args=["--ttl-interval-seconds", "1"]).start()
    ch, docs, md = stub(pb, s)
    r = docs.CreateIndex(pb.document_pb2.CreateIndexRequest(
        collection="s", fields=[pb.document_pb2.IndexField(field="exp")],
        ttl=pb.document_pb2.IndexTtl(expire_after_seconds=2)), metadata=md, timeout=10)
    assert r.index.HasField("ttl") and r.index.ttl.expire_after_seconds == 2
    now = datetime.datetime.now(datetime.timezone.utc)
    docs.InsertMany(pb.document_pb2.InsertManyRequest(collection="s", documents=[
        pb.doc({"_id": "old", "exp": now - datetime.timedelta(seconds=30)}),
        pb.doc({"_id": "soon", "exp": now + datetime.timedelta(seconds=1)}),
        pb.doc({"_id": "later", "exp": now + datetime.timedelta(hours=1)}),
        pb.doc({"_id": "arr", "exp": [now + datetime.timedelta(hours=1), now - datetime.timedelta(hours=1)]}),
        pb.doc({"_id": "text", "exp": "2000-01-01T00:00:00Z"}),
        pb.doc({"_id": "number", "exp": 0}),
        pb.doc({"_id": "missing"}),
    ]), metadata=md, timeout=10)
    # "soon" passes its limit 3 s from now (its date + 2 s)
    wait_for(lambda: ids(pb, docs, md) == ["later", "missing", "number", "text"], "old, arr and soon deleted")
    metrics = requests.get(f"{s.http_base}/metrics", headers={"X-API-Key": s.api_key}, timeout=10).text
    deleted = [line for line in metrics.splitlines() if line.startswith("nexadb_ttl_deleted_documents_total ")]
    assert deleted and int(deleted[0].split()[1]) == 3, deleted
    ch.close()


def test_expiry_across_a_restart_and_the_definition_kept(pb, server_factory):
    s = server_factory(extra_args=["--ttl-interval-seconds", "1"]).start()
    ch, docs, md = stub(pb, s)
    docs.CreateIndex(pb.document_pb2.CreateIndexRequest(
        collection="s", fields=[pb.document_pb2.IndexField(field="exp")],
        ttl=pb.document_pb2.IndexTtl(expire_after_seconds=0)), metadata=md, timeout=10)
    now = datetime.datetime.now(datetime.timezone.utc)
    docs.InsertOne(pb.document_pb2.InsertOneRequest(
        collection="s", document=pb.doc({"_id": "a", "exp": now + datetime.timedelta(seconds=3)})),
        metadata=md, timeout=10)
    ch.close()
    s.stop()
    time.sleep(3.5)  # "a" expires while the server is down
    s.start()
    ch, docs, md = stub(pb, s)
    listed = docs.ListIndexes(pb.document_pb2.ListIndexesRequest(collection="s"), metadata=md, timeout=10)
    assert [(i.name, i.HasField("ttl"), i.ttl.expire_after_seconds) for i in listed.indexes] == [("exp_1", True, 0)]
    wait_for(lambda: ids(pb, docs, md) == [], "a deleted after the restart")
    ch.close()


def test_rest_shape_and_refused_definitions(pb, server_factory):
    s = server_factory(extra_args=["--ttl-interval-seconds", "1"]).start()
    h = {"X-API-Key": s.api_key}
    r = requests.post(f"{s.http_base}/collections/r/indexes", headers=h, timeout=10,
                      json={"fields": [{"field": "at"}], "ttl": {"expire_after_seconds": 3600}})
    assert r.status_code == 200, r.text
    assert int(r.json()["index"]["ttl"]["expire_after_seconds"]) == 3600
    listed = requests.get(f"{s.http_base}/collections/r/indexes", headers=h, timeout=10).json()
    assert [int(i["ttl"]["expire_after_seconds"]) for i in listed["indexes"]] == [3600]
    plain = requests.post(f"{s.http_base}/collections/r/indexes", headers=h, timeout=10,
                          json={"fields": [{"field": "b"}]}).json()
    assert "ttl" not in plain["index"]
    ch, docs, md = stub(pb, s)
    for fields, secs, why in ([["x"], -1, "expire_after_seconds must be"],
                              [["x", "y"], 10, "a TTL index has one field"],
                              [["_id"], 10, "cannot expire"]):
        with pytest.raises(grpc.RpcError) as e:
            docs.CreateIndex(pb.document_pb2.CreateIndexRequest(
                collection="s", fields=[pb.document_pb2.IndexField(field=f) for f in fields],
                ttl=pb.document_pb2.IndexTtl(expire_after_seconds=secs)), metadata=md, timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and why in e.value.details()
    ch.close()


def test_vector_collections_expire_documents_with_their_vectors(pb, server_factory):
    s = server_factory(extra_args=["--ttl-interval-seconds", "1"]).start()
    ch = grpc.insecure_channel(s.target)
    vec, md = pb.vector_pb2_grpc.VectorServiceStub(ch), (("x-api-key", s.api_key),)
    v = pb.vector_pb2
    vec.CreateVectorCollection(v.CreateVectorCollectionRequest(collection="vs", dimensions=2), metadata=md,
                               timeout=10)
    r = vec.CreateDocumentIndex(v.CreateDocumentIndexRequest(
        collection="vs", fields=[pb.document_pb2.IndexField(field="exp")],
        ttl=pb.document_pb2.IndexTtl(expire_after_seconds=2)), metadata=md, timeout=10)
    assert r.index.ttl.expire_after_seconds == 2
    now = datetime.datetime.now(datetime.timezone.utc)
    for i, (name, exp) in enumerate([("old", now - datetime.timedelta(seconds=30)),
                                     ("later", now + datetime.timedelta(hours=1)), ("missing", None)]):
        doc = {"_id": name} if exp is None else {"_id": name, "exp": exp}
        vec.InsertVector(v.InsertVectorRequest(collection="vs", document=pb.doc(doc), vector=[1.0, float(i)]),
                         metadata=md, timeout=10)

    def found():
        res = vec.Search(v.SearchRequest(collection="vs", vector=[1.0, 0.0], limit=10), metadata=md, timeout=10)
        return sorted(h.document_id for h in res.results)

    wait_for(lambda: found() == ["later", "missing"], "old deleted with its vector")
    with pytest.raises(grpc.RpcError) as err:
        vec.GetVector(v.GetVectorRequest(collection="vs", id="old"), metadata=md, timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    info = [c for c in vec.ListVectorCollections(v.ListVectorCollectionsRequest(), metadata=md,
                                                 timeout=10).collections if c.name == "vs"]
    assert info[0].count == 2
    ch.close()
