#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, ASan and UBSan into build-fuzz/ and runs each for a
# bounded time: scripts/fuzz.sh [seconds per target, default 60].
#   WEFT_FUZZ_BUILD_DIR  build tree (default build-fuzz)
#   WEFT_FUZZ_TARGETS    targets to run (default "fuzz_http1_stream fuzz_redis_stream fuzz_http2_stream fuzz_postgres_stream fuzz_mysql_stream")
#   WEFT_FUZZ_JOBS       parallel fuzzing processes per target (default 1)
# Each target starts from its seeds (tests/fuzz/corpus/<protocol>) plus what earlier runs found
# (<build>/corpus-<protocol>). A crash, leak, timeout or memory blow-up leaves its input as
# <build>/<target>-crash-* (or -leak-, -timeout-, -oom-) and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
BUILD=${WEFT_FUZZ_BUILD_DIR:-build-fuzz}
TARGETS=${WEFT_FUZZ_TARGETS:-fuzz_http1_stream fuzz_redis_stream fuzz_http2_stream fuzz_postgres_stream fuzz_mysql_stream}
JOBS=${WEFT_FUZZ_JOBS:-1}
cmake -S . -B "$BUILD" -DWEFT_FUZZ=ON -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# shellcheck disable=SC2086
cmake --build "$BUILD" -j "$(nproc)" --target $TARGETS
failed=0
for target in $TARGETS; do
  protocol=${target#fuzz_}
  protocol=${protocol%_stream}
  mkdir -p "$BUILD/corpus-$protocol"
  echo "== $target: ${SECONDS_PER_TARGET}s from tests/fuzz/corpus/$protocol"
  extra=()
  if [ "$JOBS" -gt 1 ]; then extra=(-fork="$JOBS" -ignore_crashes=0); fi
  if ! "$BUILD/tests/fuzz/$target" -max_total_time="$SECONDS_PER_TARGET" -timeout=5 -rss_limit_mb=2048 \
      -max_len=16384 -artifact_prefix="$BUILD/$target-" -print_final_stats=1 "${extra[@]}" \
      "$BUILD/corpus-$protocol" "tests/fuzz/corpus/$protocol" >"$BUILD/$target.log" 2>&1; then
    failed=1
    echo "!! $target failed: see $BUILD/$target.log"
  fi
  grep -E "^(stat::|#[0-9]+ +DONE)|ERROR|SUMMARY|artifact|Test unit written" "$BUILD/$target.log" | tail -n 20
done
exit "$failed"
