// One prompt through the model with observers on every block's resid_post: the chosen block's
// rows are kept whole (the heatmap), every block is reduced to max |x| per dimension (profiles).
#include "server/activations.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace critdim::server {

namespace {

// Removes the observers however the decode ends.
struct ObserverGuard {
    model::Hooks& hooks;
    std::vector<model::HookId> ids;
    ~ObserverGuard() {
        for (const model::HookId id : ids) hooks.remove(id);
    }
};

}  // namespace

Activations read_activations(model::Context& ctx, int32_t seq, const ActivationQuery& q) {
    const model::HParams& hp = ctx.model().hparams();
    const int64_t E = hp.n_embd, T = static_cast<int64_t>(q.tokens.size());
    std::vector<float> layer_rows(static_cast<size_t>(T * E), 0.0f);        // [T][E] at q.layer
    std::vector<float> max_abs(static_cast<size_t>(hp.n_layer * E), 0.0f);  // [n_layer][E]
    const int32_t first_counted = q.skip_first && T > 1 ? 1 : 0;

    ObserverGuard guard{ctx.hooks(), {}};
    guard.ids = ctx.hooks().observe_all_layers(model::HookPoint::resid_post, [&](const model::ConstRows& rows) {
        const int layer = rows.site.layer;
        float* layer_max = max_abs.data() + static_cast<size_t>(layer) * static_cast<size_t>(E);
        for (int64_t r = 0; r < rows.n_rows; ++r) {
            if (rows.seq_ids[static_cast<size_t>(r)] != seq) continue;
            const int32_t pos = rows.positions[static_cast<size_t>(r)];
            const float* x = rows.row(r);
            if (layer == q.layer) std::copy(x, x + E, layer_rows.begin() + static_cast<ptrdiff_t>(pos * E));
            if (pos < first_counted) continue;
            for (int64_t d = 0; d < E; ++d) layer_max[d] = std::max(layer_max[d], std::fabs(x[d]));
        }
    });
    model::Batch batch;
    for (int64_t t = 0; t < T; ++t)
        batch.add(q.tokens[static_cast<size_t>(t)], static_cast<int32_t>(t), seq, t + 1 == T);
    ctx.decode(batch);

    Activations a;
    a.n_tokens = T;
    // Top dims by max |x| at the layer; ties to the lower dim so the order is reproducible.
    const float* at_layer = max_abs.data() + static_cast<size_t>(q.layer) * static_cast<size_t>(E);
    std::vector<int64_t> order(static_cast<size_t>(E));
    std::iota(order.begin(), order.end(), 0);
    const auto top = std::min<int64_t>(q.top, E);
    std::partial_sort(order.begin(), order.begin() + top, order.end(), [&](int64_t x, int64_t y) {
        return at_layer[x] != at_layer[y] ? at_layer[x] > at_layer[y] : x < y;
    });
    a.dims.assign(order.begin(), order.begin() + top);
    for (const int64_t d : q.extra_dims)
        if (std::find(a.dims.begin(), a.dims.end(), d) == a.dims.end()) a.dims.push_back(d);

    const size_t C = a.dims.size();
    a.values.resize(static_cast<size_t>(T) * C);
    for (int64_t t = 0; t < T; ++t)
        for (size_t c = 0; c < C; ++c)
            a.values[static_cast<size_t>(t) * C + c] = layer_rows[static_cast<size_t>(t * E + a.dims[c])];
    a.profile.resize(C * static_cast<size_t>(hp.n_layer));
    for (size_t c = 0; c < C; ++c)
        for (int64_t l = 0; l < hp.n_layer; ++l)
            a.profile[c * static_cast<size_t>(hp.n_layer) + static_cast<size_t>(l)] =
                max_abs[static_cast<size_t>(l * E + a.dims[c])];
    return a;
}

}  // namespace critdim::server
