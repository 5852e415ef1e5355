"""Connection, auth, errors and laziness: the parts that need only the foundation server."""
import grpc
import pytest

import nexadb
from nexadb import NexaDB


def test_brief_import_path(server):
    from nexadb_client import NexaDB as BriefNexaDB
    assert BriefNexaDB is NexaDB
    import nexadb_client
    assert nexadb_client.NotFoundError is nexadb.NotFoundError


def test_default_port_is_grpc():
    assert nexadb.DEFAULT_PORT == 6970
    d = NexaDB()
    assert (d.host, d.port) == ("localhost", 6970)
    d.close()


def test_status_needs_no_key(server):
    with NexaDB("127.0.0.1", server.port) as d:
        st = d.status()
    assert st["status"] == "ok" and st["version"]
    assert st["uptime_seconds"] >= 0


def test_stats_with_key(db):
    s = db.stats()
    assert s["rss_bytes"] > 0
    assert isinstance(s["collections"], list)
    assert "levels" in s["engine"]


def test_missing_key_raises_authentication_error(server, monkeypatch):
    monkeypatch.delenv("NEXADB_API_KEY", raising=False)
    with NexaDB("127.0.0.1", server.port) as d:
        with pytest.raises(nexadb.AuthenticationError) as e:
            d.stats()
    assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert "API key" in e.value.details
    assert isinstance(e.value, nexadb.NexaDBError)


def test_wrong_key_raises(server):
    wrong = server.api_key[:-1] + ("0" if server.api_key[-1] != "0" else "1")
    with NexaDB("127.0.0.1", server.port, api_key=wrong) as d:
        with pytest.raises(nexadb.AuthenticationError):
            d.stats()


def test_api_key_from_environment(server, monkeypatch):
    monkeypatch.setenv("NEXADB_API_KEY", server.api_key)
    with NexaDB("127.0.0.1", server.port) as d:
        assert d.stats()["rss_bytes"] > 0


def test_unreachable_server_is_unavailable_and_find_iter_is_lazy(unused_port):
    with NexaDB("127.0.0.1", unused_port, api_key="k", timeout=2) as d:
        cur = d.collection("c").find_iter({"a": 1})  # builds the request only; nothing is sent
        with pytest.raises(nexadb.UnavailableError) as e:
            cur.to_list()
        assert e.value.code == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(nexadb.UnavailableError):
            d.status()


def test_tls_to_plaintext_server_fails_cleanly(server):
    with NexaDB("127.0.0.1", server.port, tls=True, timeout=3) as d:
        with pytest.raises(nexadb.NexaDBError) as e:
            d.status()
    assert e.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_bad_arguments_refused_before_sending(db):
    c = db.collection("c")
    with pytest.raises(TypeError):
        c.insert({"x": object()})
    with pytest.raises(ValueError):
        c.insert({"x": 2**64})  # beyond int64
    with pytest.raises(ValueError, match="sort direction"):
        c.find(sort={"a": 2})
    with pytest.raises(TypeError, match="list of stages"):
        c.aggregate({"$match": {}})
    with pytest.raises(ValueError, match="metric"):
        db.vector_collection("v", dimensions=3, metric="hamming")
    with pytest.raises(ValueError, match="2 documents but 1 vectors"):
        db.vector_collection("v").insert_many([{}, {}], [[1.0]])


@pytest.fixture
def unused_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_parse_url():
    from nexadb._connection import parse_url
    assert parse_url("grpc://db.example:7000") == ("db.example", 7000, False)
    assert parse_url("http://localhost") == ("localhost", 6970, False)
    assert parse_url("grpcs://db.example") == ("db.example", 6970, True)
    assert parse_url("https://10.0.0.1:443/") == ("10.0.0.1", 443, True)
    assert parse_url("127.0.0.1:6971") == ("127.0.0.1", 6971, False)
    assert parse_url("grpc://[::1]:6970") == ("[::1]", 6970, False)
    for bad, why in [("ftp://h", "scheme"), ("http://h/db", "path"), ("http://h?x=1", "path"),
                     ("http://k:secret@h", "api_key"), ("http://h:99999", "port"),
                     ("http://:6970", "host"), ("", "non-empty"), (None, "non-empty")]:
        with pytest.raises(ValueError, match=why):
            parse_url(bad)


def test_from_url(server):
    with NexaDB.from_url(f"grpc://127.0.0.1:{server.port}", server.api_key) as d:
        assert (d.host, d.port) == ("127.0.0.1", server.port)
        assert d.stats()["rss_bytes"] > 0
    # https:// speaks TLS, which a plaintext server cannot answer
    with NexaDB.from_url(f"https://127.0.0.1:{server.port}", server.api_key, timeout=5) as d:
        with pytest.raises(nexadb.UnavailableError):
            d.stats()
