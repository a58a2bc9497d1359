// The scalar reference: dequantization, llama.cpp's activation conversions and the dot
// products, written as plain loops over ggml's block layouts. Every SIMD kernel is tested
// against these.
#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/internal.hpp"

namespace critdim::kernels {

using namespace detail;

float fp16_to_fp32(uint16_t h) { return half_to_float(h); }
uint16_t fp32_to_fp16(float f) { return float_to_half(f); }
float bf16_to_fp32(uint16_t h) { return bf16_to_float(h); }
uint16_t fp32_to_bf16(float f) { return float_to_bf16(f); }

namespace detail {

int weight_index(TensorType type) {
    switch (type) {
        case TensorType::F32:
            return kF32;
        case TensorType::F16:
            return kF16;
        case TensorType::BF16:
            return kBF16;
        case TensorType::Q8_0:
            return kQ8_0;
        case TensorType::Q4_0:
            return kQ4_0;
        case TensorType::Q4_K:
            return kQ4_K;
        case TensorType::Q6_K:
            return kQ6_K;
        default:
            return -1;
    }
}

// llama.cpp's AVX quantize_row_q8_0: d = amax/127 stored as fp16, q = round-half-even(x*127/amax).
void quantize_row_q8_0_act(const float* src, BlockQ8_0* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQK8_0; ++b) {
        const float* x = src + b * kQK8_0;
        float amax = 0.0f;
        for (int j = 0; j < kQK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
        dst[b].d = float_to_half(amax / 127.f);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        for (int j = 0; j < kQK8_0; ++j) dst[b].qs[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
    }
}

// ggml's quantize_row_q8_K_ref: scale by -127/max with max the element of largest magnitude
// (the first one on ties), so that max itself maps to -127.
void quantize_row_q8_k(const float* src, BlockQ8_K* dst, int64_t n) {
    for (int64_t b = 0; b < n / kQK_K; ++b) {
        const float* x = src + b * kQK_K;
        BlockQ8_K& y = dst[b];
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < kQK_K; ++j) {
            const float ax = std::fabs(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            y.d = 0.0f;
            std::memset(y.qs, 0, sizeof y.qs);
            std::memset(y.bsums, 0, sizeof y.bsums);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < kQK_K; ++j) y.qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
        for (int g = 0; g < kQK_K / 16; ++g) {
            int sum = 0;
            for (int j = 0; j < 16; ++j) sum += y.qs[16 * g + j];
            y.bsums[g] = static_cast<int16_t>(sum);
        }
        y.d = 1 / iscale;
    }
}

}  // namespace detail

TensorType vec_dot_type(TensorType weight) {
    switch (weight) {
        case TensorType::F32:
            return TensorType::F32;
        case TensorType::F16:
            return TensorType::F16;
        case TensorType::BF16:
            return TensorType::BF16;
        case TensorType::Q8_0:
        case TensorType::Q4_0:
            return TensorType::Q8_0;
        case TensorType::Q4_K:
        case TensorType::Q6_K:
            return TensorType::Q8_K;
        default:
            throw Error(ErrorKind::internal, tensor_type_name(weight), "not a weight type the kernels compute with");
    }
}

namespace ref {

void dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
    const int64_t nb32 = n / kQK8_0, nbk = n / kQK_K;
    switch (type) {
        case TensorType::F32:
            std::memcpy(dst, src, static_cast<size_t>(n) * 4);
            return;
        case TensorType::F16: {
            const auto* h = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(h[i]);
            return;
        }
        case TensorType::BF16: {
            const auto* h = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(h[i]);
            return;
        }
        case TensorType::Q8_0: {
            const auto* blocks = static_cast<const BlockQ8_0*>(src);
            for (int64_t b = 0; b < nb32; ++b) {
                const float d = half_to_float(blocks[b].d);
                for (int j = 0; j < 32; ++j) dst[b * 32 + j] = d * blocks[b].qs[j];
            }
            return;
        }
        case TensorType::Q4_0: {
            const auto* blocks = static_cast<const BlockQ4_0*>(src);
            for (int64_t b = 0; b < nb32; ++b) {
                const float d = half_to_float(blocks[b].d);
                for (int j = 0; j < 16; ++j) {
                    dst[b * 32 + j] = d * ((blocks[b].qs[j] & 0xF) - 8);
                    dst[b * 32 + j + 16] = d * ((blocks[b].qs[j] >> 4) - 8);
                }
            }
            return;
        }
        case TensorType::Q4_K: {
            const auto* blocks = static_cast<const BlockQ4_K*>(src);
            for (int64_t b = 0; b < nbk; ++b) {
                const BlockQ4_K& x = blocks[b];
                const float d = half_to_float(x.d), dmin = half_to_float(x.dmin);
                float* y = dst + b * kQK_K;
                for (int pair = 0; pair < 4; ++pair) {
                    const uint8_t* q = x.qs + 32 * pair;
                    uint8_t sc1, m1, sc2, m2;
                    scale_min_k4(2 * pair, x.scales, sc1, m1);
                    scale_min_k4(2 * pair + 1, x.scales, sc2, m2);
                    const float d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2;
                    for (int l = 0; l < 32; ++l) y[64 * pair + l] = d1 * (q[l] & 0xF) - min1;
                    for (int l = 0; l < 32; ++l) y[64 * pair + 32 + l] = d2 * (q[l] >> 4) - min2;
                }
            }
            return;
        }
        case TensorType::Q6_K: {
            const auto* blocks = static_cast<const BlockQ6_K*>(src);
            for (int64_t b = 0; b < nbk; ++b) {
                const BlockQ6_K& x = blocks[b];
                const float d = half_to_float(x.d);
                for (int half = 0; half < 2; ++half) {
                    const uint8_t* ql = x.ql + 64 * half;
                    const uint8_t* qh = x.qh + 32 * half;
                    const int8_t* sc = x.scales + 8 * half;
                    float* y = dst + b * kQK_K + 128 * half;
                    for (int l = 0; l < 32; ++l) {
                        const int is = l / 16;
                        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                        y[l] = d * sc[is + 0] * q1;
                        y[l + 32] = d * sc[is + 2] * q2;
                        y[l + 64] = d * sc[is + 4] * q3;
                        y[l + 96] = d * sc[is + 6] * q4;
                    }
                }
            }
            return;
        }
        case TensorType::Q8_K: {
            const auto* blocks = static_cast<const BlockQ8_K*>(src);
            for (int64_t b = 0; b < nbk; ++b)
                for (int j = 0; j < kQK_K; ++j) dst[b * kQK_K + j] = blocks[b].d * blocks[b].qs[j];
            return;
        }
        default:
            break;
    }
    throw Error(ErrorKind::internal, tensor_type_name(type), "dequantize_row: unsupported type");
}

void quantize_activations(TensorType weight, const float* src, void* dst, int64_t n) {
    switch (vec_dot_type(weight)) {
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
            quantize_row_q8_0_act(src, static_cast<BlockQ8_0*>(dst), n);
            return;
        case TensorType::Q8_K:
            quantize_row_q8_k(src, static_cast<BlockQ8_K*>(dst), n);
            return;
        default:
            break;
    }
    throw Error(ErrorKind::internal, tensor_type_name(weight), "quantize_activations: unsupported type");
}

namespace {

// Float types accumulate in double: the reference should be more exact than what it checks.
template <class LoadW, class LoadX>
float dot_float(int64_t n, LoadW load_w, LoadX load_x) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(load_w(i)) * load_x(i);
    return static_cast<float>(sum);
}

float dot_q8_0_blocks(int64_t n, const BlockQ8_0* w, const BlockQ8_0* x) {
    float sum = 0;
    for (int64_t b = 0; b < n / kQK8_0; ++b) {
        int isum = 0;
        for (int j = 0; j < 32; ++j) isum += w[b].qs[j] * x[b].qs[j];
        sum += half_to_float(w[b].d) * half_to_float(x[b].d) * static_cast<float>(isum);
    }
    return sum;
}

float dot_q4_0(int64_t n, const BlockQ4_0* w, const BlockQ8_0* x) {
    float sum = 0;
    for (int64_t b = 0; b < n / kQK8_0; ++b) {
        int isum = 0;
        for (int j = 0; j < 16; ++j) {
            isum += ((w[b].qs[j] & 0xF) - 8) * x[b].qs[j];
            isum += ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + 16];
        }
        sum += half_to_float(w[b].d) * half_to_float(x[b].d) * static_cast<float>(isum);
    }
    return sum;
}

// d * sum_j sc_j * (q4 . q8)_j - dmin * sum_j m_j * (sum of q8 in sub-block j), the mins
// term read from the activation's bsums as ggml does.
float dot_q4_k(int64_t n, const BlockQ4_K* w, const BlockQ8_K* x) {
    float sum = 0;
    for (int64_t b = 0; b < n / kQK_K; ++b) {
        int isum = 0, msum = 0;
        for (int j = 0; j < 8; ++j) {
            uint8_t sc, m;
            scale_min_k4(j, w[b].scales, sc, m);
            const uint8_t* q = w[b].qs + 32 * (j / 2);
            const int8_t* q8 = x[b].qs + 32 * j;
            int s = 0;
            for (int l = 0; l < 32; ++l) s += ((j % 2 == 0) ? (q[l] & 0xF) : (q[l] >> 4)) * q8[l];
            isum += sc * s;
            msum += m * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
        }
        sum += half_to_float(w[b].d) * x[b].d * static_cast<float>(isum);
        sum -= half_to_float(w[b].dmin) * x[b].d * static_cast<float>(msum);
    }
    return sum;
}

float dot_q6_k(int64_t n, const BlockQ6_K* w, const BlockQ8_K* x) {
    float sum = 0;
    for (int64_t b = 0; b < n / kQK_K; ++b) {
        int q6[kQK_K];  // the quants in element order, -32 .. 31
        for (int half = 0; half < 2; ++half) {
            const uint8_t* ql = w[b].ql + 64 * half;
            const uint8_t* qh = w[b].qh + 32 * half;
            int* q = q6 + 128 * half;
            for (int l = 0; l < 32; ++l) {
                q[l] = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                q[l + 32] = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                q[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                q[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            }
        }
        int isum = 0;
        for (int g = 0; g < 16; ++g) {
            int s = 0;
            for (int l = 0; l < 16; ++l) s += q6[16 * g + l] * x[b].qs[16 * g + l];
            isum += w[b].scales[g] * s;
        }
        sum += half_to_float(w[b].d) * x[b].d * static_cast<float>(isum);
    }
    return sum;
}

}  // namespace

float vec_dot(TensorType weight, int64_t n, const void* w, const void* x) {
    switch (weight) {
        case TensorType::F32: {
            const auto* a = static_cast<const float*>(w);
            const auto* b = static_cast<const float*>(x);
            return dot_float(
                n, [a](int64_t i) { return a[i]; }, [b](int64_t i) { return b[i]; });
        }
        case TensorType::F16: {
            const auto* a = static_cast<const uint16_t*>(w);
            const auto* b = static_cast<const uint16_t*>(x);
            return dot_float(
                n, [a](int64_t i) { return half_to_float(a[i]); }, [b](int64_t i) { return half_to_float(b[i]); });
        }
        case TensorType::BF16: {
            const auto* a = static_cast<const uint16_t*>(w);
            const auto* b = static_cast<const uint16_t*>(x);
            return dot_float(
                n, [a](int64_t i) { return bf16_to_float(a[i]); }, [b](int64_t i) { return bf16_to_float(b[i]); });
        }
        case TensorType::Q8_0:
            return dot_q8_0_blocks(n, static_cast<const BlockQ8_0*>(w), static_cast<const BlockQ8_0*>(x));
        case TensorType::Q4_0:
            return dot_q4_0(n, static_cast<const BlockQ4_0*>(w), static_cast<const BlockQ8_0*>(x));
        case TensorType::Q4_K:
            return dot_q4_k(n, static_cast<const BlockQ4_K*>(w), static_cast<const BlockQ8_K*>(x));
        case TensorType::Q6_K:
            return dot_q6_k(n, static_cast<const BlockQ6_K*>(w), static_cast<const BlockQ8_K*>(x));
        default:
            break;
    }
    throw Error(ErrorKind::internal, tensor_type_name(weight), "vec_dot: unsupported weight type");
}

}  // namespace ref

}  // namespace critdim::kernels
