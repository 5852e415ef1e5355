"""hnswlib and FAISS (IndexHNSWFlat) on the data ann_bench.c wrote, with the same
M, ef_construction, ef sweep and recall@10 against the same exact answers; and FAISS's
int8 and float16 graphs (IndexHNSWSQ, QT_8bit and QT_fp16) refined by IndexRefineFlat
with k_factor 4, as ann_bench's int8 and float16 graphs are rescored (`faiss_sq8`,
`faiss_fp16`).

    peers.py <workdir> <n> <dims> <m> <ef_construction> <max threads> [<dataset>]

Both build on one thread, as ann_bench does, and search with 1 .. max threads. Then
the filtered runs on one thread at ef 128 (allow_<name>.u8 and truth_<name>.i32 from
ann_bench): FAISS with an IDSelectorBitmap, hnswlib with its filter callable (a Python
function it calls for each node it considers, so its cost is part of hnswlib's figure).
The vectors are L2-normalised, so inner product is cosine for both. Prints
METRIC lines named as ann_bench's, with `hnswlib` and `faiss` in place of `ours`; a
dataset name (as given to ann_bench) names them as it does ann_bench's, instead of <n>x<dims>.
"""
import os
import sys
import time

import faiss
import hnswlib
import numpy as np

workdir, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m, efc, threads = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
tag = sys.argv[7] if len(sys.argv) > 7 else f"{n}x{d}"
k = 10
X = np.fromfile(os.path.join(workdir, "data.f32"), dtype=np.float32).reshape(n, d)
Q = np.fromfile(os.path.join(workdir, "queries.f32"), dtype=np.float32).reshape(-1, d)
T = np.fromfile(os.path.join(workdir, "truth.i32"), dtype=np.int32).reshape(-1, k)
EFS = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536]


def metric(name, value, unit=""):
    print(f"METRIC ann.{tag}.{name} {value}{' ' + unit if unit else ''}", flush=True)


def recall_against(found, truth):
    """recall@10 over the exact answers that exist (-1 where a filter left fewer than k)."""
    want = [set(int(x) for x in t if x >= 0) for t in truth]
    total = sum(len(w) for w in want)
    return sum(len(set(int(x) for x in f) & w) for f, w in zip(found, want)) / total if total else 1.0


def recall(found):
    return recall_against(found, T)


def sweep(lib, search, threads):
    at = {90: 0.0, 95: 0.0, 99: 0.0}
    for ef in EFS:
        t0 = time.perf_counter()
        found = search(ef)
        qps = len(Q) / (time.perf_counter() - t0)
        r = recall(found)
        metric(f"{lib}.t{threads}.ef{ef}.recall", f"{r:.4f}")
        metric(f"{lib}.t{threads}.ef{ef}.qps", f"{qps:.0f}", "q/s")
        for target in at:
            if at[target] == 0 and r >= target / 100:
                at[target] = qps
    for target, qps in at.items():
        metric(f"{lib}.t{threads}.qps_at_r{target}", f"{qps:.0f}", "q/s")


# hnswlib: one query per call, as ann_bench searches (num_threads splits the calls).
index = hnswlib.Index(space="ip", dim=d)
index.init_index(max_elements=n, M=m, ef_construction=efc, random_seed=42)
t0 = time.perf_counter()
index.add_items(X, np.arange(n), num_threads=1)
metric("hnswlib.build_s", f"{time.perf_counter() - t0:.3f}", "s")
metric("hnswlib.bytes_per_vector", f"{index.index_file_size() / n:.1f}", "bytes")


for t in range(1, threads + 1):
    def hnswlib_search(ef):
        index.set_ef(ef)
        labels, _ = index.knn_query(Q, k=k, num_threads=t)
        return labels

    sweep("hnswlib", hnswlib_search, t)

# FAISS: the same graph parameters; a batch call spreads the queries over OpenMP threads.
# Quantized: IndexHNSWSQ (QT_8bit, per-dimension ranges: `faiss_sq8`; QT_fp16:
# `faiss_fp16`) whose 4k hits are rescored from the float32 vectors by IndexRefineFlat,
# as ann_bench's int8 and float16 graphs are. bytes_per_vector counts the graph only, as
# ann_bench's does (the float32 rows exist either way).
def faiss_graph(name, graph, refine):
    """Builds graph (an IndexHNSW*) on one thread and sweeps it, refined 4x when asked."""
    faiss.omp_set_num_threads(1)
    graph.hnsw.efConstruction = efc
    t0 = time.perf_counter()
    graph.train(X)  # the scalar quantizer's ranges; nothing for IndexHNSWFlat
    graph.add(X)
    metric(f"{name}.build_s", f"{time.perf_counter() - t0:.3f}", "s")
    metric(f"{name}.bytes_per_vector", f"{faiss.serialize_index(graph).nbytes / n:.1f}", "bytes")
    searcher = graph
    if refine:
        searcher = faiss.IndexRefineFlat(graph, faiss.swig_ptr(X))
        searcher.k_factor = 4

    def search(ef):
        graph.hnsw.efSearch = ef
        _, labels = searcher.search(Q, k)
        return labels

    for t in range(1, threads + 1):
        faiss.omp_set_num_threads(t)
        sweep(name, search, t)
    return graph


fx = faiss_graph("faiss", faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT), False)
faiss_graph("faiss_sq8", faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT), True)
faiss_graph("faiss_fp16", faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_fp16, m, faiss.METRIC_INNER_PRODUCT), True)


# Filtered: the same filters and exact answers as ann_bench's (its first FQ queries).
FQ, FILTER_EF = 200, 128
for name in ("50", "10", "1", "0.1"):
    allow = np.fromfile(os.path.join(workdir, f"allow_{name}.u8"), dtype=np.uint8).astype(bool)
    truth = np.fromfile(os.path.join(workdir, f"truth_{name}.i32"), dtype=np.int32).reshape(-1, k)
    q = Q[:len(truth)]

    def frecall(found):
        return recall_against(found, truth)

    if allow.sum() >= k:  # hnswlib raises rather than return fewer than k (small shapes only)
        index.set_ef(FILTER_EF)
        t0 = time.perf_counter()
        labels, _ = index.knn_query(q, k=k, num_threads=1, filter=lambda i: bool(allow[i]))
        qps = len(q) / (time.perf_counter() - t0)
        metric(f"hnswlib.t1.f{name}.recall", f"{frecall(labels):.4f}")
        metric(f"hnswlib.t1.f{name}.qps", f"{qps:.0f}", "q/s")

    faiss.omp_set_num_threads(1)
    # The selector holds a bare pointer to the bitmap: keep the array alive while it is used.
    bitmap = np.packbits(allow, bitorder="little")
    sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
    params = faiss.SearchParametersHNSW(sel=sel, efSearch=FILTER_EF)
    t0 = time.perf_counter()
    _, labels = fx.search(q, k, params=params)
    qps = len(q) / (time.perf_counter() - t0)
    metric(f"faiss.t1.f{name}.recall", f"{frecall(labels):.4f}")
    metric(f"faiss.t1.f{name}.qps", f"{qps:.0f}", "q/s")
