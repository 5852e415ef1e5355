#!/usr/bin/env bash
# Vector inserts through the server, as a client sees them: h2load against
# VectorService/InsertVectors (1,000 vectors x 384 dims per call, -c4 -m1 and -c1)
# and VectorService/InsertVector (one vector per call from 16 connections: concurrent
# durable writers, the case group commit is for).
#   bench/vec/server_insert.sh [rounds=3] [batch_calls=100] [single_calls=20000]
# NEXADB_SERVER=<path> uses a binary you built; otherwise the release preset is built.
# NEXADB_SERVER_BEFORE=<path> also measures a reference server, each workload on
# both servers back to back, and prints the ratios now/before.
# Every measurement starts a server on a fresh data directory, checks one call
# with curl (grpc-status 0, generated ids), runs h2load, then checks that the
# collection's count is exactly what was sent (h2load counts HTTP 200 as success
# whatever the grpc-status). Prints METRIC lines: medians over the rounds, vectors/s.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
rounds=${1:-3}
batch_calls=${2:-100}
single_calls=${3:-20000}
batch=1000
dims=384
cd "$here"
command -v h2load >/dev/null ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nghttp2-client; }
server=${NEXADB_SERVER:-}
if [ -z "$server" ]; then
  scripts/install-deps.sh
  cmake --preset release >/dev/null
  cmake --build --preset release --target nexadb-server -j2 >/dev/null
  server=build/release/service/nexadb-server
fi
declare -A bin=([now]=$server)
tags=(now)
if [ -n "${NEXADB_SERVER_BEFORE:-}" ]; then bin[before]=$NEXADB_SERVER_BEFORE; tags+=(before); fi

work=$(mktemp -d)
srv_pid=
trap '[ -z "$srv_pid" ] || { kill $srv_pid; wait $srv_pid; } 2>/dev/null || true; rm -rf "$work"' EXIT
key=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n') # this run only
python3 bench/service/grpc_req.py vectors "$work/batch.grpc" v "$batch" "$dims"
python3 bench/service/grpc_req.py vector "$work/single.grpc" v "$dims"

start() { # binary: fresh data dir, sets srv_pid grpc_port http_port
  rm -rf "$work/data"
  : > "$work/server.log" # emptied first: the child truncates it only when scheduled, and the previous
                         # server's "ready" line must not be read as this one's
  "$1" --data-dir "$work/data" --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --api-key "$key" 2> "$work/server.log" &
  srv_pid=$!
  for _ in $(seq 300); do grep -q '"nexadb-server ready"' "$work/server.log" && break; sleep 0.1; done
  grep -q '"nexadb-server ready"' "$work/server.log" || {
    echo "server $1 not ready after 30 s ($(kill -0 $srv_pid 2>/dev/null && echo running || echo exited)); its log:" >&2
    cat "$work/server.log" >&2; exit 1; }
  grpc_port=$(sed -n 's/.*"gRPC listening".*"port":\([0-9]*\).*/\1/p' "$work/server.log")
  http_port=$(sed -n 's/.*"HTTP listening".*"port":\([0-9]*\).*/\1/p' "$work/server.log")
  local code
  code=$(curl -s -o "$work/create.out" -w '%{http_code}' -H "X-API-Key: $key" \
    -d "{\"dimensions\":$dims,\"metric\":\"VECTOR_METRIC_COSINE\"}" "http://127.0.0.1:$http_port/vector/v")
  [ "$code" = 200 ] || { echo "creating collection v answered $code: $(head -c 300 "$work/create.out")" >&2; exit 1; }
}
stop() {
  kill "$srv_pid"; wait "$srv_pid" || { echo "server exited $?" >&2; cat "$work/server.log" >&2; exit 1; }
  srv_pid=
  rm -rf "$work/data"; sync; sleep 1 # the disk discards online: let the delete settle
}
count() { curl -sf -H "X-API-Key: $key" "http://127.0.0.1:$http_port/vector" |
  python3 -c 'import json,sys; print(sum(c["count"] for c in json.load(sys.stdin)["collections"] if c["name"] == "v"))'; }
