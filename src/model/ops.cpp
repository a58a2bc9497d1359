#include "model/ops.hpp"

#include <cmath>
#include <vector>

#include "critdim/kernels.hpp"

namespace critdim::model::ops {

void rms_norm(const float* x, const float* w, float eps, int64_t n, float* y) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
    const float mean = static_cast<float>(sum / static_cast<double>(n));
    const float scale = 1.0f / std::sqrt(mean + eps);
    if (w) {
        for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
    } else {
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;
    }
}

void layer_norm(const float* x, const float* w, const float* b, float eps, int64_t n, float* y) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]);
    const float mean = static_cast<float>(sum / static_cast<double>(n));
    double sum2 = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i] - mean;
        y[i] = v;
        sum2 += static_cast<double>(v * v);
    }
    const float variance = static_cast<float>(sum2 / static_cast<double>(n));
    const float scale = 1.0f / std::sqrt(variance + eps);
    for (int64_t i = 0; i < n; ++i) y[i] = (y[i] * scale) * w[i] + b[i];
}

void silu_mul(float* x, const float* g, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i])) * g[i];
}

namespace {
// ggml-cpu evaluates GELU as table[fp16(x)], the table holding fp16(gelu_tanh(x)).
const std::vector<uint16_t>& gelu_table() {
    static const std::vector<uint16_t> table = [] {
        std::vector<uint16_t> t(1 << 16);
        constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
        constexpr float kCoefA = 0.044715f;
        for (uint32_t i = 0; i < t.size(); ++i) {
            const float x = kernels::fp16_to_fp32(static_cast<uint16_t>(i));
            const float y = 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCoefA * x * x)));
            t[i] = kernels::fp32_to_fp16(y);
        }
        return t;
    }();
    return table;
}
}  // namespace

void gelu_mul(float* x, const float* g, int64_t n) {
    const std::vector<uint16_t>& table = gelu_table();
    for (int64_t i = 0; i < n; ++i) {
        float y;
        if (x[i] <= -10.0f) {
            y = 0.0f;
        } else if (x[i] >= 10.0f) {
            y = x[i];
        } else {
            y = kernels::fp16_to_fp32(table[kernels::fp32_to_fp16(x[i])]);
        }
        x[i] = g ? y * g[i] : y;
    }
}

void rope_angles(int32_t pos, const HParams& hp, const float* freq_factors, float* cos_out, float* sin_out) {
    const float theta_scale = std::pow(hp.rope_base, -2.0f / static_cast<float>(hp.n_rot));
    float theta = static_cast<float>(pos);
    for (int64_t i = 0; i < hp.n_rot / 2; ++i) {
        const float ff = freq_factors ? freq_factors[i] : 1.0f;
        const float angle = hp.rope_freq_scale * (theta / ff);
        cos_out[i] = std::cos(angle);
        sin_out[i] = std::sin(angle);
        theta *= theta_scale;
    }
}

void rope_apply(float* head, int64_t n_rot, RopeType type, const float* cos_v, const float* sin_v) {
    const int64_t half = n_rot / 2;
    if (type == RopeType::norm) {
        for (int64_t i = 0; i < half; ++i) {
            const float x0 = head[2 * i], x1 = head[2 * i + 1];
            head[2 * i] = x0 * cos_v[i] - x1 * sin_v[i];
            head[2 * i + 1] = x0 * sin_v[i] + x1 * cos_v[i];
        }
    } else if (type == RopeType::neox) {
        for (int64_t i = 0; i < half; ++i) {
            const float x0 = head[i], x1 = head[i + half];
            head[i] = x0 * cos_v[i] - x1 * sin_v[i];
            head[i + half] = x0 * sin_v[i] + x1 * cos_v[i];
        }
    }
}

// The hot element-wise loops get an AVX2 clone, chosen at load time by the CPU's features.
// Not under ThreadSanitizer: the clones' ifunc resolver runs during relocation, before the
// TSan runtime is up, and its instrumented code crashes there.
#if defined(__SANITIZE_THREAD__)
#define CRITDIM_VECTOR_CLONES
#else
#define CRITDIM_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#endif

namespace {
// Head widths known at compile time keep the D sums in registers across all n rows (the general
// loop loads and stores out[] for every row); same order of additions, so the same result.
template <int D>
inline void weighted_sum_fixed(const float* p, int64_t n, const float* rows, int64_t stride, float* out) {
    float acc[D] = {};
    for (int64_t j = 0; j < n; ++j) {
        const float pj = p[j];
        const float* row = rows + j * stride;
        for (int d = 0; d < D; ++d) acc[d] += pj * row[d];
    }
    for (int d = 0; d < D; ++d) out[d] = acc[d];
}
}  // namespace

CRITDIM_VECTOR_CLONES
void weighted_sum(const float* p, int64_t n, const float* rows, int64_t stride, int64_t dim, float* out) {
    if (dim == 64) return weighted_sum_fixed<64>(p, n, rows, stride, out);
    for (int64_t d = 0; d < dim; ++d) out[d] = 0.0f;
    for (int64_t j = 0; j < n; ++j) {
        const float pj = p[j];
        const float* row = rows + j * stride;
        for (int64_t d = 0; d < dim; ++d) out[d] += pj * row[d];
    }
}

void softmax(float* x, int64_t n) {
    float max = -INFINITY;
    for (int64_t i = 0; i < n; ++i) max = std::max(max, x[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const float e = std::exp(x[i] - max);
        x[i] = e;
        sum += static_cast<double>(e);
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace critdim::model::ops
