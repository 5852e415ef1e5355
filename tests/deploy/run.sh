#!/usr/bin/env bash
# ctest entry for deploy/: installs the tools (deploy/scripts/tools.sh), then runs the checks.
# Usage: tests/deploy/run.sh [path to nexadb-server, when the build has one]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

tools=$("$root/deploy/scripts/tools.sh")
while IFS='=' read -r name value; do
  case "$name" in
    HELM) export NEXADB_HELM="$value" ;;
    KUBECTL) export NEXADB_KUBECTL="$value" ;;
    HADOLINT) export NEXADB_HADOLINT="$value" ;;
    PYTHON) python="$value" ;;
  esac
done <<< "$tools"
export NEXADB_SERVER_BIN="${1:-}"

cd "$root"
exec "$python" -m pytest -q -p no:cacheprovider "$root/tests/deploy"