# One call with curl (HTTP/2, trailers in the header dump): grpc-status 0 and as many distinct
# ids as vectors sent. The response (5-byte frame prefix, then document_ids = 1 or document_id
# = 1, and count = 2) is decoded by hand.
check() { # path frame vectors
  curl -s --http2-prior-knowledge --data-binary @"$2" -H 'content-type: application/grpc' -H 'te: trailers' \
    -H "x-api-key: $key" -D "$work/resp.hdr" -o "$work/resp" "http://127.0.0.1:$grpc_port$1"
  grep -q '^grpc-status: 0' "$work/resp.hdr" || { echo "no grpc-status 0 from $1:" >&2; cat "$work/resp.hdr" >&2; exit 1; }
  python3 - "$work/resp" "$3" <<'PY' >&2
import sys
b, want = open(sys.argv[1], "rb").read()[5:], int(sys.argv[2])
ids, i = [], 0
def varint():
    global i
    n = shift = 0
    while True:
        n |= (b[i] & 0x7F) << shift; shift += 7; i += 1
        if not b[i - 1] & 0x80: return n
while i < len(b):
    key = varint()
    n = varint()  # a string's length, or the value of count (field 2, a varint)
    if key == 0x0A: ids.append(b[i:i + n].decode()); i += n
if len(set(ids)) != want:
    sys.exit(f"expected {want} distinct generated ids, got {len(set(ids))}")
print(f"  {len(ids)} ids generated, e.g. {ids[0]}")
PY
}
h2() { # path frame calls h2load-args... -> calls/s
  local out
  out=$(h2load -n "$3" "${@:4}" -d "$2" -H 'content-type: application/grpc' -H 'te: trailers' -H "x-api-key: $key" \
        "http://127.0.0.1:$grpc_port$1")
  grep -q "^requests: $3 total, $3 started, $3 done, $3 succeeded, 0 failed" <<< "$out" ||
    { echo "$out" >&2; echo "h2load: not every request succeeded" >&2; exit 1; }
  sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' <<< "$out"
}
measure() { # metric tag path frame vectors-per-call calls h2load-args...: appends vectors/s to R[metric_tag]
  local tag=$2 path=$3 frame=$4 per=$5 calls=$6 rps got
  start "${bin[$tag]}"
  echo "$tag $1 (${*:7})" >&2
  check "$path" "$frame" "$per"
  rps=$(h2 "$path" "$frame" "$calls" "${@:7}")
  got=$(count)
  [ "$got" = $(((calls + 1) * per)) ] ||
    { echo "$tag: collection holds $got vectors after $((calls + 1)) calls of $per; expected $(((calls + 1) * per))" >&2; exit 1; }
  stop
  R[${1}_$tag]+=" $(awk -v r="$rps" -v p="$per" 'BEGIN{printf "%.0f", r * p}')"
}
declare -A R
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Each round measures every workload on both servers back to back, the order swapped every round.
for r in $(seq "$rounds"); do
  order=("${tags[@]}")
  [ $((r % 2)) = 0 ] && [ ${#tags[@]} = 2 ] && order=(before now)
  for t in "${order[@]}"; do
    measure batch1000 "$t" /nexadb.v1.VectorService/InsertVectors "$work/batch.grpc" $batch "$batch_calls" -c4 -m1
  done
  for t in "${order[@]}"; do
    measure batch1000_c1 "$t" /nexadb.v1.VectorService/InsertVectors "$work/batch.grpc" $batch "$batch_calls" -c1 -m1
  done
  for t in "${order[@]}"; do
    measure single_c16 "$t" /nexadb.v1.VectorService/InsertVector "$work/single.grpc" 1 "$single_calls" -c16 -m1
  done
done
for m in batch1000 batch1000_c1 single_c16; do
  for t in "${tags[@]}"; do
    echo "vec_server_insert_${m}_$t runs:${R[${m}_$t]}" >&2
    echo "METRIC vec_server_insert_${m}_$t $(median ${R[${m}_$t]}) vectors/s"
  done
  if [ ${#tags[@]} = 2 ]; then
    echo "vec_server_insert_${m}_now_vs_before per round: $(paste -d' ' <(tr ' ' '\n' <<< "${R[${m}_now]}") \
      <(tr ' ' '\n' <<< "${R[${m}_before]}") | awk 'NF == 2 {printf "%.2f ", $1 / $2}')" >&2
    echo "METRIC vec_server_insert_${m}_now_vs_before $(awk -v a="$(median ${R[${m}_now]})" \
      -v b="$(median ${R[${m}_before]})" 'BEGIN{printf "%.3f", a/b}') x"
  fi
done
echo "batch: $batch_calls calls of $batch x $dims (-c4 -m1, -c1 -m1); single: $single_calls calls (-c16 -m1); rounds=$rounds" >&2
