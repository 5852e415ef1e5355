#!/usr/bin/env bash
# Builds the console and its embedded-file table (run by the C build: service/console.cmake).
#   scripts/build.sh OUT_DIR OUT_C
# npm ci when package-lock.json changed since the last install (or node_modules is missing),
# then vite build into OUT_DIR and scripts/embed.mjs from OUT_DIR into OUT_C. Two builds of the
# tree at once (two presets) take turns on the install.
set -euo pipefail
out_dir=$1
out_c=$2
cd "$(dirname "$0")/.."
exec 9>.install.lock
flock 9
stamp=node_modules/.nexadb-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
node node_modules/vite/bin/vite.js build --logLevel warn --emptyOutDir --outDir "$out_dir"
flock -u 9
node scripts/embed.mjs "$out_dir" "$out_c"
