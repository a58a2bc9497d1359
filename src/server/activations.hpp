// Internal: the playground's view of one prompt's residual stream, read with the same
// observer hooks `scan` registers (resid_post of every block), on the engine's own context.
#pragma once

#include <cstdint>
#include <vector>

#include "critdim/model.hpp"

namespace critdim::server {

struct ActivationQuery {
    std::vector<int32_t> tokens;
    int layer = 0;                    // the heatmap's block (resid_post.layer)
    int top = 16;                     // dims ranked by max |x| over the counted tokens
    std::vector<int64_t> extra_dims;  // shown after the top ones (critical dims, asked-for dims)
    bool skip_first = true;           // rank and profile without position 0 (BOS's massive dims)
};

struct Activations {
    int64_t n_tokens = 0;
    std::vector<int64_t> dims;   // columns: the top dims, largest first, then the extra ones
    std::vector<float> values;   // [n_tokens][dims] resid_post.layer, signed
    std::vector<float> profile;  // [dims][n_layer] max |x| per block over the counted tokens
};

// Decodes `q.tokens` into sequence `seq` of `ctx` (which must be empty) and reads them. Call
// only where nothing else uses the context (Engine::run_exclusive).
Activations read_activations(model::Context& ctx, int32_t seq, const ActivationQuery& q);

}  // namespace critdim::server
