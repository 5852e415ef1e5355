#!/usr/bin/env bash
# Unary gRPC request rate: nexadb-server's Health.Check next to an empty C-core
# server built for the bench, and next to itself with --no-access-log (the cost of
# the "call" log line), with h2load on loopback, alternating runs.
#   bench/grpc/run.sh [requests] [rounds]
# Prints METRIC lines; the ratio is what to compare between runs.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-500000}
rounds=${2:-3}
cd "$here"
scripts/install-deps.sh
command -v h2load >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client; }
cmake --preset release >/dev/null
cmake --build --preset release --target nexadb-server grpc_empty_server >/dev/null

work=$(mktemp -d)
trap 'kill $srv_pid $quiet_pid $empty_pid 2>/dev/null || true; rm -rf "$work"' EXIT
printf '\x00\x00\x00\x00\x00' > "$work/empty.grpc" # gRPC frame of an empty HealthCheckRequest

build/release/service/nexadb-server --data-dir "$work/data" --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
  --api-key bench-key-0123456789abcdef 2> "$work/server.log" &
srv_pid=$!
for _ in $(seq 50); do grep -q '"gRPC listening"' "$work/server.log" && break; sleep 0.1; done
srv_port=$(sed -n 's/.*"gRPC listening".*"port":\([0-9]*\).*/\1/p' "$work/server.log")
build/release/service/nexadb-server --data-dir "$work/quiet" --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
  --api-key bench-key-0123456789abcdef --no-access-log 2> "$work/quiet.log" &
quiet_pid=$!
for _ in $(seq 50); do grep -q '"gRPC listening"' "$work/quiet.log" && break; sleep 0.1; done
quiet_port=$(sed -n 's/.*"gRPC listening".*"port":\([0-9]*\).*/\1/p' "$work/quiet.log")
empty_port=$((srv_port + 1))
[ "$empty_port" != "$quiet_port" ] || empty_port=$((srv_port + 2))
build/release/bench/grpc/grpc_empty_server "$empty_port" &
empty_pid=$!
sleep 0.5

rate() { # port path -> requests/s (only when every response was a 2xx and no stream failed)
  local out
  out=$(h2load -n "$n" -c 16 -m 32 -d "$work/empty.grpc" -H 'content-type: application/grpc' \
        -H 'te: trailers' "http://127.0.0.1:$1$2")
  echo "$out" | grep -q "requests: $n total, $n started, $n done, $n succeeded" || { echo "$out" >&2; return 1; }
  echo "$out" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p'
}

# h2load counts any HTTP 200 as success; check once that the gRPC status really is OK.
for p in "$srv_port:/grpc.health.v1.Health/Check" "$empty_port:/bench.Empty/Call"; do
  nghttp -v -d "$work/empty.grpc" -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:${p%%:*}${p#*:}" | grep -q 'grpc-status: 0' || { echo "no grpc-status 0 from $p" >&2; exit 1; }
done
ours=(); quiet=(); theirs=()
for r in $(seq "$rounds"); do
  ours+=("$(rate "$srv_port" /grpc.health.v1.Health/Check)")
  : > "$work/server.log" # a line per call: keep the disk from filling
  quiet+=("$(rate "$quiet_port" /grpc.health.v1.Health/Check)")
  theirs+=("$(rate "$empty_port" /bench.Empty/Call)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
o=$(median "${ours[@]}"); q=$(median "${quiet[@]}"); t=$(median "${theirs[@]}")
echo "METRIC grpc_health_check_rps ${o} req/s"
echo "METRIC grpc_health_check_no_access_log_rps ${q} req/s"
echo "METRIC grpc_access_log_ratio $(awk -v a="$o" -v b="$q" 'BEGIN{printf "%.3f", a/b}') x"
echo "METRIC grpc_empty_server_rps ${t} req/s"
echo "METRIC grpc_health_vs_empty_ratio $(awk -v a="$o" -v b="$t" 'BEGIN{printf "%.3f", a/b}') x"
echo "runs (ours): ${ours[*]}; (--no-access-log): ${quiet[*]}; (empty): ${theirs[*]}; h2load -n $n -c 16 -m 32" >&2
