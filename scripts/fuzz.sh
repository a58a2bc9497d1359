#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang with ASan + UBSan) and runs each for a time budget.
#   scripts/fuzz.sh [SECONDS_PER_TARGET=30] [TARGET ...]     (FUZZ_JOBS=N runs N targets at once;
#   FUZZ_BUILD=DIR uses an existing -DCRITDIM_FUZZ=ON build folder)
# Seeds are made fresh in build-fuzz/seeds/ (synth models, scans, plans, the shared vocabularies'
# test strings and chat templates); the corpus grows in build-fuzz/corpus/; a crash, leak or
# timeout stops with its input in build-fuzz/findings/TARGET/ and the script fails. Every finding
# becomes a regression test (tests/...) before it is fixed. See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(gguf stats plan critical corpus tokenizer jinja request)
shared="${CRITDIM_SHARED:-$(pwd)/../shared}"
[ -f "$shared/golden/MANIFEST.json" ] || { echo "fuzz: ../shared not found (set CRITDIM_SHARED)" >&2; exit 2; }
# FUZZ_BUILD names a build folder configured with -DCRITDIM_FUZZ=ON that also builds the tests
# (CI's sanitizer build); by default the script makes build-fuzz/ with the fuzz targets only.
b="${FUZZ_BUILD:-build-fuzz}"
if [ -z "${FUZZ_BUILD:-}" ]; then
  CC=clang CXX=clang++ cmake -S . -B $b -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCRITDIM_FUZZ=ON \
    -DCRITDIM_BUILD_TESTS=OFF -DCRITDIM_BUILD_BENCH=OFF >/dev/null
fi
cmake --build $b -j"$(nproc)" --target critdim $(printf 'fuzz_%s ' "${targets[@]}")

# Seeds: small valid inputs of every kind, so the fuzzer starts inside the formats.
s=$b/seeds
if [ ! -f $s/.done ]; then
  rm -rf $s; mkdir -p $s/{gguf,stats,plan,critical,corpus,tokenizer,jinja,request}
  cd_bin=$b/src/cli/critdim
  export ASAN_OPTIONS=detect_leaks=0
  $cd_bin synth --config tiny --seed 1 --out $s/gguf/tiny-f32.gguf >/dev/null
  $cd_bin synth --config tiny --arch qwen2 --type q8_0 --seed 2 --out $s/gguf/tiny-q8.gguf >/dev/null
  cp "$shared"/golden/models/llama-deep-f32.gguf $s/gguf/ 2>/dev/null || true
  printf '12 + 3 = 15\nonce upon a time\n' > $s/lines.txt
  $cd_bin scan $s/gguf/tiny-f32.gguf --corpus $s/lines.txt --policy content -t 1 --out $s/stats/a.stats >/dev/null
  $cd_bin scan $s/gguf/tiny-f32.gguf --corpus $s/lines.txt -t 1 --keep-rows --out $s/stats/rows.stats >/dev/null
  $cd_bin find --domain $s/stats/a.stats --vs $s/stats/rows.stats --k 2 --out $s/critical/c.json >/dev/null 2>&1 || true
  printf '{"format": "critdim.critical", "version": 1, "domains": [{"name": "a", "dims": [{"dim": 3}]}]}' > $s/critical/d.json
  printf '{"format": "critdim-steering-plan", "version": 1, "interventions": [{"layers": {"from": 1, "to": 3}, "dims": [1, 5], "op": "add", "values": [1.5, -2], "positions": "generated"}]}' > $s/plan/add.json
  printf '{"format": "critdim-steering-plan", "version": 1, "alpha": 0.5, "interventions": [{"point": "attn_out", "layers": "all", "op": "clamp", "min": [-1], "max": [1], "dims": [0]}, {"layers": [2], "op": "zero", "dims": "all", "positions": {"from": 3}}]}' > $s/plan/clamp.json
  printf '\x00once upon a time\nthere was\n' > $s/corpus/lines
  printf '\x02{"text": "a"}\n{"text": "b"}\n' > $s/corpus/jsonl
  printf '\x03[{"instruction": "Write a poem"}, "plain"]' > $s/corpus/instructions
  printf '\x04What is 2+2?,1,2,3,4,D\n"A, quoted",x,y,z,w,A\n' > $s/corpus/mmlu
  printf '\x85goal,target\nDo it,"Sure, here"\n' > $s/corpus/csv
  i=0
  for f in "$shared"/vocab/ggml-vocab-{llama-spm,gpt-2,llama-bpe,qwen2,bert-bge,phi-3}.gguf.inp; do
    /usr/bin/python3 - "$f" "$s/tokenizer/$i" "$i" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8", errors="surrogateescape").read().split("\n__ggml_vocab_test__\n")
for k, t in enumerate(text[:40]):
    open(f"{sys.argv[2]}-{k}", "wb").write(bytes([int(sys.argv[3])]) + t.encode("utf-8", "surrogateescape"))
PY
    i=$((i + 1))
  done
  for f in "$shared"/vocab/chat_templates/*.jinja; do [ -f "$f" ] && cp "$f" $s/jinja/; done
  # Request bodies: first byte odd = /v1/chat/completions, even = /v1/completions.
  printf '\x01{"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}], "max_tokens": 4, "temperature": 0, "stop": ["\\n"], "logprobs": true, "top_logprobs": 2}' > $s/request/chat
  printf '\x00{"prompt": [1, 2, 3], "max_tokens": 2, "seed": 7, "top_k": 5, "top_p": 0.9, "stream": true, "steering": {"plan": {"format": "critdim-steering-plan", "version": 1, "interventions": [{"layers": "all", "dims": [1], "op": "add", "values": [2]}]}, "alpha": 0.5}}' > $s/request/completion
  printf '\x00{"prompt": "Once", "steering": {"name": "math", "alpha": -1}, "ignore_eos": true}' > $s/request/named
  touch $s/.done
fi

export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
totals=$b/fuzz-totals.tsv  # target, seconds, executions: one row per run, for "10 minutes in total"
run_target() {
  local t=$1
  mkdir -p $b/corpus/$t $b/findings/$t
  echo "fuzz: $t for ${seconds}s" >&2
  if ! $b/fuzz/fuzz_$t $b/corpus/$t $s/$t -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -malloc_limit_mb=1024 -max_len=65536 -artifact_prefix=$b/findings/$t/ -print_final_stats=1 \
      2> $b/findings/$t/log.txt; then
    echo "fuzz: $t FAILED; input and log in $b/findings/$t/" >&2
    tail -30 $b/findings/$t/log.txt >&2
    return 1
  fi
  local execs
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' $b/findings/$t/log.txt)
  printf '%s\t%s\t%s\n' "$t" "$seconds" "${execs:-0}" >> $totals
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' $b/findings/$t/log.txt | sed "s/^/fuzz: $t: /" >&2
}

status=0
jobs_max="${FUZZ_JOBS:-1}"
pids=()
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do sleep 1; done
  run_target "$t" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
echo "fuzz: totals so far (target, seconds, executions):" >&2
awk -F'\t' '{s[$1]+=$2; e[$1]+=$3} END {for (t in s) printf "  %-10s %6d s %12d execs\n", t, s[t], e[t]}' $totals | sort >&2
exit $status
