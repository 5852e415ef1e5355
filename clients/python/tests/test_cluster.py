"""A real three-node cluster on loopback, over TLS (where a follower refuses a call instead of
passing it on to the leader, naming the leader in the trailer nexadb-leader): the SDK, sync
and asyncio, connected to a follower, sends its calls again to the leader and stays there;
with no leader known the refusal is raised at once. Certificates from the certs fixture
(they cover localhost and 127.0.0.1, the host the leader announces). Read concerns: "local"
reads stay on the follower; "session" reads wait there for the client's writes."""
import asyncio
import contextlib
import os
import signal
import socket
import threading
import time

import grpc
import pytest

from testserver import Server

API_KEY = "cluster-test-key-0123456789"


def free_ports(n):
    """n ports free now on 127.0.0.1 (for the Raft transports, which --peers names up front)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


class Cluster:
    """Three nexadb-server nodes; nodes[i] is node i + 1 (a testserver.Server)."""

    def __init__(self, tmp, certs):
        raft = free_ports(3)
        peers = ",".join(f"{i + 1}=127.0.0.1:{p}" for i, p in enumerate(raft))
        self.ca = (certs / "ca.crt").read_bytes()
        self.nodes = [Server(tmp / f"n{i + 1}", ["--node-id", str(i + 1), "--peers", peers, "--api-key", API_KEY,
                                                 "--tls-cert", str(certs / "server.crt"),
                                                 "--tls-key", str(certs / "server.key")])
                      for i in range(3)]
        try:
            for s in self.nodes:
                s.start()
                s.api_key = API_KEY
        except BaseException:
            self.stop()
            raise

    def client(self, node, host="localhost", **kw):
        """A NexaDB on node, by name (localhost) unless host says otherwise."""
        from nexadb import NexaDB
        kw.setdefault("timeout", 10)
        return NexaDB(host, node.port, API_KEY, root_certificates=self.ca, **kw)

    def status(self, node):
        with self.client(node) as db:
            return db.status()["cluster"]

    def wait_for_leader(self, timeout=30):
        """The leading node once every running node names it by its client address."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            views = [self.status(n) for n in self.nodes]
            leaders = [n for n, v in zip(self.nodes, views) if v["role"] == "leader"]
            if len(leaders) == 1:
                want = f"127.0.0.1:{leaders[0].port}"
                if all(v.get("leader_address") == want for v in views):
                    return leaders[0]
            time.sleep(0.1)
        raise AssertionError(f"no leader announced within {timeout} s: {views}")

    def stop(self):
        for n in self.nodes:
            n.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, certs):
    c = Cluster(tmp_path_factory.mktemp("cluster"), certs)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def roles(cluster):
    """(leader, a follower) of the shared cluster."""
    leader = cluster.wait_for_leader()
    return leader, next(n for n in cluster.nodes if n is not leader)


