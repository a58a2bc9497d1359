// Kernels, formats: fp16/bf16 conversions, dequantization of hand-built blocks, the exact
// activation conversions of llama.cpp, and quantize -> dequantize round trips.
#include <gtest/gtest.h>

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "critdim/kernels.hpp"
#include "kernels/cpu_features.hpp"
#include "kernels/internal.hpp"

namespace critdim::kernels {
namespace {

using detail::BlockQ4_0;
using detail::BlockQ4_K;
using detail::BlockQ6_K;
using detail::BlockQ8_0;
using detail::BlockQ8_K;

float from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
uint32_t to_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

// ---------------------------------------------------------------------------------------------
// fp16

TEST(KernelFp16, KnownValuesToFloat) {
    EXPECT_EQ(to_bits(fp16_to_fp32(0x0000)), 0x00000000u);
    EXPECT_EQ(to_bits(fp16_to_fp32(0x8000)), 0x80000000u);  // -0
    EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
    EXPECT_EQ(fp16_to_fp32(0xC000), -2.0f);
    EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);
    EXPECT_EQ(fp16_to_fp32(0x3555), 0.333251953125f);
    EXPECT_EQ(fp16_to_fp32(0x0400), std::ldexp(1.0f, -14));          // smallest normal
    EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));          // smallest subnormal
    EXPECT_EQ(fp16_to_fp32(0x03FF), std::ldexp(1023.0f, -24));       // largest subnormal
    EXPECT_EQ(fp16_to_fp32(0x8001), -std::ldexp(1.0f, -24));
    EXPECT_EQ(fp16_to_fp32(0x7C00), std::numeric_limits<float>::infinity());
    EXPECT_EQ(fp16_to_fp32(0xFC00), -std::numeric_limits<float>::infinity());
    EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));
    EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7C01)));
}

TEST(KernelFp16, KnownValuesFromFloatRoundToNearestEven) {
    EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
    EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
    EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie, to even (down)
    EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie, to even (up)
    EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3C01);  // above the tie
    EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);
    EXPECT_EQ(fp32_to_fp16(65519.996f), 0x7BFF);
    EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);  // tie between 65504 and 65536: to even = inf
    EXPECT_EQ(fp32_to_fp16(1e9f), 0x7C00);
    EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xFC00);
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);                     // tie to even: 0
    EXPECT_EQ(fp32_to_fp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
    EXPECT_EQ(fp32_to_fp16(3 * std::ldexp(1.0f, -25)), 0x0002);                 // 1.5 units: to 2
    EXPECT_EQ(fp32_to_fp16(5 * std::ldexp(1.0f, -25)), 0x0002);                 // 2.5 units: to 2
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25)), 0x0400);  // into the normals
    EXPECT_EQ(fp32_to_fp16(-std::ldexp(1023.0f, -24)), 0x83FF);
    EXPECT_EQ(fp32_to_fp16(1e-10f), 0x0000);
    const uint16_t nan = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
    EXPECT_EQ(nan & 0x7C00, 0x7C00);
    EXPECT_NE(nan & 0x03FF, 0);
    const uint16_t snan = fp32_to_fp16(from_bits(0x7F800001));  // signalling NaN stays a NaN
    EXPECT_TRUE(std::isnan(fp16_to_fp32(snan)));
}

TEST(KernelFp16, EveryHalfRoundTrips) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const float f = fp16_to_fp32(static_cast<uint16_t>(h));
        if (std::isnan(f)) continue;
        ASSERT_EQ(fp32_to_fp16(f), h) << "half 0x" << std::hex << h;
    }
}

__attribute__((target("f16c"))) uint16_t hardware_fp32_to_fp16(float f) { return _cvtss_sh(f, 0); }

TEST(KernelFp16, MatchesF16cOnRandomFloats) {
    __builtin_cpu_init();
    // Without F16C there is no hardware to compare with; the exhaustive half tests above still run.
    if (!test::cpu_has_f16c()) {
        RecordProperty("f16c", "absent");
        return;
    }
    std::mt19937 rng(1);
    for (int i = 0; i < 1000000; ++i) {
        // Exponents concentrated around the half range (subnormals to overflow).
        const uint32_t mant = rng() & 0x7FFFFF, sign = (rng() & 1) << 31;
        const uint32_t exp = 127 - 28 + rng() % 48;
        const float f = from_bits(sign | (exp << 23) | mant);
        ASSERT_EQ(fp32_to_fp16(f), hardware_fp32_to_fp16(f)) << "float bits 0x" << std::hex << to_bits(f);
    }
}

