#!/usr/bin/env bash
# bench/ann/run.sh — the HNSW graph (vector/hnsw.c) against hnswlib and FAISS IndexHNSWFlat.
#
#   bench/ann/run.sh [shape...]     shapes: <n>x<dims> (default: 100000x128 100000x768)
#
# Builds ann_bench (release preset, build/bench-ann), installs numpy, faiss-cpu and
# hnswlib (bench/ann/requirements.txt) into .venv-bench, then for each shape: ann_bench
# writes the data (normalised gaussian, fixed seed), the queries and their exact top 10,
# builds the graph on one thread and sweeps ef at 1 and 2 search threads; peers.py does
# the same with hnswlib and FAISS (M=16, ef_construction=200 for all three). Prints
# METRIC lines, then ratio.<shape>.t<threads>.qps_at_r90|r95|r99.vs_hnswlib|vs_faiss (ours
# over theirs at the smallest ef reaching that recall; > 1: ours is faster; absent when one
# of them does not reach it) and the same at ef 64, 256 and 768 (…ef<ef>.qps.vs_…), where
# all three find about the same recall (the ef…recall lines say how close).
# Then the same data through the server (grpc/: the Go SDK against a nexadb-server on
# loopback, an HNSW collection with the same M and ef_construction): ann.<shape>.server.*,
# and ratio.<shape>.t<threads>.qps_at_r…server_vs_ours (through gRPC over in-process).
# The int8 and float16 graphs (ours rescored 4x, FAISS IndexHNSWSQ QT_8bit and QT_fp16
# refined 4x) give ratio.<shape>.int8.t<threads>.…vs_faiss_sq8 and …float16…vs_faiss_fp16.
# Scratch data goes to ${NDB_BENCH_DIR:-/tmp/ndb-bench-ann}.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build="$here/build/bench-ann"
venv="$here/.venv-bench"
work="${NDB_BENCH_DIR:-/tmp/ndb-bench-ann}"
m=16
efc=200
nq=1000

# Go may be installed outside the default PATH (as /usr/local/go here).
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
cmake --preset release -B "$build" -DNDB_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target ann_bench nexadb-server >/dev/null
gobench="$build/bench/ann/grpc_ann_bench"
go -C "$here/bench/ann/grpc" build -o "$gobench" .
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$here/bench/ann/requirements.txt"

shapes=("$@")
[ ${#shapes[@]} -gt 0 ] || shapes=(100000x128 100000x768)
mkdir -p "$work"
out=$(mktemp)
# shellcheck source=../server.sh
. "$here/bench/server.sh"
trap 'bench_server_stop; rm -f "$out"; rm -rf "$work/server"' EXIT
for shape in "${shapes[@]}"; do
  n=${shape%x*}
  d=${shape#*x}
  echo "# shape $shape" >&2
  "$build/bench/ann/ann_bench" "$work" "$n" "$d" "$nq" "$m" "$efc" 2 | tee -a "$out"
  "$venv/bin/python" "$here/bench/ann/peers.py" "$work" "$n" "$d" "$m" "$efc" 2 | tee -a "$out"
  rm -rf "$work/server"
  bench_server_start "$build/service/nexadb-server" "$work/server"
  if ! NEXADB_API_KEY=$BENCH_API_KEY "$gobench" -addr "127.0.0.1:$BENCH_GRPC_PORT" -dir "$work" -n "$n" -d "$d" \
    -m "$m" -efc "$efc" -threads 2 | tee -a "$out"; then
    echo "grpc_ann_bench failed; the server's log ends:" >&2
    tail -n 20 "$BENCH_SERVER_LOG" >&2
    exit 1
  fi
  bench_server_stop
  rm -f "$work"/*.f32 "$work"/*.i32 "$work"/*.u8
done
echo "# ratios (ours / peer QPS at the same recall; > 1 = ours faster)"
awk '
  $1 == "METRIC" && ($2 ~ /qps_at_r/ || $2 ~ /\.ef(64|256|768)\.qps$/) { v[$2] = $3 }
  END {
    for (name in v) {
      for (qz = 1; qz <= 2; qz++) { # the quantized graphs: ours rescored, FAISS refined
        ours = qz == 1 ? "ours_int8" : "ours_f16"; peer = qz == 1 ? "faiss_sq8" : "faiss_fp16"
        if (name !~ "\\." ours "\\.") continue
        other = name; sub("\\." ours "\\.", "." peer ".", other)
        if (other in v && v[other] > 0 && v[name] > 0) {
          r = name; sub(/^ann\./, "", r); sub("\\." ours "\\.", "." (qz == 1 ? "int8" : "float16") ".", r)
          printf "METRIC ratio.%s.vs_%s %.3f x\n", r, peer, v[name] / v[other]
        }
      }
      if (name !~ /\.ours\./) continue
      for (p = 1; p <= 2; p++) {
        peer = p == 1 ? "hnswlib" : "faiss"
        other = name; sub(/\.ours\./, "." peer ".", other)
        if (!(other in v) || v[other] == 0 || v[name] == 0) continue
        r = name; sub(/^ann\./, "", r); sub(/\.ours\./, ".", r)
        printf "METRIC ratio.%s.vs_%s %.3f x\n", r, peer, v[name] / v[other]
      }
      server = name; sub(/\.ours\./, ".server.", server)
      if (server in v && v[server] > 0 && v[name] > 0) {
        r = name; sub(/^ann\./, "", r); sub(/\.ours\./, ".", r)
        printf "METRIC ratio.%s.server_vs_ours %.3f x\n", r, v[server] / v[name]
      }
    }
  }' "$out" | sort
