"""Crash under load: the server is killed with SIGKILL at a random moment
while 8 clients write through gRPC (document inserts and updates, vector
inserts); after each restart every acknowledged write is there, across all
rounds on the same data directory. NEXADB_KILLS rounds (default 3; 100+ for
the long run)."""
import os
import random
import signal
import threading
import time

import grpc
from google.protobuf import struct_pb2


def S(d):
    s = struct_pb2.Struct()
    s.update(d)
    return s


def writer(pb, target, key, w, acked, stop):
    md = (("x-api-key", key),)
    with grpc.insecure_channel(target) as ch:
        docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
        vecs = pb.vector_pb2_grpc.VectorServiceStub(ch)
        i = 0
        mine = None  # this writer's last inserted document: only its writer updates it, in order
        while not stop.is_set():
            try:
                kind = i % 4
                if kind == 3 and mine is not None:
                    doc_id = mine
                    n = i
                    docs.Update(pb.document_pb2.UpdateRequest(collection="kill", id=doc_id, update=S({"$set": {"v": n}})),
                                metadata=md, timeout=5)
                    acked["updates"].append((doc_id, n))
                elif kind == 2:
                    vid = f"w{w}-{i}-{random.getrandbits(32)}"
                    vecs.UpsertVector(pb.vector_pb2.UpsertVectorRequest(collection="killvec", id=vid,
                                                                        vector=[float(i % 7), 1.0, float(w)]),
                                      metadata=md, timeout=5)
                    acked["vecs"].append(vid)
                else:
                    r = docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="kill", document=S({"w": w, "i": i})),
                                       metadata=md, timeout=5)
                    acked["docs"].append((r.document_id, w, i))
                    mine = r.document_id
            except grpc.RpcError as e:
                if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED):
                    return
                raise
            i += 1


def verify(pb, s, acked):
    md = (("x-api-key", s.api_key),)
    with grpc.insecure_channel(s.target) as ch:
        docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
        found = {}
        for page in docs.Find(pb.document_pb2.FindRequest(collection="kill"), metadata=md, timeout=120):
            for d in page.documents:
                found[d.fields["_id"].string_value] = d
        missing = [a for a in acked["docs"] if a[0] not in found]
        assert not missing, f"{len(missing)} acknowledged inserts lost, e.g. {missing[:3]}"
        # each document is updated by one writer, in order: what is stored is at
        # least its last acknowledged update (a later, unacknowledged one may be there too)
        last = {}
        for doc_id, n in acked["updates"]:
            last[doc_id] = n
        for doc_id, n in last.items():
            v = found[doc_id].fields["v"].number_value if "v" in found[doc_id].fields else -1
            assert v >= n, f"update {n} of {doc_id} acknowledged but stored v={v}"
        vecs = pb.vector_pb2_grpc.VectorServiceStub(ch)
        for vid in random.sample(acked["vecs"], min(300, len(acked["vecs"]))):
            vecs.GetVector(pb.vector_pb2.GetVectorRequest(collection="killvec", id=vid), metadata=md, timeout=10)
    return len(found)


def test_sigkill_at_random_moments_keeps_every_acknowledged_write(pb, server_factory):
    kills = int(os.environ.get("NEXADB_KILLS", "3"))
    rnd = random.Random(int(os.environ.get("NEXADB_KILL_SEED", str(int(time.time())))))
    acked = {"docs": [], "updates": [], "vecs": []}
    s = server_factory("kill").start()
    with grpc.insecure_channel(s.target) as ch:
        pb.vector_pb2_grpc.VectorServiceStub(ch).CreateVectorCollection(
            pb.vector_pb2.CreateVectorCollectionRequest(collection="killvec", dimensions=3),
            metadata=(("x-api-key", s.api_key),), timeout=10)
    t0 = time.time()
    for k in range(kills):
        stop = threading.Event()
        threads = [threading.Thread(target=writer, args=(pb, s.target, s.api_key, w, acked, stop)) for w in range(8)]
        for t in threads:
            t.start()
        time.sleep(rnd.uniform(0.05, 1.2))
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        s = server_factory("kill").start()
        n = verify(pb, s, acked)
    print(f"\nKILLS survived={kills} acked inserts={len(acked['docs'])} updates={len(acked['updates'])} "
          f"vectors={len(acked['vecs'])} stored docs={n} in {time.time() - t0:.0f}s")
