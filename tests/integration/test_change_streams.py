"""Change streams through the server (DocumentService/Watch, and REST's server-sent events):
every acknowledged write appears exactly once, in commit order, across disconnects and a
kill -9 of the server; resume tokens; a collection's stream ending with its drop; pipelines;
updateLookup; TTL expiry seen as deletes; a read-only key may watch; the --max-watches bound;
a stream that fell behind the retention ends with OUT_OF_RANGE."""
import datetime
import json
import signal
import threading
import time

import grpc
import pytest
import requests


def stubs(pb, s, key=None):
    ch = grpc.insecure_channel(s.target)
    return ch, pb.document_pb2_grpc.DocumentServiceStub(ch), (("x-api-key", key or s.api_key),)


def watch(pb, docs, md, **kw):
    """A Watch stream once it is in place: its first message (no events, the position) read."""
    pipeline = [pb.doc(st) for st in kw.pop("pipeline", [])]
    stream = docs.Watch(pb.document_pb2.WatchRequest(pipeline=pipeline, **kw), metadata=md)
    first = next(stream)
    assert not first.events and first.resume_token
    return stream


def events(pb, stream, n, timeout=20):
    """The next n events of a stream as (token, event dict); fails after timeout seconds."""
    out = []
    deadline = time.time() + timeout
    for msg in stream:
        out += [(e.token, pb.undoc(e.event)) for e in msg.events]
        if len(out) >= n:
            return out
        assert time.time() < deadline, f"only {len(out)} of {n} events in {timeout} s: {out}"
    raise AssertionError(f"the stream ended after {len(out)} of {n} events")


def insert(pb, docs, md, coll, *ids):
    docs.InsertMany(pb.document_pb2.InsertManyRequest(
        collection=coll, documents=[pb.doc({"_id": i, "n": 1}) for i in ids]), metadata=md, timeout=10)


def test_events_of_each_write_and_resume_after_any_token(pb, server_factory):
    s = server_factory().start()
    ch, docs, md = stubs(pb, s)
    stream = watch(pb, docs, md)
    insert(pb, docs, md, "a", "1", "2")
    docs.Update(pb.document_pb2.UpdateRequest(collection="a", id="1", update=pb.doc(
        {"$set": {"p.q": 5}, "$unset": {"n": ""}})), metadata=md, timeout=10)
    docs.Delete(pb.document_pb2.DeleteRequest(collection="a", id="2"), metadata=md, timeout=10)
    docs.DropCollection(pb.document_pb2.DropCollectionRequest(collection="a"), metadata=md, timeout=10)
    got = events(pb, stream, 5)
    stream.cancel()
    assert [e["operationType"] for _, e in got] == ["insert", "insert", "update", "delete", "drop"]
    ins = got[0][1]
    assert ins["ns"] == {"db": "nexadb", "coll": "a"} and ins["documentKey"] == {"_id": "1"}
    assert ins["fullDocument"]["n"] == 1 and ins["_id"] == {"_data": got[0][0]}
    assert isinstance(ins["wallTime"], datetime.datetime)
    upd = got[2][1]["updateDescription"]
    assert upd["updatedFields"]["p"] == {"q": 5} and upd["removedFields"] == ["n"], upd
    # resuming after each token delivers exactly the rest
    for i, (tok, _) in enumerate(got):
        rest = watch(pb, docs, md, resume_after=tok)
        insert(pb, docs, md, "marker", f"m{i}")
        later = events(pb, rest, len(got) - 1 - i + i + 1)  # the rest, then the markers so far
        rest.cancel()
        assert [t for t, _ in later[:len(got) - 1 - i]] == [t for t, _ in got[i + 1:]]
        assert [e["documentKey"]["_id"] for _, e in later[len(got) - 1 - i:]] == [f"m{k}" for k in range(i + 1)]
    with pytest.raises(grpc.RpcError) as err:
        watch(pb, docs, md, resume_after="zz")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "resume_after" in err.value.details()
    ch.close()


def test_a_collection_stream_with_a_pipeline_ends_after_the_drop(pb, server_factory):
    s = server_factory().start()
    ch, docs, md = stubs(pb, s)
    stream = watch(pb, docs, md, collection="a", full_document="updateLookup", pipeline=[
        {"$match": {"operationType": {"$in": ["update", "drop", "invalidate"]}}},
        {"$project": {"operationType": 1, "fullDocument": 1}}])
    insert(pb, docs, md, "a", "1")
    insert(pb, docs, md, "b", "1")
    docs.Update(pb.document_pb2.UpdateRequest(collection="a", id="1", update=pb.doc({"$inc": {"n": 1}})),
                metadata=md, timeout=10)
    docs.DropCollection(pb.document_pb2.DropCollectionRequest(collection="a"), metadata=md, timeout=10)
    got = [e for _, e in events(pb, stream, 3)]
    assert [e["operationType"] for e in got] == ["update", "drop", "invalidate"]
    assert got[0]["fullDocument"]["n"] == 2 and "ns" not in got[0]
    assert list(stream) == []  # the stream ended with OK after invalidate
    with pytest.raises(grpc.RpcError) as err:
        watch(pb, docs, md, pipeline=[{"$group": {"_id": None}}])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "$group" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        watch(pb, docs, md, full_document="whenAvailable")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    ch.close()


