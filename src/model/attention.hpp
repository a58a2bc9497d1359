// Causal self-attention of a batch over each sequence's cached keys and values.
#pragma once

#include <span>
#include <vector>

#include "critdim/model.hpp"

namespace critdim::model {

struct AttentionArgs {
    const HParams* hp;
    int layer;
    bool sliding;
    const float* q;        // [T, n_head * head_dim], roped
    const float* k_cache;  // [n_layer][n_seq][n_ctx][kv_dim]
    const float* v_cache;  // [n_layer][n_seq][n_ctx][kv_dim_v]
    int64_t n_ctx;
    int n_seq;
    std::span<const int32_t> positions, seq_ids;
    float* out;  // [T, n_head * head_dim_v]
};

// Work is split into (run of rows of one sequence, block of query rows, head) items; the scores
// of an item are one F32 matrix product of its queries with the cached keys. `scratch` holds
// one score block per thread and grows as needed.
void attention(ThreadPool& pool, const AttentionArgs& a, std::vector<std::vector<float>>& scratch);

}  // namespace critdim::model
