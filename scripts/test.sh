#!/usr/bin/env bash
# Builds (Release) and runs the default test suite. Long runs stay behind explicit labels.
#   scripts/test.sh [BUILD_DIR] [extra cmake args...]     (CTEST_ARGS="-R Golden" narrows the run)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
shift || true
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" ${CTEST_ARGS:-}
