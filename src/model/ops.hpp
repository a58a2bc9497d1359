// The element-wise and row-wise operations of the forward pass, written to round the way
// llama.cpp's CPU backend does where that matters (norm sums in double, GELU via an F16 table,
// rope angles by repeated multiplication).
#pragma once

#include <cstdint>

#include "critdim/model.hpp"

namespace critdim::model::ops {

// y = x / sqrt(mean(x^2) + eps) * w   (w may be null: no weight)
void rms_norm(const float* x, const float* w, float eps, int64_t n, float* y);
// y = (x - mean) / sqrt(var + eps) * w + b
void layer_norm(const float* x, const float* w, const float* b, float eps, int64_t n, float* y);

// In place: x = silu(x) * g
void silu_mul(float* x, const float* g, int64_t n);
// In place: x = gelu(x) (* g when g is not null), GELU-tanh through ggml's F16 table.
void gelu_mul(float* x, const float* g, int64_t n);

// The rotation angles for one position: cos/sin of n_rot/2 pairs.
void rope_angles(int32_t pos, const HParams& hp, const float* freq_factors, float* cos_out, float* sin_out);
// Rotates the first n_rot dimensions of one head of size head_dim in place.
void rope_apply(float* head, int64_t n_rot, RopeType type, const float* cos_v, const float* sin_v);

// out[d] = sum_j p[j] * rows[j * stride + d] for d < dim (attention's weighted values).
void weighted_sum(const float* p, int64_t n, const float* rows, int64_t stride, int64_t dim, float* out);

// Softmax of n scores in place (after scaling and masking by the caller).
void softmax(float* x, int64_t n);

}  // namespace critdim::model::ops
