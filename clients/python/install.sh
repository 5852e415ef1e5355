#!/usr/bin/env bash
# Installs this SDK (package nexadb, CLI nexadb) into a virtualenv, default the project's
# .venv. Idempotent: reinstalls only when the SDK's sources or proto/ changed (the stubs are
# generated from proto/ while the wheel is built). Needs setuptools and grpcio-tools in the venv
# (tests/requirements.txt pins them); builds without network access (--no-build-isolation).
set -euo pipefail
sdk=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$sdk/../.." && pwd)
venv=${1:-$root/.venv}
stamp="$venv/.nexadb-sdk.sha256"
want=$(cd "$root" && find clients/python proto -type f \
          \( -name '*.py' -o -name '*.proto' -o -name '*.toml' -o -name '*.typed' \) \
          -not -path 'clients/python/build/*' -not -path 'clients/python/tests/*' \
          -not -path '*.egg-info/*' -not -path '*__pycache__*' \
        | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && (cd / && "$venv/bin/python" -c 'import nexadb.v1.document_pb2') 2>/dev/null; then
  exit 0
fi
echo "clients/python: installing the nexadb SDK into $venv" >&2
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation "$sdk"
rm -rf "$sdk/build" "$sdk"/*.egg-info
echo "$want" > "$stamp"
