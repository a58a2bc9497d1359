// Private to the kernels module: the ggml block layouts, scalar helpers shared by the
// reference and the SIMD files, and the table of kernels a backend provides.
#pragma once
// The helpers are static: the SIMD files include this header under -mavx512f etc., and an
// inline function emitted there must never be the copy the generic code links to.

#include <cstdint>
#include <cstring>

#include "critdim/kernels.hpp"

namespace critdim::kernels::detail {

constexpr int64_t kQK8_0 = 32;  // elements per Q8_0 / Q4_0 block
constexpr int64_t kQK_K = 256;  // elements per k-quant super-block

// The blocks exactly as ggml lays them out in a GGUF file (little-endian, packed by their
// natural alignment: every size below is what ggml's static_asserts say).
struct BlockQ8_0 {
    uint16_t d;  // fp16 scale
    int8_t qs[32];
};
struct BlockQ4_0 {
    uint16_t d;      // fp16 scale
    uint8_t qs[16];  // element j in the low nibble of qs[j], element j+16 in the high one
};
struct BlockQ4_K {
    uint16_t d;          // fp16 super-block scale of the 6-bit sub-block scales
    uint16_t dmin;       // fp16 super-block scale of the 6-bit sub-block mins
    uint8_t scales[12];  // 8 scales and 8 mins, 6 bits each (see scale_min_k4)
    uint8_t qs[128];     // 4-bit quants, two sub-blocks of 32 per 32 bytes
};
struct BlockQ6_K {
    uint8_t ql[128];    // low 4 bits of the quants
    uint8_t qh[64];     // high 2 bits
    int8_t scales[16];  // one 8-bit scale per 16 elements
    uint16_t d;         // fp16 super-block scale
};
struct BlockQ8_K {
    float d;
    int8_t qs[256];
    int16_t bsums[16];  // sum of qs[16i .. 16i+15]
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

static inline uint32_t float_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
static inline float bits_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

static inline float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    if (exp == 0) {  // zero or subnormal: mant * 2^-24, exact in float
        const float v = static_cast<float>(mant) * 0x1p-24f;
        return bits_float(float_bits(v) | sign);
    }
    if (exp == 31) return bits_float(sign | 0x7F800000 | (mant << 13));  // inf, NaN
    return bits_float(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

static inline uint16_t float_to_half(float f) {  // round to nearest even
    const uint32_t u = float_bits(f);
    const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
    const uint32_t a = u & 0x7FFFFFFF;
    if (a > 0x7F800000) return sign | 0x7E00 | ((a >> 13) & 0x3FF);  // NaN, kept quiet
    if (a >= 0x477FF000) return sign | 0x7C00;                       // rounds to 65536 or more: inf
    const uint32_t e = a >> 23;
    if (e < 113) {                 // below 2^-14: a half subnormal, in units of 2^-24
        if (e < 102) return sign;  // below 2^-25: rounds to zero
        const uint32_t mant = (a & 0x7FFFFF) | 0x800000;
        const uint32_t shift = 126 - e;  // 14 .. 24
        uint32_t q = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) ++q;
        return static_cast<uint16_t>(sign | q);
    }
    uint32_t h = ((e - 112) << 10) | ((a >> 13) & 0x3FF);
    const uint32_t rem = a & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // a carry may reach the exponent
    return static_cast<uint16_t>(sign | h);
}

static inline float bf16_to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

static inline uint16_t float_to_bf16(float f) {  // ggml_compute_fp32_to_bf16
    const uint32_t u = float_bits(f);
    if ((u & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((u >> 16) | 64);  // quiet NaN
    return static_cast<uint16_t>((u + (0x7FFF + ((u >> 16) & 1))) >> 16);
}

// Rows of float32 to half / bfloat16 (weights and activations round the same way).
static inline void row_to_half(const float* src, uint16_t* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = float_to_half(src[i]);
}
static inline void row_to_bf16(const float* src, uint16_t* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = float_to_bf16(src[i]);
}

// ggml's get_scale_min_k4: the 6-bit scale and min of Q4_K sub-block j (0..7).
static inline void scale_min_k4(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
    if (j < 4) {
        sc = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// ggml's nearest_int: round half to even through the 1.5 * 2^23 trick (|f| < 2^22).
static inline int nearest_int(float f) {
    const float v = f + 12582912.f;
    int32_t i;
    std::memcpy(&i, &v, 4);
    return (i & 0x007FFFFF) - 0x00400000;
}

// The weight types critdim computes with, as a dense index into the kernel tables.
enum WeightIndex { kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ4_K, kQ6_K, kNumWeightTypes };
// -1 when `type` is not a weight type critdim computes with.
int weight_index(TensorType type);

struct GemmArgs {
    int64_t n;         // elements per row
    const uint8_t* w;  // weight row 0
    size_t w_row_bytes;
    const uint8_t* x;  // activation row 0, in vec_dot_type
    size_t x_row_bytes;
    float* y;  // y[t * y_stride + r]
    int64_t y_stride;
};

using VecDotFn = float (*)(int64_t n, const void* w, const void* x);
using GemmFn = void (*)(const GemmArgs& args, int64_t r0, int64_t r1, int64_t n_tok);
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);

struct KernelTable {
    const char* name;
    VecDotFn vec_dot[kNumWeightTypes];
    GemmFn gemm[kNumWeightTypes];
    QuantizeFn quantize_activations[kNumWeightTypes];  // bit-identical to ref::quantize_activations
};

const KernelTable& scalar_table();
const KernelTable& avx2_table();    // compiled with -mavx2 -mfma -mf16c
const KernelTable& avx512_table();  // compiled with AVX-512 F/BW/VL/VNNI

// Scalar reference pieces used by the public entry points.
void quantize_row_q8_0_act(const float* src, BlockQ8_0* dst, int64_t n);
void quantize_row_q8_k(const float* src, BlockQ8_K* dst, int64_t n);
void quantize_row_weight(TensorType type, const float* src, void* dst, int64_t n);

}  // namespace critdim::kernels::detail
