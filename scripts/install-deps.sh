#!/usr/bin/env bash
# Installs what NexaDB needs to build and test, from Debian's packages and PyPI.
# Idempotent: installs only what is missing. Called by the Makefile's targets.
#   install-deps.sh           everything: build (node and npm for the browser console), tests
#                             (chromium for the console's), fuzzing, the Python test venv
#   install-deps.sh --build   only what building the server from a source tarball takes (the
#                             image's build stage: the tarball carries the console built)
#   install-deps.sh --image   the container and package tools: make image, test-image, test-package
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-all}
case "$mode" in all|--build|--image) ;; *) echo "usage: $0 [--build|--image]" >&2; exit 2 ;; esac

# Building nexadb-server and nexadb-health (C), from Debian 12; help2man makes their man pages.
build_debs=(
  build-essential cmake ninja-build pkg-config git
  libgrpc-dev protobuf-compiler-grpc
  libprotobuf-c-dev protobuf-c-compiler
  libprotobuf-dev protobuf-compiler grpc-proto
  golang-github-grpc-ecosystem-grpc-gateway-dev
  libsimde-dev liblz4-dev libzstd-dev
  libjansson-dev libpcre2-dev libmicrohttpd-dev libgnutls28-dev libbson-dev libssl-dev
  help2man
  libuv1-dev libraft-dev
)
# libraft-dev comes from bookworm-backports (0.22, the maintained cowsql/raft; bookworm's own
# 0.15 cannot resolve host names, which a Kubernetes peer list is made of): cluster/README.md.
backports_debs=(libraft-dev)
case "$mode" in
  --build) debs=("${build_debs[@]}") ;;
  # buildah builds images without a daemon, podman runs them where it can, mmdebstrap makes
  # debian:12-slim where no registry answers; systemd-analyze checks the package's unit.
  --image) debs=(buildah podman mmdebstrap systemd curl) ;;
  # and the tests (chromium drives the console's end-to-end test), fuzzing (clang), the
  # benchmarks built with the tree (SQLite)
  all) debs=("${build_debs[@]}" libcriterion-dev libsqlite3-dev python3-venv clang libclang-rt-14-dev chromium) ;;
esac
# The browser console (console/, built into the server) needs node (18 or newer) and npm. A node
# from elsewhere (NodeSource's nodejs, which carries its own npm) is used as it is; without
# one, Debian's nodejs (18) and npm.
if [ "$mode" = all ] && ! { command -v node >/dev/null && command -v npm >/dev/null; }; then
  debs+=(nodejs npm)
fi

missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A package from backports counts only in its backports version (bookworm's own is older).
need_bpo=()
if [ "$mode" != --image ]; then
  for p in "${backports_debs[@]}"; do
    v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
    case "$v" in *bpo12*) ;; *) need_bpo+=("$p") ;; esac
  done
fi
if [ ${#missing[@]} -gt 0 ] || [ ${#need_bpo[@]} -gt 0 ]; then
  echo "install-deps: installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  if [ ${#need_bpo[@]} -gt 0 ] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "install-deps: adding bookworm-backports to apt's sources" >&2
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
      "${sudo_cmd[@]}" tee /etc/apt/sources.list.d/nexadb-backports.sources >/dev/null
  fi
  "${sudo_cmd[@]}" apt-get update -qq
  rest=()
  for p in "${missing[@]}"; do [[ " ${need_bpo[*]} " == *" $p "* ]] || rest+=("$p"); done
  [ ${#rest[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${rest[@]}"
  [ ${#need_bpo[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends -t bookworm-backports "${need_bpo[@]}"
fi

[ "$mode" = all ] || exit 0

# Python test dependencies, in the project's own virtualenv.
venv="$here/.venv"
req="$here/tests/requirements.txt"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ]; then
  echo "install-deps: creating $venv" >&2
  python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "install-deps: installing Python packages from $req" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi

# The Python SDK and CLI (clients/python), into the same venv; reinstalled only when it or proto/ changes.
"$here/clients/python/install.sh" "$venv"
