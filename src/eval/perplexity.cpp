// Perplexity the way llama-perplexity computes it, and the KL divergence of steered from
// unsteered next-token distributions on the same chunks (the coherence guard).
#include <algorithm>
#include <cmath>

#include "critdim/eval.hpp"

namespace critdim::eval {

namespace {

// log-softmax of a logits row into out (double accumulation, as llama.cpp's perplexity).
void log_softmax(const float* logits, int64_t n_vocab, std::vector<double>& out) {
    out.resize(static_cast<size_t>(n_vocab));
    float max = logits[0];
    for (int64_t i = 1; i < n_vocab; ++i) max = std::max(max, logits[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - max));
    const double lse = std::log(sum);
    for (int64_t i = 0; i < n_vocab; ++i) out[static_cast<size_t>(i)] = static_cast<double>(logits[i] - max) - lse;
}

int64_t chunk_length(const model::Model& model, const PerplexityOptions& o) {
    const int64_t n = o.n_ctx > 0 ? o.n_ctx : model.hparams().n_ctx_train;
    if (n < 4) throw_usage("ppl: --ctx must be at least 4");
    return n;
}

}  // namespace

model::ContextParams perplexity_context(const model::Model& model, const PerplexityOptions& o, int64_t n_text_tokens,
                                        const std::string& where) {
    const int64_t ctx_len = chunk_length(model, o);
    if (n_text_tokens / ctx_len == 0)
        throw Error(ErrorKind::input, where,
                    std::to_string(n_text_tokens) + " tokens are fewer than one chunk of " + std::to_string(ctx_len));
    const int n_seq = static_cast<int>(std::max<int64_t>(1, o.n_batch / ctx_len));
    model::ContextParams cp;
    cp.n_ctx = ctx_len;
    cp.n_batch = std::max<int64_t>(ctx_len, std::min<int64_t>(o.n_batch, ctx_len * n_seq));
    cp.n_seq = n_seq;
    cp.n_threads = o.n_threads;
    return cp;
}

PerplexityResult perplexity(model::Context& ctx, const tokenizer::Tokenizer& tok, const std::vector<int32_t>& tokens,
                            const PerplexityOptions& o, steer::Steering* steering) {
    const int64_t n_vocab = ctx.model().hparams().n_vocab;
    const int64_t ctx_len = ctx.n_ctx();
    int64_t n_chunks = static_cast<int64_t>(tokens.size()) / ctx_len;
    if (o.max_chunks > 0) n_chunks = std::min(n_chunks, o.max_chunks);
    const int n_seq = static_cast<int>(std::max<int64_t>(1, o.n_batch / ctx_len));  // as perplexity_context
    const int64_t first = ctx_len / 2;
    const bool bos = tok.adds_bos() && tok.bos_id() >= 0;

    PerplexityResult r;
    r.n_ctx = ctx_len, r.n_chunks = n_chunks, r.n_tokens = static_cast<int64_t>(tokens.size());
    r.kl = steering != nullptr;
    double sum = 0.0, sum2 = 0.0, base_sum = 0.0, kl_sum = 0.0;
    std::vector<float> base_logp;  // [rows, n_vocab] of the unsteered pass
    std::vector<double> lp_s, lp_u;
    Progress progress("ppl", n_chunks * ctx_len, "tokens", o.progress);
    for (int64_t c0 = 0; c0 < n_chunks; c0 += n_seq) {
        const int64_t n_here = std::min<int64_t>(n_seq, n_chunks - c0);
        model::Batch batch;
        for (int64_t s = 0; s < n_here; ++s) {
            const int64_t start = (c0 + s) * ctx_len;
            for (int64_t i = 0; i < ctx_len; ++i) {
                const int32_t id = (i == 0 && bos) ? tok.bos_id() : tokens[static_cast<size_t>(start + i)];
                batch.add(id, static_cast<int32_t>(i), static_cast<int32_t>(s), i >= first && i + 1 < ctx_len);
            }
        }
        if (steering) {  // the unsteered pass first: its log-probabilities are kept for the KL
            steering->detach(ctx);
            ctx.clear();
            ctx.decode(batch);
            base_logp.resize(static_cast<size_t>(ctx.n_outputs() * n_vocab));
            for (int64_t row = 0; row < ctx.n_outputs(); ++row) {
                log_softmax(ctx.logits(row), n_vocab, lp_u);
                std::copy(lp_u.begin(), lp_u.end(), base_logp.begin() + row * n_vocab);
            }
            steering->attach(ctx);
        }
        ctx.clear();
        ctx.decode(batch);
        int64_t row = 0;
        for (int64_t s = 0; s < n_here; ++s) {
            const int64_t start = (c0 + s) * ctx_len;
            for (int64_t i = first; i + 1 < ctx_len; ++i, ++row) {
                const int32_t next = tokens[static_cast<size_t>(start + i + 1)];
                log_softmax(ctx.logits(row), n_vocab, lp_s);
                const double v = -lp_s[static_cast<size_t>(next)];
                sum += v;
                sum2 += v * v;
                ++r.n_scored;
                if (steering) {
                    const float* u = base_logp.data() + row * n_vocab;
                    base_sum += -static_cast<double>(u[next]);
                    double kl = 0.0;
                    for (int64_t k = 0; k < n_vocab; ++k)
                        kl += std::exp(lp_s[static_cast<size_t>(k)]) * (lp_s[static_cast<size_t>(k)] - u[k]);
                    kl = std::max(0.0, kl);
                    kl_sum += kl;
                    r.kl_max = std::max(r.kl_max, kl);
                }
            }
        }
        progress.update((c0 + n_here) * ctx_len);
    }
    progress.finish();
    const double n = static_cast<double>(r.n_scored);
    r.mean_nll = sum / n;
    r.ppl = std::exp(r.mean_nll);
    const double var = sum2 / n - r.mean_nll * r.mean_nll;
    r.ppl_stderr = r.n_scored > 1 && var > 0 ? std::sqrt(var / (n - 1)) * r.ppl : 0.0;
    if (steering) {
        r.base_ppl = std::exp(base_sum / n);
        r.kl_mean = kl_sum / n;
    }
    return r;
}

}  // namespace critdim::eval
