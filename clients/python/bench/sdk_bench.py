"""Python SDK throughput against a fresh local nexadb-server (not a test; timings are noisy).

    NEXADB_SERVER=build/release/service/nexadb-server .venv/bin/python clients/python/bench/sdk_bench.py [N]

Prints METRIC lines: insert_many in batches of 1000, a streaming find of everything (the
Cursor, default page size), count, and find_by_id point reads.
"""
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from testserver import Server  # noqa: E402

from nexadb import NexaDB  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(Path(tmp) / "data").start()
        try:
            db = NexaDB("127.0.0.1", srv.port, api_key=srv.api_key)
            c = db.collection("bench")
            docs = [{"name": f"user{i}", "age": i % 90, "city": ("SF", "NY", "LA")[i % 3],
                     "tags": ["a", "b"], "score": i * 0.5} for i in range(n)]
            t0 = time.perf_counter()
            ids = []
            for s in range(0, n, 1000):
                ids += c.insert_many(docs[s:s + 1000])
            t1 = time.perf_counter()
            got = sum(1 for _ in c.find())
            t2 = time.perf_counter()
            assert got == n and c.count() == n
            k = min(n, 5000)
            t3 = time.perf_counter()
            for i in ids[:k]:
                c.find_by_id(i)
            t4 = time.perf_counter()
            print(f"METRIC py_sdk_insert_many_1000 {n / (t1 - t0):.0f} docs/s")
            print(f"METRIC py_sdk_find_stream {got / (t2 - t1):.0f} docs/s")
            print(f"METRIC py_sdk_find_by_id {k / (t4 - t3):.0f} calls/s")
            db.close()
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
