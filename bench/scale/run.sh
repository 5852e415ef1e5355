#!/usr/bin/env bash
# bench/scale: the brief's single-node ceiling. Documents and vectors go through the server,
# beside SQLite, numpy and FAISS on the same data, and the run records the memory and disk they
# take.
#
#   bench/scale/run.sh [docs=10000000] [vectors=1000000] [dims=768]
#
# Long: about an hour at the defaults on two cores (bench/README.md, "scale"). Not in any suite.
#  1. bench/doc/run.sh <docs> 3 runs the document workloads in-process and through gRPC beside
#     SQLite (doc.*, sqlite.*, grpc.*, ratio.*), and reports the server's peak anonymous and file
#     memory (grpc.server.*).
#  2. For none, lz4 and zstd in turn: a fresh server with --compression, <docs> documents
#     ingested (grpc_doc_bench -insert-only, two InsertMany calls in flight), then the server
#     stopped. Reports scale.doc.<c>.insert (docs/s); .disk_bytes_per_doc, the data directory's
#     bytes over the documents (tables, WAL, and the change log's records:
#     .change_log_bytes_per_doc of them); .anon_peak_bytes and .file_peak_bytes.
#  3. bench/vec/run.sh <vectors>x<dims> with 100 queries runs the exact search in-process beside
#     numpy and FAISS, and keeps the data. Then, for none and lz4, a fresh server takes the same
#     rows through gRPC (grpc_ann_bench -exact: the Go SDK, InsertVectors of 1,000). Reports
#     scale.vec.<c>.insert_vps, .disk_bytes_per_vector (kv's record and the search's segments),
#     and the memory peaks. With none it also reports the exact search's recall against numpy's
#     and its QPS from 1 and 2 client goroutines (ann.<vectors>x<dims>.server.t<n>.exact.*).
#  Each server's scale.*.anon_over_budget_bytes is its anonymous peak minus its memtable and block
#  cache budgets: the working memory README's "Sizing a node" documents.
# Scratch goes to ${NDB_BENCH_DIR:-/tmp/ndb-bench-scale}: about 4 GB for the documents and
# 3 × 4 × vectors × dims bytes for the vectors.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
docs=${1:-10000000}
nv=${2:-1000000}
dims=${3:-768}
work="${NDB_BENCH_DIR:-/tmp/ndb-bench-scale}"
bdir="$here/build/bench-doc" # bench/doc/run.sh builds the release server there
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
budget=$(((2 * 64 + 64) << 20)) # the defaults: two memtables of 64 MiB and a 64 MiB block cache

echo "# scale: $docs documents, $nv vectors of $dims dimensions, in $work" >&2
mkdir -p "$work"
# shellcheck source=../server.sh
. "$here/bench/server.sh"
trap 'bench_server_stop; rm -rf "$work/server" "$work/doc.out"' EXIT
"$here/bench/doc/run.sh" "$docs" 3 | tee "$work/doc.out"
awk -v b="$budget" '$2 == "grpc.server.anon_peak_bytes" {
  printf "METRIC scale.doc.grpc.anon_over_budget_bytes %.0f bytes\n", $3 - b }' "$work/doc.out"

ann="$bdir/bench/scale/grpc_ann_bench"
go -C "$here/bench/ann/grpc" build -o "$ann" .

# Stops the server and reports its memory and the bytes of its data directory over $2 units.
finish() { # <prefix> <units> <unit name>
  local prefix=$1 units=$2 unit=$3 bytes
  bench_server_stop
  bench_server_memory "$prefix"
  bytes=$(du -sb "$work/server/data" | cut -f1)
  echo "METRIC $prefix.disk_bytes_per_$unit $(awk -v b="$bytes" -v n="$units" 'BEGIN {printf "%.1f", b / n}') bytes"
  awk -v p="$prefix" -v b="$budget" '$1 > a {a = $1}
    END {printf "METRIC %s.anon_over_budget_bytes %.0f bytes\n", p, a - b}' "$BENCH_SERVER_MEMORY"
}

for c in none lz4 zstd; do
  rm -rf "$work/server"
  bench_server_start "$bdir/service/nexadb-server" "$work/server" --compression "$c"
  NEXADB_API_KEY=$BENCH_API_KEY "$bdir/bench/doc/grpc_doc_bench" -addr "127.0.0.1:$BENCH_GRPC_PORT" -n "$docs" \
    -insert-only | awk -v c="$c" '$1 == "METRIC" && $2 ~ /^grpc.insert_many_c/ {
      printf "METRIC scale.doc.%s.insert %s docs/s\n", c, $3 }'
  bench_server_metrics | awk -v c="$c" -v n="$docs" '$1 == "nexadb_change_log_bytes" {
    printf "METRIC scale.doc.%s.change_log_bytes_per_doc %.1f bytes\n", c, $2 / n }'
  finish "scale.doc.$c" "$docs" doc
done

NDB_BENCH_DIR="$work/vec" NDB_BENCH_QUERIES=100 NDB_BENCH_KEEP=1 "$here/bench/vec/run.sh" "${nv}x${dims}"
for c in none lz4; do
  rm -rf "$work/server"
  bench_server_start "$bdir/service/nexadb-server" "$work/server" --compression "$c"
  threads=2
  [ "$c" = none ] || threads=0 # the searches once; the second server measures the disk
  NEXADB_API_KEY=$BENCH_API_KEY "$ann" -addr "127.0.0.1:$BENCH_GRPC_PORT" -dir "$work/vec" -n "$nv" -d "$dims" \
    -exact -threads "$threads" | awk -v c="$c" '$1 != "METRIC" { next }
      $2 ~ /\.insert_vps$/ { printf "METRIC scale.vec.%s.insert_vps %s vectors/s\n", c, $3; next }
      $2 ~ /\.exact\./ { print }'
  finish "scale.vec.$c" "$nv" vector
done
rm -rf "$work"
