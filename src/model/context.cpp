// The forward pass: a batch of tokens through every block, keys and values appended to each
// sequence's cache, hooks run at every site, logits for the rows that asked for them.
//
// Every block of every supported family is "x += attn(x); x += ffn(x)"; the architecture
// description (HParams and the bound weights) says which norms, biases, rope and activation
// each step uses.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "critdim/kernels.hpp"
#include "critdim/model.hpp"
#include "model/attention.hpp"
#include "model/ops.hpp"

namespace critdim::model {

struct Context::Impl {
    Impl(const HParams& hp, int64_t n_ctx, int64_t n_batch, int n_seq, int n_threads);

    ThreadPool pool;
    int64_t n_batch;
    int n_seq;
    // KV cache, [n_layer][n_seq][n_ctx][kv_dim], float32.
    std::vector<float> k_cache, v_cache;
    std::vector<int64_t> seq_len;

    // Scratch for one batch of at most n_batch rows (shapes in comments).
    std::vector<float> x;      // [T, n_embd]  the residual stream
    std::vector<float> h;      // [T, n_embd]  normed input of a sub-block
    std::vector<float> q;      // [T, n_head * head_dim]
    std::vector<float> k;      // [T, kv_dim]
    std::vector<float> v;      // [T, kv_dim_v]
    std::vector<float> fused;  // [T, max(fused qkv, 2 * n_ff)]  fused projections
    std::vector<float> att;    // [T, n_head * head_dim_v]
    std::vector<float> sub;    // [T, n_embd]  a sub-block's output (attn_out / mlp_out)
    std::vector<float> ff;     // [T, n_ff]
    std::vector<uint8_t> act;  // [T, row bytes]  activations converted to a weight's vec_dot type
    size_t act_row_bytes = 0;
    std::vector<float> rope_cos, rope_sin;  // [T, n_rot / 2]
    AttentionScratch attn_scratch;          // attention's work items and per-thread score blocks
    std::vector<float> logits;              // [n_outputs, n_vocab]
    std::vector<float> out_rows;            // [n_outputs, n_embd]
};

namespace {

uint64_t physical_memory_bytes() {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

// The KV cache is the one allocation a model's metadata can make large (context_length x layers
// x kv width): refused with the numbers and the way out before it is made, rather than letting
// the allocation fail or the kernel's OOM killer end the process.
void check_kv_cache_fits(const HParams& hp, int64_t n_ctx, int n_seq) {
    const double bytes = 4.0 * static_cast<double>(hp.n_layer) * n_seq * static_cast<double>(n_ctx) *
                         static_cast<double>(hp.kv_dim() + hp.kv_dim_v());
    const double physical = static_cast<double>(physical_memory_bytes());
    if (physical > 0 && bytes > 0.8 * physical) {
        const auto gib = [](double b) { return fmt::format("{:.1f} GiB", b / (1024.0 * 1024 * 1024)); };
        throw Error(
            ErrorKind::usage, "context",
            fmt::format("a context of {} tokens x {} sequence(s) needs {} for the KV cache; this machine has {} "
                        "(choose a smaller context with --ctx)",
                        n_ctx, n_seq, gib(bytes), gib(physical)));
    }
}

}  // namespace

Context::Impl::Impl(const HParams& hp, int64_t n_ctx, int64_t n_batch_, int n_seq_, int n_threads)
    : pool(n_threads), n_batch(n_batch_), n_seq(n_seq_) {
    check_kv_cache_fits(hp, n_ctx, n_seq);
    const size_t cache = static_cast<size_t>(hp.n_layer * n_seq * n_ctx);
    k_cache.assign(cache * static_cast<size_t>(hp.kv_dim()), 0.0f);
    v_cache.assign(cache * static_cast<size_t>(hp.kv_dim_v()), 0.0f);
    seq_len.assign(static_cast<size_t>(n_seq), 0);
    const auto T = static_cast<size_t>(n_batch);
    const auto q_dim = static_cast<size_t>(hp.n_head * hp.head_dim);
    const auto kv = static_cast<size_t>(hp.kv_dim()), kv_v = static_cast<size_t>(hp.kv_dim_v());
    const auto E = static_cast<size_t>(hp.n_embd), F = static_cast<size_t>(hp.n_ff);
    x.resize(T * E);
    h.resize(T * E);
    q.resize(T * q_dim);
    k.resize(T * kv);
    v.resize(T * kv_v);
    fused.resize(T * std::max(q_dim + kv + kv_v, 2 * F));
    att.resize(T * static_cast<size_t>(hp.n_head * hp.head_dim_v));
    sub.resize(T * E);
    ff.resize(T * F);
    const int64_t max_in = std::max({hp.n_embd, hp.n_ff, hp.n_head * hp.head_dim_v});
    act_row_bytes = static_cast<size_t>(max_in) * 4 + 64;
    act.resize(T * act_row_bytes);
    rope_cos.resize(T * static_cast<size_t>(std::max<int64_t>(hp.n_rot / 2, 1)));
    rope_sin.resize(rope_cos.size());
}

Context::Context(const Model& model, const ContextParams& params)
    : model_(model),
      n_ctx_(params.n_ctx > 0 ? params.n_ctx : model.hparams().n_ctx_train),
      hooks_(static_cast<int>(model.hparams().n_layer)) {
    const HParams& hp = model.hparams();
    if (n_ctx_ <= 0) throw_usage("context size must be positive");
    if (hp.arch == "gpt2" && n_ctx_ > hp.n_ctx_train)
        throw_usage("context " + std::to_string(n_ctx_) + " exceeds gpt2's " + std::to_string(hp.n_ctx_train) +
                    " learned positions");
    if (params.n_batch <= 0 || params.n_seq <= 0) throw_usage("batch size and sequence count must be positive");
    const int threads = params.n_threads > 0 ? params.n_threads : ThreadPool::default_threads();
    impl_ = std::make_unique<Impl>(hp, n_ctx_, std::min(params.n_batch, n_ctx_ * params.n_seq), params.n_seq, threads);
}

Context::~Context() = default;

int Context::n_threads() const { return impl_->pool.size(); }
ThreadPool& Context::pool() { return impl_->pool; }

int64_t Context::seq_length(int32_t seq) const {
    if (seq < 0 || seq >= impl_->n_seq) throw_usage("sequence " + std::to_string(seq) + " is out of range");
    return impl_->seq_len[static_cast<size_t>(seq)];
}

void Context::clear_seq(int32_t seq) {
    seq_length(seq);
    impl_->seq_len[static_cast<size_t>(seq)] = 0;
}

void Context::clear() { std::fill(impl_->seq_len.begin(), impl_->seq_len.end(), 0); }

const float* Context::logits(int64_t i) const {
    if (i < 0 || i >= n_outputs_)
        throw Error(ErrorKind::internal, "logits", "output row " + std::to_string(i) + " was not computed");
    return impl_->logits.data() + static_cast<size_t>(i * model_.hparams().n_vocab);
}

void Context::decode(std::span<const int32_t> tokens, bool all_logits, int32_t seq) {
    Batch b;
    const int64_t start = seq_length(seq);
    for (size_t i = 0; i < tokens.size(); ++i)
        b.add(tokens[i], static_cast<int32_t>(start + static_cast<int64_t>(i)), seq,
              all_logits || i + 1 == tokens.size());
    decode(b);
}

void Context::decode(const Batch& batch) {
    const HParams& hp = model_.hparams();
    const int64_t n = batch.size();
    if (batch.positions.size() != batch.tokens.size() || batch.seq_ids.size() != batch.tokens.size() ||
        batch.want_logits.size() != batch.tokens.size())
        throw Error(ErrorKind::internal, "batch", "arrays of different lengths");
    int64_t n_out = 0;
    for (int64_t i = 0; i < n; ++i) {
        const std::string where = "batch row " + std::to_string(i);
        if (batch.tokens[i] < 0 || batch.tokens[i] >= hp.n_vocab)
            throw Error(ErrorKind::input, where,
                        "token id " + std::to_string(batch.tokens[i]) + " is out of range (vocabulary has " +
                            std::to_string(hp.n_vocab) + " tokens)");
        if (batch.positions[i] < 0 || batch.positions[i] >= n_ctx_)
            throw Error(ErrorKind::input, where,
                        "position " + std::to_string(batch.positions[i]) + " is outside the context of " +
                            std::to_string(n_ctx_) + " tokens");
        if (batch.seq_ids[i] < 0 || batch.seq_ids[i] >= impl_->n_seq)
            throw Error(ErrorKind::input, where, "sequence " + std::to_string(batch.seq_ids[i]) + " is out of range");
        n_out += batch.want_logits[i] ? 1 : 0;
    }
    const size_t need = static_cast<size_t>(n_out * hp.n_vocab);
    if (impl_->logits.size() < need) impl_->logits.resize(need);
    n_outputs_ = 0;
    for (int64_t begin = 0; begin < n; begin += impl_->n_batch)
        forward(batch, begin, std::min(n, begin + impl_->n_batch));
    for (int64_t i = 0; i < n; ++i) {
        int64_t& len = impl_->seq_len[static_cast<size_t>(batch.seq_ids[i])];
        len = std::max<int64_t>(len, batch.positions[i] + 1);
    }
}

namespace {

// y[t, r] = W row r · x row t (+ bias), threads splitting the rows of W.
void matmul(ThreadPool& pool, std::vector<uint8_t>& act, size_t act_row_bytes, const Tensor& w, const float* x,
            int64_t n_tok, float* y, const Vector& bias = {}) {
    const TensorType vdt = kernels::vec_dot_type(w.type);
    const void* xq = x;
    size_t x_row_bytes = static_cast<size_t>(w.n_cols) * sizeof(float);
    if (vdt != TensorType::F32) {
        x_row_bytes = kernels::row_bytes(vdt, w.n_cols);
        if (x_row_bytes > act_row_bytes) throw Error(ErrorKind::internal, w.name, "activation scratch too small");
        auto convert = [&](int64_t b, int64_t e) {
            for (int64_t t = b; t < e; ++t)
                kernels::quantize_activations(w.type, x + t * w.n_cols, act.data() + t * x_row_bytes, w.n_cols);
        };
        pool.parallel_for(n_tok, convert, 4 * w.n_cols);
        xq = act.data();
    }
    // Chunks of 16 rows keep the kernels' row tiles whole.
    const int64_t n_chunks = (w.n_rows + 15) / 16;
    auto product = [&](int64_t b, int64_t e) {
        kernels::gemm(w.type, w.n_cols, w.data, w.row_bytes, b * 16, std::min(w.n_rows, e * 16), xq, x_row_bytes, n_tok,
                      y, w.n_rows);
    };
    pool.parallel_for(n_chunks, product, 16 * w.n_cols * n_tok);
    if (!bias.empty()) {
        for (int64_t t = 0; t < n_tok; ++t)
            for (int64_t r = 0; r < w.n_rows; ++r) y[t * w.n_rows + r] += bias[static_cast<size_t>(r)];
    }
}

void norm_rows(ThreadPool& pool, const HParams& hp, const float* x, const Vector& w, const Vector& b, int64_t n_tok,
               float* y) {
    auto normalize = [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t) {
            if (hp.norm_type == NormType::layer)
                ops::layer_norm(x + t * hp.n_embd, w.data(), b.data(), hp.norm_eps, hp.n_embd, y + t * hp.n_embd);
            else
                ops::rms_norm(x + t * hp.n_embd, w.data(), hp.norm_eps, hp.n_embd, y + t * hp.n_embd);
        }
    };
    pool.parallel_for(n_tok, normalize, 4 * hp.n_embd);
}

// Copies columns [col, col + n) of a [T, width] matrix into a [T, n] one.
void split_columns(const float* src, int64_t width, int64_t col, int64_t n, int64_t n_tok, float* dst) {
    for (int64_t t = 0; t < n_tok; ++t) std::memcpy(dst + t * n, src + t * width + col, static_cast<size_t>(n) * 4);
}

}  // namespace

void Context::forward(const Batch& batch, int64_t begin, int64_t end) {
    const HParams& hp = model_.hparams();
    const Weights& w = model_.weights();
    Impl& s = *impl_;
    ThreadPool& pool = s.pool;
    const int64_t T = end - begin;
    const int64_t E = hp.n_embd;
    const int64_t q_dim = hp.n_head * hp.head_dim, kv_dim = hp.kv_dim(), kv_dim_v = hp.kv_dim_v();
    const std::span<const int32_t> tokens(batch.tokens.data() + begin, static_cast<size_t>(T));
    const std::span<const int32_t> positions(batch.positions.data() + begin, static_cast<size_t>(T));
    const std::span<const int32_t> seq_ids(batch.seq_ids.data() + begin, static_cast<size_t>(T));
    float* x = s.x.data();

    auto hook = [&](HookSite site, float* data) {
        if (hooks_.active(site)) hooks_.run(Rows{site, data, T, E, tokens, positions, seq_ids});
    };

    // ---- embeddings
    auto embed = [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
            float* row = x + t * E;
            kernels::dequantize_row(w.token_embd.type, w.token_embd.row(tokens[t]), row, E);
            if (hp.embed_scale != 1.0f)
                for (int64_t i = 0; i < E; ++i) row[i] *= hp.embed_scale;
            if (!w.position_embd.empty()) {
                const float* p = w.position_embd.data() + static_cast<size_t>(positions[t]) * E;
                for (int64_t i = 0; i < E; ++i) row[i] += p[i];
            }
        }
    };
    pool.parallel_for(T, embed, 4 * E);
    hook({HookPoint::embed, -1}, x);

