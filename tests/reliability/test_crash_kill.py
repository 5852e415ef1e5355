"""Crash under load: the server is killed with SIGKILL at a random moment while
8 clients write through gRPC, NEXADB_KILLS rounds (default 100) on one data
directory. Each writer owns its ids and writes them in order:

- vector collection `killvec` (metric dot, so a vector is stored as given):
  InsertVector of new ids, UpsertVector of ids already acknowledged,
  DeleteVector (as often as inserts once a writer holds LIVE_PER_WRITER
  ids); a version is the document {"w": w, "v": n} with the vector
  [n, w, kind, 1], so a document and its vector name each other;
- document collection `kill`: inserts and per-writer ordered updates.

After each restart: every vector document listed by FindVectors (which fails
on a document without its vector) is the writer's last acknowledged version
of that id, or the version its one unacknowledged call was writing, never a
mix; acknowledged deletes are gone and nothing unacknowledged is half there;
a Search with a large limit returns each live document exactly once, scored
by its own vector; every acknowledged document insert is there with at least
its last acknowledged update. Rounds are short (0.05-0.4 s of writing) so the
default 100 fit in the default suite; NEXADB_KILLS raises it for a long run,
NEXADB_KILL_SEED fixes the moments and the writes."""
import os
import random
import signal
import threading
import time

import grpc

GONE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED)
DIMS = 4
# Each writer keeps about this many live vector documents at most, so a long run's
# verification stays cheap and one Search can return them all.
LIVE_PER_WRITER = 1500




class Writer:
    """One client's ids and what it knows of them across rounds: `live` maps each id to
    its last acknowledged version (n, kind); `pending` is the one call a kill cut off,
    as (id, version or None for a delete), whose effect is unknown until verified."""

    def __init__(self, w, seed):
        self.w = w
        self.rng = random.Random(seed * 1000 + w)
        self.n = 0
        self.live = {}
        self.pending = None
        self.docs = []       # acknowledged document inserts in `kill`: (id, i)
        self.updates = {}    # document id -> last acknowledged "u"
        self.mine = None     # this writer's latest document in `kill`
        self.failures = []

    def vector(self, n, kind):
        return [float(n), float(self.w), float(kind), 1.0]

    def run(self, pb, target, md):
        v, d = pb.vector_pb2, pb.document_pb2
        with grpc.insecure_channel(target) as ch:
            vecs = pb.vector_pb2_grpc.VectorServiceStub(ch)
            docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
            while True:
                self.n += 1
                n, r = self.n, self.rng.random()
                vid = self.rng.choice(sorted(self.live)) if self.live else None
                grow = len(self.live) < LIVE_PER_WRITER  # beyond it, delete as often as insert
                try:
                    if r < (0.3 if grow else 0.2) or vid is None:
                        vid = f"w{self.w}-{n}"
                        self.pending = (vid, (n, 1))
                        got = vecs.InsertVector(v.InsertVectorRequest(
                            collection="killvec", document=pb.doc({"_id": vid, "w": self.w, "v": n}),
                            vector=self.vector(n, 1)), metadata=md, timeout=5).document_id
                        if got != vid:
                            self.failures.append(f"InsertVector {vid} answered {got}")
                        self.live[vid] = (n, 1)
                    elif r < 0.55:
                        self.pending = (vid, (n, 2))
                        up = vecs.UpsertVector(v.UpsertVectorRequest(
                            collection="killvec", id=vid, document=pb.doc({"w": self.w, "v": n}),
                            vector=self.vector(n, 2)), metadata=md, timeout=5)
                        if up.inserted:
                            self.failures.append(f"UpsertVector of acknowledged {vid} says it inserted")
                        self.live[vid] = (n, 2)
                    elif r < (0.65 if grow else 0.75):
                        self.pending = (vid, None)
                        if not vecs.DeleteVector(v.DeleteVectorRequest(collection="killvec", id=vid), metadata=md,
                                                 timeout=5).success:
                            self.failures.append(f"DeleteVector of acknowledged {vid} found nothing")
                        del self.live[vid]
                    elif r < 0.85 or self.mine is None:
                        self.pending = None
                        got = docs.InsertOne(d.InsertOneRequest(collection="kill", document=pb.doc({"w": self.w, "i": n})),
                                             metadata=md, timeout=5).document_id
                        self.docs.append((got, n))
                        self.mine = got
                    else:
                        self.pending = None
                        docs.Update(d.UpdateRequest(collection="kill", id=self.mine, update=pb.doc({"$set": {"u": n}})),
                                    metadata=md, timeout=5)
                        self.updates[self.mine] = n
                except grpc.RpcError as e:
                    if e.code() in GONE:
                        return
                    self.failures.append(f"{e.code()}: {e.details()}")
                    return
                self.pending = None

    def settle(self, stored):
        """Checks this writer's ids against what is stored, then takes the stored state
        as the truth (the cut-off call either happened or not). Returns complaints."""
        bad = []
        pid, pver = self.pending if self.pending else (None, None)
        mine = {i for i in stored if i.startswith(f"w{self.w}-")} | set(self.live) | ({pid} if pid else set())
        for i in mine:
            ok = {self.live.get(i)} | ({pver} if i == pid else set())
            if stored.get(i) not in ok:
                bad.append(f"{i}: stored {stored.get(i)}, acknowledged {self.live.get(i)}, "
                           f"cut off {pver if i == pid else '-'}")
            if i in stored:
                self.live[i] = stored[i]
            else:
                self.live.pop(i, None)
        self.pending = None
        return bad


