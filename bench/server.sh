# Sourced by bench scripts that run a real nexadb-server (bench/doc/run.sh); not run alone.
#
#   bench_server_start <server-binary> <dir> [server args...]
#     Starts the server on free loopback ports (gRPC and HTTP on port 0) with its data in
#     <dir>/data and its JSON log (stderr, and stdout, so no pipe of the caller's is held open
#     by the server) in <dir>/server.log, creating <dir>; waits up to 20 s for its
#     "nexadb-server ready" line, and sets BENCH_SERVER_PID, BENCH_GRPC_PORT, BENCH_HTTP_PORT
#     and BENCH_API_KEY (the key the server generated and logged, or <dir>/data/api_key;
#     empty when the args gave one with --api-key). NEXADB_API_KEY and NEXADB_API_KEY_FILE
#     are not passed to the server, so without --api-key it makes a fresh key; it logs at
#     --log-level info whatever NEXADB_LOG_LEVEL says (the lines above are info lines).
#     On failure it prints the log and returns non-zero.
#     While it runs, its RssAnon and RssFile (/proc/<pid>/status) are read every second into
#     <dir>/memory.tsv (bytes, two columns).
#   bench_server_memory <prefix>
#     Prints METRIC <prefix>.anon_peak_bytes and <prefix>.file_peak_bytes: the largest of each
#     read so far (call it before or after bench_server_stop).
#   bench_server_metrics
#     Prints the server's GET /metrics (Prometheus text).
#   bench_server_stop
#     SIGTERM, up to 15 s for a clean exit, then SIGKILL. Safe to call twice (e.g. from a trap).

bench_server_start() {
  local bin=$1 dir=$2
  shift 2
  BENCH_SERVER_LOG="$dir/server.log"
  mkdir -p "$dir" || return 1
  env -u NEXADB_API_KEY -u NEXADB_API_KEY_FILE "$bin" --data-dir "$dir/data" \
    --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --log-level info "$@" >"$BENCH_SERVER_LOG" 2>&1 &
  BENCH_SERVER_PID=$!
  local i
  for i in $(seq 200); do
    grep -q '"nexadb-server ready"' "$BENCH_SERVER_LOG" 2>/dev/null && break
    if ! kill -0 "$BENCH_SERVER_PID" 2>/dev/null; then
      echo "nexadb-server exited before it was ready; its log:" >&2
      cat "$BENCH_SERVER_LOG" >&2
      BENCH_SERVER_PID=
      return 1
    fi
    sleep 0.1
  done
  BENCH_SERVER_MEMORY="$dir/memory.tsv"
  (
    pid=$BENCH_SERVER_PID
    while kill -0 "$pid" 2>/dev/null; do
      awk '/^RssAnon:/ {a = $2} /^RssFile:/ {f = $2} END {if (a != "") print a * 1024, f * 1024}' \
        "/proc/$pid/status" 2>/dev/null || true
      sleep 1
    done
  ) >"$BENCH_SERVER_MEMORY" &
  BENCH_GRPC_PORT=$(sed -n 's/.*"gRPC listening".*"port":\([0-9]*\).*/\1/p' "$BENCH_SERVER_LOG")
  BENCH_HTTP_PORT=$(sed -n 's/.*"HTTP listening".*"port":\([0-9]*\).*/\1/p' "$BENCH_SERVER_LOG")
  BENCH_API_KEY=$(sed -n 's/.*"api_key":"\([^"]*\)".*/\1/p' "$BENCH_SERVER_LOG" | head -n1)
  if [ -z "$BENCH_API_KEY" ] && [ -f "$dir/data/api_key" ]; then
    BENCH_API_KEY=$(awk 'NR == 1 {print $1}' "$dir/data/api_key")
  fi
  if ! grep -q '"nexadb-server ready"' "$BENCH_SERVER_LOG" || [ -z "$BENCH_GRPC_PORT" ] || [ -z "$BENCH_HTTP_PORT" ]; then
    echo "nexadb-server did not report ready with both ports within 20 s; its log:" >&2
    cat "$BENCH_SERVER_LOG" >&2
    bench_server_stop
    return 1
  fi
}

bench_server_stop() {
  [ -n "${BENCH_SERVER_PID:-}" ] || return 0
  local pid=$BENCH_SERVER_PID i
  BENCH_SERVER_PID=
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "nexadb-server (pid $pid) did not exit 15 s after SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

bench_server_memory() {
  awk -v p="$1" '$1 > a {a = $1} $2 > f {f = $2}
    END {printf "METRIC %s.anon_peak_bytes %.0f bytes\nMETRIC %s.file_peak_bytes %.0f bytes\n", p, a, p, f}' \
    "$BENCH_SERVER_MEMORY"
}

bench_server_metrics() {
  curl -sf -H "Authorization: Bearer $BENCH_API_KEY" "http://127.0.0.1:$BENCH_HTTP_PORT/metrics"
}