    // ---- rotary angles for the batch's positions
    const int64_t half = hp.n_rot / 2;
    if (hp.rope_type != RopeType::none) {
        const float* ff = w.rope_freqs.empty() ? nullptr : w.rope_freqs.data();
        for (int64_t t = 0; t < T; ++t)
            ops::rope_angles(positions[t], hp, ff, s.rope_cos.data() + t * half, s.rope_sin.data() + t * half);
    }

    for (int il = 0; il < hp.n_layer; ++il) {
        const LayerWeights& L = w.layers[static_cast<size_t>(il)];
        hook({HookPoint::resid_pre, il}, x);

        // ---- attention: projections
        norm_rows(pool, hp, x, L.attn_norm, L.attn_norm_b, T, s.h.data());
        float* q = s.q.data();
        float* k = s.k.data();
        float* v = s.v.data();
        if (L.wqkv.data) {
            const int64_t width = L.wqkv.n_rows;
            matmul(pool, s.act, s.act_row_bytes, L.wqkv, s.h.data(), T, s.fused.data(), L.bqkv);
            split_columns(s.fused.data(), width, 0, q_dim, T, q);
            split_columns(s.fused.data(), width, q_dim, kv_dim, T, k);
            split_columns(s.fused.data(), width, q_dim + kv_dim, kv_dim_v, T, v);
        } else {
            matmul(pool, s.act, s.act_row_bytes, L.wq, s.h.data(), T, q, L.bq);
            matmul(pool, s.act, s.act_row_bytes, L.wk, s.h.data(), T, k, L.bk);
            matmul(pool, s.act, s.act_row_bytes, L.wv, s.h.data(), T, v, L.bv);
        }

        // ---- per-head q/k norm (qwen3), rope, and the keys and values into the cache
        auto qk_norm_rope_cache = [&](int64_t b, int64_t e) {
            for (int64_t t = b; t < e; ++t) {
                for (int64_t hh = 0; hh < hp.n_head; ++hh) {
                    float* head = q + t * q_dim + hh * hp.head_dim;
                    if (!L.q_norm.empty()) ops::rms_norm(head, L.q_norm.data(), hp.norm_eps, hp.head_dim, head);
                    ops::rope_apply(head, hp.n_rot, hp.rope_type, s.rope_cos.data() + t * half,
                                    s.rope_sin.data() + t * half);
                }
                for (int64_t hh = 0; hh < hp.n_head_kv; ++hh) {
                    float* head = k + t * kv_dim + hh * hp.head_dim;
                    if (!L.k_norm.empty()) ops::rms_norm(head, L.k_norm.data(), hp.norm_eps, hp.head_dim, head);
                    ops::rope_apply(head, hp.n_rot, hp.rope_type, s.rope_cos.data() + t * half,
                                    s.rope_sin.data() + t * half);
                }
                const size_t slot = static_cast<size_t>((il * s.n_seq + seq_ids[t]) * n_ctx_ + positions[t]);
                std::memcpy(s.k_cache.data() + slot * kv_dim, k + t * kv_dim, static_cast<size_t>(kv_dim) * 4);
                std::memcpy(s.v_cache.data() + slot * kv_dim_v, v + t * kv_dim_v, static_cast<size_t>(kv_dim_v) * 4);
            }
        };
        pool.parallel_for(T, qk_norm_rope_cache, 8 * (q_dim + kv_dim));

        // ---- attention over each sequence's cache
        attention(pool,
                  {&hp, il, L.sliding, q, s.k_cache.data(), s.v_cache.data(), n_ctx_, s.n_seq, positions, seq_ids,
                   s.att.data()},
                  s.attn_scratch);

        // ---- attention output
        float* sub = s.sub.data();
        matmul(pool, s.act, s.act_row_bytes, L.wo, s.att.data(), T, sub, L.bo);
        if (!L.post_attn_norm.empty()) norm_rows(pool, hp, sub, L.post_attn_norm, {}, T, sub);
        hook({HookPoint::attn_out, il}, sub);
        for (int64_t i = 0; i < T * E; ++i) x[i] += sub[i];

        // ---- feed-forward
        norm_rows(pool, hp, x, L.ffn_norm, L.ffn_norm_b, T, s.h.data());
        float* ff = s.ff.data();
        const int64_t F = hp.n_ff;
        switch (hp.ffn_type) {
            case FfnType::silu_gated:
            case FfnType::gelu_gated: {
                float* gate = s.fused.data();
                matmul(pool, s.act, s.act_row_bytes, L.ffn_gate, s.h.data(), T, gate);
                matmul(pool, s.act, s.act_row_bytes, L.ffn_up, s.h.data(), T, ff);
                auto activate = [&](int64_t b, int64_t e) {
                    for (int64_t t = b; t < e; ++t) {
                        if (hp.ffn_type == FfnType::silu_gated)
                            ops::silu_mul(gate + t * F, ff + t * F, F);
                        else
                            ops::gelu_mul(gate + t * F, ff + t * F, F);
                    }
                };
                pool.parallel_for(T, activate, 16 * F);
                std::memcpy(ff, gate, static_cast<size_t>(T * F) * 4);
                break;
            }
            case FfnType::silu_gated_fused: {
                float* gu = s.fused.data();
                matmul(pool, s.act, s.act_row_bytes, L.ffn_up, s.h.data(), T, gu);
                for (int64_t t = 0; t < T; ++t) {
                    std::memcpy(ff + t * F, gu + t * 2 * F, static_cast<size_t>(F) * 4);
                    ops::silu_mul(ff + t * F, gu + t * 2 * F + F, F);
                }
                break;
            }
            case FfnType::gelu:
                matmul(pool, s.act, s.act_row_bytes, L.ffn_up, s.h.data(), T, ff, L.ffn_up_b);
                ops::gelu_mul(ff, nullptr, T * F);
                break;
        }
        matmul(pool, s.act, s.act_row_bytes, L.ffn_down, ff, T, sub, L.ffn_down_b);
        if (!L.post_ffn_norm.empty()) norm_rows(pool, hp, sub, L.post_ffn_norm, {}, T, sub);
        hook({HookPoint::mlp_out, il}, sub);
        for (int64_t i = 0; i < T * E; ++i) x[i] += sub[i];
        hook({HookPoint::resid_post, il}, x);
    }

