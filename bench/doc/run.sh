#!/usr/bin/env bash
# Runs bench/doc: engine/doc in-process against SQLite (JSON1, WAL) on the same data
# (doc_bench), then the same workloads through gRPC (grpc/, the Go SDK against a real
# nexadb-server on loopback), then the ratios of the gRPC figures over SQLite's and over
# the in-process ones (METRIC ratio.grpc_vs_sqlite.* and ratio.grpc_vs_doc.*).
# usage: bench/doc/run.sh [docs=100000] [reps=3]
# Builds doc_bench and nexadb-server in build/bench-doc with the release preset (-O2, LTO,
# asserts off) and the Go program into build/bench-doc/bench/doc/grpc_doc_bench.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-100000}
reps=${2:-3}
bdir="$here/build/bench-doc"
# Go may be installed outside the default PATH (as /usr/local/go here).
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
cmake --preset release -B "$bdir" -DNDB_TESTS=OFF >/dev/null
cmake --build "$bdir" -j2 --target doc_bench >/dev/null
cmake --build "$bdir" -j2 --target nexadb-server >/dev/null
gobench="$bdir/bench/doc/grpc_doc_bench"
go -C "$here/bench/doc/grpc" build -o "$gobench" .

# shellcheck source=../server.sh
. "$here/bench/server.sh"
tmp=$(mktemp -d /tmp/ndb-doc-bench.XXXXXX)
trap 'bench_server_stop; rm -rf "$tmp"' EXIT

"$bdir/bench/doc/doc_bench" -n "$n" -r "$reps" -d "$tmp/data" | tee "$tmp/inprocess.out"

bench_server_start "$bdir/service/nexadb-server" "$tmp/server"
if ! NEXADB_API_KEY=$BENCH_API_KEY "$gobench" -addr "127.0.0.1:$BENCH_GRPC_PORT" -n "$n" -r "$reps" \
  | tee "$tmp/grpc.out"; then
  echo "grpc_doc_bench failed; the server's log ends:" >&2
  tail -n 20 "$BENCH_SERVER_LOG" >&2
  exit 1
fi
bench_server_memory grpc.server
bench_server_stop

echo "# ratios (gRPC / SQLite and gRPC / in-process throughput; >1 = gRPC faster)"
awk '
  $1 == "METRIC" { v[$2] = $3 }
  function get(name) {
    if (!(name in v)) { print "run.sh: no METRIC " name > "/dev/stderr"; exit 1 }
    return v[name]
  }
  function ratio(name, num, den) { printf "METRIC %s %.6g x\n", name, get(num) / get(den) }
  END {
    split("sqlite doc", ref, " ")
    for (i = 1; i <= 2; i++) {
      r = ref[i]; p = "ratio.grpc_vs_" r "."
      ratio(p "insert", "grpc.insert_many", r == "doc" ? "doc.insert_many" : "sqlite.insert_txn")
      ratio(p "insert_c2", "grpc.insert_many_c2", r == "doc" ? "doc.insert_many" : "sqlite.insert_txn")
      ratio(p "get_by_id", "grpc.get_by_id", r ".get_by_id")
      ratio(p "get_by_id_seq", "grpc.get_by_id_seq", r ".get_by_id")
      ratio(p "filter_scan", "grpc.filter_scan", r ".filter_scan")
      ratio(p "filter_index", "grpc.filter_index", r ".filter_index")
      ratio(p "group_by_city", r ".group_by_city_ms", "grpc.group_by_city_ms")
    }
  }' "$tmp/inprocess.out" "$tmp/grpc.out"
