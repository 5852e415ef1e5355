"""The browser console as the REST shim serves it: /console without a key, its headers, the
client-route fallback, paths refused, and GET /admin/key (what the console asks at login).
The console itself in a browser: console/e2e (ctest console_e2e)."""
import gzip
import os
import socket

import pytest
import requests


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    from conftest import Server

    d = tmp_path_factory.mktemp("console")
    keys = d / "keys"
    keys.write_text("rw-" + "a" * 29 + " rw\nro-" + "b" * 29 + " ro\n")
    os.chmod(keys, 0o600)
    s = Server(str(d / "data"), extra_args=["--api-key-file", str(keys)])
    s.start()
    yield s
    s.stop()


def raw_get(port, target):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


def test_admin_key_says_whether_the_key_is_read_only(keyed):
    base = keyed.http_base
    rw = requests.get(base + "/admin/key", headers={"X-API-Key": "rw-" + "a" * 29}, timeout=5)
    assert rw.status_code == 200 and rw.json() == {"read_only": False}
    ro = requests.get(base + "/admin/key", headers={"Authorization": "Bearer ro-" + "b" * 29}, timeout=5)
    assert ro.status_code == 200 and ro.json() == {"read_only": True}
    assert requests.get(base + "/admin/key", timeout=5).status_code == 401
    assert requests.get(base + "/admin/key", headers={"X-API-Key": "x" * 32}, timeout=5).status_code == 401


def test_console_is_public_with_strict_headers(keyed):
    base = keyed.http_base
    r = requests.get(base + "/console/", headers={"Accept-Encoding": "identity"}, timeout=5)
    if r.status_code == 404:
        pytest.skip("this server was built without its console: " + r.json()["message"])
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    csp = r.headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"):
        assert directive in csp
    assert "unsafe" not in csp
    assert '<div id="app">' in r.text
    # the same bytes gzip'd for a client that takes them, identical once inflated
    z = requests.get(base + "/console/", headers={"Accept-Encoding": "gzip"}, stream=True, timeout=5)
    assert z.headers.get("Content-Encoding") == "gzip" and z.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(z.raw.read()) == r.content
    # hashed files are cached for good
    js = [p for p in r.text.split('"') if p.startswith("/console/assets/") and p.endswith(".js")]
    a = requests.get(base + js[0], timeout=5)
    assert a.status_code == 200 and a.headers["Content-Type"].startswith("text/javascript")
    assert "immutable" in a.headers["Cache-Control"]
    # client routes get the app; HEAD works; other verbs do not
    assert requests.get(base + "/console", timeout=5).content == r.content
    assert requests.get(base + "/console/collections/users/indexes", timeout=5).content == r.content
    assert requests.head(base + "/console/", timeout=5).status_code == 200
    assert requests.post(base + "/console/", timeout=5).status_code == 405
    assert requests.get(base + "/console/assets/missing.js", timeout=5).status_code == 404
    # the API around it still wants a key
    assert requests.get(base + "/collections", timeout=5).status_code == 401


def test_console_paths_are_bounded_and_sanitized(keyed):
    port = keyed.http_port
    for target in ("/console/../api_key", "/console/%2e%2e/api_key", "/console/assets/..%2f..%2fkeys",
                   "/console/.env", "/console//index.html", "/console/a%00b", "/console/" + "a" * 300):
        assert raw_get(port, target) in (400, 404), target
    assert raw_get(port, "/console/../api_key") == 400
