#include "model/attention.hpp"

#include <algorithm>
#include <cmath>

#include "critdim/kernels.hpp"
#include "model/ops.hpp"

namespace critdim::model {

namespace {
constexpr int64_t kQueryBlock = 64;
}  // namespace

void attention(ThreadPool& pool, const AttentionArgs& a, AttentionScratch& scratch) {
    const HParams& hp = *a.hp;
    const int64_t T = static_cast<int64_t>(a.positions.size());
    const int64_t q_dim = hp.n_head * hp.head_dim, kv_dim = hp.kv_dim(), kv_dim_v = hp.kv_dim_v();
    const int64_t group = hp.n_head / hp.n_head_kv;
    const int64_t window = a.sliding ? hp.sliding_window : 0;

    std::vector<AttentionItem>& items = scratch.items;
    items.clear();
    for (int64_t t0 = 0; t0 < T;) {
        int64_t t1 = t0 + 1;
        while (t1 < T && t1 - t0 < kQueryBlock && a.seq_ids[t1] == a.seq_ids[t0]) ++t1;
        for (int64_t h = 0; h < hp.n_head; ++h) items.push_back({t0, t1, h});
        t0 = t1;
    }
    if (scratch.scores.size() < static_cast<size_t>(pool.size()))
        scratch.scores.resize(static_cast<size_t>(pool.size()));

    // A short decode is not worth waking the other threads for.
    int64_t cost = 0;
    for (const AttentionItem& it : items)
        cost += (it.t1 - it.t0) * (a.positions[it.t1 - 1] + 1) * (hp.head_dim + hp.head_dim_v);
    auto work = [&](int64_t first_item, int64_t end_item, int ith) {
        std::vector<float>& sc = scratch.scores[static_cast<size_t>(ith)];
        for (int64_t wi = first_item; wi < end_item; ++wi) {
            const AttentionItem& it = items[static_cast<size_t>(wi)];
            const int64_t rows = it.t1 - it.t0, kvh = it.head / group;
            int64_t lo = a.n_ctx, hi = 0;  // keys [lo, hi) that any row of the block may see
            for (int64_t t = it.t0; t < it.t1; ++t) {
                const int64_t pos = a.positions[t];
                lo = std::min(lo, window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0);
                hi = std::max(hi, pos + 1);
            }
            const int64_t n_keys = hi - lo;
            if (sc.size() < static_cast<size_t>(rows * n_keys)) sc.resize(static_cast<size_t>(rows * n_keys));
            const size_t base = static_cast<size_t>((a.layer * a.n_seq + a.seq_ids[it.t0]) * a.n_ctx + lo);
            const float* keys = a.k_cache + base * kv_dim + kvh * hp.head_dim;
            kernels::gemm(TensorType::F32, hp.head_dim, keys, static_cast<size_t>(kv_dim) * 4, 0, n_keys,
                          a.q + it.t0 * q_dim + it.head * hp.head_dim, static_cast<size_t>(q_dim) * 4, rows, sc.data(),
                          n_keys);
            const float* values = a.v_cache + base * kv_dim_v + kvh * hp.head_dim_v;
            for (int64_t r = 0; r < rows; ++r) {
                const int64_t pos = a.positions[it.t0 + r];
                const int64_t first = (window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0) - lo;
                const int64_t last = pos - lo;  // inclusive
                float* s = sc.data() + r * n_keys + first;
                const int64_t n = last - first + 1;
                for (int64_t j = 0; j < n; ++j) {
                    float v = s[j] * hp.attn_scale;
                    if (hp.attn_softcap > 0.0f) v = std::tanh(v / hp.attn_softcap) * hp.attn_softcap;
                    s[j] = v;
                }
                ops::softmax(s, n);
                float* out = a.out + (it.t0 + r) * hp.n_head * hp.head_dim_v + it.head * hp.head_dim_v;
                ops::weighted_sum(s, n, values + first * kv_dim_v, kv_dim_v, hp.head_dim_v, out);
            }
        }
    };
    const auto n_items = static_cast<int64_t>(items.size());
    if (cost < (int64_t{1} << 16))
        work(0, n_items, 0);
    else
        pool.parallel_for_thread(n_items, work, cost / n_items + 1);
}

}  // namespace critdim::model