// ---------------------------------------------------------------------------------------------
// bf16

TEST(KernelBf16, KnownValues) {
    EXPECT_EQ(bf16_to_fp32(0x3F80), 1.0f);
    EXPECT_EQ(bf16_to_fp32(0xC040), -3.0f);
    EXPECT_EQ(bf16_to_fp32(0x0001), std::ldexp(1.0f, -133));  // subnormal
    EXPECT_EQ(bf16_to_fp32(0x7F80), std::numeric_limits<float>::infinity());
    EXPECT_TRUE(std::isnan(bf16_to_fp32(0x7FC0)));

    EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
    EXPECT_EQ(fp32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);      // tie, to even (down)
    EXPECT_EQ(fp32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);  // tie, to even (up)
    EXPECT_EQ(fp32_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 0x3F81);
    EXPECT_EQ(fp32_to_bf16(from_bits(0x00018000)), 0x0002);  // subnormal tie, to even (up)
    EXPECT_EQ(fp32_to_bf16(from_bits(0x00008000)), 0x0000);  // subnormal tie, to even (down)
    EXPECT_EQ(fp32_to_bf16(from_bits(0x7F7FFFFF)), 0x7F80);  // largest float rounds to inf
    EXPECT_EQ(fp32_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
    EXPECT_EQ(fp32_to_bf16(from_bits(0x7F800001)), 0x7FC0);  // signalling NaN made quiet
    EXPECT_EQ(fp32_to_bf16(from_bits(0xFFC12345)), 0xFFC1);
}

// ---------------------------------------------------------------------------------------------
// Dequantization of hand-built blocks (values worked out from ggml's layouts by hand).

TEST(KernelDequantize, Q8_0) {
    BlockQ8_0 b[2];
    b[0].d = 0x3800;  // 0.5
    b[1].d = 0xC000;  // -2
    for (int j = 0; j < 32; ++j) b[0].qs[j] = b[1].qs[j] = static_cast<int8_t>(j - 16);
    b[1].qs[0] = -128;
    float y[64];
    dequantize_row(TensorType::Q8_0, b, y, 64);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.5f * (j - 16));
    EXPECT_EQ(y[32], 256.0f);
    for (int j = 1; j < 32; ++j) EXPECT_EQ(y[32 + j], -2.0f * (j - 16));
}

TEST(KernelDequantize, Q4_0) {
    BlockQ4_0 b;
    b.d = 0x3400;  // 0.25
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
    float y[32];
    dequantize_row(TensorType::Q4_0, &b, y, 32);
    for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(y[j], 0.25f * (j - 8));
        EXPECT_EQ(y[j + 16], 0.25f * (7 - j));
    }
}

TEST(KernelDequantize, Q4_K) {
    BlockQ4_K b{};
    b.d = 0x3C00;     // 1
    b.dmin = 0x3800;  // 0.5
    // Sub-block 0: sc = 1, m = 5. Sub-block 4: sc = 3 | (1 << 4) = 19, m = 9 | (2 << 4) = 41,
    // its high bits in the top two bits of scales[0] and scales[4].
    b.scales[0] = 0x41;
    b.scales[4] = 0x85;
    b.scales[8] = 0x93;
    b.scales[1] = 7;   // sub-block 1: sc = 7, m = 0
    b.qs[0] = 0x7A;    // element 0 = 10 (sub-block 0), element 32 = 7 (sub-block 1)
    b.qs[64] = 0x0C;   // element 128 = 12 (sub-block 4), element 160 = 0 (sub-block 5)
    float y[256];
    dequantize_row(TensorType::Q4_K, &b, y, 256);
    EXPECT_EQ(y[0], 1 * 10 - 0.5f * 5);
    EXPECT_EQ(y[1], -0.5f * 5);
    EXPECT_EQ(y[32], 7 * 7);
    EXPECT_EQ(y[128], 19 * 12 - 0.5f * 41);
    EXPECT_EQ(y[129], -0.5f * 41);
    EXPECT_EQ(y[160], 0.0f);
}

