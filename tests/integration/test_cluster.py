"""Three nexadb-server processes as a cluster on loopback: writes replicate, followers refuse
writes naming the leader, TTL deletes go through the log, and the leader killed with SIGKILL under write load loses no
acknowledged write (every node holds every acknowledged document, and the same documents)."""
import datetime
import glob
import hashlib
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from conftest import ROOT


def channel(node):
    """A channel to node: TLS with the test client's certificate when the cluster runs mTLS."""
    certs = getattr(node, "certs", None)
    if certs is None:
        return grpc.insecure_channel(node.target)
    creds = grpc.ssl_channel_credentials(root_certificates=(certs / "ca.crt").read_bytes(),
                                         private_key=(certs / "client.key").read_bytes(),
                                         certificate_chain=(certs / "client.crt").read_bytes())
    return grpc.secure_channel(node.target, creds)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, server_factory, n=3, extra_args=(), certs=None):
        """certs: a tests/tls/mkcerts.sh directory: every node serves mTLS with node.crt and calls
        the others over TLS (--tls-peer-ca)."""
        self.key = secrets.token_hex(16)
        peers = ",".join(f"{i + 1}=127.0.0.1:{free_port()}" for i in range(n))
        tls = [] if certs is None else [
            "--tls-cert", str(certs / "node.crt"), "--tls-key", str(certs / "node.key"),
            "--tls-client-ca", str(certs / "ca.crt"), "--tls-peer-ca", str(certs / "ca.crt")]
        self.nodes = [server_factory(f"node{i + 1}", extra_args=[
            "--node-id", str(i + 1), "--peers", peers, "--api-key", self.key, "--shutdown-grace", "2", *tls,
            *extra_args]) for i in range(n)]
        for s in self.nodes:
            s.certs = certs

    def start(self):
        for s in self.nodes:
            s.start()
        return self

    @property
    def auth(self):
        return (("x-api-key", self.key),)

    def leader(self, pb, timeout=15):
        """The node whose status says it leads (waiting for an election)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for s in self.nodes:
                if s.proc is None or s.proc.poll() is not None:
                    continue
                with channel(s) as ch:
                    try:
                        st = pb.admin_pb2_grpc.AdminServiceStub(ch).Status(pb.admin_pb2.StatusRequest(), timeout=2)
                        if st.cluster.role == "leader":
                            return s
                    except grpc.RpcError:
                        pass
            time.sleep(0.1)
        raise AssertionError("no leader")


def local_ids(pb, node, key, collection):
    """The documents of collection on node as it stands (read concern local), _id -> digest."""
    with channel(node) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        md = (("x-api-key", key), ("nexadb-read-concern", "local"))
        out = {}
        for page in stub.Find(pb.document_pb2.FindRequest(collection=collection), metadata=md, timeout=30):
            for d in page.documents:
                out[pb.undoc(d)["_id"]] = hashlib.sha256(d.bson).hexdigest()
        return out


def cluster_states(pb, c):
    """Each node's role, log positions and trouble, for failure messages."""
    out = []
    for s in c.nodes:
        try:
            with channel(s) as ch:
                st = pb.admin_pb2_grpc.AdminServiceStub(ch).Status(pb.admin_pb2.StatusRequest(), timeout=5)
                cl = st.cluster
                out.append(f"node {cl.node_id}: {cl.role} term {cl.term} commit {cl.commit_index} applied "
                           f"{cl.applied_index} last {cl.last_index} {cl.apply_error} {st.reason}")
        except grpc.RpcError as e:
            out.append(f"{s.target}: {e.code()}")
    return "; ".join(out)


def wait_serving(pb, node, timeout=30):
    """Waits until node's readiness is SERVING: it knows the leader and has applied the log."""
    deadline = time.time() + timeout
    while True:
        with channel(node) as ch:
            try:
                st = pb.admin_pb2_grpc.AdminServiceStub(ch).Status(pb.admin_pb2.StatusRequest(), timeout=5)
                if st.health == "SERVING":
                    return
            except grpc.RpcError:
                pass
        assert time.time() < deadline, f"{node.target} did not catch up"
        time.sleep(0.1)


