#!/usr/bin/env bash
# bench/kv/sync_ab.sh — the durable-write phase of bench/kv/run.sh only
# (fillrandom --sync=1, SYNC_NUM writes per writer, default 5000, 64 MiB
# write buffer and cache), alternating builds side by side: for each round
# and each writer count it runs every binary given back to back, so load
# from other tenants falls on all of them alike.
#
#   bench/kv/sync_ab.sh ROUNDS "1 4 16" name=path/to/kv_bench ... [leveldb=path/to/kv_bench_leveldb]
#
# Prints one line per run: round, writers, name, ops/s, writes per fsync
# (ours: acknowledged writes / wal_syncs). With PERF_STAT=1 each run goes
# through `perf stat` and the line adds CPU time, context switches and futex
# calls per write, and writes per fdatasync call (LevelDB's too).
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
      out="$data/out" stat="$data/stat"
      cmd=("$bin" --benchmarks=fillrandom --num="$sync_num" --key_size=16 --value_size=100 --bloom_bits=10
        --threads="$t" --sync=1 --write_buffer_size=67108864 --cache_size=67108864 --db="$data/db")
      if [ "${PERF_STAT:-0}" = 1 ]; then
        cmd=(perf stat -x, -o "$stat" -e task-clock,context-switches,syscalls:sys_enter_futex,syscalls:sys_enter_fdatasync "${cmd[@]}")
      fi
      "${cmd[@]}" >"$out" 2>&1 || { echo "$name failed"; tail "$out"; exit 1; }
      ops=$(awk '$2 == ":" { for (i = 3; i <= NF; i++) if ($i == "ops/sec") print $(i-1) }' "$out" | tail -1)
      syncs=$(awk '/^nexadb stats:/ { for (i = 1; i < NF; i++) if ($i == "syncs") print $(i + 1) + 0 }' "$out")
      w=$((t * sync_num))
      wpf=$(awk -v a=$w -v b="${syncs:-0}" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }')
      extra=
      if [ "${PERF_STAT:-0}" = 1 ]; then
        extra=$(awk -F, -v w=$w '/task-clock/ { tc = $1 } /context-switches/ { cs = $1 } /sys_enter_futex/ { fx = $1 }
          /sys_enter_fdatasync/ { fs = $1 }
          END { printf " cpu/write %.1f us, cs/write %.2f, futex/write %.2f, writes/fdatasync %.1f", tc * 1000 / w, cs / w, fx / w, w / fs }' "$stat")
      fi
      printf '%s %s %s %s %s%s\n' "$r" "$t" "$name" "$ops" "$wpf" "$extra"
      rm -rf "$data/db"; sync; sleep 1
    done
  done
done