TEST(KernelDequantize, Q6_K) {
    BlockQ6_K b{};
    b.d = 0x4000;  // 2
    b.scales[0] = 2;
    b.scales[4] = -3;
    b.scales[6] = 1;
    b.scales[12] = 4;
    b.ql[0] = 0x95;   // element 0: low 5; element 64: 9
    b.qh[0] = 0x13;   // element 0: 3 << 4; element 32: 0; element 64: 1 << 4; element 96: 0
    b.ql[72] = 0xF0;  // element 128 + 64 + 8 = 200: 15
    b.qh[40] = 0x20;  // element 200: 2 << 4
    float y[256];
    dequantize_row(TensorType::Q6_K, &b, y, 256);
    EXPECT_EQ(y[0], 2.0f * 2 * (53 - 32));
    EXPECT_EQ(y[64], 2.0f * -3 * (25 - 32));
    EXPECT_EQ(y[96], 2.0f * 1 * -32);
    EXPECT_EQ(y[200], 2.0f * 4 * (47 - 32));
    EXPECT_EQ(y[1], 2.0f * 2 * -32);
}

TEST(KernelDequantize, F16Bf16Q8_K) {
    const uint16_t h[3] = {0x3C00, 0xC000, 0x0001};
    float y[3];
    dequantize_row(TensorType::F16, h, y, 3);
    EXPECT_EQ(y[0], 1.0f);
    EXPECT_EQ(y[1], -2.0f);
    EXPECT_EQ(y[2], std::ldexp(1.0f, -24));
    dequantize_row(TensorType::BF16, h, y, 3);
    EXPECT_EQ(y[0], std::ldexp(1.0f, -7));  // 0x3C00 as bf16: exponent 120
    BlockQ8_K k{};
    k.d = 0.25f;
    k.qs[3] = -7;
    std::vector<float> yk(256);
    dequantize_row(TensorType::Q8_K, &k, yk.data(), 256);
    EXPECT_EQ(yk[3], -1.75f);
    EXPECT_EQ(yk[4], 0.0f);
}

// ---------------------------------------------------------------------------------------------
// Activations: exactly llama.cpp's conversions.

TEST(KernelActivations, Q8_0RoundsHalfToEven) {
    float x[64] = {};
    x[0] = 127.0f;  // amax 127: id = 1, d = 1
    const float ties[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.49f, -126.5f};
    const int8_t expected[] = {0, 2, 2, 0, -2, -2, 3, -126};
    for (int j = 0; j < 8; ++j) x[1 + j] = ties[j];
    float y[64];
    for (int j = 0; j < 32; ++j) x[32 + j] = 0.0f;  // an all-zero block: d = 0, q = 0
    BlockQ8_0 b[2];
    std::memset(b, 0x55, sizeof b);
    quantize_activations(TensorType::Q8_0, x, b, 64);
    EXPECT_EQ(b[0].d, 0x3C00);
    EXPECT_EQ(b[0].qs[0], 127);
    for (int j = 0; j < 8; ++j) EXPECT_EQ(b[0].qs[1 + j], expected[j]) << "x = " << ties[j];
    EXPECT_EQ(b[1].d, 0);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(b[1].qs[j], 0);
    // Q4_0 weights take the same activations.
    BlockQ8_0 c[2];
    quantize_activations(TensorType::Q4_0, x, c, 64);
    EXPECT_EQ(std::memcmp(b, c, sizeof b), 0);
    dequantize_row(TensorType::Q8_0, b, y, 64);
    EXPECT_EQ(y[2], 2.0f);
}

TEST(KernelActivations, Q8_0ScaleIsHalfOfAmaxOver127) {
    float x[32];
    for (int j = 0; j < 32; ++j) x[j] = 0.01f * (j - 20);  // amax 0.2 at j = 0
    BlockQ8_0 b;
    quantize_activations(TensorType::Q8_0, x, &b, 32);
    const float amax = std::fabs(x[0]);
    EXPECT_EQ(b.d, fp32_to_fp16(amax / 127.f));
    const float id = 127.f / amax;
    for (int j = 0; j < 32; ++j) EXPECT_EQ(b.qs[j], static_cast<int8_t>(std::nearbyint(x[j] * id))) << j;
    EXPECT_EQ(b.qs[0], -127);
}

