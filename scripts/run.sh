#!/usr/bin/env bash
# Sets up a fresh machine, builds weft and runs its main job. Arguments go to `weft events`
# (for example: --json --duration 10 --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
exec "${WEFT_BUILD_DIR:-build}/weft" events "$@"
