#!/usr/bin/env bash
# REST next to gRPC on the same server and the same calls, on loopback:
#   wrk (HTTP/1.1 keep-alive) against the REST routes, h2load against the gRPC methods.
#   bench/service/run.sh [seconds=10] [rounds=3]
# NEXADB_SERVER=<path> uses a binary you built; otherwise the release preset is built.
# Prints METRIC lines (req/s, p50/p99 in ms, REST/gRPC ratios) and the original
# Python NexaDB's REST figures measured on this machine kind, for reference.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-10}
rounds=${2:-3}
conns=${CONNS:-64}
cd "$here"
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
server=${NEXADB_SERVER:-}
if [ -z "$server" ]; then
  scripts/install-deps.sh
  cmake --preset release >/dev/null
  cmake --build --preset release --target nexadb-server >/dev/null
  server=build/release/service/nexadb-server
fi
[ -x .venv/bin/python ] || scripts/install-deps.sh
py=.venv/bin/python # grpc_req.py writes documents with pymongo's bson (tests/requirements.txt)

work=$(mktemp -d)
trap 'kill $srv_pid 2>/dev/null || true; rm -rf "$work"' EXIT
key=bench-key-0123456789abcdef
"$server" --data-dir "$work/data" --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --api-key "$key" \
  2> "$work/server.log" &
srv_pid=$!
for _ in $(seq 100); do grep -q '"nexadb-server ready"' "$work/server.log" && break; sleep 0.1; done
grpc_port=$(sed -n 's/.*"gRPC listening".*"port":\([0-9]*\).*/\1/p' "$work/server.log")
http_port=$(sed -n 's/.*"HTTP listening".*"port":\([0-9]*\).*/\1/p' "$work/server.log")
[ -n "$http_port" ] && [ -n "$grpc_port" ] || { echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
base="http://127.0.0.1:$http_port"

# Seed a collection (when the document engine is wired).
docs=10000
have_docs=1
$py - "$work/bulk.json" "$docs" <<'PY'
import json, sys
cities = ["Paris", "Oslo", "Lima", "Pune", "Kyiv", "Quito"]
docs = [{"name": f"user{i}", "email": f"user{i}@example.com", "age": 18 + i % 60, "city": cities[i % 6],
         "tags": ["a", "b"] if i % 2 else ["c"]} for i in range(int(sys.argv[2]))]
json.dump({"documents": docs}, open(sys.argv[1], "w"))
PY
code=$(curl -s -o "$work/bulk.out" -w '%{http_code}' -H "X-API-Key: $key" -H 'Content-Type: application/json' \
  --data-binary @"$work/bulk.json" "$base/collections/bench/bulk")
if [ "$code" != 200 ]; then
  echo "bulk insert answered $code ($(head -c 200 "$work/bulk.out")): document routes skipped" >&2
  have_docs=0
else
  id=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["document_ids"][4321])' "$work/bulk.out")
fi

filter='{"age":{"$gt":25}}'
cat > "$work/query.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"query": $filter, "limit": 10}'
wrk.headers["Content-Type"] = "application/json"
LUA
# 100 documents per bulk call, each call new documents (ids generated)
$py - "$work/bulk100.lua" <<'PY'
import json, sys
docs = [{"name": f"bulk{i}", "age": i % 90, "city": "Oslo", "tags": ["x"]} for i in range(100)]
body = json.dumps({"documents": docs})
open(sys.argv[1], "w").write('wrk.method = "POST"\nwrk.body = [[' + body + ']]\nwrk.headers["Content-Type"] = "application/json"\n')
PY

$py bench/service/grpc_req.py status "$work/status.grpc"
if [ $have_docs = 1 ]; then
  $py bench/service/grpc_req.py get "$work/get.grpc" bench "$id"
  $py bench/service/grpc_req.py find "$work/find.grpc" bench "$filter" 10
fi