TEST(KernelActivations, Q8_KUsesFirstLargestElementAndRoundsHalfToEven) {
    std::vector<float> x(512, 0.0f);
    const float max = -127.0f / 64;  // iscale = -127 / max = 64 exactly
    x[0] = max;
    x[5] = -max;  // same magnitude later: the first one sets the sign of the scale
    const float k[] = {1, 3, 5, -3, -5, 7, 64};
    const int8_t expected[] = {0, 2, 2, -2, -2, 4, 32};
    for (int j = 0; j < 7; ++j) x[10 + j] = k[j] / 128;  // iscale * x = k / 2
    x[300] = 1.0f;  // second super-block: max = 1, iscale = -127
    x[301] = -0.5f;
    std::vector<BlockQ8_K> b(2);
    quantize_activations(TensorType::Q4_K, x.data(), b.data(), 512);
    EXPECT_EQ(b[0].d, 1.0f / 64);
    EXPECT_EQ(b[0].qs[0], -127);
    EXPECT_EQ(b[0].qs[5], 127);
    for (int j = 0; j < 7; ++j) EXPECT_EQ(b[0].qs[10 + j], expected[j]) << "k = " << k[j];
    EXPECT_EQ(b[0].bsums[0], -127 + 127 + 0 + 2 + 2 - 2 - 2 + 4);
    EXPECT_EQ(b[0].bsums[1], 32);
    EXPECT_EQ(b[1].d, 1.0f / -127.0f);
    EXPECT_EQ(b[1].qs[300 - 256], -127);
    EXPECT_EQ(b[1].qs[301 - 256], 64);  // 63.5: to even
    EXPECT_EQ(b[1].bsums[(300 - 256) / 16], -63);
    std::vector<BlockQ8_K> c(2);
    quantize_activations(TensorType::Q6_K, x.data(), c.data(), 512);
    EXPECT_EQ(std::memcmp(b.data(), c.data(), 2 * sizeof(BlockQ8_K)), 0);
}

TEST(KernelActivations, Q8_KAllZero) {
    std::vector<float> x(256, 0.0f);
    BlockQ8_K b;
    std::memset(&b, 0x55, sizeof b);
    quantize_activations(TensorType::Q6_K, x.data(), &b, 256);
    EXPECT_EQ(b.d, 0.0f);
    for (int j = 0; j < 256; ++j) ASSERT_EQ(b.qs[j], 0);
    for (int j = 0; j < 16; ++j) ASSERT_EQ(b.bsums[j], 0);
}