def test_follower_refuses_with_the_leader_trailer(cluster, roles, coll_name):
    """The server's side of the contract, seen from a bare grpc channel: what the SDK reads."""
    from nexadb import errors
    from nexadb.v1 import document_pb2
    leader, follower = roles
    creds = grpc.ssl_channel_credentials(root_certificates=cluster.ca)
    with grpc.secure_channel(f"localhost:{follower.port}", creds) as ch:
        count = ch.unary_unary("/nexadb.v1.DocumentService/Count",
                               request_serializer=document_pb2.CountRequest.SerializeToString,
                               response_deserializer=document_pb2.CountResponse.FromString)
        with pytest.raises(grpc.RpcError) as e:
            count(document_pb2.CountRequest(collection=coll_name), metadata=(("x-api-key", API_KEY),),
                  timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert errors.leader_trailer(e.value) == f"127.0.0.1:{leader.port}"


def test_sync_client_on_a_follower_follows_to_the_leader(cluster, roles, coll_name):
    leader, follower = roles
    at_leader = f"127.0.0.1:{leader.port}"
    # each first call takes its own path: a unary write, a collected stream, a cursor, a read
    with cluster.client(follower) as db:
        assert db.address == f"localhost:{follower.port}"
        users = db.collection(coll_name)
        uid = users.insert({"name": "Alice", "age": 28})
        assert db.address == at_leader
        assert users.insert_many([{"name": "Bob", "age": 35}, {"name": "Carol", "age": 22}])
        assert users.count() == 3
        assert users.update(uid, {"age": 29}) is True
    with cluster.client(follower) as db:
        assert [d["name"] for d in db.collection(coll_name).find({"age": {"$gt": 25}}, sort="age")] \
            == ["Alice", "Bob"]
        assert db.address == at_leader
    with cluster.client(follower) as db:
        assert [d["age"] for d in db.collection(coll_name).find_iter(sort="-age", page_size=1)] == [35, 29, 22]
        assert db.address == at_leader
    with cluster.client(follower) as db:
        assert db.collection(coll_name).count({"age": {"$lt": 30}}) == 2
        assert db.address == at_leader
    with cluster.client(leader) as db:  # the writes are the leader's
        assert db.collection(coll_name).find_by_id(uid)["age"] == 29


def test_async_client_on_a_follower_follows_to_the_leader(cluster, roles, coll_name):
    from nexadb import AsyncNexaDB
    leader, follower = roles
    at_leader = f"127.0.0.1:{leader.port}"

    def connect():
        return AsyncNexaDB("localhost", follower.port, API_KEY, root_certificates=cluster.ca, timeout=10)

    async def main():
        async with connect() as db:
            users = db.collection(coll_name)
            assert await asyncio.gather(*(users.count() for _ in range(4))) == [0] * 4  # all redirected
            assert db.address == at_leader
            assert len(await users.insert_many([{"i": i} for i in range(5)])) == 5
        async with connect() as db:
            assert await db.collection(coll_name).insert({"i": 5})
            assert db.address == at_leader
        async with connect() as db:
            assert len(await db.collection(coll_name).find({"i": {"$gte": 2}})) == 4
            assert db.address == at_leader
        async with connect() as db:
            assert [d["i"] async for d in db.collection(coll_name).find_iter(sort="i", page_size=2)] \
                == [0, 1, 2, 3, 4, 5]
            assert db.address == at_leader
    asyncio.run(main())


def test_read_concern_is_checked():
    from nexadb import AsyncNexaDB, NexaDB
    for cls in (NexaDB, AsyncNexaDB):  # before any channel is opened (AsyncNexaDB: outside a loop)
        with pytest.raises(ValueError, match="read_concern"):
            cls("localhost", 1, read_concern="majority")


@contextlib.contextmanager
def frozen(node, seconds):
    """node's process stopped (SIGSTOP) from now until a timer thread continues it (SIGCONT)
    seconds later; the block runs meanwhile, and leaving it waits for the timer."""
    os.kill(node.proc.pid, signal.SIGSTOP)
    timer = threading.Timer(seconds, os.kill, (node.proc.pid, signal.SIGCONT))
    timer.start()
    try:
        yield
    finally:
        timer.join()


def test_local_reads_stay_on_the_follower(cluster, roles, coll_name):
    """read_concern="local": the follower answers reads itself, from what it has applied (the
    default redirects them to the leader, as TLS keeps the follower from passing them on)."""
    leader, follower = roles
    at_follower = f"localhost:{follower.port}"
    with cluster.client(leader) as db:
        ids = db.collection(coll_name).insert_many([{"i": i} for i in range(3)])
    with cluster.client(follower, read_concern="local") as db:
        users = db.collection(coll_name)
        deadline = time.monotonic() + 10
        while users.count() < 3 and time.monotonic() < deadline:  # replicated, eventually
            time.sleep(0.05)
        assert users.find_by_id(ids[1])["i"] == 1
        assert [d["i"] for d in users.find(sort="i")] == [0, 1, 2]
        assert [d["i"] for d in users.find_iter(sort="-i", page_size=1)] == [2, 1, 0]
        assert db.address == at_follower
        assert db.log_index is None  # no write yet
        users.insert({"i": 3})  # a write still goes to the leader, and the client stays there
        assert db.address == f"127.0.0.1:{leader.port}"
        assert db.log_index >= 1
    with cluster.client(follower) as db:
        assert db.collection(coll_name).count() == 4
        assert db.address == f"127.0.0.1:{leader.port}"


def thousand(start):
    """A thousand documents, n from start on: one write a follower takes a while to apply."""
    return [{"n": start + i, "pad": "x" * 100} for i in range(1000)]


def test_session_reads_its_writes_on_a_frozen_follower(cluster, roles, coll_name):
    """read_concern="session": the writer learns the log entry of each write; a reader on a
    follower given it (advance_log_index) reads the write there, even though the follower was
    stopped while the write was committed without it, and the read was sent before it resumed.
    (A "local" read there, the same way, finds nothing: the follower resumes answering before
    it has applied a thousand documents.)"""
    leader, follower = roles
    with cluster.client(leader, read_concern="session") as writer, \
            cluster.client(follower, read_concern="session") as reader:
        wusers, rusers = writer.collection(coll_name), reader.collection(coll_name)
        assert rusers.count() == 0  # no index yet: answered by the follower (local), connected
        first = wusers.insert({"n": 0})
        assert writer.log_index >= 1
        with frozen(follower, 0.5):
            before = writer.log_index
            ids = wusers.insert_many(thousand(1))
            assert writer.log_index > before
            reader.advance_log_index(writer.log_index)
            assert rusers.find_by_id(ids[-1])["n"] == 1000  # waits on the follower for the entry
        assert rusers.count({"n": {"$gte": 1}}) == 1000
        assert rusers.find_by_id(first)["n"] == 0
        assert reader.address == f"localhost:{follower.port}"


def test_async_session_reads_its_writes_on_a_frozen_follower(cluster, roles, coll_name):
    from nexadb import AsyncNexaDB
    leader, follower = roles

    def connect(node):
        return AsyncNexaDB("localhost", node.port, API_KEY, root_certificates=cluster.ca, timeout=10,
                           read_concern="session")

    async def main():
        async with connect(leader) as writer, connect(follower) as reader:
            wusers, rusers = writer.collection(coll_name), reader.collection(coll_name)
            assert await rusers.count() == 0
            with frozen(follower, 0.5):
                ids = await wusers.insert_many(thousand(0))
                reader.advance_log_index(writer.log_index)
                assert (await rusers.find_by_id(ids[-1]))["n"] == 999
            assert reader.address == f"localhost:{follower.port}"
            assert reader.log_index == writer.log_index
    asyncio.run(main())


def test_no_leader_raises_at_once(tmp_path, certs):
    """Two nodes of three stopped: the survivor refuses naming no leader, and the client
    raises that (no redirect loop, no waiting out the timeout); a client whose leader died
    raises the transport's error and goes back to the node it was made with."""
    from nexadb.errors import UnavailableError
    c = Cluster(tmp_path, certs)
    try:
        leader = c.wait_for_leader()
        follower, other = [n for n in c.nodes if n is not leader]
        db = c.client(follower, timeout=30)
        coll = db.collection("t")
        coll.insert({"a": 1})
        assert db.address == f"127.0.0.1:{leader.port}"
        leader.proc.kill()
        leader.proc.wait()
        other.stop()
        with pytest.raises(UnavailableError):  # the dead leader's address: the transport's error
            coll.insert({"a": 2})
        assert db.address == f"localhost:{follower.port}"
        deadline = time.monotonic() + 30
        while c.status(follower).get("leader_id") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not c.status(follower).get("leader_id"), "the survivor still names a leader"
        for call in (lambda: coll.insert({"a": 3}), coll.count, coll.find, lambda: coll.find_iter().to_list()):
            t = time.monotonic()
            with pytest.raises(UnavailableError, match="no leader"):
                call()
            # the node waits up to 3 s for an election before it refuses; the client's own
            # timeout (30 s) is not waited out, nor is the call sent round again
            assert time.monotonic() - t < 8
            assert db.address == f"localhost:{follower.port}"
        db.close()
    finally:
        c.stop()


class _Refusal(grpc.RpcError):
    """A failed call as grpc reports it: code, details and trailing metadata."""

    def __init__(self, code, trailer=()):
        self._code, self._trailer = code, tuple(trailer)

    def code(self):
        return self._code

    def details(self):
        return "refused"

    def trailing_metadata(self):
        return self._trailer


def test_leader_redirect_decision():
    from nexadb import errors
    from nexadb._connection import leader_redirect
    U = grpc.StatusCode.UNAVAILABLE
    here = "10.0.0.2:6970"
    assert leader_redirect(_Refusal(U, [("nexadb-leader", "10.0.0.1:6970")]), here) == "10.0.0.1:6970"
    assert leader_redirect(_Refusal(U, [("nexadb-leader", "")]), here) is None        # no leader known
    assert leader_redirect(_Refusal(U, [("nexadb-leader", here)]), here) is None      # names this node
    assert leader_redirect(_Refusal(U), here) is None                                 # the transport's
    assert leader_redirect(_Refusal(grpc.StatusCode.UNKNOWN, [("nexadb-leader", "10.0.0.1:6970")]),
                           here) is None                                              # may have run
    err = errors.from_rpc_error(_Refusal(U, [("nexadb-leader", "")]), "Count")
    assert isinstance(err, errors.UnavailableError) and "no leader" in err.details
