// Tokenizer throughput on English text (WikiText-2 test), one thread: MB/s of input for a
// SentencePiece and two byte-level BPE vocabularies.
//   critdim_bench_tokenizer [--benchmark_filter=...]   (needs ../shared or CRITDIM_SHARED)
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "critdim/base.hpp"
#include "critdim/gguf.hpp"
#include "critdim/tokenizer.hpp"

namespace {

std::string shared_dir() {
    const char* env = std::getenv("CRITDIM_SHARED");
    return env && *env ? env : std::string(CRITDIM_SOURCE_DIR) + "/../shared";
}

const std::string& english_text() {
    static const std::string text = [] {
        std::string t = critdim::read_text_file(shared_dir() + "/data/wikitext/wiki.test.raw");
        t.resize(std::min<size_t>(t.size(), 1 << 20));  // the first MiB
        return t;
    }();
    return text;
}

void bench_vocab(benchmark::State& state, const std::string& name) {
    const auto file = critdim::gguf::File::open(shared_dir() + "/vocab/ggml-vocab-" + name + ".gguf");
    const auto tok = critdim::tokenizer::Tokenizer::from_gguf(*file);
    const std::string& text = english_text();
    size_t n_tokens = 0;
    for (auto _ : state) {
        const auto ids = tok->encode(text, false, false);
        n_tokens = ids.size();
        benchmark::DoNotOptimize(ids.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
    state.counters["tokens"] = static_cast<double>(n_tokens);
}

}  // namespace

BENCHMARK_CAPTURE(bench_vocab, spm_llama2, std::string("llama-spm"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bench_vocab, bpe_gpt2, std::string("gpt-2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bench_vocab, bpe_llama3, std::string("llama-bpe"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bench_vocab, bpe_qwen2, std::string("qwen2"))->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
