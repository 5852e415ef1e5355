#!/usr/bin/env bash
# Runs bench/changes: change-stream delivery lag at a fixed write rate, and what the change
# log costs writers, on two real servers side by side (the default, which keeps a change
# log, and one started with --change-retention-seconds 0).
# usage: bench/changes/run.sh [rate=10000] [seconds=10] [writers=64] [batch=1]
# Builds nexadb-server in build/bench-doc with the release preset and the Go program into
# build/bench-doc/bench/changes_bench.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
rate=${1:-10000}
secs=${2:-10}
writers=${3:-64}
batch=${4:-1}
bdir="$here/build/bench-doc"
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
cmake -S "$here" --preset release -B "$bdir" -DNDB_TESTS=OFF >/dev/null
cmake --build "$bdir" -j2 --target nexadb-server >/dev/null
prog="$bdir/bench/changes_bench"
go -C "$here/bench/changes" build -o "$prog" .

# shellcheck source=../server.sh
. "$here/bench/server.sh"
tmp=$(mktemp -d /tmp/ndb-changes-bench.XXXXXX)
trap 'bench_server_stop; rm -rf "$tmp"' EXIT

run() { # <server dir> <tag> <watch> [server args...]
  local dir=$1 tag=$2 watch=$3
  shift 3
  bench_server_start "$bdir/service/nexadb-server" "$tmp/$dir" "$@"
  NEXADB_API_KEY=$BENCH_API_KEY "$prog" -addr "127.0.0.1:$BENCH_GRPC_PORT" -rate "$rate" -seconds "$secs" -writers "$writers" -batch "$batch" \
    -watch="$watch" -tag "$tag" | tee -a "$tmp/out"
  bench_server_stop
}
run log changes true
run log2 changes_nowatch false
run nolog nolog false --change-retention-seconds 0

echo "# ratios (>1: the change log or the watcher costs that much)"
awk '$1 == "METRIC" { v[$2] = $3 }
  END {
    printf "METRIC ratio.insert_many_nolog_vs_log %.4g x\n", v["nolog.insert_many"] / v["changes_nowatch.insert_many"]
    printf "METRIC ratio.write_rate_nowatch_vs_watch %.4g x\n", v["changes_nowatch.write_rate"] / v["changes.write_rate"]
  }' "$tmp/out"
