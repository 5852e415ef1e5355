#!/usr/bin/env bash
# Runs bench/cluster: a three-node cluster on loopback beside one node under the same client
# load (acknowledged writes/s, p50/p99 latency, and the servers' CPU time per write: on one
# machine the three nodes share its cores, and each executes every write), the time from killing the leader (SIGKILL) to
# the first acknowledged write over repeated failovers (median, p99, max), and the speed of a
# snapshot's transfer to a node that lost its disk (removed, emptied, added back).
# usage: bench/cluster/run.sh [seconds=10] [writers=64] [failovers=20] [fill_docs=1000000]
# Builds nexadb-server in build/bench-doc with the release preset and the Go program into
# build/bench-doc/bench/cluster_bench. Prints METRIC lines. The nodes run the default settings
# (a snapshot every 4096 entries); the fill writes one entry per 200 documents, so a million
# documents pass a snapshot and the emptied node needs it.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-10}
writers=${2:-64}
failovers=${3:-20}
fill=${4:-1000000}
bdir="$here/build/bench-doc"
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
cmake -S "$here" --preset release -B "$bdir" -DNDB_TESTS=OFF >/dev/null
cmake --build "$bdir" -j2 --target nexadb-server >/dev/null
prog="$bdir/bench/cluster_bench"
go -C "$here/bench/cluster" build -o "$prog" .
server="$bdir/service/nexadb-server"