to_ms() { # wrk latency like 1.23ms / 456.00us / 1.02s -> ms
  awk -v v="$1" 'BEGIN{ if (v ~ /us$/) printf "%.3f", v/1000; else if (v ~ /ms$/) printf "%.3f", v+0; else if (v ~ /s$/) printf "%.3f", v*1000; else print v }'
}
rest() { # name url [lua] -> "rps p50 p99"
  local out
  out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -H "X-API-Key: $key" ${3:+-s "$3"} "$2")
  if echo "$out" | grep -q "Non-2xx"; then echo "$out" >&2; return 1; fi
  echo "$(echo "$out" | awk '/^Requests\/sec/ {print $2}') $(to_ms "$(echo "$out" | awk '$1=="50%" {print $2}')") $(to_ms "$(echo "$out" | awk '$1=="99%" {print $2}')")"
}
grpc() { # path frame -> "rps p50 p99"
  local out n=$((secs * 20000))
  nghttp -v -d "$2" -H 'content-type: application/grpc' -H 'te: trailers' -H "x-api-key: $key" \
    "http://127.0.0.1:$grpc_port$1" | grep -q 'grpc-status: 0' || { echo "no grpc-status 0 from $1" >&2; return 1; }
  rm -f "$work/h2.log"
  out=$(h2load -t2 -c"$conns" -m1 -D "$secs" -d "$2" -H 'content-type: application/grpc' -H 'te: trailers' \
        -H "x-api-key: $key" --log-file="$work/h2.log" "http://127.0.0.1:$grpc_port$1")
  local rps
  rps=$(echo "$out" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
  # log lines: start(us) status duration(us)
  read -r p50 p99 < <(awk '{print $3}' "$work/h2.log" | sort -n | awk '{a[NR]=$1} END {printf "%.3f %.3f\n", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}')
  echo "$rps $p50 $p99"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A R
run() { # label kind args...
  local label=$1; shift
  local res
  res=$("$@") || return 1
  R[$label]+="$res;"
}
for r in $(seq "$rounds"); do
  run rest_status rest status "$base/status"
  run grpc_status grpc /nexadb.v1.AdminService/Status "$work/status.grpc"
  if [ $have_docs = 1 ]; then
    run rest_get rest get "$base/collections/bench/$id"
    run grpc_get grpc /nexadb.v1.DocumentService/Get "$work/get.grpc"
    run rest_query rest query "$base/collections/bench/query" "$work/query.lua"
    run grpc_find grpc /nexadb.v1.DocumentService/Find "$work/find.grpc"
  fi
done
if [ $have_docs = 1 ]; then
  conns=8 run rest_bulk100 rest bulk "$base/collections/bulkbench/bulk" "$work/bulk100.lua"
fi

report() { # label
  local rows rps p50 p99
  rows=$(echo "${R[$1]}" | tr ';' '\n' | grep .)
  rps=$(median $(echo "$rows" | awk '{print $1}'))
  p50=$(median $(echo "$rows" | awk '{print $2}'))
  p99=$(median $(echo "$rows" | awk '{print $3}'))
  echo "METRIC ${1}_rps $rps req/s"
  echo "METRIC ${1}_p50 $p50 ms"
  echo "METRIC ${1}_p99 $p99 ms"
  echo "$1 runs: $(echo "$rows" | awk '{print $1}' | tr '\n' ' ')" >&2
  eval "rps_$1=$rps"
}
report rest_status; report grpc_status
echo "METRIC rest_vs_grpc_status_ratio $(awk -v a="$rps_rest_status" -v b="$rps_grpc_status" 'BEGIN{printf "%.3f", a/b}') x"
if [ $have_docs = 1 ]; then
  report rest_get; report grpc_get
  echo "METRIC rest_vs_grpc_get_ratio $(awk -v a="$rps_rest_get" -v b="$rps_grpc_get" 'BEGIN{printf "%.3f", a/b}') x"
  report rest_query; report grpc_find
  echo "METRIC rest_vs_grpc_query_ratio $(awk -v a="$rps_rest_query" -v b="$rps_grpc_find" 'BEGIN{printf "%.3f", a/b}') x"
  report rest_bulk100
  echo "METRIC rest_bulk_docs_per_s $(awk -v a="$rps_rest_bulk100" 'BEGIN{printf "%.0f", a*100}') docs/s"
fi
echo "METRIC python_nexadb_rest_get_rps 585 req/s (reference: original Python NexaDB, this machine kind)"
echo "METRIC python_nexadb_rest_bulk_docs_per_s 9900 docs/s (reference)"
echo "wrk -t2 -c$conns -d${secs}s --latency; h2load -t2 -c$conns -m1 -D $secs; rounds=$rounds; bulk: 100 docs per call, 8 connections" >&2
