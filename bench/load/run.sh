#!/usr/bin/env bash
# Sustained mixed load against nexadb-server (see bench/README.md, "load").
#   bench/load/run.sh [requests] [clients]      defaults: 100000 requests, 64 clients
# Builds nexadb-server in build/rel (release preset), starts it on a fresh
# data directory with the default (fsync'd) durability, runs loadgen.py and
# prints METRIC lines. Uses the test venv (.venv: grpcio, grpcio-tools).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
requests=${1:-100000}
clients=${2:-64}
build="$root/build/rel"
if [ ! -f "$build/build.ninja" ]; then
  cmake --preset release -B "$build" >/dev/null
fi
cmake --build "$build" --target nexadb-server -j 2 >/dev/null
data=$(mktemp -d /tmp/nexadb-load-XXXXXX)
key="load-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
log="$data.log"
"$build/service/nexadb-server" --data-dir "$data/d" --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
  --api-key "$key" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" "$log"' EXIT
for _ in $(seq 100); do
  grep -q '"nexadb-server ready"' "$log" 2>/dev/null && break
  sleep 0.1
done
port=$(grep '"gRPC listening"' "$log" | sed -E 's/.*"port":([0-9]+).*/\1/')
"$root/.venv/bin/python" "$root/bench/load/loadgen.py" --target "127.0.0.1:$port" --key "$key" \
  --requests "$requests" --clients "$clients" --pid "$pid"