def test_concurrent_writers_seen_exactly_once_across_disconnects_and_kill9(pb, server_factory):
    """Four writers insert and update under load; a watcher reading with disconnects
    (resuming from the last token it processed) and across a kill -9 and restart of the
    server sees every acknowledged insert exactly once, each writer's in its order."""
    s = server_factory().start()
    ch, docs, md = stubs(pb, s)
    acked = {w: [] for w in range(4)}
    stop = threading.Event()

    def writer(w):
        wch, wdocs, wmd = stubs(pb, s)
        i = 0
        while not stop.is_set():
            try:
                wdocs.InsertOne(pb.document_pb2.InsertOneRequest(
                    collection=f"c{w % 2}", document=pb.doc({"_id": f"w{w}-{i:06d}"})), metadata=wmd, timeout=10)
                acked[w].append(i)
                if i % 4 == 0:
                    wdocs.Update(pb.document_pb2.UpdateRequest(
                        collection=f"c{w % 2}", id=f"w{w}-{i:06d}", update=pb.doc({"$set": {"u": 1}})),
                        metadata=wmd, timeout=10)
            except grpc.RpcError:
                return  # the server was killed under it: what was acknowledged before counts
            i += 1
        wch.close()

    # the position before any write: the first message's
    first = docs.Watch(pb.document_pb2.WatchRequest(), metadata=md)
    token = next(first).resume_token
    first.cancel()
    seen = {w: [] for w in range(4)}

    def read_some(n):
        nonlocal token
        stream = watch(pb, docs, md, resume_after=token, pipeline=[{"$match": {"operationType": "insert"}}])
        got = 0
        for msg in stream:
            for e in msg.events:
                w, i = pb.undoc(e.event)["documentKey"]["_id"][1:].split("-")
                seen[int(w)].append(int(i))
                token = e.token
                got += 1
            if got >= n:
                break
        stream.cancel()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for _ in range(5):
        read_some(200)  # disconnect after each batch, resume from the last token
    s.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join()
    s.start()
    ch, docs, md = stubs(pb, s)
    total = sum(len(a) for a in acked.values())
    read_some(total - sum(len(v) for v in seen.values()))
    for w in range(4):
        # every acknowledged insert exactly once, in order; an insert applied but not
        # acknowledged (in flight at the kill) may follow
        assert seen[w][:len(acked[w])] == acked[w], (w, seen[w][:10], acked[w][:10])
        assert seen[w] == list(range(len(seen[w]))), w
    ch.close()


def test_rest_server_sent_events_resume_with_last_event_id(pb, server_factory):
    s = server_factory().start()
    ch, docs, md = stubs(pb, s)
    h = {"X-API-Key": s.api_key}

    def sse(url, headers, n):
        """The first n data events of an SSE response as (id, dict)."""
        out, ev_id = [], None
        with requests.get(url, headers=headers, stream=True, timeout=20) as r:
            assert r.status_code == 200 and r.headers["Content-Type"] == "text/event-stream"
            for line in r.iter_lines(decode_unicode=True):
                if line.startswith("id: "):
                    ev_id = line[4:]
                elif line.startswith("data: "):
                    out.append((ev_id, json.loads(line[6:])))
                    if len(out) == n:
                        return out
        raise AssertionError(f"stream ended after {out}")

    result = {}
    t = threading.Thread(target=lambda: result.update(ev=sse(f"{s.http_base}/collections/a/watch", h, 2)))
    t.start()
    time.sleep(1)
    insert(pb, docs, md, "a", "1", "2")
    t.join(30)
    ev = result["ev"]
    assert [e["documentKey"]["_id"] for _, e in ev] == ["1", "2"]
    assert ev[0][1]["fullDocument"]["n"] == 1 and ev[0][0] == ev[0][1]["_id"]["_data"]
    insert(pb, docs, md, "a", "3")
    # an EventSource reconnecting sends the last id it saw
    again = sse(f"{s.http_base}/collections/a/watch", {**h, "Last-Event-ID": ev[0][0]}, 2)
    assert [e["documentKey"]["_id"] for _, e in again] == ["2", "3"]
    # the whole database, with a pipeline, by POST
    r = requests.post(f"{s.http_base}/watch", headers=h, stream=True, timeout=20, json={
        "resume_after": ev[0][0], "pipeline": [{"$match": {"documentKey._id": "3"}}]})
    lines = r.iter_lines(decode_unicode=True)
    data = next(json.loads(x[6:]) for x in lines if x.startswith("data: "))
    assert data["documentKey"]["_id"] == "3"
    r.close()
    # a bad token: the error arrives as the stream's last event
    with requests.get(f"{s.http_base}/watch", headers={**h, "Last-Event-ID": "00"}, stream=True, timeout=20) as r:
        body = r.text
    assert "event: error" in body and "resume_after" in body and '"code":3' in body
    ch.close()


