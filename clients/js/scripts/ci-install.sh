#!/usr/bin/env bash
# Test-step install: `npm ci` when package-lock.json changed since the last one (or
# node_modules is missing), then always rebuild dist/ and proto/ (a few seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.nexadb-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error   # runs "prepare", which builds
  echo "$want" > "$stamp"
else
  npm run --silent build
fi
