#!/usr/bin/env bash
# bench/kv/sync_ab.sh — the durable-write phase of bench/kv/run.sh only
# (fillrandom --sync=1, SYNC_NUM writes per writer), alternating builds side
# by side: for each round and each thread count, runs every kv_bench binary
# given (and LevelDB's) back to back, so load from other tenants falls on all.
#
#   bench/kv/sync_ab.sh ROUNDS "1 4 16" name=path/to/kv_bench ... [leveldb=path/to/kv_bench_leveldb]
# Prints one line per run: round threads name ops/s writes-per-fsync.
set -euo pipefail
rounds=$1 threads=$2; shift 2
sync_num=${SYNC_NUM:-5000}
data="${TMPDIR:-/tmp}/ndb-kv-sync-ab.$$"
mkdir -p "$data"
trap 'rm -rf "$data"' EXIT
for r in $(seq 1 "$rounds"); do
  for t in $threads; do
    for nb in "$@"; do
      name=${nb%%=*} bin=${nb#*=}
      out="$data/out"
      "$bin" --benchmarks=fillrandom --num="$sync_num" --key_size=16 --value_size=100 --bloom_bits=10 \
        --threads="$t" --sync=1 --write_buffer_size=67108864 --cache_size=67108864 --db="$data/db" >"$out" 2>&1 ||
        { echo "$name failed"; tail "$out"; exit 1; }
      ops=$(awk '$2 == ":" { for (i = 3; i <= NF; i++) if ($i == "ops/sec") print $(i-1) }' "$out" | tail -1)
      syncs=$(awk '/^nexadb stats:/ { for (i = 1; i < NF; i++) if ($i == "syncs") print $(i + 1) + 0 }' "$out")
      wpf=$(awk -v a=$((t * sync_num)) -v b="${syncs:-0}" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }')
      printf '%s %s %s %s %s\n' "$r" "$t" "$name" "$ops" "$wpf"
      rm -rf "$data/db"; sync; sleep 1
    done
  done
done
