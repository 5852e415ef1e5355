#!/usr/bin/env bash
# make test-package (second half): the build packagers and distributions run — plain
# `cmake -DCMAKE_BUILD_TYPE=Release` (-O3, no preset) — with gcc and with clang, every target
# including the tests, and no warning from either compiler (NDB_WERROR=ON turns one into a
# failure here; a user's plain build only warns). Build trees: build/plain-release-{gcc,clang}.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
for cc in gcc clang; do
  dir=$root/build/plain-release-$cc
  echo "test_release_builds: $cc -> $dir"
  CC=$cc cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNDB_WERROR=ON >/dev/null
  cmake --build "$dir" -j "$(nproc)" >"$dir/build.log" 2>&1 \
    || { grep -E -B2 -A6 'error|warning' "$dir/build.log" | head -80 >&2; echo "test_release_builds: FAIL ($cc)" >&2; exit 1; }
  "$dir/service/nexadb-server" --version
done
echo "test_release_builds: PASS"
