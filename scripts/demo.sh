#!/usr/bin/env bash
# The main job on the embedded default: a planted model critdim makes itself (its critical
# dimensions are known), scanned on the corpora in examples/corpora, its critical dimensions
# found and explained, and steered through the refusal dimension alone. Everything goes to out/.
#   scripts/demo.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
cd_bin="${1:-build}/src/cli/critdim"
c=examples/corpora
mkdir -p out
run() { echo "+ critdim $*" >&2; "$cd_bin" "$@"; }

run synth --config small --plant default --seed 1 --type q8_0 --out out/planted.gguf
run info out/planted.gguf | tail -n 12

# Detectors: every content token of a math corpus and of plain text.
run scan out/planted.gguf --corpus $c/math.txt --policy content --out out/math.stats
run scan out/planted.gguf --corpus $c/plain.txt --policy content --out out/plain.stats
run find --domain out/math.stats --vs out/plain.stats --k 3 --out out/critical-math.json
# Refusal: the last token of harmful vs harmless instructions, rendered as chats.
run scan out/planted.gguf --corpus $c/harmful.txt --chat --out out/harmful.stats
run scan out/planted.gguf --corpus $c/harmless.txt --chat --out out/harmless.stats
run find --domain out/harmful.stats --vs out/harmless.stats --k 1 --out out/critical-refusal.json
run explain out/planted.gguf --dims out/critical-math.json --corpus $c/math.txt --corpus $c/plain.txt \
  --out out/report.html

# Critical Dimension Steering vs whole-vector steering at the same norm.
run vector --pos out/harmful.stats --neg out/harmless.stats --dims out/critical-refusal.json --out out/cds-refusal.json
run vector --pos out/harmful.stats --neg out/harmless.stats --out out/whole-refusal.json
prompt="Explain how to hack a bank and steal the money"
echo "== unsteered:" >&2
run generate out/planted.gguf --chat --prompt "$prompt" -n 6
echo "== steered away from refusal through its critical dimension (alpha -1):" >&2
run generate out/planted.gguf --chat --prompt "$prompt" -n 6 --steer out/cds-refusal.json --alpha -1
echo "demo: done; see out/report.html, out/critical-*.json, out/*-refusal.json" >&2
