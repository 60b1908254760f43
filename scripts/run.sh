#!/usr/bin/env bash
# Sets up a fresh machine, builds weft and runs its main job, `weft run`. Arguments go to it
# (for example: --exporter otlp-file --output traces.jsonl --duration 60).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
exec "${WEFT_BUILD_DIR:-build}/weft" run "$@"
