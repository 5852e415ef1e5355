#!/usr/bin/env bash
# Drives the fuzz targets (see README.md).
#   run.sh build <source dir> <build dir>           configure + build the clang sub-build
#   run.sh run <source dir> <build dir> <target>    replay committed crash inputs, then fuzz
# Environment: NEXADB_FUZZ_SECONDS (default 8) per target; NEXADB_FUZZ_JOBS (default 2) build jobs.
set -euo pipefail
cmd=$1 src=$2 build=$3
here="$src/tests/fuzz"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

case "$cmd" in
build)
  if [ ! -f "$build/build.ninja" ]; then
    CC=clang cmake -S "$src" -B "$build" -G Ninja -DNDB_FUZZ=ON -DNDB_WERROR=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" \
      -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
      -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
  fi
  # build-time tools (rest_gen) run instrumented: leaks there are not findings
  ASAN_OPTIONS=detect_leaks=0 cmake --build "$build" --target fuzz_all -j "${NEXADB_FUZZ_JOBS:-2}"
  ;;
run)
  t=$4
  bin="$build/tests/fuzz/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz: $bin not built (run the fuzz_build test first)" >&2; exit 2; }
  secs=${NEXADB_FUZZ_SECONDS:-8}
  work="$build/work/$t"
  mkdir -p "$work/corpus" "$work/artifacts"
  # 1. every committed crash input must now pass
  reg="$here/regressions/$t"
  if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
    echo "fuzz $t: replaying $(ls "$reg" | wc -l) committed crash inputs"
    "$bin" -runs=1 "$reg"/* 2>&1 | tail -n 3
  fi
  # 2. a fixed-time run from the committed seeds plus what earlier runs found
  dict=()
  [ -f "$here/dict/$t.dict" ] && dict=(-dict="$here/dict/$t.dict")
  log="$work/last.log"
  set +e
  # A fixed seed (NEXADB_FUZZ_SEED to change it) makes the default suite's short runs replay
  # the same mutation sequence from the committed seeds, so a green run stays green.
  "$bin" "$work/corpus" "$here/corpus/$t" "${dict[@]}" -seed="${NEXADB_FUZZ_SEED:-1}" -max_total_time="$secs" -timeout=25 \
    -rss_limit_mb=3072 -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/artifacts/" >"$log" 2>&1
  rc=$?
  set -e
  grep -E "DONE|stat::number_of_executed_units|stat::peak_rss_mb" "$log" || true
  if [ $rc -ne 0 ]; then
    tail -n 60 "$log"
    echo "fuzz $t: FAILED (exit $rc); the input is in $work/artifacts/; commit it under" \
         "tests/fuzz/regressions/$t/ with the fix" >&2
    exit 1
  fi
  ;;
*)
  echo "usage: $0 build|run ..." >&2
  exit 2
  ;;
esac
