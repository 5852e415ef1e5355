#!/usr/bin/env bash
# Installs what NexaDB needs to build and test, from Debian's packages and PyPI.
# Idempotent: installs only what is missing. Called by the Makefile's targets.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)

# Build and runtime dependencies (C), from Debian 12.
debs=(
  build-essential cmake ninja-build pkg-config
  libgrpc-dev protobuf-compiler-grpc
  libprotobuf-c-dev protobuf-c-compiler
  libprotobuf-dev protobuf-compiler grpc-proto
  golang-github-grpc-ecosystem-grpc-gateway-dev
  libsimde-dev libcriterion-dev
  liblz4-dev libzstd-dev
  libjansson-dev libpcre2-dev libsqlite3-dev libmicrohttpd-dev libgnutls28-dev
  python3-venv
  clang libclang-rt-14-dev
)

missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

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
