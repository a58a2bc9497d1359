// Weight quantizers, used to write synthetic models: ggml's reference quantizers for F16,
// BF16, Q8_0 and Q4_0, and simple min/max quantizers that fill the Q4_K and Q6_K formats.
#include <algorithm>
#include <cmath>

#include "kernels/internal.hpp"

namespace critdim::kernels::detail {

namespace {

// quantize_row_q8_0_ref: q = roundf(x / d), ties away from zero.
void quantize_q8_0(const float* src, BlockQ8_0* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQK8_0; ++b) {
        const float* x = src + b * kQK8_0;
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = float_to_half(d);
        for (int j = 0; j < 32; ++j) dst[b].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
    }
}

// quantize_row_q4_0_ref: d = max / -8 with max the element of largest magnitude.
void quantize_q4_0(const float* src, BlockQ4_0* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQK8_0; ++b) {
        const float* x = src + b * kQK8_0;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; ++j)
            if (amax < std::fabs(x[j])) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        const float d = max / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = float_to_half(d);
        for (int j = 0; j < 16; ++j) {
            const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
            const int hi = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f)));
            dst[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
        }
    }
}

// The fp16 value nearest to v that is not below it, so that a scale stored in fp16 still
// covers the range it was computed for.
uint16_t half_at_least(float v) {
    uint16_t h = float_to_half(v);
    if (half_to_float(h) < v) ++h;  // v >= 0: the next half up
    return h;
}

// Q4_K: per sub-block of 32, x ~ d*sc*q - dmin*m with q in 0..15. The mins are rounded up
// and the scales computed from the rounded mins and rounded up, so every element fits.
void quantize_q4_k(const float* src, BlockQ4_K* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQK_K; ++b) {
        const float* x = src + b * kQK_K;
        BlockQ4_K& y = dst[b];
        float lo[8], hi[8];  // sub-block min (<= 0) and max (>= 0)
        float max_neg_lo = 0.0f;
        for (int j = 0; j < 8; ++j) {
            lo[j] = 0.0f;
            hi[j] = 0.0f;
            for (int l = 0; l < 32; ++l) {
                lo[j] = std::min(lo[j], x[32 * j + l]);
                hi[j] = std::max(hi[j], x[32 * j + l]);
            }
            max_neg_lo = std::max(max_neg_lo, -lo[j]);
        }
        y.dmin = half_at_least(max_neg_lo / 63);
        const float dmin = half_to_float(y.dmin);
        uint8_t m[8], sc[8];
        float offset[8], max_step = 0.0f;
        for (int j = 0; j < 8; ++j) {
            m[j] = dmin > 0 ? static_cast<uint8_t>(std::min(63.0f, std::ceil(-lo[j] / dmin))) : 0;
            offset[j] = dmin * m[j];
            max_step = std::max(max_step, (hi[j] + offset[j]) / 15);
        }
        y.d = half_at_least(max_step / 63);
        const float d = half_to_float(y.d);
        for (int j = 0; j < 8; ++j)
            sc[j] = d > 0 ? static_cast<uint8_t>(std::min(63.0f, std::ceil((hi[j] + offset[j]) / 15 / d))) : 0;
        for (int j = 0; j < 4; ++j) {
            y.scales[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
            y.scales[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
            y.scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
        }
        uint8_t q[kQK_K];
        for (int j = 0; j < 8; ++j) {
            const float step = d * sc[j];
            for (int l = 0; l < 32; ++l) {
                const float v = step > 0 ? (x[32 * j + l] + offset[j]) / step : 0.0f;
                q[32 * j + l] = static_cast<uint8_t>(std::clamp(nearest_int(v), 0, 15));
            }
        }
        for (int pair = 0; pair < 4; ++pair)
            for (int l = 0; l < 32; ++l)
                y.qs[32 * pair + l] = static_cast<uint8_t>(q[64 * pair + l] | (q[64 * pair + 32 + l] << 4));
    }
}

// Q6_K: per group of 16, x ~ d*sc*q with q in -32..31 and 0 <= sc <= 127.
void quantize_q6_k(const float* src, BlockQ6_K* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQK_K; ++b) {
        const float* x = src + b * kQK_K;
        BlockQ6_K& y = dst[b];
        float step[16], max_step = 0.0f;
        for (int g = 0; g < 16; ++g) {
            float amax = 0.0f;
            for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[16 * g + l]));
            step[g] = amax / 31;
            max_step = std::max(max_step, step[g]);
        }
        y.d = half_at_least(max_step / 127);
        const float d = half_to_float(y.d);
        uint8_t q[kQK_K];  // stored quants, 0..63
        for (int g = 0; g < 16; ++g) {
            const int sc = d > 0 ? static_cast<int>(std::min(127.0f, std::ceil(step[g] / d))) : 0;
            y.scales[g] = static_cast<int8_t>(sc);
            const float s = d * sc;
            for (int l = 0; l < 16; ++l) {
                const int v = s > 0 ? nearest_int(x[16 * g + l] / s) : 0;
                q[16 * g + l] = static_cast<uint8_t>(std::clamp(v, -32, 31) + 32);
            }
        }
        for (int half = 0; half < 2; ++half) {
            const uint8_t* L = q + 128 * half;
            for (int l = 0; l < 32; ++l) {
                y.ql[64 * half + l] = static_cast<uint8_t>((L[l] & 0xF) | ((L[l + 64] & 0xF) << 4));
                y.ql[64 * half + l + 32] = static_cast<uint8_t>((L[l + 32] & 0xF) | ((L[l + 96] & 0xF) << 4));
                y.qh[32 * half + l] = static_cast<uint8_t>((L[l] >> 4) | ((L[l + 32] >> 4) << 2) |
                                                           ((L[l + 64] >> 4) << 4) | ((L[l + 96] >> 4) << 6));
            }
        }
    }
}

}  // namespace

void quantize_row_weight(TensorType type, const float* src, void* dst, int64_t n) {
    switch (type) {
        case TensorType::F32:
            std::memcpy(dst, src, static_cast<size_t>(n) * 4);
            return;
        case TensorType::F16:
            row_to_half(src, static_cast<uint16_t*>(dst), n);
            return;
        case TensorType::BF16:
            row_to_bf16(src, static_cast<uint16_t*>(dst), n);
            return;
        case TensorType::Q8_0:
            quantize_q8_0(src, static_cast<BlockQ8_0*>(dst), n);
            return;
        case TensorType::Q4_0:
            quantize_q4_0(src, static_cast<BlockQ4_0*>(dst), n);
            return;
        case TensorType::Q4_K:
            quantize_q4_k(src, static_cast<BlockQ4_K*>(dst), n);
            return;
        case TensorType::Q6_K:
            quantize_q6_k(src, static_cast<BlockQ6_K*>(dst), n);
            return;
        case TensorType::Q8_K:
            quantize_row_q8_k(src, static_cast<BlockQ8_K*>(dst), n);
            return;
        default:
            break;
    }
    throw Error(ErrorKind::internal, tensor_type_name(type), "quantize_row: unsupported type");
}

}  // namespace critdim::kernels::detail