def verify(pb, s, writers):
    md = (("x-api-key", s.api_key),)
    v, d = pb.vector_pb2, pb.document_pb2
    with grpc.insecure_channel(s.target, options=[("grpc.max_receive_message_length", 64 << 20)]) as ch:
        vecs = pb.vector_pb2_grpc.VectorServiceStub(ch)
        stored = {}
        for page in vecs.FindVectors(v.FindVectorsRequest(collection="killvec"), metadata=md, timeout=60):
            for x in page.documents:
                doc = pb.undoc(x.document)
                n, w, kind, one = x.vector
                assert (doc["v"], doc["w"], one) == (n, w, 1.0), f"document {doc} stored with vector {list(x.vector)}"
                stored[doc["_id"]] = (int(n), int(kind))
        bad = [b for wr in writers for b in wr.settle(stored)]
        assert not bad, f"{len(bad)} vector documents not as acknowledged, e.g. {bad[:3]}"
        assert all(i.split("-")[0][1:].isdigit() and int(i.split("-")[0][1:]) < len(writers) for i in stored)
        hits = vecs.Search(v.SearchRequest(collection="killvec", vector=[1.0, 0, 0, 0], limit=len(stored) + 10),
                           metadata=md, timeout=60).results
        ids = [h.document_id for h in hits]
        assert sorted(ids) == sorted(stored), "Search does not return each live document exactly once"
        for h in hits:
            assert h.similarity == stored[h.document_id][0] == pb.undoc(h.document)["v"], h

        docs = pb.document_pb2_grpc.DocumentServiceStub(ch)
        found = {}
        for page in docs.Find(d.FindRequest(collection="kill"), metadata=md, timeout=60):
            for x in page.documents:
                x = pb.undoc(x)
                found[x["_id"]] = x
    for wr in writers:
        missing = [a for a in wr.docs if a[0] not in found]
        assert not missing, f"{len(missing)} acknowledged inserts lost, e.g. {missing[:3]}"
        for doc_id, n in wr.updates.items():
            u = found[doc_id].get("u", -1)
            assert u >= n, f"update {n} of {doc_id} acknowledged but stored u={u}"
    return len(stored), len(found)


def test_sigkill_at_random_moments_keeps_every_acknowledged_write(pb, server_factory):
    kills = int(os.environ.get("NEXADB_KILLS", "100"))
    seed = int(os.environ.get("NEXADB_KILL_SEED", str(int(time.time()))))
    rnd = random.Random(seed)
    writers = [Writer(w, seed) for w in range(8)]
    s = server_factory("kill").start()
    with grpc.insecure_channel(s.target) as ch:
        pb.vector_pb2_grpc.VectorServiceStub(ch).CreateVectorCollection(
            pb.vector_pb2.CreateVectorCollectionRequest(collection="killvec", dimensions=DIMS,
                                                        metric=pb.common_pb2.VECTOR_METRIC_DOT),
            metadata=(("x-api-key", s.api_key),), timeout=10)
    t0 = time.time()
    ops = 0
    for k in range(kills):
        md = (("x-api-key", s.api_key),)
        before = sum(wr.n for wr in writers)
        threads = [threading.Thread(target=wr.run, args=(pb, s.target, md)) for wr in writers]
        for t in threads:
            t.start()
        time.sleep(rnd.uniform(0.05, 0.4))
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait(timeout=10)
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads), "a writer hung after the kill"
        failures = [f for wr in writers for f in wr.failures]
        assert not failures, f"round {k} (seed {seed}): {failures[:3]}"
        ops += sum(wr.n for wr in writers) - before
        s = server_factory("kill").start()
        nvec, ndoc = verify(pb, s, writers)
    print(f"\nKILLS survived={kills} seed={seed} calls={ops} live vector documents={nvec} "
          f"documents={ndoc} in {time.time() - t0:.0f}s")