def wait_converged(pb, c, collection, want, timeout=30):
    deadline = time.time() + timeout
    while True:
        contents = [local_ids(pb, s, c.key, collection) for s in c.nodes]
        if all(set(want) <= set(x) for x in contents) and all(x == contents[0] for x in contents):
            return contents[0]
        if time.time() > deadline:
            sizes = [len(x) for x in contents]
            missing = [len(set(want) - set(x)) for x in contents]
            raise AssertionError(f"nodes did not converge: sizes {sizes}, acknowledged missing {missing}; "
                                 f"{cluster_states(pb, c)}")
        time.sleep(0.3)


def test_writes_replicate_and_followers_forward_or_name_the_leader(pb, server_factory):
    c = Cluster(server_factory).start()
    leader = c.leader(pb)
    with channel(leader) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        ids = [stub.InsertOne(pb.document_pb2.InsertOneRequest(collection="users", document=pb.doc(
            {"name": f"u{i}", "age": i})), metadata=c.auth, timeout=10).document_id for i in range(20)]
        stub.Update(pb.document_pb2.UpdateRequest(collection="users", id=ids[0], update=pb.doc(
            {"$set": {"age": 99}})), metadata=c.auth, timeout=10)
    docs = wait_converged(pb, c, "users", ids)
    assert len(docs) == 20
    # concurrent inserts share log entries, yet each document gets an _id of its own
    with channel(leader) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        with ThreadPoolExecutor(16) as ex:
            got = list(ex.map(lambda i: stub.InsertOne(pb.document_pb2.InsertOneRequest(
                collection="together", document=pb.doc({"i": i})), metadata=c.auth, timeout=10).document_id,
                range(160)))
    assert len(set(got)) == 160, f"{160 - len(set(got))} ids given twice"
    assert len(wait_converged(pb, c, "together", got)) == 160
    ids = list(ids)
    follower = next(s for s in c.nodes if s is not leader)
    named = f"is not the leader; the leader is node {c.nodes.index(leader) + 1} at {leader.target}"
    with channel(follower) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        # a call sent to a follower is passed on to the leader and answered: unary, or a stream
        ids.append(stub.InsertOne(pb.document_pb2.InsertOneRequest(collection="users", document=pb.doc(
            {"name": "via a follower"})), metadata=c.auth, timeout=10).document_id)
        assert stub.Count(pb.document_pb2.CountRequest(collection="users"), metadata=c.auth, timeout=10).count == 21
        pages = list(stub.Find(pb.document_pb2.FindRequest(collection="users", page_size=5), metadata=c.auth,
                               timeout=10))
        assert len(pages) >= 5 and sum(len(p.documents) for p in pages) == 21
        # a call forwarded once is not forwarded again: the follower names the leader by the
        # address clients reach it at, which the leader announced in the log
        with pytest.raises(grpc.RpcError) as e:
            stub.InsertOne(pb.document_pb2.InsertOneRequest(collection="users", document=pb.doc({"x": 1})),
                           metadata=(*c.auth, ("nexadb-forwarded", "1")), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert named in e.value.details(), e.value.details()
        # the trailer says the call was refused, not run, and where to send it (the SDKs follow it)
        assert ("nexadb-leader", leader.target) in e.value.trailing_metadata()
        # the same _id, time-stamps and update everywhere: ids and times come from the entry
        md = (("x-api-key", c.key), ("nexadb-read-concern", "local"))
        got = pb.undoc(stub.Get(pb.document_pb2.GetRequest(collection="users", id=ids[0]), metadata=md,
                                timeout=10).document)
        assert got["age"] == 99
    # 100 linearizable reads (a Raft barrier each, or shared) and no write: nobody looks behind
    with channel(leader) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        for _ in range(100):
            stub.Count(pb.document_pb2.CountRequest(collection="users"), metadata=c.auth, timeout=10)
    time.sleep(0.2)
    # every node's Status: one leader, known to all, everything committed applied; readiness SERVING
    statuses = {}
    for s in c.nodes:
        with channel(s) as ch:
            st = pb.admin_pb2_grpc.AdminServiceStub(ch).Status(pb.admin_pb2.StatusRequest(), metadata=c.auth,
                                                                timeout=10)
            statuses[s.target] = st
            assert st.health == "SERVING", st.reason
            hc = pb.health_pb2_grpc.HealthStub(ch).Check(
                pb.health_pb2.HealthCheckRequest(service="nexadb.v1.DocumentService"), timeout=10)
            assert hc.status == pb.health_pb2.HealthCheckResponse.SERVING
    roles = sorted(st.cluster.role for st in statuses.values())
    assert roles == ["follower", "follower", "leader"]
    lead = statuses[leader.target].cluster
    assert lead.node_id == c.nodes.index(leader) + 1
    assert {st.cluster.leader_id for st in statuses.values()} == {lead.node_id}
    assert {st.cluster.leader_address for st in statuses.values()} == {leader.target}
    assert len(lead.peers) == 3 and all(p.voter for p in lead.peers)
    assert lead.commit_index > 20
    # everything committed is applied (barriers included, once the applier has caught up: 50 ms)
    for _ in range(50):
        with channel(leader) as ch:
            lead = pb.admin_pb2_grpc.AdminServiceStub(ch).Status(pb.admin_pb2.StatusRequest(), timeout=10).cluster
        if lead.applied_index >= lead.commit_index:
            break
        time.sleep(0.1)
    assert lead.applied_index >= lead.commit_index, lead
    import requests
    text = requests.get(f"{leader.http_base}/metrics", headers={"X-API-Key": c.key}, timeout=10).text
    assert 'nexadb_cluster_role{role="leader"} 1' in text
    assert "nexadb_cluster_peer_lag_entries{peer=" in text


def writer(pb, c, acked, stop, wid):
    n = 0
    while not stop.is_set():
        for s in list(c.nodes):
            if stop.is_set():
                return
            if s.proc is None or s.proc.poll() is not None:
                continue
            try:
                with channel(s) as ch:
                    stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
                    while not stop.is_set():
                        r = stub.InsertOne(pb.document_pb2.InsertOneRequest(collection="acks", document=pb.doc(
                            {"w": wid, "n": n})), metadata=c.auth, timeout=5)
                        acked.append(r.document_id)
                        n += 1
            except grpc.RpcError:
                time.sleep(0.05)  # not the leader, or it died: try the next node


@pytest.mark.parametrize("kills", [int(os.environ.get("NDB_CLUSTER_KILLS", "3"))])
def test_leader_killed_under_load_loses_no_acknowledged_write(pb, server_factory, kills):
    # snapshots every 64 entries: restarted nodes load one, then replay the rest of the log
    c = Cluster(server_factory, extra_args=["--snapshot-entries", "64"]).start()
    c.leader(pb)
    acked, stop = [], threading.Event()
    threads = [threading.Thread(target=writer, args=(pb, c, acked, stop, w)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        for k in range(kills):
            time.sleep(1.0)
            leader = c.leader(pb)
            before = len(acked)
            leader.proc.send_signal(signal.SIGKILL)
            leader.proc.wait()
            leader.pump.join(timeout=5)
            leader.log.close()
            c.leader(pb)  # the other two elect a new one
            deadline = time.time() + 15
            while len(acked) == before and time.time() < deadline:
                time.sleep(0.05)
            assert len(acked) > before, f"kill {k + 1}: no write acknowledged after the failover"
            leader.start()  # back: it loads its snapshot, replays the log and catches up
            wait_serving(pb, leader)  # before the next kill: a majority must remain
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(acked) > 50
    assert len(set(acked)) == len(acked), "two acknowledged writes were given one _id: one overwrote the other"
    wait_converged(pb, c, "acks", acked, timeout=60)


def test_a_restarted_node_loads_its_snapshot_and_replays_the_log(pb, server_factory):
    c = Cluster(server_factory, extra_args=["--snapshot-entries", "16"]).start()
    leader = c.leader(pb)
    with channel(leader) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        stub.CreateIndex(pb.document_pb2.CreateIndexRequest(collection="users", fields=[pb.document_pb2.IndexField(
            field="age")]), metadata=c.auth,
                         timeout=10)
        ids = [stub.InsertOne(pb.document_pb2.InsertOneRequest(collection="users", document=pb.doc(
            {"name": f"u{i}", "age": i % 50})), metadata=c.auth, timeout=10).document_id for i in range(120)]
    wait_converged(pb, c, "users", ids)
    for s in c.nodes:
        if s is leader:
            continue
        assert any(r.get("msg") == "cluster snapshot taken" for r in s.lines), "no snapshot taken"
        s.stop(signal.SIGKILL)
        s.start()
        loaded = [r for r in s.lines if r.get("msg") == "state loaded from a snapshot"]
        assert loaded, "the restarted node did not start from its snapshot"
        wait_serving(pb, s)  # back in the majority before the other follower goes
    leader = c.leader(pb)
    with channel(leader) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        ids += [stub.InsertOne(pb.document_pb2.InsertOneRequest(collection="users", document=pb.doc(
            {"name": f"v{i}", "age": 7})), metadata=c.auth, timeout=10).document_id for i in range(10)]
    wait_converged(pb, c, "users", ids)
    # the index came through the snapshot too: an indexed count on a restarted follower
    follower = next(s for s in c.nodes if s is not leader)
    with channel(follower) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        md = (("x-api-key", c.key), ("nexadb-read-concern", "local"))
        n = stub.Count(pb.document_pb2.CountRequest(collection="users", filter=pb.doc({"age": 7})), metadata=md,
                       timeout=10).count
        assert n == 3 + 10  # i % 50 == 7 for 7, 57 and 107


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    subprocess.run([str(ROOT / "tests/tls/mkcerts.sh"), str(d)], check=True)
    return d


@pytest.mark.parametrize("tls", [False, True], ids=["plaintext", "mtls"])
def test_an_emptied_node_rejoins_by_the_leaders_snapshot_and_the_log(pb, server_factory, certs, tls):
    # with mTLS the nodes call each other over TLS too: passing calls on, fetching the snapshot
    import shutil
    c = Cluster(server_factory, extra_args=["--snapshot-entries", "16"], certs=certs if tls else None).start()
    leader = c.leader(pb)
    lost, other = [s for s in c.nodes if s is not leader]
    with channel(other) as ch:  # passed on to the leader
        ids = [pb.document_pb2_grpc.DocumentServiceStub(ch).InsertOne(pb.document_pb2.InsertOneRequest(
            collection="users", document=pb.doc({"name": "via a follower"})), metadata=c.auth,
            timeout=10).document_id]

    def insert(n, tag):
        with channel(leader) as ch:
            stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
            ids.extend(stub.InsertOne(pb.document_pb2.InsertOneRequest(collection="users", document=pb.doc(
                {"name": f"{tag}{i}"})), metadata=c.auth, timeout=10).document_id for i in range(n))

    insert(50, "a")
    wait_converged(pb, c, "users", ids)
    lost.stop(signal.SIGKILL)
    lost_id = c.nodes.index(lost) + 1
    raft_address = next(p for p in lost.extra_args[3].split(",") if p.startswith(f"{lost_id}="))[2:]
    with channel(leader) as ch:
        admin = pb.admin_pb2_grpc.AdminServiceStub(ch)
        # a node whose disk is gone leaves the configuration, and comes back as a new member
        r = admin.RemoveClusterNode(pb.admin_pb2.RemoveClusterNodeRequest(id=lost_id), metadata=c.auth, timeout=30)
        assert r.cluster.role == "leader"
        insert(600, "b")  # two members now; the log before these is dropped (but its last 512 entries)
        shutil.rmtree(lost.data_dir)
        lost.start()
        r = admin.AddClusterNode(pb.admin_pb2.AddClusterNodeRequest(id=lost_id, raft_address=raft_address),
                                 metadata=c.auth, timeout=60)
    insert(5, "c")
    wait_converged(pb, c, "users", ids, timeout=60)
    assert any(r.get("msg") == "cluster snapshot fetched" for r in lost.lines), "it caught up without a snapshot"
    with channel(leader) as ch:
        st = pb.admin_pb2_grpc.AdminServiceStub(ch).Status(pb.admin_pb2.StatusRequest(), timeout=10)
        assert sorted((p.id, p.voter) for p in st.cluster.peers) == [(1, True), (2, True), (3, True)]


def test_a_follower_reads_after_the_clients_write_once_it_has_it(pb, server_factory):
    c = Cluster(server_factory).start()
    leader = c.leader(pb)
    lagging, other = [s for s in c.nodes if s is not leader]
    lagging.proc.send_signal(signal.SIGSTOP)  # it will miss the write, for a while
    try:
        with channel(leader) as ch:
            r, call = pb.document_pb2_grpc.DocumentServiceStub(ch).InsertOne.with_call(
                pb.document_pb2.InsertOneRequest(collection="ryw", document=pb.doc({"v": 1})), metadata=c.auth,
                timeout=10)
        index = dict(call.trailing_metadata())["nexadb-log-index"]
        assert int(index) > 0
        got = {}

        def read():
            with channel(lagging) as ch:
                md = (*c.auth, ("nexadb-read-after", index))
                got["doc"] = pb.document_pb2_grpc.DocumentServiceStub(ch).Get(pb.document_pb2.GetRequest(
                    collection="ryw", id=r.document_id), metadata=md, timeout=20)
        t = threading.Thread(target=read)
        t.start()
        time.sleep(0.5)
    finally:
        lagging.proc.send_signal(signal.SIGCONT)
    t.join(30)
    assert pb.undoc(got["doc"].document)["v"] == 1  # it waited for the entry rather than answer "not found"
    # a bad index is refused; over HTTP the same headers
    import requests
    with channel(other) as ch:
        with pytest.raises(grpc.RpcError) as e:
            pb.document_pb2_grpc.DocumentServiceStub(ch).Get(pb.document_pb2.GetRequest(
                collection="ryw", id=r.document_id), metadata=(*c.auth, ("nexadb-read-after", "x1")), timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    w = requests.post(f"{other.http_base}/collections/ryw", json={"v": 2},
                      headers={"X-API-Key": c.key}, timeout=10)
    assert w.status_code == 200, w.text
    after = w.headers["NexaDB-Log-Index"]  # passed on to the leader, which told the follower the entry
    assert int(after) > int(index)
    q = requests.post(f"{lagging.http_base}/collections/ryw/count", json={},
                      headers={"X-API-Key": c.key, "NexaDB-Read-After": after}, timeout=10)
    assert q.status_code == 200 and q.json()["count"] == 2, q.text


def test_a_restarted_node_opens_the_vector_graph_its_snapshot_kept(pb, server_factory):
    # a snapshot keeps the vector segments and graphs (links): a node that loads it opens them
    import random
    c = Cluster(server_factory, extra_args=["--snapshot-entries", "16"]).start()
    leader = c.leader(pb)
    v, idx = pb.vector_pb2, pb.common_pb2.VectorIndex
    rng = random.Random(5)
    rows = [[rng.gauss(0, 1) for _ in range(64)] for _ in range(20000)]  # 5 MB: above the exact-search size
    with channel(leader) as ch:
        vec = pb.vector_pb2_grpc.VectorServiceStub(ch)
        vec.CreateVectorCollection(v.CreateVectorCollectionRequest(
            collection="emb", dimensions=64, metric=pb.common_pb2.VECTOR_METRIC_L2,
            index=idx(kind=idx.KIND_HNSW, m=8, ef_construction=64)), metadata=c.auth, timeout=10)
        for at in range(0, len(rows), 2000):
            vec.InsertVectors(v.InsertVectorsRequest(collection="emb", documents=[
                v.VectorDocument(document=pb.doc({"_id": f"d{i}"}), vector=r)
                for i, r in enumerate(rows[at:at + 2000], start=at)]), metadata=c.auth, timeout=60)
    node = next(s for s in c.nodes if s is not leader)
    local = (*c.auth, ("nexadb-read-concern", "local"))
    deadline = time.time() + 120
    with channel(node) as ch:
        vec = pb.vector_pb2_grpc.VectorServiceStub(ch)
        while True:  # its graph built and saved
            col = next(x for x in vec.ListVectorCollections(v.ListVectorCollectionsRequest(), metadata=local,
                                                            timeout=10).collections if x.name == "emb")
            if col.indexed == len(rows) and not col.index_building and glob.glob(
                    os.path.join(node.data_dir, "cluster", "state", "vseg", "*", "graph.hnsw")):
                break
            assert time.time() < deadline, f"the graph was not built and saved: {col}"
            time.sleep(0.2)
        before = [h.document_id for h in vec.Search(v.SearchRequest(collection="emb", vector=rows[7], limit=10),
                                                     metadata=local, timeout=10).results]
    taken = sum(r.get("msg") == "cluster snapshot taken" for r in node.lines)
    with channel(leader) as ch:  # entries enough for the node's next snapshot, which keeps the graph
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        while sum(r.get("msg") == "cluster snapshot taken" for r in node.lines) == taken:
            stub.InsertOne(pb.document_pb2.InsertOneRequest(collection="more", document=pb.doc({"x": 1})),
                           metadata=c.auth, timeout=10)
            assert time.time() < deadline, "the node took no snapshot"
    node.stop()
    seen = len(node.lines)
    node.start()
    wait_serving(pb, node)
    assert any("graph loaded (20000 nodes" in str(line) for line in node.lines[seen:]), "the graph was built again"
    with channel(node) as ch:
        vec = pb.vector_pb2_grpc.VectorServiceStub(ch)
        after = [h.document_id for h in vec.Search(v.SearchRequest(collection="emb", vector=rows[7], limit=10),
                                                    metadata=local, timeout=10).results]
    assert after == before


def test_a_minority_refuses_writes_and_the_majority_goes_on(pb, server_factory):
    c = Cluster(server_factory).start()
    leader = c.leader(pb)
    others = [s for s in c.nodes if s is not leader]
    ins = lambda stub, tag: stub.InsertOne(pb.document_pb2.InsertOneRequest(  # noqa: E731
        collection="p", document=pb.doc({"tag": tag})), metadata=c.auth, timeout=5).document_id
    with channel(leader) as ch:
        ids = [ins(pb.document_pb2_grpc.DocumentServiceStub(ch), "before")]
    # the leader alone (both followers frozen): no write or linearizable read is answered
    for s in others:
        s.proc.send_signal(signal.SIGSTOP)
    try:
        with channel(leader) as ch:
            stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
            with pytest.raises(grpc.RpcError) as e:
                ins(stub, "minority")
            assert e.value.code() in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE,
                                      grpc.StatusCode.DEADLINE_EXCEEDED), e.value
            with pytest.raises(grpc.RpcError):
                stub.Count(pb.document_pb2.CountRequest(collection="p"), metadata=c.auth, timeout=5)
    finally:
        for s in others:
            s.proc.send_signal(signal.SIGCONT)
    # the old leader frozen instead: the other two elect a leader and serve
    c.leader(pb)
    leader = c.leader(pb)
    leader.proc.send_signal(signal.SIGSTOP)
    try:
        new = c.leader(pb)
        assert new is not leader
        with channel(new) as ch:
            ids.append(ins(pb.document_pb2_grpc.DocumentServiceStub(ch), "majority"))
    finally:
        leader.proc.send_signal(signal.SIGCONT)
    docs = wait_converged(pb, c, "p", ids)
    # the minority's write, never acknowledged, may or may not have been kept: never twice
    assert len(docs) in (2, 3)


def test_ttl_deletes_go_through_the_log_and_reach_every_node(pb, server_factory):
    c = Cluster(server_factory, extra_args=["--ttl-interval-seconds", "1"]).start()
    leader = c.leader(pb)
    now = datetime.datetime.now(datetime.timezone.utc)
    with channel(leader) as ch:
        stub = pb.document_pb2_grpc.DocumentServiceStub(ch)
        stub.CreateIndex(pb.document_pb2.CreateIndexRequest(
            collection="s", fields=[pb.document_pb2.IndexField(field="exp")],
            ttl=pb.document_pb2.IndexTtl(expire_after_seconds=0)), metadata=c.auth, timeout=10)
        # more than one entry's share (1,000): the leader proposes passes until one deletes less
        for k in range(5):
            stub.InsertMany(pb.document_pb2.InsertManyRequest(collection="s", documents=[
                pb.doc({"_id": f"old{k}-{i}", "exp": now - datetime.timedelta(minutes=1)}) for i in range(500)]),
                metadata=c.auth, timeout=30)
        stub.InsertMany(pb.document_pb2.InsertManyRequest(collection="s", documents=[
            pb.doc({"_id": "later", "exp": now + datetime.timedelta(hours=1)}),
            pb.doc({"_id": "missing"})]), metadata=c.auth, timeout=10)
    # every node deletes the same documents, though only the leader's clock chose the moment
    deadline = time.time() + 30
    while True:
        contents = [local_ids(pb, s, c.key, "s") for s in c.nodes]
        if all(sorted(x) == ["later", "missing"] for x in contents) and all(x == contents[0] for x in contents):
            break
        assert time.time() < deadline, f"sizes {[len(x) for x in contents]}; {cluster_states(pb, c)}"
        time.sleep(0.3)
    import requests
    counts = []
    for s in c.nodes:
        text = requests.get(f"{s.http_base}/metrics", headers={"X-API-Key": c.key}, timeout=10).text
        counts += [int(line.split()[1]) for line in text.splitlines()
                   if line.startswith("nexadb_ttl_deleted_documents_total ")]
    # the pass that deleted them ran on the leader (a node that led meanwhile counts its own share)
    assert sum(counts) == 2500, counts
