#!/usr/bin/env bash
# Sets up a fresh machine, builds weft and runs every test: unit tests and the end-to-end
# tests that load the real BPF programs (root required).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
ctest --test-dir "${WEFT_BUILD_DIR:-build}" --output-on-failure "$@"
