"""Change streams (Collection.watch, NexaDB.watch and their asyncio counterparts) against the
real server: events in commit order, resume_token, resuming from a token, the reconnection
after a dropped connection (the server killed and restarted on its port), close()."""
import asyncio
import threading
import time

import pytest

from nexadb import AsyncNexaDB, NexaDB
from testserver import Server

SETTLE = 0.5  # for a thread or task to block in a read


def ops(events):
    return [(e["operationType"], e["documentKey"]["_id"]) for e in events]


def take(stream, n):
    out = []
    for e in stream:
        out.append(e)
        if len(out) == n:
            return out
    raise AssertionError(f"the stream ended after {len(out)} of {n} events")


def test_insert_update_delete_in_order_and_close(db, coll_name):
    c = db.collection(coll_name)
    with c.watch() as stream:  # in place once watch() returns
        c.insert({"_id": "a", "n": 1})
        c.update("a", {"$set": {"n": 2}})
        c.delete("a")
        got = take(stream, 3)
        assert ops(got) == [("insert", "a"), ("update", "a"), ("delete", "a")]
        assert got[0]["fullDocument"]["n"] == 1 and got[0]["ns"]["coll"] == coll_name
        assert got[1]["updateDescription"]["updatedFields"]["n"] == 2
        assert stream.resume_token == got[2]["_id"]["_data"]
    assert list(stream) == []  # closed: iteration ends


def test_close_from_another_thread_ends_a_blocked_loop(db, coll_name):
    stream = db.collection(coll_name).watch()
    seen = []
    t = threading.Thread(target=lambda: seen.extend(stream))
    t.start()
    time.sleep(SETTLE)
    stream.close()
    t.join(10)
    assert not t.is_alive() and seen == []


def test_resume_after_a_token_delivers_exactly_the_rest(db, coll_name):
    c = db.collection(coll_name)
    stream = c.watch(full_document="updateLookup")
    c.insert_many([{"_id": str(i)} for i in range(4)])
    first = take(stream, 2)
    stream.close()
    rest = c.watch(resume_after=stream.resume_token)
    assert ops(take(rest, 2)) == [("insert", "2"), ("insert", "3")]
    c.update("0", {"x": 1})
    upd = take(rest, 1)[0]
    assert "fullDocument" not in upd  # the options are the new stream's own (default here)
    rest.close()
    assert ops(first) == [("insert", "0"), ("insert", "1")]


def test_pipeline_database_watch_and_invalidate(db, coll_name):
    c = db.collection(coll_name)
    everything = db.watch([{"$match": {"ns.coll": coll_name}}])
    deletes = c.watch([{"$match": {"operationType": {"$in": ["delete", "invalidate"]}}}])
    c.insert({"_id": "a"})
    c.delete("a")
    c.drop()
    assert [e["operationType"] for e in deletes] == ["delete", "invalidate"]  # then it ends
    assert [e["operationType"] for e in take(everything, 3)] == ["insert", "delete", "drop"]
    everything.close()


def test_heartbeats_move_the_resume_token_past_dropped_events(db, coll_name):
    c = db.collection(coll_name)
    stream = c.watch([{"$match": {"operationType": "delete"}}])
    before = stream.resume_token  # the position the server's first message gave
    assert before is not None
    t = threading.Thread(target=lambda: list(stream))
    t.start()
    c.insert({"_id": "a"})
    deadline = time.time() + 12  # the server's heartbeat comes after 5 s without events
    while stream.resume_token == before and time.time() < deadline:
        time.sleep(0.2)
    stream.close()
    t.join(10)
    assert stream.resume_token != before
    with c.watch(resume_after=stream.resume_token) as after:
        c.delete("a")
        assert ops(take(after, 1)) == [("delete", "a")]  # the insert is behind the token


@pytest.fixture
def own_server(tmp_path):
    s = Server(tmp_path / "data").start()
    yield s
    s.stop()


def restart(s):
    """Kills the server (the client sees UNAVAILABLE) and starts it again on the same port and data."""
    s.proc.kill()
    s.proc.wait()
    port = s.port
    s.extra_args = ["--grpc-addr", f"127.0.0.1:{port}"]
    s.start()
    assert s.port == port


def test_reconnects_once_after_a_dropped_connection(own_server):
    s = own_server
    db = NexaDB("127.0.0.1", s.port, api_key=s.api_key)
    c = db.collection("w")
    stream = c.watch()
    c.insert_many([{"_id": "1"}, {"_id": "2"}])
    assert ops(take(stream, 2)) == [("insert", "1"), ("insert", "2")]
    restart(s)
    c.insert({"_id": "3"})
    c.delete("1")
    assert ops(take(stream, 2)) == [("insert", "3"), ("delete", "1")]  # nothing lost or repeated
    stream.close()
    db.close()


def test_async_stream(own_server):
    s = own_server

    async def main():
        async with AsyncNexaDB("127.0.0.1", s.port, api_key=s.api_key) as db:
            c = db.collection("w")
            got = []
            async with c.watch() as stream:  # in place once entered
                await c.insert({"_id": "a", "n": 1})
                await c.update("a", {"n": 2})
                async for e in stream:
                    got.append(e)
                    if len(got) == 2:
                        break
                token = stream.resume_token
                await asyncio.get_running_loop().run_in_executor(None, restart, s)
                await c.delete("a")
                async for e in stream:  # reconnected once, after the token
                    got.append(e)
                    break
            assert [e async for e in stream] == []  # closed
            assert ops(got) == [("insert", "a"), ("update", "a"), ("delete", "a")]
            rest = c.watch(resume_after=token)
            assert ops([await rest.__anext__()]) == [("delete", "a")]
            waiting = asyncio.ensure_future(rest.__anext__())
            await asyncio.sleep(SETTLE)
            await rest.aclose()
            with pytest.raises(StopAsyncIteration):
                await waiting
    asyncio.run(main())


def test_a_server_that_stays_down_fails_the_stream_after_the_timeout(own_server):
    from nexadb import UnavailableError
    s = own_server
    db = NexaDB("127.0.0.1", s.port, api_key=s.api_key, timeout=1.5)
    stream = db.collection("w").watch()
    s.proc.kill()
    s.proc.wait()
    t0 = time.time()
    with pytest.raises(UnavailableError):
        next(stream)
    assert time.time() - t0 >= 1.0  # it waited for the server before giving up
    assert list(stream) == []
    db.close()
