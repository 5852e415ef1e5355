#!/usr/bin/env bash
# bench/vec/run.sh — brute-force vector search: NexaDB vs numpy vs FAISS.
#
#   bench/vec/run.sh [shape...]     shapes: 100000x384 1000000x128 200000x1536 (default: all three)
#
# Builds vecbench (release preset, its own build dir build/bench-vec),
# creates .venv-bench with numpy and faiss-cpu (bench/vec/requirements.txt),
# then for each shape runs vecbench (which writes the data and measures this
# machine's memory bandwidth) and ref.py at 1 and 2 threads on the same data.
# Output: METRIC <name> <value> <unit> lines. Scratch data goes to
# ${NDB_BENCH_DIR:-/tmp/ndb-bench-vec} (about 2.5x the largest shape's bytes).
# NDB_BENCH_QUERIES sets the query count (default 1000); NDB_BENCH_KEEP=1 keeps the
# last shape's data.f32, queries.f32 and truth.i32 (bench/scale searches them through
# the server).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build="$here/build/bench-vec"
venv="$here/.venv-bench"
work="${NDB_BENCH_DIR:-/tmp/ndb-bench-vec}"

cmake --preset release -B "$build" -DNDB_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target vecbench >/dev/null

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r "$here/bench/vec/requirements.txt"

shapes=("$@")
[ ${#shapes[@]} -gt 0 ] || shapes=(100000x384 1000000x128 200000x1536)
mkdir -p "$work"
for shape in "${shapes[@]}"; do
  n=${shape%x*}
  d=${shape#*x}
  echo "# shape $shape" >&2
  "$build/bench/vec/vecbench" "$work" "$n" "$d" "${NDB_BENCH_QUERIES:-1000}"
  for t in 1 2; do
    OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t MKL_NUM_THREADS=$t \
      "$venv/bin/python" "$here/bench/vec/ref.py" "$work" "$n" "$d" "$t"
  done
  rm -rf "$work/store" "$work/ours_q0.txt"
  [ "${NDB_BENCH_KEEP:-0}" = 1 ] || rm -f "$work/data.f32" "$work/queries.f32" "$work/truth.i32"
done
