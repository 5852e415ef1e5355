"""A mixed-workload load generator for nexadb-server over gRPC (grpcio aio).

C clients (concurrency) share one channel each per 8 clients and issue a
fixed total of requests drawn from a weighted mix: InsertOne, Get, Find
(filtered, limit 20), Aggregate ($match + $group), InsertVector and vector
Search. Every request must succeed. Reports count, errors, p50/p99/max
latency per kind and overall, throughput, and the server's RSS sampled
during the run (pid given) so growth after warm-up can be judged.

Used by tests/reliability/test_load.py (short) and bench/load/run.sh (long).
"""
import asyncio
import random
import time

import grpc

MIX = [("insert", 30), ("get", 25), ("find", 15), ("aggregate", 10), ("vec_insert", 10), ("vec_search", 10)]
DIMS = 32
CITIES = ["Paris", "Oslo", "Lima", "Kyiv", "Pune", "Kobe"]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pct(xs, p):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


async def run(pb, target, key, total, concurrency=64, pid=None, seed=1, coll="load", vcoll="loadvec"):
    import bson
    D, V = pb.document_pb2, pb.vector_pb2
    md = (("x-api-key", key),)
    rnd = random.Random(seed)

    def S(d):
        """A document as the API carries it: BSON in a nexadb.v1.Document."""
        return pb.common_pb2.Document(bson=bson.encode(d))

    chans = [grpc.aio.insecure_channel(target) for _ in range(max(1, concurrency // 8))]
    docs = [pb.document_pb2_grpc.DocumentServiceStub(c) for c in chans]
    vecs = [pb.vector_pb2_grpc.VectorServiceStub(c) for c in chans]
    try:
        await vecs[0].CreateVectorCollection(V.CreateVectorCollectionRequest(collection=vcoll, dimensions=DIMS),
                                            metadata=md, timeout=10)
    except grpc.aio.AioRpcError as e:
        if e.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
    ids = []
    # a few documents so gets and finds have something from the start
    for i in range(20):
        r = await docs[0].InsertOne(D.InsertOneRequest(collection=coll, document=S(
            {"i": i, "age": 20 + i, "city": CITIES[i % len(CITIES)]})), metadata=md, timeout=10)
        ids.append(r.document_id)

    kinds = [k for k, w in MIX for _ in range(w)]
    lat = {k: [] for k, _ in MIX}
    errors = []
    rss = []
    issued = 0
    done = 0

    def vec():
        return [rnd.random() - 0.5 for _ in range(DIMS)]

    async def one(n, kind):
        d, v = docs[n % len(docs)], vecs[n % len(vecs)]
        if kind == "insert":
            r = await d.InsertOne(D.InsertOneRequest(collection=coll, document=S(
                {"i": n, "age": rnd.randint(18, 80), "city": rnd.choice(CITIES), "tags": ["t%d" % (n % 7)]})),
                metadata=md, timeout=30)
            ids.append(r.document_id)
        elif kind == "get":
            await d.Get(D.GetRequest(collection=coll, id=rnd.choice(ids)), metadata=md, timeout=30)
        elif kind == "find":
            async for _ in d.Find(D.FindRequest(collection=coll, filter=S({"age": {"$gt": rnd.randint(18, 80)},
                                                                          "city": rnd.choice(CITIES)}), limit=20),
                                  metadata=md, timeout=30):
                pass
        elif kind == "aggregate":
            async for _ in d.Aggregate(D.AggregateRequest(collection=coll, pipeline=[
                    S({"$match": {"age": {"$gt": 40}}}), S({"$group": {"_id": "$city", "n": {"$sum": 1}}})]),
                    metadata=md, timeout=30):
                pass
        elif kind == "vec_insert":
            await v.InsertVector(V.InsertVectorRequest(collection=vcoll, document=S({"n": n}), vector=vec()),
                                 metadata=md, timeout=30)
        else:
            await v.Search(V.SearchRequest(collection=vcoll, vector=vec(), limit=10), metadata=md, timeout=30)

    async def client(c):
        nonlocal issued, done
        while issued < total:
            n = issued
            issued += 1
            kind = kinds[rnd.randrange(len(kinds))]
            t0 = time.perf_counter()
            try:
                await one(n, kind)
                lat[kind].append(time.perf_counter() - t0)
            except grpc.aio.AioRpcError as e:
                errors.append((kind, e.code().name, e.details()))
            done += 1

    async def sampler():
        while done < total:
            if pid is not None:
                rss.append((done, rss_kb(pid)))
            await asyncio.sleep(0.2)

    t0 = time.perf_counter()
    samp = asyncio.create_task(sampler())
    await asyncio.gather(*(client(c) for c in range(concurrency)))
    elapsed = time.perf_counter() - t0
    await samp
    if pid is not None:
        rss.append((done, rss_kb(pid)))
    for c in chans:
        await c.close()
    allv = [x for v in lat.values() for x in v]
    return {
        "requests": total, "errors": errors, "seconds": elapsed, "rps": total / elapsed,
        "p50_ms": pct(allv, 50) * 1e3, "p99_ms": pct(allv, 99) * 1e3, "max_ms": max(allv) * 1e3 if allv else 0,
        "by_kind": {k: (len(v), pct(v, 50) * 1e3, pct(v, 99) * 1e3) for k, v in lat.items()},
        "rss_kb": rss,
    }


def rss_growth(rss, warm_fraction=0.25):
    """(RSS after warm-up, RSS at the end, max RSS after warm-up) in KiB."""
    if not rss:
        return 0, 0, 0
    total = rss[-1][0]
    after = [r for d, r in rss if d >= total * warm_fraction] or [rss[-1][1]]
    return after[0], rss[-1][1], max(after)


def stubs(root):
    """Generates Python stubs from proto/ into a temporary directory (as tests/integration/conftest.py does)."""
    import importlib
    import sys
    import tempfile
    from pathlib import Path

    import grpc_tools
    from grpc_tools import protoc
    out = tempfile.mkdtemp(prefix="nexadb-load-stubs-")
    googleapis = "/usr/share/gocode/src/github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis"
    well_known = str(Path(grpc_tools.__file__).parent / "_proto")
    protos = [str(p.relative_to(root / "proto")) for p in (root / "proto/nexadb/v1").glob("*.proto")]
    if protoc.main(["protoc", f"-I{root / 'proto'}", f"-I{googleapis}", f"-I{well_known}", f"--python_out={out}",
                    f"--grpc_python_out={out}", *protos]) != 0:
        raise SystemExit("generating stubs failed")
    sys.path.insert(0, out)

    class M:
        pass
    m = M()
    m.common_pb2 = importlib.import_module("nexadb.v1.common_pb2")
    for name in ("document", "vector"):
        setattr(m, f"{name}_pb2", importlib.import_module(f"nexadb.v1.{name}_pb2"))
        setattr(m, f"{name}_pb2_grpc", importlib.import_module(f"nexadb.v1.{name}_pb2_grpc"))
    return m


def main():
    import argparse
    from pathlib import Path
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--pid", type=int, help="server pid, for RSS sampling")
    a = ap.parse_args()
    pb = stubs(Path(__file__).resolve().parents[2])
    r = asyncio.run(run(pb, a.target, a.key, a.requests, a.clients, a.pid))
    warm, end, peak = rss_growth(r["rss_kb"])
    print(f"METRIC load_requests {a.requests} requests")
    print(f"METRIC load_clients {a.clients} clients")
    print(f"METRIC load_errors {len(r['errors'])} errors")
    print(f"METRIC load_throughput {r['rps']:.0f} req/s")
    print(f"METRIC load_p50 {r['p50_ms']:.2f} ms")
    print(f"METRIC load_p99 {r['p99_ms']:.2f} ms")
    print(f"METRIC load_max {r['max_ms']:.1f} ms")
    for k, (n, p50, p99) in r["by_kind"].items():
        print(f"METRIC load_{k}_p50 {p50:.2f} ms")
        print(f"METRIC load_{k}_p99 {p99:.2f} ms")
    if a.pid:
        print(f"METRIC load_rss_after_warmup {warm / 1024:.0f} MiB")
        print(f"METRIC load_rss_end {end / 1024:.0f} MiB")
        print(f"METRIC load_rss_peak {peak / 1024:.0f} MiB")
        print(f"METRIC load_rss_growth_after_warmup {(end - warm) / 1024:.0f} MiB")
    for e in r["errors"][:5]:
        print("error:", e)
    return 1 if r["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
