#!/usr/bin/env bash
# make test-image: runs the server image and checks what a user relies on.
#   tests/deploy/test_image.sh <image>
# - its configuration: non-root uid 10001, HEALTHCHECK on nexadb-health, ports, labels naming the
#   version and revision, size under 100 MB;
# - run with podman where podman can run containers here, else with `buildah run` (chroot
#   isolation: no user namespaces or cgroup delegation needed), on free loopback ports;
# - the image's own HEALTHCHECK command answers SERVING, the server runs as uid 10001, a
#   document insert and a vector insert + search work over REST, SIGTERM exits 0.
set -euo pipefail
image=${1:?usage: test_image.sh <image>}
fail() { echo "test_image: FAIL: $*" >&2; exit 1; }
py() { python3 -c "$@"; }

cfg=$(podman image inspect "$image")
size=$(py 'import json,sys; print(json.load(sys.stdin)[0]["Size"])' <<<"$cfg")
echo "test_image: $image is $((size / 1000000)) MB"
[ "$size" -lt 100000000 ] || fail "image is $size bytes, over 100 MB"
py '
import json, sys
c = json.load(sys.stdin)[0]
conf = c["Config"]
assert conf["User"] == "10001:10001", conf["User"]
assert {"6969/tcp", "6970/tcp"} <= set(conf.get("ExposedPorts", {})), conf.get("ExposedPorts")
hc = c.get("Healthcheck") or conf.get("Healthcheck")
assert hc and hc["Test"][:2] == ["CMD", "/usr/local/bin/nexadb-health"], hc
labels = conf.get("Labels") or {}
assert labels.get("org.opencontainers.image.version"), labels
assert labels.get("org.opencontainers.image.revision", "unknown") != "unknown", labels
' <<<"$cfg" || fail "image configuration"
health_cmd=$(py 'import json,sys; c=json.load(sys.stdin)[0]; hc=c.get("Healthcheck") or c["Config"]["Healthcheck"]; print(" ".join(hc["Test"][1:]))' <<<"$cfg")
revision=$(py 'import json,sys; print(json.load(sys.stdin)[0]["Config"]["Labels"]["org.opencontainers.image.revision"])' <<<"$cfg")

free_port() { py 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
grpc_port=$(free_port)
http_port=$(free_port)
key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
env_args=(NEXADB_GRPC_ADDR=127.0.0.1:$grpc_port NEXADB_HTTP_ADDR=127.0.0.1:$http_port NEXADB_API_KEY=$key)
log=$(mktemp)
server_pid=""
if podman run --rm --network host --entrypoint /usr/local/bin/nexadb-server "$image" --version >/dev/null 2>&1; then
  runner=podman
  name=nexadb-test-$$
  cleanup() { podman rm -f "$name" >/dev/null 2>&1 || true; rm -f "$log"; }
  trap cleanup EXIT
  podman run -d --name "$name" --network host "${env_args[@]/#/--env=}" "$image" >/dev/null
  in_image() { podman exec "$name" "$@"; }
  stop_server() { podman stop --time 30 "$name" >/dev/null; code=$(podman inspect --format '{{.State.ExitCode}}' "$name"); }
  server_uid() { podman top "$name" uid | tail -1 | tr -d ' '; }
else
  runner="buildah run"
  ctr=$(buildah from --quiet "$image")
  cleanup() {
    [ -z "$server_pid" ] || kill -KILL "$server_pid" 2>/dev/null || true
    [ -z "${runner_pid:-}" ] || kill "$runner_pid" 2>/dev/null || true
    buildah rm "$ctr" >/dev/null 2>&1 || true
    rm -f "$log"
  }
  trap cleanup EXIT
  # buildah run takes the image's user, environment and working directory, not its entrypoint.
  buildah run --isolation chroot "${env_args[@]/#/--env=}" "$ctr" -- /usr/local/bin/nexadb-server >"$log" 2>&1 &
  runner_pid=$!
  in_image() { buildah run --isolation chroot "${env_args[@]/#/--env=}" "$ctr" -- "$@"; }
  find_server() {
    for p in $(pgrep -f '^/usr/local/bin/nexadb-server$' || true); do
      tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "NEXADB_GRPC_ADDR=127.0.0.1:$grpc_port" && echo "$p"
    done
  }
  stop_server() { # buildah run exits with the server's status
    kill -TERM "$server_pid"
    code=0
    wait "$runner_pid" || code=$?
  }
  server_uid() { stat -c %u "/proc/$server_pid"; }
fi
echo "test_image: running with $runner"

ok=""
for _ in $(seq 60); do
  if out=$(in_image $health_cmd 2>&1); then ok=1; break; fi
  sleep 0.5
done
[ -n "$ok" ] || { cat "$log" >&2; fail "HEALTHCHECK ($health_cmd) never answered SERVING: $out"; }
echo "test_image: HEALTHCHECK: $out"
[[ "$out" == *SERVING ]] || fail "HEALTHCHECK printed '$out'"
in_image /usr/local/bin/nexadb-server --version | grep "(revision $revision)" >/dev/null || fail "--version does not name $revision"
[ "$runner" = podman ] || server_pid=$(find_server)
[ -n "$server_pid" ] || [ "$runner" = podman ] || fail "cannot find the server process"
[ "$(server_uid)" = 10001 ] || fail "server runs as uid $(server_uid), not 10001"

rest() { # method path [json body] -> prints "code body"
  local args=(-s -g -X "$1" -H "X-API-Key: $key" -w '\n%{http_code}')
  [ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' -d "$3")
  curl "${args[@]}" "http://127.0.0.1:$http_port$2"
}
expect_200() { local out; out=$(rest "$@"); [ "${out##*$'\n'}" = 200 ] || fail "$1 $2: $out"; echo "${out%$'\n'*}"; }
expect_200 POST /collections/users '{"name": "Ada", "age": 36}' >/dev/null
found=$(expect_200 POST /collections/users/query '{"filter": {"name": "Ada"}}')
py 'import json,sys; d=json.loads(sys.argv[1]); docs=d.get("documents", d.get("results")); assert len(docs)==1 and docs[0]["age"]==36, d' "$found" \
  || fail "query after insert: $found"
expect_200 POST /vector/articles '{"dimensions": 3}' >/dev/null
expect_200 POST /vector/articles/insert '{"document": {"t": "a"}, "vector": [1, 0, 0]}' >/dev/null
expect_200 POST /vector/articles/insert '{"document": {"t": "b"}, "vector": [0, 1, 0]}' >/dev/null
hits=$(expect_200 POST /vector/articles/search '{"vector": [0.9, 0.1, 0], "limit": 2, "dimensions": 3}')
py 'import json,sys; h=json.loads(sys.argv[1])["results"]; assert [x["document"]["t"] for x in h]==["a","b"], h' "$hits" \
  || fail "vector search: $hits"
echo "test_image: insert, query, vector insert and search over REST: ok"
# the console, built into the binary from the tarball's console/prebuilt: served without a key
page=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$http_port/console/")
[ "${page##*$'\n'}" = 200 ] && [[ "$page" == *'<div id="app">'* ]] || fail "GET /console/: $page"
echo "test_image: the console at /console/: ok"

stop_server
[ "$code" = 0 ] || { cat "$log" >&2; fail "server exited $code on SIGTERM"; }
echo "test_image: SIGTERM: exit 0"
echo "test_image: PASS"
