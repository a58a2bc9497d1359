#!/usr/bin/env bash
# Builds build-tsan/ with ThreadSanitizer and runs the test suite there: every test whose work
# runs on the thread pool or on server threads (forward passes, kernels, scans, steering,
# evaluation, serve). A data race fails the test (TSan exits 66 and prints both stacks).
#   scripts/tsan.sh [CTEST_REGEX]      (default: the whole suite but the full-corpus perplexity)
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCRITDIM_TSAN=ON -DCRITDIM_BUILD_BENCH=OFF >/dev/null
cmake --build build-tsan -j"$(nproc)"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 exitcode=66 suppressions=$(pwd)/scripts/tsan.supp ${TSAN_OPTIONS:-}"
if [ $# -gt 0 ]; then
  ctest --test-dir build-tsan --output-on-failure -j"$(nproc)" -R "$1"
else
  ctest --test-dir build-tsan --output-on-failure -j"$(nproc)" -E Wikitext
fi
