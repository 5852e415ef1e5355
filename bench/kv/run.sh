#!/usr/bin/env bash
# bench/kv/run.sh — engine/kv against RocksDB's db_bench and LevelDB, same
# machine, same run, same parameters (see bench/README.md, section "kv").
#
#   bench/kv/run.sh            1,000,000 keys (16 B keys, 100 B values, bloom 10 bits)
#   bench/kv/run.sh --big      10,000,000 keys
#   bench/kv/run.sh --num N    N keys
#   SYNC_NUM=N                 operations per thread in the sync (group commit) runs (default 5000)
#
# Runs every workload twice: with a 4 MiB write buffer (LevelDB's default, the
# setting of the reference figures in shared/notes) and with 64 MiB (RocksDB's
# default); the block cache is 64 MiB in both. Prints ops/s per workload for
# each system and the ratios ours/theirs, then durable-write throughput with
# fsync per acknowledged write at 1, 4 and 16 writers (and how many writes
# each of our fsyncs carried), then peak RSS. Every
# figure is also a METRIC line. Timings are noisy on a shared machine: rerun
# and compare medians before concluding anything.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
num=1000000
while [ $# -gt 0 ]; do
  case "$1" in
    --big) num=10000000 ;;
    --num) num=$2; shift ;;
    *) echo "usage: $0 [--big | --num N]" >&2; exit 2 ;;
  esac
  shift
done
sync_num=${SYNC_NUM:-5000}

# Reference systems: Debian's RocksDB tools (db_bench) and LevelDB library.
missing=()
for p in rocksdb-tools libleveldb-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

build="$root/build/bench-kv"
cmake --preset release -B "$build" -DNDB_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target kv_bench kv_bench_leveldb >/dev/null

data="${TMPDIR:-/tmp}/ndb-kv-bench.$$"
mkdir -p "$data"
trap 'rm -rf "$data"' EXIT
workloads=fillseq,fillrandom,overwrite,readrandom,readseq,readmissing,seekrandom
common=(--num="$num" --key_size=16 --value_size=100 --bloom_bits=10 --threads=1)
buffers="4 64" # MiB
declare -A R RSS WPF

# Removes the databases and lets the file system settle: the disk is mounted
# with online discard here, and the first fsyncs after deleting hundreds of
# MB wait behind it (a 10x slower first sync run, whichever system came first).
clean() {
  rm -rf "$data/ndb" "$data/ldb" "$data/rdb"
  sync
  sleep 2
}

# run <system> <tag> <command...>: records "<system>:<tag>:<workload>" -> ops/s
run() {
  local sys=$1 tag=$2; shift 2
  local out="$data/$sys-$tag.out"
  /usr/bin/time -f "RSSKB %M" "$@" >"$out" 2>&1 || { echo "$sys $tag failed:"; tail -20 "$out"; exit 1; }
  while read -r name ops; do R["$sys:$tag:$name"]=$ops; done < <(
    awk '$2 == ":" { for (i = 3; i <= NF; i++) if ($i == "ops/sec") print $1, $(i-1) }' "$out")
  RSS["$sys:$tag"]=$(awk '/^RSSKB/ { print $2 }' "$out" | tail -1)
}

for mb in $buffers; do
  sizes=(--write_buffer_size=$((mb << 20)) --cache_size=67108864)
  for comp in none lz4; do
    tag="${comp}_wb${mb}"
    echo "== $num keys, compression $comp (LevelDB has no lz4: it uses snappy there), write buffer $mb MiB" >&2
    run nexadb "$tag" "$build/bench/kv/kv_bench" --benchmarks=$workloads "${common[@]}" "${sizes[@]}" \
      --compression_type=$comp --sync=0 --db="$data/ndb"
    lcomp=$comp; [ "$comp" = lz4 ] && lcomp=snappy
    run leveldb "$tag" "$build/bench/kv/kv_bench_leveldb" --benchmarks=$workloads "${common[@]}" "${sizes[@]}" \
      --compression_type=$lcomp --sync=0 --db="$data/ldb"
    run rocksdb "$tag" db_bench --benchmarks=$workloads "${common[@]}" "${sizes[@]}" \
      --compression_type=$comp --sync=0 --disable_wal=0 --db="$data/rdb"
    clean
  done
