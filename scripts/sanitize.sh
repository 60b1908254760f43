#!/usr/bin/env bash
# Builds the unit tests with sanitizers in a tree of their own and runs them; any report fails.
#   scripts/sanitize.sh address [BUILD_DIR]   ASan, UBSan and LeakSanitizer: every unit test
#   scripts/sanitize.sh thread [BUILD_DIR]    TSan: the unit tests of code that runs on several
#                                             threads (export queue, delivery reports, metrics
#                                             registry, server and pusher, OTLP transports)
# BUILD_DIR defaults to build-asan or build-tsan. WEFT_BPF_SKELETON_DIR names a tree's bpf/
# directory whose weft.skel.h is used as is, so the BPF programs are not compiled again (the
# unit tests never load them); ctest passes the main tree's. Only weft_unit_tests is built.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: scripts/sanitize.sh address|thread [BUILD_DIR]"
KIND=${1:?$usage}
case $KIND in
  address)
    SANITIZE=address,undefined
    BUILD=${2:-build-asan}
    TESTS=""
    ;;
  thread)
    SANITIZE=thread
    BUILD=${2:-build-tsan}
    # Only these test files are built: the others are single-threaded.
    TESTS="test_export_queue.cpp;test_delivery_report.cpp;test_metrics_registry.cpp"
    TESTS+=";test_metrics_server.cpp;test_metrics_pusher.cpp;test_otlp_export.cpp"
    ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
config=(-DWEFT_SANITIZE="$SANITIZE" -DCMAKE_BUILD_TYPE=Debug -DWEFT_UNIT_TEST_FILES="$TESTS")
if [[ -n ${WEFT_BPF_SKELETON_DIR:-} ]]; then
  config+=(-DWEFT_BPF_SKELETON_DIR="$WEFT_BPF_SKELETON_DIR")
fi
cmake -S . -B "$BUILD" "${config[@]}" >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target weft_unit_tests

# Leaks are reported at exit; UB stops the run at its first report, like every other finding.
export ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp
echo "== weft_unit_tests under -fsanitize=$SANITIZE"
"$BUILD/tests/weft_unit_tests"
