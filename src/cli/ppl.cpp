// critdim ppl MODEL --file TEXT [--ctx N]: perplexity the way llama-perplexity computes it.
// The whole file is tokenized (BOS first where the vocabulary adds one) and cut into chunks of
// n_ctx tokens (the remainder is dropped); each chunk's first token is replaced by BOS and the
// chunk is evaluated from an empty cache; only the second half of each chunk is scored (tokens
// n_ctx/2 + 1 .. n_ctx - 1). PPL = exp(mean NLL), ± its standard error as llama.cpp prints it.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/steer_options.hpp"
#include "critdim/tokenizer.hpp"

namespace critdim::cli {

namespace {
// -log p(token) from a logits row, accumulated in double as llama.cpp does.
double nll(const float* logits, int64_t n_vocab, int32_t token) {
    float max = logits[0];
    for (int64_t i = 1; i < n_vocab; ++i) max = std::max(max, logits[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - max));
    return -(static_cast<double>(logits[token] - max) - std::log(sum));
}
}  // namespace

void register_ppl(CLI::App& app) {
    auto* cmd = app.add_subcommand("ppl", "perplexity of a text file, computed as llama-perplexity does");
    static std::string path, file;
    static int64_t n_ctx = 0, n_batch = 2048, max_chunks = 0;
    static int threads = 0;
    static bool json = false;
    cmd->add_option("model", path, "GGUF model file")->required();
    cmd->add_option("-f,--file", file, "text file")->required();
    cmd->add_option("-c,--ctx", n_ctx, "tokens per chunk (default: the training context)");
    cmd->add_option("-b,--batch", n_batch, "tokens per forward pass (several chunks share one)")->capture_default_str();
    cmd->add_option("--chunks", max_chunks, "score at most this many chunks (0: all)");
    cmd->add_flag("--json", json, "machine-readable result");
    add_threads_option(cmd, threads);
    SteerOptions& steer_options = add_steer_options(cmd);
    cmd->callback([&steer_options] {
        auto m = model::Model::load(path);
        const model::HParams& hp = m->hparams();
        auto tok = tokenizer::Tokenizer::from_gguf(m->file());
        const int64_t ctx_len = n_ctx > 0 ? n_ctx : hp.n_ctx_train;
        if (ctx_len < 4) throw_usage("ppl: --ctx must be at least 4");
        const std::vector<int32_t> tokens = tok->encode(read_text_file(file), true, false);
        int64_t n_chunks = static_cast<int64_t>(tokens.size()) / ctx_len;
        if (max_chunks > 0) n_chunks = std::min(n_chunks, max_chunks);
        if (n_chunks == 0)
            throw Error(
                ErrorKind::input, file,
                std::to_string(tokens.size()) + " tokens are fewer than one chunk of " + std::to_string(ctx_len));
        const int n_seq = static_cast<int>(std::max<int64_t>(1, n_batch / ctx_len));
        model::ContextParams cp;
        cp.n_ctx = ctx_len;
        cp.n_batch = std::max<int64_t>(ctx_len, std::min<int64_t>(n_batch, ctx_len * n_seq));
        cp.n_seq = n_seq;
        cp.n_threads = threads;
        model::Context ctx(*m, cp);
        const steer::Steering steering = apply_steering(steer_options, ctx);
        const int64_t first = ctx_len / 2;
        const bool bos = tok->adds_bos() && tok->bos_id() >= 0;

        double sum = 0.0, sum2 = 0.0;
        int64_t count = 0;
        Progress progress("ppl", n_chunks * ctx_len);
        for (int64_t c0 = 0; c0 < n_chunks; c0 += n_seq) {
            const int64_t n_here = std::min<int64_t>(n_seq, n_chunks - c0);
            model::Batch batch;
            for (int64_t s = 0; s < n_here; ++s) {
                const int64_t start = (c0 + s) * ctx_len;
                for (int64_t i = 0; i < ctx_len; ++i) {
                    const int32_t id = (i == 0 && bos) ? tok->bos_id() : tokens[static_cast<size_t>(start + i)];
                    batch.add(id, static_cast<int32_t>(i), static_cast<int32_t>(s), i >= first && i + 1 < ctx_len);
                }
            }
            ctx.clear();
            ctx.decode(batch);
            int64_t row = 0;
            for (int64_t s = 0; s < n_here; ++s) {
                const int64_t start = (c0 + s) * ctx_len;
                for (int64_t i = first; i + 1 < ctx_len; ++i, ++row) {
                    const double v = nll(ctx.logits(row), hp.n_vocab, tokens[static_cast<size_t>(start + i + 1)]);
                    sum += v;
                    sum2 += v * v;
                    ++count;
                }
            }
            progress.update((c0 + n_here) * ctx_len);
        }
        progress.finish();
        const double mean = sum / static_cast<double>(count);
        const double ppl = std::exp(mean);
        const double var = sum2 / static_cast<double>(count) - mean * mean;
        const double err = count > 1 && var > 0 ? std::sqrt(var / static_cast<double>(count - 1)) * ppl : 0.0;
        if (json) {
            nlohmann::json j = {
                {"file", file},      {"n_ctx", ctx_len}, {"n_chunks", n_chunks}, {"n_tokens", tokens.size()},
                {"n_scored", count}, {"ppl", ppl},       {"ppl_stderr", err},    {"mean_nll", mean}};
            std::printf("%s\n", j.dump(2).c_str());
        } else {
            std::printf("Final estimate: PPL = %.4f +/- %.5f (%lld chunks of %lld tokens, %lld scored)\n", ppl, err,
                        static_cast<long long>(n_chunks), static_cast<long long>(ctx_len),
                        static_cast<long long>(count));
        }
    });
}

}  // namespace critdim::cli
