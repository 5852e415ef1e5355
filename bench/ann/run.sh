#!/usr/bin/env bash
# bench/ann/run.sh — the HNSW graph (vector/hnsw.c) against hnswlib and FAISS IndexHNSWFlat.
#
#   bench/ann/run.sh [shape...]     shapes: <n>x<dims> (default: 100000x128 100000x768)
#
# Builds ann_bench (release preset, build/bench-ann), installs numpy, faiss-cpu and
# hnswlib (bench/ann/requirements.txt) into .venv-bench, then for each shape: ann_bench
# writes the data (normalised gaussian, fixed seed), the queries and their exact top 10,
# builds the graph on one thread and sweeps ef at 1 and 2 search threads; peers.py does
# the same with hnswlib and FAISS (M=16, ef_construction=200 for all three). Prints
# METRIC lines, then ratio.<shape>.t<threads>.qps_at_r90|r95|r99.vs_hnswlib|vs_faiss (ours
# over theirs at the smallest ef reaching that recall; > 1: ours is faster; absent when one
# of them does not reach it) and the same at ef 64, 256 and 768 (…ef<ef>.qps.vs_…), where
# all three find about the same recall (the ef…recall lines say how close).
# Scratch data goes to ${NDB_BENCH_DIR:-/tmp/ndb-bench-ann}.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build="$here/build/bench-ann"
venv="$here/.venv-bench"
work="${NDB_BENCH_DIR:-/tmp/ndb-bench-ann}"
m=16
efc=200
nq=1000

cmake --preset release -B "$build" -DNDB_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target ann_bench >/dev/null
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$here/bench/ann/requirements.txt"

shapes=("$@")
[ ${#shapes[@]} -gt 0 ] || shapes=(100000x128 100000x768)
mkdir -p "$work"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for shape in "${shapes[@]}"; do
  n=${shape%x*}
  d=${shape#*x}
  echo "# shape $shape" >&2
  "$build/bench/ann/ann_bench" "$work" "$n" "$d" "$nq" "$m" "$efc" 2 | tee -a "$out"
  "$venv/bin/python" "$here/bench/ann/peers.py" "$work" "$n" "$d" "$m" "$efc" 2 | tee -a "$out"
  rm -f "$work/data.f32" "$work/queries.f32" "$work/truth.i32"
done
echo "# ratios (ours / peer QPS at the same recall; > 1 = ours faster)"
awk '
  $1 == "METRIC" && ($2 ~ /qps_at_r/ || $2 ~ /\.ef(64|256|768)\.qps$/) { v[$2] = $3 }
  END {
    for (name in v) {
      if (name !~ /\.ours\./) continue
      for (p = 1; p <= 2; p++) {
        peer = p == 1 ? "hnswlib" : "faiss"
        other = name; sub(/\.ours\./, "." peer ".", other)
        if (!(other in v) || v[other] == 0 || v[name] == 0) continue
        r = name; sub(/^ann\./, "", r); sub(/\.ours\./, ".", r)
        printf "METRIC ratio.%s.vs_%s %.3f x\n", r, peer, v[name] / v[other]
      }
    }
  }' "$out" | sort