def test_read_only_key_watches_and_the_watch_bound(pb, server_factory, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("rw-key-0123456789abcdef rw\nro-key-0123456789abcdef ro\n")
    keys.chmod(0o600)
    s = server_factory(extra_args=["--api-key-file", str(keys), "--max-watches", "2"]).start()
    ch, docs, md = stubs(pb, s, "rw-key-0123456789abcdef")
    _, _, ro = stubs(pb, s, "ro-key-0123456789abcdef")
    ro_stream = watch(pb, docs, ro)
    insert(pb, docs, md, "a", "1")
    assert events(pb, ro_stream, 1)[0][1]["documentKey"]["_id"] == "1"
    second = watch(pb, docs, ro)
    with pytest.raises(grpc.RpcError) as err:
        watch(pb, docs, ro)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "--max-watches" in err.value.details()
    metrics = requests.get(f"{s.http_base}/metrics", headers={"X-API-Key": "ro-key-0123456789abcdef"}, timeout=10)
    assert "nexadb_change_streams 2" in metrics.text
    ro_stream.cancel()
    second.cancel()
    deadline = time.time() + 10
    while True:  # a cancelled stream's thread notices within a poll
        try:
            third = watch(pb, docs, ro)
            third.cancel()
            break
        except grpc.RpcError:
            assert time.time() < deadline
            time.sleep(0.2)
    ch.close()


def test_ttl_expiry_is_a_delete_and_retention_trims(pb, server_factory):
    s = server_factory(extra_args=["--ttl-interval-seconds", "1", "--change-retention-bytes", "2000"]).start()
    ch, docs, md = stubs(pb, s)
    docs.CreateIndex(pb.document_pb2.CreateIndexRequest(
        collection="t", fields=[pb.document_pb2.IndexField(field="exp")],
        ttl=pb.document_pb2.IndexTtl(expire_after_seconds=0)), metadata=md, timeout=10)
    stream = watch(pb, docs, md, collection="t")
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
    docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="t", document=pb.doc({"_id": "x", "exp": past})),
                   metadata=md, timeout=10)
    got = events(pb, stream, 2)
    assert [(e["operationType"], e["documentKey"]["_id"]) for _, e in got] == [("insert", "x"), ("delete", "x")]
    first_token = got[0][0]
    stream.cancel()
    # 2,000 bytes of log: 40 inserts of 100 bytes push the first records out
    for i in range(40):
        docs.InsertOne(pb.document_pb2.InsertOneRequest(collection="u", document=pb.doc(
            {"_id": f"u{i}", "pad": "p" * 100})), metadata=md, timeout=10)
    deadline = time.time() + 30  # the trim runs every 10 s
    while True:
        try:
            watch(pb, docs, md, resume_after=first_token).cancel()
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.OUT_OF_RANGE and "no longer holds" in e.details(), e
            break
        assert time.time() < deadline, "the change log was not trimmed"
        time.sleep(1)
    metrics = requests.get(f"{s.http_base}/metrics", headers={"X-API-Key": s.api_key}, timeout=10).text
    trimmed = [x for x in metrics.splitlines() if x.startswith("nexadb_change_log_trimmed_records_total ")]
    assert trimmed and int(trimmed[0].split()[1]) > 0, trimmed
    ch.close()


def test_no_change_log_no_watch(pb, server_factory):
    s = server_factory(extra_args=["--change-retention-seconds", "0"]).start()
    ch, docs, md = stubs(pb, s)
    with pytest.raises(grpc.RpcError) as err:
        watch(pb, docs, md)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED and "--change-retention-seconds" in err.value.details()
    ch.close()


def test_open_streams_do_not_hold_a_shutdown(pb, server_factory):
    """SIGTERM ends change streams at once with UNAVAILABLE (the SDKs resume after their last
    token), instead of holding the drain for its whole grace period (20 s)."""
    s = server_factory().start()
    ch, docs, md = stubs(pb, s)
    stream = watch(pb, docs, md)
    result = {}

    def read():
        try:
            for _ in stream:
                pass
        except grpc.RpcError as e:
            result["code"] = e.code()
    t = threading.Thread(target=read)
    t.start()
    with requests.get(f"{s.http_base}/watch", headers={"X-API-Key": s.api_key}, stream=True, timeout=20) as r:
        next(r.iter_lines())  # the SSE stream is open too
        t0 = time.time()
        assert s.stop(signal.SIGTERM) == 0
        assert time.time() - t0 < 10
    t.join(10)
    assert result.get("code") == grpc.StatusCode.UNAVAILABLE, result
    ch.close()
