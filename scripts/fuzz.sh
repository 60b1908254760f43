#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, ASan and UBSan into build-fuzz/ and runs each for a
# bounded time (default 30 s): scripts/fuzz.sh [seconds]. A crash leaves its input in
# build-fuzz/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-30}
BUILD=build-fuzz
cmake -S . -B "$BUILD" -DWEFT_FUZZ=ON -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)"
mkdir -p "$BUILD/corpus-http1"
"$BUILD/tests/fuzz/fuzz_http1_stream" -max_total_time="$SECONDS_PER_TARGET" -timeout=5 -rss_limit_mb=2048 \
  -artifact_prefix="$BUILD/" -print_final_stats=1 "$BUILD/corpus-http1" tests/fuzz/corpus/http1 2>&1 | tail -n 12
