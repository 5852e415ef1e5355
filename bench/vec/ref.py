"""Reference brute-force search on the data vecbench.c wrote: numpy (X @ q +
argpartition) and FAISS IndexFlatIP, single-query latency and batched QPS.

    ref.py <workdir> <n> <dims> <threads>

Set OMP_NUM_THREADS / OPENBLAS_NUM_THREADS to <threads> before starting
(run.sh does): numpy's BLAS reads them at import. Prints METRIC lines. At one
thread it also writes every query's exact top 10 (numpy's) to <workdir>/truth.i32
(int32 row numbers, 10 a query), the answers grpc_ann_bench -exact checks the
server's against (bench/scale).
"""
import os
import sys
import time

import numpy as np

workdir, n, d, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
tag = f"{n}x{d}"
X = np.fromfile(os.path.join(workdir, "data.f32"), dtype=np.float32).reshape(n, d)
Q = np.fromfile(os.path.join(workdir, "queries.f32"), dtype=np.float32).reshape(-1, d)
k = 10


def median_ms(fn, reps=40):
    for i in range(3):
        fn(Q[i])
    lat = []
    for i in range(reps):
        t0 = time.perf_counter()
        fn(Q[i])
        lat.append(time.perf_counter() - t0)
    lat.sort()
    return (lat[reps // 2 - 1] + lat[reps // 2]) / 2 * 1e3


def np_search(q):
    s = X @ q
    top = np.argpartition(-s, k)[:k]
    return top[np.argsort(-s[top])]


print(f"METRIC {tag}_numpy_t{threads} {median_ms(np_search):.3f} ms", flush=True)

if threads == 1:
    # cross-check vecbench's top-10 for query 0 against numpy's
    ours_path = os.path.join(workdir, "ours_q0.txt")
    if os.path.exists(ours_path):
        ours = [int(x) for x in open(ours_path).read().split()]
        ref = [int(x) for x in np_search(Q[0])]
        print(f"METRIC {tag}_recall_vs_numpy {len(set(ours) & set(ref)) / k:.2f} fraction", flush=True)
    np.array([np_search(q) for q in Q], dtype=np.int32).tofile(os.path.join(workdir, "truth.i32"))

try:
    import faiss
except ImportError:
    print("ref.py: faiss not installed; skipping FAISS", file=sys.stderr)
    sys.exit(0)

faiss.omp_set_num_threads(threads)
index = faiss.IndexFlatIP(d)
index.add(X)
print(f"METRIC {tag}_faiss_t{threads} {median_ms(lambda q: index.search(q.reshape(1, d), k)):.3f} ms", flush=True)
t0 = time.perf_counter()
index.search(Q, k)
dt = time.perf_counter() - t0
print(f"METRIC {tag}_faiss_batch_qps_t{threads} {len(Q) / dt:.0f} queries/s", flush=True)
