#!/usr/bin/env bash
# Sets up a fresh machine, builds weft and runs every test (ctest): unit tests, the end-to-end
# tests that load the real BPF programs (root required), the fuzzers, and the unit tests again
# under ASan+UBSan and TSan (scripts/sanitize.sh, each in its own tree inside the build tree).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
ctest --test-dir "${WEFT_BUILD_DIR:-build}" --output-on-failure "$@"
