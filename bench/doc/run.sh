#!/usr/bin/env bash
# Runs bench/doc: engine/doc against SQLite (JSON1, WAL) on the same data.
# usage: bench/doc/run.sh [docs=100000] [reps=3]
# Builds doc_bench in build/bench-doc with the release preset (-O2, LTO, asserts off).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-100000}
reps=${2:-3}
bdir="$here/build/bench-doc"
cmake --preset release -B "$bdir" -DNDB_TESTS=OFF >/dev/null
cmake --build "$bdir" -j2 --target doc_bench >/dev/null
tmp=$(mktemp -d /tmp/ndb-doc-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$bdir/bench/doc/doc_bench" -n "$n" -r "$reps" -d "$tmp/data"