TEST(KernelActivations, FloatTypesAndPublicMatchesReference) {
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.0f, 3.0f);
    const int64_t n = 768;
    std::vector<float> x(n);
    for (auto& v : x) v = dist(rng);
    x[17] = std::ldexp(1.0f, -20);  // a half subnormal
    std::vector<uint16_t> h(n);
    quantize_activations(TensorType::F16, x.data(), h.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(h[i], fp32_to_fp16(x[i]));
    quantize_activations(TensorType::BF16, x.data(), h.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(h[i], fp32_to_bf16(x[i]));
    std::vector<float> f(n);
    quantize_activations(TensorType::F32, x.data(), f.data(), n);
    EXPECT_EQ(f, x);
    for (TensorType w : {TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_K,
                         TensorType::Q6_K}) {
        const size_t bytes = row_bytes(vec_dot_type(w), n);
        std::vector<uint8_t> a(bytes, 1), b(bytes, 2);
        quantize_activations(w, x.data(), a.data(), n);
        ref::quantize_activations(w, x.data(), b.data(), n);
        EXPECT_EQ(a, b) << tensor_type_name(w);
    }
}

TEST(KernelActivations, VecDotTypes) {
    EXPECT_EQ(vec_dot_type(TensorType::F32), TensorType::F32);
    EXPECT_EQ(vec_dot_type(TensorType::F16), TensorType::F16);
    EXPECT_EQ(vec_dot_type(TensorType::BF16), TensorType::BF16);
    EXPECT_EQ(vec_dot_type(TensorType::Q8_0), TensorType::Q8_0);
    EXPECT_EQ(vec_dot_type(TensorType::Q4_0), TensorType::Q8_0);
    EXPECT_EQ(vec_dot_type(TensorType::Q4_K), TensorType::Q8_K);
    EXPECT_EQ(vec_dot_type(TensorType::Q6_K), TensorType::Q8_K);
    EXPECT_THROW(vec_dot_type(TensorType::Q8_K), Error);
}

// ---------------------------------------------------------------------------------------------
// Weight quantizers.

TEST(KernelQuantize, Q8_0IsGgmlReferenceRoundingAwayFromZero) {
    float x[32] = {};
    x[0] = 127.0f;
    x[1] = 2.5f;
    x[2] = -2.5f;
    x[3] = 0.49f;
    BlockQ8_0 b;
    quantize_row(TensorType::Q8_0, x, &b, 32);
    EXPECT_EQ(b.d, 0x3C00);
    EXPECT_EQ(b.qs[0], 127);
    EXPECT_EQ(b.qs[1], 3);
    EXPECT_EQ(b.qs[2], -3);
    EXPECT_EQ(b.qs[3], 0);
}

TEST(KernelQuantize, Q4_0IsGgmlReference) {
    float x[32];
    for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);  // max -16: d = 2, id = 0.5
    BlockQ4_0 b;
    quantize_row(TensorType::Q4_0, x, &b, 32);
    EXPECT_EQ(b.d, 0x4000);
    auto q = [](int j) { return std::min(15, (j + 1) / 2); };  // trunc((j - 16) / 2 + 8.5)
    for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], q(j) | (q(j + 16) << 4)) << j;
}

// Round trip: quantize random rows, dequantize, and bound every element's error by what the
// format can represent.
struct RoundTrip {
    std::vector<float> x, y;
    std::vector<uint8_t> q;
};

RoundTrip round_trip(TensorType type, int64_t n, uint32_t seed, float scale) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    RoundTrip rt;
    rt.x.resize(n);
    for (auto& v : rt.x) v = dist(rng);
    for (int64_t i = 0; i < n; i += 97) rt.x[i] *= 8;  // a few outliers
    for (int64_t i = 40; i < 72 && i < n; ++i) rt.x[i] = std::fabs(rt.x[i]) + 0.5f * scale;  // all positive
    rt.q.resize(row_bytes(type, n));
    quantize_row(type, rt.x.data(), rt.q.data(), n);
    rt.y.resize(n);
    dequantize_row(type, rt.q.data(), rt.y.data(), n);
    return rt;
}

float block_absmax(const std::vector<float>& x, int64_t begin, int64_t size) {
    float m = 0.0f;
    for (int64_t i = begin; i < begin + size; ++i) m = std::max(m, std::fabs(x[i]));
    return m;
}

TEST(KernelQuantize, RoundTripF16Bf16) {
    for (auto [type, rel] : {std::pair{TensorType::F16, std::ldexp(1.0f, -11)}, std::pair{TensorType::BF16, std::ldexp(1.0f, -8)}}) {
        const RoundTrip rt = round_trip(type, 1001, 3, 2.0f);
        for (size_t i = 0; i < rt.x.size(); ++i) ASSERT_LE(std::fabs(rt.y[i] - rt.x[i]), rel * std::fabs(rt.x[i])) << i;
    }
}

TEST(KernelQuantize, RoundTripQ8_0) {
    const RoundTrip rt = round_trip(TensorType::Q8_0, 32 * 9, 4, 1.0f);
    for (int64_t b = 0; b < 9; ++b) {
        const float d = block_absmax(rt.x, 32 * b, 32) / 127;
        for (int64_t i = 32 * b; i < 32 * b + 32; ++i) ASSERT_LE(std::fabs(rt.y[i] - rt.x[i]), d * 0.57f) << i;
    }
}

