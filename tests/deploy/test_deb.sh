#!/usr/bin/env bash
# make test-package (first half): the .deb on a fresh Debian 12.
#   tests/deploy/test_deb.sh <nexadb_VERSION_ARCH.deb>
# Installs the package with apt into a throw-away debian:12-slim root (deploy/image/base.sh;
# buildah, chroot isolation), then checks: a system user nexadb, /var/lib/nexadb owned by it with
# mode 0700, the settings file as a conffile, the unit valid for systemd-analyze; starts the
# server exactly as the unit would (its User, Environment, EnvironmentFile and ExecStart; no
# systemd runs in the root) on free ports set in the settings file: health SERVING, an insert
# with the API key it generated, SIGTERM exits 0; then remove and purge keep the data.
set -euo pipefail
deb=$(realpath "${1:?usage: test_deb.sh <package.deb>}")
root=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "test_deb: FAIL: $*" >&2; exit 1; }

base=$("$root/deploy/image/base.sh")
ctr=$(buildah from --quiet "$base")
log=$(mktemp)
runner_pid=""
cleanup() {
  [ -z "$runner_pid" ] || kill "$runner_pid" 2>/dev/null || true
  buildah umount "$ctr" >/dev/null 2>&1 || true
  buildah rm "$ctr" >/dev/null 2>&1 || true
  rm -f "$log"
}
trap cleanup EXIT
in_root() { buildah run --isolation chroot "$ctr" -- "$@"; }

buildah copy --quiet "$ctr" "$deb" /tmp/nexadb.deb >/dev/null
in_root sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /tmp/nexadb.deb' \
  >"$log" 2>&1 || { cat "$log" >&2; fail "apt-get install"; }
echo "test_deb: installed $(basename "$deb") with apt"
mnt=$(buildah mount "$ctr")

in_root getent passwd nexadb | grep -q '^nexadb:x:[0-9]*:[0-9]*:.*:/var/lib/nexadb:/usr/sbin/nologin$' \
  || fail "no nexadb system user: $(in_root getent passwd nexadb || true)"
uid=$(in_root id -u nexadb)
[ "$uid" -lt 1000 ] || fail "nexadb is uid $uid, not a system user"
[ "$(stat -c '%u %a' "$mnt/var/lib/nexadb")" = "$uid 700" ] || fail "/var/lib/nexadb: $(stat -c '%U %a' "$mnt/var/lib/nexadb")"
grep -qx /etc/default/nexadb "$mnt/var/lib/dpkg/info/nexadb.conffiles" || fail "/etc/default/nexadb is not a conffile"
unit=$mnt/usr/lib/systemd/system/nexadb.service
[ -f "$unit" ] || fail "no systemd unit"
# (the root has no systemd, hence no targets: everything else is a finding)
systemd-analyze verify --root="$mnt" --man=no /usr/lib/systemd/system/nexadb.service 2>&1 \
  | grep -v 'Unit [a-z-]*\.target not found' | tee "$log" >&2 || true
! grep -q . "$log" || fail "systemd-analyze verify complained"
in_root nexadb-server --version
# (slim roots drop /usr/share/man on install, as the official image does: read it from the package)
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/man/man1/nexadb-server.1.gz | zcat | grep 'data\\-dir' >/dev/null \
  || fail "the package's man page lacks --data-dir"

# What systemd would run: the unit's Environment=, then EnvironmentFile= (it wins), as User=.
read -r user exec envline envfile < <(python3 - "$unit" <<'PY'
import sys
kv = {}
for line in open(sys.argv[1]):
    k, sep, v = line.strip().partition("=")
    if sep and not line.startswith("#"):
        kv.setdefault(k, v)
env = kv["Environment"].replace("%S", "/var/lib")
print(kv["User"], kv["ExecStart"], env, kv["EnvironmentFile"].lstrip("-"))
PY
)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
grpc_port=$(free_port)
http_port=$(free_port)
# the administrator's edit of the settings file
sed -i "s/^NEXADB_GRPC_ADDR=.*/NEXADB_GRPC_ADDR=127.0.0.1:$grpc_port/; s/^NEXADB_HTTP_ADDR=.*/NEXADB_HTTP_ADDR=127.0.0.1:$http_port/" \
  "$mnt$envfile"
mapfile -t settings < <(grep -E '^[A-Z_]+=' "$mnt$envfile")
buildah run --isolation chroot --user "$user" "$ctr" -- env "$envline" "${settings[@]}" "$exec" >"$log" 2>&1 &
runner_pid=$!
ok=""
for _ in $(seq 60); do
  if out=$(in_root nexadb-health --addr "127.0.0.1:$grpc_port" 2>&1); then ok=1; break; fi
  sleep 0.5
done
[ -n "$ok" ] || { cat "$log" >&2; fail "never SERVING: $out"; }
echo "test_deb: $out"
keyfile=$mnt/var/lib/nexadb/api_key
[ "$(stat -c '%u %a' "$keyfile")" = "$uid 600" ] || fail "api_key: $(stat -c '%u %a' "$keyfile")"
key=$(awk '!/^#/ && NF { print $1; exit }' "$keyfile")
out=$(curl -s -w '\n%{http_code}' -X POST -H "X-API-Key: $key" -H 'Content-Type: application/json' \
        -d '{"name": "Ada"}' "http://127.0.0.1:$http_port/collections/users")
[ "${out##*$'\n'}" = 200 ] || fail "insert: $out"
page=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$http_port/console/")
[ "${page##*$'\n'}" = 200 ] && [[ "$page" == *'<div id="app">'* ]] || fail "GET /console/: $page"
[ -d "$mnt/var/lib/nexadb/kv" ] || fail "no data under /var/lib/nexadb"
server=$(pgrep -f "^$exec\$" | while read -r p; do
  tr '\0' '\n' <"/proc/$p/environ" | grep -qx "NEXADB_GRPC_ADDR=127.0.0.1:$grpc_port" && echo "$p"; done)
[ -n "$server" ] || fail "cannot find the server process"
[ "$(stat -c %u "/proc/$server")" = "$uid" ] || fail "server is not running as nexadb"
kill -TERM "$server"
code=0
wait "$runner_pid" || code=$?
runner_pid=""
[ "$code" = 0 ] || { cat "$log" >&2; fail "exit $code on SIGTERM"; }
echo "test_deb: insert with the generated key, the console at /console/, SIGTERM exits 0"

in_root dpkg --purge nexadb >"$log" 2>&1 || { cat "$log" >&2; fail "dpkg --purge"; }
[ ! -e "$mnt/usr/bin/nexadb-server" ] || fail "purge left the server binary"
[ -d "$mnt/var/lib/nexadb/kv" ] || fail "purge removed the data"
echo "test_deb: purge removed the package and kept /var/lib/nexadb"
echo "test_deb: PASS"