# shellcheck source=../server.sh
. "$here/bench/server.sh"
tmp=$(mktemp -d /tmp/ndb-cluster-bench.XXXXXX)
key=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export NEXADB_API_KEY=$key
pids=(0 0 0)
grpc=(0 0 0)
http=(0 0 0)
stop_all() {
  local p
  for p in "${pids[@]}"; do
    [ "$p" = 0 ] && continue
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
trap 'stop_all; bench_server_stop; rm -rf "$tmp"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
peers="1=127.0.0.1:$(free_port),2=127.0.0.1:$(free_port),3=127.0.0.1:$(free_port)"
# Each node keeps its ports across restarts, as a pod does: the others find a snapshot at the
# address its taker had when it took it.
node_ports=("$(free_port) $(free_port)" "$(free_port) $(free_port)" "$(free_port) $(free_port)")

start_node() { # <index 0..2>: starts node i+1 (its data kept across restarts)
  local i=$1 g h
  read -r g h <<< "${node_ports[i]}"
  bench_server_start "$server" "$tmp/node$((i + 1))" --node-id $((i + 1)) --peers "$peers" --api-key "$key" \
    --grpc-addr "127.0.0.1:$g" --http-addr "127.0.0.1:$h"
  pids[i]=$BENCH_SERVER_PID grpc[i]=$BENCH_GRPC_PORT http[i]=$BENCH_HTTP_PORT
  BENCH_SERVER_PID= # the trap stops every node
}
addrs() { local i out=; for i in 0 1 2; do [ "${pids[i]}" = 0 ] || out+="${out:+,}127.0.0.1:${grpc[i]}"; done; echo "$out"; }
leader() { # prints the index of the node that leads, waiting for one
  local i t
  for t in $(seq 300); do
    for i in 0 1 2; do
      [ "${pids[i]}" = 0 ] && continue
      curl -sf "http://127.0.0.1:${http[i]}/status" | grep -q '"role":"leader"' && { echo "$i"; return; }
    done
    sleep 0.1
  done
  echo "no leader" >&2
  return 1
}
caught_up() { # <i> [seconds=60]: waits until node i reports SERVING (a leader known, the log applied)
  local i=$1 t
  for t in $(seq $((${2:-60} * 10))); do
    curl -sf "http://127.0.0.1:${http[i]}/status" | grep -q '"health":"SERVING"' && return
    sleep 0.1
  done
  echo "node $((i + 1)) did not catch up; its status and log:" >&2
  curl -s "http://127.0.0.1:${http[i]}/status" >&2 || true
  grep -v '"call"' "$tmp/node$((i + 1))/server.log" | tail -n 10 >&2
  return 1
}

cpu_ticks() { # the CPU time (user + system, clock ticks) the given processes used so far
  local p t=0
  for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
  echo "$t"
}
cpu_metric() { # <tag> <ticks before> <ticks after>: CPU per acknowledged write, all servers together
  awk -v tag="$1" -v d="$(( $3 - $2 ))" -v hz="$(getconf CLK_TCK)" '$2 == tag "_writes_per_s" { w = $3 }
    END { printf "METRIC %s_server_cpu_per_write %.0f us\n", tag, d / hz * 1e6 / (w * '"$secs"') }' "$tmp/out" |
    tee -a "$tmp/out"
}

echo "# one node"
bench_server_start "$server" "$tmp/single" --api-key "$key"
c0=$(cpu_ticks "$BENCH_SERVER_PID")
"$prog" -mode load -addrs "127.0.0.1:$BENCH_GRPC_PORT" -writers "$writers" -seconds "$secs" -tag single | tee "$tmp/out"
cpu_metric single "$c0" "$(cpu_ticks "$BENCH_SERVER_PID")"
bench_server_stop

echo "# three nodes"
for i in 0 1 2; do start_node "$i"; done
l=$(leader)
last_index() { curl -sf "http://127.0.0.1:${http[l]}/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["cluster"]["last_index"])'; }
c0=$(cpu_ticks "${pids[@]}")
i0=$(last_index)
"$prog" -mode load -addrs "$(addrs)" -writers "$writers" -seconds "$secs" -tag cluster | tee -a "$tmp/out"
cpu_metric cluster "$c0" "$(cpu_ticks "${pids[@]}")"
awk -v e="$(( $(last_index) - i0 ))" '$2 == "cluster_writes_per_s" { w = $3 }
  END { printf "METRIC cluster_writes_per_entry %.2f writes\n", w * '"$secs"' / e }' "$tmp/out" | tee -a "$tmp/out"

echo "# $failovers failovers"
for k in $(seq "$failovers"); do
  l=$(leader)
  for i in 0 1 2; do caught_up "$i"; done
  "$prog" -mode failover -addrs "$(addrs)" -kill "${pids[l]}" | tee -a "$tmp/failover"
  wait "${pids[l]}" 2>/dev/null || true
  pids[l]=0
  start_node "$l"
done
# median, p99 and max of the failovers (nearest rank)
awk '$2 == "failover_ms" { print $3 }' "$tmp/failover" | sort -n | awk '{ v[NR] = $1 } END {
  printf "METRIC failover_p50 %.1f ms\nMETRIC failover_p99 %.1f ms\nMETRIC failover_max %.1f ms\n",
    v[int((NR - 1) * 0.5) + 1], v[int((NR - 1) * 0.99) + 1], v[NR] }' | tee -a "$tmp/out"

echo "# snapshot transfer"
l=$(leader)
"$prog" -mode fill -addrs "127.0.0.1:${grpc[l]}" -docs "$fill"
f=$(( (l + 1) % 3 ))
curl -sf -X DELETE -H "X-API-Key: $key" "http://127.0.0.1:${http[l]}/admin/cluster/nodes/$((f + 1))" >/dev/null
kill -KILL "${pids[f]}"
wait "${pids[f]}" 2>/dev/null || true
pids[f]=0
rm -rf "$tmp/node$((f + 1))"
start_node "$f"
raft=$(echo "$peers" | tr ',' '\n' | sed -n "s/^$((f + 1))=//p")
curl -sf -X POST -H "X-API-Key: $key" -d "{\"id\": $((f + 1)), \"raft_address\": \"$raft\"}" \
  "http://127.0.0.1:${http[l]}/admin/cluster/nodes" >/dev/null
caught_up "$f" 600 # the snapshot fetched and loaded, the log after it applied
python3 - "$tmp/node$((f + 1))/server.log" <<'PY' | tee -a "$tmp/out"
import datetime, json, sys
start = done = None
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    ts = datetime.datetime.fromisoformat(r["ts"].replace("Z", "+00:00"))
    if r.get("msg") == "fetching a cluster snapshot":
        start = ts
    if r.get("msg") == "cluster snapshot fetched":
        done, nbytes = ts, r["bytes"]
if start is None or done is None:
    sys.stdout.writelines(open(sys.argv[1]).readlines()[-15:])
    sys.exit("the node did not fetch a snapshot")
secs = (done - start).total_seconds()
print(f"METRIC snapshot_bytes {nbytes} bytes")
print(f"METRIC snapshot_transfer {nbytes / 1e6 / secs:.1f} MB/s")
PY

echo "# ratios"
awk '$1 == "METRIC" { v[$2] = $3 } END {
  printf "METRIC cluster_vs_single_writes %.2f ratio\n", v["cluster_writes_per_s"] / v["single_writes_per_s"] }' "$tmp/out"