done
sizes=(--write_buffer_size=67108864 --cache_size=67108864)

for t in 1 4 16; do
  echo "== durable writes (fsync per acknowledged write), $t writers x $sync_num" >&2
  run nexadb "sync$t" "$build/bench/kv/kv_bench" --benchmarks=fillrandom --num="$sync_num" --key_size=16 \
    --value_size=100 --bloom_bits=10 --threads=$t --sync=1 "${sizes[@]}" --db="$data/ndb"
  run leveldb "sync$t" "$build/bench/kv/kv_bench_leveldb" --benchmarks=fillrandom --num="$sync_num" --key_size=16 \
    --value_size=100 --bloom_bits=10 --threads=$t --sync=1 "${sizes[@]}" --db="$data/ldb"
  run rocksdb "sync$t" db_bench --benchmarks=fillrandom --num="$sync_num" --key_size=16 --value_size=100 \
    --bloom_bits=10 --threads=$t --sync=1 --disable_wal=0 "${sizes[@]}" --db="$data/rdb"
  # acknowledged writes per WAL fsync, ours (wal_syncs of ndb_kv_stats, printed by kv_bench)
  syncs=$(awk '/^nexadb stats:/ { for (i = 1; i < NF; i++) if ($i == "syncs") print $(i + 1) + 0 }' "$data/nexadb-sync$t.out")
  WPF[$t]=$(awk -v a=$((t * sync_num)) -v b="${syncs:-0}" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }')
  clean
done

ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
# line <label> <metric-name> <key>: one table row and its METRIC lines
line() {
  local n=${R[nexadb:$3]:-0} l=${R[leveldb:$3]:-0} r=${R[rocksdb:$3]:-0}
  printf '%-26s %12s %12s %12s %9s %9s\n' "$1" "$n" "$l" "$r" "$(ratio "$n" "$l")" "$(ratio "$n" "$r")"
  {
    echo "METRIC kv_$2_nexadb $n ops/s"
    echo "METRIC kv_$2_leveldb $l ops/s"
    echo "METRIC kv_$2_rocksdb $r ops/s"
    echo "METRIC kv_$2_vs_leveldb $(ratio "$n" "$l") x"
    echo "METRIC kv_$2_vs_rocksdb $(ratio "$n" "$r") x"
  } >&2
}
for mb in $buffers; do
  printf '\n%-26s %12s %12s %12s %9s %9s\n' "workload, $mb MiB buffer" nexadb leveldb rocksdb ours/ldb ours/rdb
  for comp in none lz4; do
    for w in ${workloads//,/ }; do line "$w $comp" "${w}_${comp}_wb${mb}" "${comp}_wb${mb}:$w"; done
  done
done
printf '\n%-26s %12s %12s %12s %9s %9s\n' "sync fillrandom" nexadb leveldb rocksdb ours/ldb ours/rdb
for t in 1 4 16; do line "$t writers" "sync_fillrandom_t$t" "sync$t:fillrandom"; done
printf 'writes per fsync, nexadb: 1 writer %s, 4 writers %s, 16 writers %s\n' "${WPF[1]}" "${WPF[4]}" "${WPF[16]}"
for t in 1 4 16; do echo "METRIC kv_sync_fillrandom_t${t}_writes_per_fsync_nexadb ${WPF[$t]} writes" >&2; done
printf '\npeak RSS (KiB), compression none, 64 MiB buffer: nexadb %s  leveldb %s  rocksdb %s\n' \
  "${RSS[nexadb:none_wb64]:-?}" "${RSS[leveldb:none_wb64]:-?}" "${RSS[rocksdb:none_wb64]:-?}"
for sys in nexadb leveldb rocksdb; do echo "METRIC kv_peak_rss_${sys} ${RSS[$sys:none_wb64]:-0} KiB" >&2; done
