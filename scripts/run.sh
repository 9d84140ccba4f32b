#!/usr/bin/env bash
# run.sh - Quick start: installs what is missing, builds, and runs a broker on localhost:9092
# with conf/stratus.ini (data under ./data). Extra arguments go to stratusd, e.g.
#   scripts/run.sh --set broker.log_level=debug
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATUS_BUILD_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc)" --target stratusd stratus-storage-local stratus-cache-memory
exec ./build/stratusd --config conf/stratus.ini "$@"
