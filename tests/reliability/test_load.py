"""Sustained load (short version): 64 concurrent clients, a mixed workload
of inserts, gets, finds, aggregations, vector inserts and searches, a fixed
number of requests (NEXADB_LOAD_REQUESTS, default 3000). Zero errors; p50,
p99 and RSS are printed; RSS after warm-up stays flat (bounded growth).
The long soak is bench/load/run.sh (or NEXADB_SOAK=1 here: 100,000 requests)."""
import asyncio
import os

import loadgen


def test_mixed_load_64_clients_zero_errors(pb, server_factory):
    s = server_factory("load").start()
    total = int(os.environ.get("NEXADB_LOAD_REQUESTS", "100000" if os.environ.get("NEXADB_SOAK") == "1" else "3000"))
    r = asyncio.run(loadgen.run(pb, s.target, s.api_key, total, concurrency=64, pid=s.proc.pid))
    warm, end, peak = loadgen.rss_growth(r["rss_kb"])
    print(f"\nLOAD requests={total} clients=64 errors={len(r['errors'])} rps={r['rps']:.0f} "
          f"p50={r['p50_ms']:.2f}ms p99={r['p99_ms']:.2f}ms max={r['max_ms']:.1f}ms "
          f"rss_after_warmup={warm // 1024}MiB rss_end={end // 1024}MiB rss_peak={peak // 1024}MiB")
    for k, (n, p50, p99) in r["by_kind"].items():
        print(f"  {k:10s} n={n:6d} p50={p50:.2f}ms p99={p99:.2f}ms")
    assert not r["errors"], r["errors"][:5]
    # flat after warm-up: the data set grows with the inserts, so allow a bounded rise.
    # Not under ASan: its quarantine holds freed memory (up to 256 MiB) by design.
    with open(f"/proc/{s.proc.pid}/maps") as f:
        asan = "libasan" in f.read()
    if not asan:
        assert end - warm < max(96 * 1024, warm // 2), (warm, end, r["rss_kb"])
    # the server is still healthy after the run
    import grpc
    with grpc.insecure_channel(s.target) as ch:
        h = pb.health_pb2_grpc.HealthStub(ch).Check(pb.health_pb2.HealthCheckRequest(), timeout=5)
        assert h.status == pb.health_pb2.HealthCheckResponse.SERVING