    // ---- final norm and logits of the rows that want them
    norm_rows(pool, hp, x, w.output_norm, w.output_norm_b, T, s.h.data());
    hook({HookPoint::final_norm, -1}, s.h.data());
    int64_t n_out = 0;
    for (int64_t t = 0; t < T; ++t) n_out += batch.want_logits[begin + t] ? 1 : 0;
    if (n_out == 0) return;
    s.out_rows.resize(static_cast<size_t>(n_out * E));
    for (int64_t t = 0, o = 0; t < T; ++t)
        if (batch.want_logits[begin + t]) std::memcpy(s.out_rows.data() + (o++) * E, s.h.data() + t * E, E * 4);
    // The output matrix is the largest; its rows go through the same tiled matmul in chunks
    // of the batch size so the activation scratch suffices.
    float* logits = s.logits.data() + static_cast<size_t>(n_outputs_ * hp.n_vocab);
    matmul(pool, s.act, s.act_row_bytes, w.output, s.out_rows.data(), n_out, logits);
    if (hp.final_softcap > 0.0f) {
        for (int64_t i = 0; i < n_out * hp.n_vocab; ++i)
            logits[i] = std::tanh(logits[i] / hp.final_softcap) * hp.final_softcap;
    }
    n_outputs_ += n_out;
}

}  // namespace critdim::model
