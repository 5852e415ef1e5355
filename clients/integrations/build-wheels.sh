#!/usr/bin/env bash
# Builds the wheels of langchain-nexadb and llama-index-vector-stores-nexadb (pure Python) into
# OUTDIR (default <repo>/build/wheels), with setuptools from .cache/venv-integrations (made by
# install.sh when missing); no network. The nexadb SDK's own wheel: clients/python (pypa/build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/build/wheels}
venv=${NEXADB_INTEGRATIONS_VENV:-$root/.cache/venv-integrations}
[ -x "$venv/bin/python" ] || "$here/install.sh"
mkdir -p "$out"
for pkg in langchain llamaindex; do
  src="$root/clients/$pkg"
  "$venv/bin/pip" wheel -q --disable-pip-version-check --no-deps --no-build-isolation -w "$out" "$src"
  rm -rf "$src/build" "$src"/*.egg-info
done
ls "$out"/langchain_nexadb-*.whl "$out"/llama_index_vector_stores_nexadb-*.whl
