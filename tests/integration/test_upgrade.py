"""Upgrading: a data directory written by the previous release (its own
vector store in <data-dir>/vectors, the vector collections' documents in the
document collections of the same names; tests/vector/fixtures/README.md) is
converted when the server starts on it, and the data is all there through the
API: vector collections with their documents and vectors, the document
collections with what was not a vector's document, the old files set aside."""
import shutil
from pathlib import Path

import grpc

FIXTURE = Path(__file__).resolve().parents[1] / "vector" / "fixtures" / "v1-datadir"


def test_server_converts_a_previous_release_data_directory(pb, server_factory, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    s = server_factory().start()
    md = (("x-api-key", s.api_key),)
    assert any("converting vector collection" in r.get("msg", "") for r in s.lines), "the conversion is logged"
    with grpc.insecure_channel(s.target) as ch:
        vecs = pb.vector_pb2_grpc.VectorServiceStub(ch)
        docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
        listed = {c.name: c for c in vecs.ListVectorCollections(pb.vector_pb2.ListVectorCollectionsRequest(),
                                                                  metadata=md).collections}
        assert set(listed) == {"products", "emb"}
        assert listed["products"].count == 29 and listed["products"].dimensions == 4
        assert listed["emb"].count == 90 and listed["emb"].dimensions == 8
        got = vecs.GetVector(pb.vector_pb2.GetVectorRequest(collection="products", id="p07", include_vector=True),
                             metadata=md)
        assert pb.undoc(got.document)["name"] == "product 7, updated"
        n = (9 ** 2 + 1) ** 0.5
        assert [round(x, 5) for x in got.vector] == [round(9 / n, 5), 0.0, 0.0, round(1 / n, 5)]
        hits = vecs.Search(pb.vector_pb2.SearchRequest(collection="products", vector=[9, 0, 0, 1], limit=3),
                           metadata=md).results
        assert hits[0].document_id == "p07" and pb.undoc(hits[0].document)["price"] == 71
        # what was not a vector's document stays a document; the rest moved
        left = docs.Count(pb.document_pb2.CountRequest(collection="products"), metadata=md).count
        assert left == 1
        names = {c.name for c in docs.ListCollections(pb.document_pb2.ListCollectionsRequest(),
                                                      metadata=md).collections}
        assert names == {"products", "users"}
    assert s.stop() == 0
    assert not (data / "vectors").exists() and (data / "vectors.converted" / "products" / "MANIFEST").exists()
    # the next start has nothing to convert and serves the same data
    s2 = server_factory().start()
    assert not any("converting" in r.get("msg", "") for r in s2.lines)
    with grpc.insecure_channel(s2.target) as ch:
        vecs = pb.vector_pb2_grpc.VectorServiceStub(ch)
        r = vecs.ListVectorCollections(pb.vector_pb2.ListVectorCollectionsRequest(),
                                       metadata=(("x-api-key", s2.api_key),))
        assert sorted(c.count for c in r.collections) == [29, 90]
