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

// One work item: a block of query rows [t0, t1) of one sequence, for one head.
struct AttentionItem {
    int64_t t0, t1;
    int64_t head;
};

// Buffers kept across calls, so that a decode step allocates nothing: the work items and one
// block of scores per thread, each grown as needed.
struct AttentionScratch {
    std::vector<AttentionItem> items;
    std::vector<std::vector<float>> scores;
};

// Work is split into (run of rows of one sequence, block of query rows, head) items; the scores
// of an item are one F32 matrix product of its queries with the cached keys.
void attention(ThreadPool& pool, const AttentionArgs& a, AttentionScratch& scratch);

}  // namespace critdim::model