TEST(KernelQuantize, RoundTripQ4_0) {
    const RoundTrip rt = round_trip(TensorType::Q4_0, 32 * 9, 5, 1.0f);
    double err2 = 0, x2 = 0;
    for (int64_t b = 0; b < 9; ++b) {
        const float d = block_absmax(rt.x, 32 * b, 32) / 8;
        for (int64_t i = 32 * b; i < 32 * b + 32; ++i) {
            // The level opposite the largest element is missing (-8..7): up to one step there.
            ASSERT_LE(std::fabs(rt.y[i] - rt.x[i]), d * 1.01f) << i;
            err2 += (rt.y[i] - rt.x[i]) * (rt.y[i] - rt.x[i]);
            x2 += rt.x[i] * rt.x[i];
        }
    }
    EXPECT_LT(std::sqrt(err2 / x2), 0.15);
}

TEST(KernelQuantize, RoundTripQ4_K) {
    for (float scale : {1.0f, 1e-3f, 300.0f}) {
        const RoundTrip rt = round_trip(TensorType::Q4_K, 256 * 3, 6, scale);
        double err2 = 0, x2 = 0;
        for (int64_t b = 0; b < 3; ++b) {
            const float A = block_absmax(rt.x, 256 * b, 256);
            for (int64_t j = 0; j < 8; ++j) {
                const int64_t s = 256 * b + 32 * j;
                float lo = 0, hi = 0;
                for (int64_t i = s; i < s + 32; ++i) {
                    lo = std::min(lo, rt.x[i]);
                    hi = std::max(hi, rt.x[i]);
                }
                // step <= (range + dmin) / 15 + d, dmin <= A / 63, d <= (2A + A/63) / (15 * 63)
                const float step = ((hi - lo) + A / 63) / 15 + (2 * A + A / 63) / (15 * 63);
                for (int64_t i = s; i < s + 32; ++i)
                    ASSERT_LE(std::fabs(rt.y[i] - rt.x[i]), 0.5f * step * 1.002f) << "scale " << scale << " i " << i;
            }
        }
        for (size_t i = 0; i < rt.x.size(); ++i) {
            err2 += (rt.y[i] - rt.x[i]) * (rt.y[i] - rt.x[i]);
            x2 += rt.x[i] * rt.x[i];
        }
        EXPECT_LT(std::sqrt(err2 / x2), 0.12) << scale;
    }
}

TEST(KernelQuantize, RoundTripQ6_K) {
    for (float scale : {1.0f, 1e-3f, 300.0f}) {
        const RoundTrip rt = round_trip(TensorType::Q6_K, 256 * 3, 7, scale);
        double err2 = 0, x2 = 0;
        for (int64_t b = 0; b < 3; ++b) {
            const float A = block_absmax(rt.x, 256 * b, 256);
            for (int64_t g = 0; g < 16; ++g) {
                const int64_t s = 256 * b + 16 * g;
                const float step = block_absmax(rt.x, s, 16) / 31 + A / 31 / 127;
                for (int64_t i = s; i < s + 16; ++i)
                    ASSERT_LE(std::fabs(rt.y[i] - rt.x[i]), 0.5f * step * 1.002f) << "scale " << scale << " i " << i;
            }
        }
        for (size_t i = 0; i < rt.x.size(); ++i) {
            err2 += (rt.y[i] - rt.x[i]) * (rt.y[i] - rt.x[i]);
            x2 += rt.x[i] * rt.x[i];
        }
        EXPECT_LT(std::sqrt(err2 / x2), 0.03) << scale;
    }
}

TEST(KernelQuantize, ZeroRowsStayZero) {
    for (TensorType type : {TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_K, TensorType::Q6_K}) {
        std::vector<float> x(256, 0.0f), y(256, 1.0f);
        std::vector<uint8_t> q(row_bytes(type, 256));
        quantize_row(type, x.data(), q.data(), 256);
        dequantize_row(type, q.data(), y.data(), 256);
        for (float v : y) ASSERT_EQ(v, 0.0f) << tensor_type_name(type);
    }
}

TEST(KernelQuantize, RejectsRowsNotMultipleOfBlock) {
    std::vector<float> x(300);
    std::vector<uint8_t> q(1024);
    EXPECT_THROW(quantize_row(TensorType::Q4_K, x.data(), q.data(), 300), Error);
    EXPECT_THROW(quantize_activations(TensorType::Q8_0, x.data(), q.data(), 33), Error);
}

}  // namespace
}  // namespace critdim::kernels
