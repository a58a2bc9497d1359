// Kernels, products: vec_dot and gemm of every backend this CPU runs against the scalar
// reference, on random data of awkward sizes; the reference itself against float64 sums of
// the dequantized rows; backend selection.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "critdim/kernels.hpp"
#include "kernels/cpu_features.hpp"
#include "kernels/internal.hpp"

namespace critdim::kernels {
namespace {

bool cpu_runs(Backend b) {
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && test::cpu_has_f16c();
    switch (b) {
        case Backend::scalar: return true;
        case Backend::avx2: return avx2;
        case Backend::avx512:
            return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    }
    return false;
}

const char* name_of(Backend b) {
    switch (b) {
        case Backend::scalar: return "scalar";
        case Backend::avx2: return "avx2";
        case Backend::avx512: return "avx512";
    }
    return "?";
}

std::vector<Backend> runnable_backends() {
    std::vector<Backend> out;
    for (Backend b : {Backend::scalar, Backend::avx2, Backend::avx512})
        if (cpu_runs(b)) out.push_back(b);
    return out;
}

// Restores the detected backend when a test ends, whatever it forced.
struct BackendGuard {
    ~BackendGuard() { set_backend(detected_backend()); }
};

const TensorType kWeightTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,
                                   TensorType::Q4_0, TensorType::Q4_K, TensorType::Q6_K};

// Weight rows of random content. Quantized types get random bytes for every quant and
// sub-block scale (all bit patterns, Q8_0's -128 and Q6_K's negative scales included) and a
// random finite fp16 for each super-block scale.
std::vector<uint8_t> random_weights(TensorType type, int64_t n, int64_t rows, std::mt19937& rng) {
    const size_t rb = row_bytes(type, n);
    std::vector<uint8_t> w(rb * rows);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uniform(0.001f, 0.05f);
    auto scale = [&] { return fp32_to_fp16(uniform(rng) * (rng() % 2 ? 1.0f : -1.0f)); };
    auto put16 = [](uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); };
    if (type == TensorType::F32 || type == TensorType::F16 || type == TensorType::BF16) {
        std::vector<float> x(n);
        for (int64_t r = 0; r < rows; ++r) {
            for (auto& v : x) v = normal(rng);
            quantize_row(type, x.data(), w.data() + r * rb, n);
        }
        return w;
    }
    for (auto& byte : w) byte = static_cast<uint8_t>(rng());
    const int64_t block = tensor_type_info(type).block_size, block_bytes = tensor_type_info(type).block_bytes;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t b = 0; b < n / block; ++b) {
            uint8_t* p = w.data() + r * rb + b * block_bytes;
            switch (type) {
                case TensorType::Q8_0:
                case TensorType::Q4_0: put16(p, scale()); break;
                case TensorType::Q4_K:
                    put16(p, scale());
                    put16(p + 2, fp32_to_fp16(uniform(rng)));
                    break;
                case TensorType::Q6_K: put16(p + 208, scale()); break;
                default: break;
            }
        }
    return w;
}

// Activation rows as the model makes them: random floats through quantize_activations.
std::vector<uint8_t> random_activations(TensorType weight, int64_t n, int64_t n_tok, std::mt19937& rng) {
    const size_t rb = row_bytes(vec_dot_type(weight), n);
    std::vector<uint8_t> x(rb * n_tok);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> row(n);
    for (int64_t t = 0; t < n_tok; ++t) {
        for (auto& v : row) v = normal(rng);
        if (t % 3 == 1) row[t % n] = 40.0f;  // an outlier dimension
        quantize_activations(weight, row.data(), x.data() + t * rb, n);
    }
    return x;
}

// sum_i |w_i| |x_i| over the dequantized rows (for Q4_K with each element's min term counted
// apart, since d*sc*q and dmin*m may cancel): the scale of the rounding differences that a
// different float summation order may cause.
double magnitude(TensorType type, int64_t n, const uint8_t* w, const uint8_t* x) {
    std::vector<float> wf(n), xf(n), mins(n, 0.0f);
    dequantize_row(type, w, wf.data(), n);
    dequantize_row(vec_dot_type(type), x, xf.data(), n);
    if (type == TensorType::Q4_K)
        for (int64_t b = 0; b < n / 256; ++b) {
            const auto& blk = reinterpret_cast<const detail::BlockQ4_K*>(w)[b];
            for (int j = 0; j < 8; ++j) {
                uint8_t sc, m;
                detail::scale_min_k4(j, blk.scales, sc, m);
                for (int l = 0; l < 32; ++l) mins[256 * b + 32 * j + l] = fp16_to_fp32(blk.dmin) * m;
            }
        }
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += (std::fabs(wf[i]) + 2.0 * mins[i]) * std::fabs(xf[i]);
    return s;
}

double tolerance(TensorType type, int64_t n, const uint8_t* w, const uint8_t* x) {
    return 2e-5 * magnitude(type, n, w, x) + 1e-30;
}

std::vector<int64_t> sizes_of(TensorType type) {
    switch (type) {
        case TensorType::F32:
        case TensorType::F16:
        case TensorType::BF16: return {1, 7, 8, 9, 31, 33, 100, 577};
        case TensorType::Q8_0:
        case TensorType::Q4_0: return {32, 64, 32 * 7, 576};
        default: return {256, 256 * 3, 1536};
    }
}

TEST(KernelBackend, SelectionAndRefusal) {
    BackendGuard guard;
    const std::vector<Backend> ok = runnable_backends();
    EXPECT_TRUE(cpu_runs(detected_backend()));
    EXPECT_EQ(detected_backend(), ok.back());  // the widest one the CPU runs
    for (Backend b : {Backend::scalar, Backend::avx2, Backend::avx512}) {
        if (cpu_runs(b)) {
            set_backend(b);
            EXPECT_STREQ(backend_name(), name_of(b));
        } else {
            try {
                set_backend(b);
                ADD_FAILURE() << name_of(b) << " accepted on a CPU without it";
            } catch (const Error& e) {
                EXPECT_EQ(e.kind(), ErrorKind::usage);
                EXPECT_NE(std::string(e.what()).find(name_of(b)), std::string::npos);
            }
            std::fprintf(stderr, "note: this CPU cannot run the %s kernels; they are not tested here\n", name_of(b));
        }
    }
}

// The reference against float64 sums over the dequantized rows: what llama.cpp computes up to
// float32 rounding of the per-block sums.
TEST(KernelReference, VecDotMatchesDequantizedSum) {
    std::mt19937 rng(11);
    for (TensorType type : kWeightTypes)
        for (int64_t n : sizes_of(type)) {
            const auto w = random_weights(type, n, 1, rng);
            const auto x = random_activations(type, n, 1, rng);
            std::vector<float> wf(n), xf(n);
            dequantize_row(type, w.data(), wf.data(), n);
            dequantize_row(vec_dot_type(type), x.data(), xf.data(), n);
            double expected = 0;
            for (int64_t i = 0; i < n; ++i) expected += static_cast<double>(wf[i]) * xf[i];
            EXPECT_NEAR(ref::vec_dot(type, n, w.data(), x.data()), expected, tolerance(type, n, w.data(), x.data()))
                << tensor_type_name(type) << " n " << n;
        }
}

TEST(KernelVecDot, EveryBackendMatchesReference) {
    BackendGuard guard;
    std::mt19937 rng(12);
    for (Backend backend : runnable_backends()) {
        set_backend(backend);
        for (TensorType type : kWeightTypes)
            for (int64_t n : sizes_of(type)) {
                const auto w = random_weights(type, n, 1, rng);
                const auto x = random_activations(type, n, 1, rng);
                const float expected = ref::vec_dot(type, n, w.data(), x.data());
                EXPECT_NEAR(vec_dot(type, n, w.data(), x.data()), expected, tolerance(type, n, w.data(), x.data()))
                    << name_of(backend) << " " << tensor_type_name(type) << " n " << n;
            }
    }
}

// Every backend's activation conversion is bit-identical to the reference, on data with ties
// (multiples of 1/64 against scales that are powers of two), zero blocks, outliers, and for
// F16 subnormals, infinities and NaNs.
TEST(KernelActivations, EveryBackendIsBitIdenticalToReference) {
    BackendGuard guard;
    std::mt19937 rng(16);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (Backend backend : runnable_backends()) {
        set_backend(backend);
        for (TensorType w : kWeightTypes)
            for (int64_t n : sizes_of(w)) {
                std::vector<float> x(n);
                for (int64_t i = 0; i < n; ++i) {
                    const uint32_t kind = rng() % 4;
                    x[i] = kind == 0 ? static_cast<float>(static_cast<int>(rng() % 257) - 128) / 64 : normal(rng);
                }
                if (n >= 64)
                    for (int64_t i = 32; i < 64; ++i) x[i] = 0.0f;  // a zero Q8_0 block
                if (n > 100) x[100] = -127.0f / 64;  // an exact Q8_K scale for the first super-block
                if (w == TensorType::F16 || w == TensorType::F32) {
                    x[0] = std::numeric_limits<float>::quiet_NaN();
                    if (n > 5) x[5] = std::ldexp(1.0f, -20) * 3;
                    if (n > 6) x[6] = -std::numeric_limits<float>::infinity();
                    if (n > 7) x[7] = 70000.0f;
                }
                const size_t bytes = row_bytes(vec_dot_type(w), n);
                std::vector<uint8_t> got(bytes, 0xAA), expected(bytes, 0x55);
                quantize_activations(w, x.data(), got.data(), n);
                ref::quantize_activations(w, x.data(), expected.data(), n);
                ASSERT_EQ(got, expected) << name_of(backend) << " " << tensor_type_name(w) << " n " << n;
            }
    }
}

struct GemmCase {
    int64_t n, rows, r0, r1, n_tok;
};

void check_gemm(TensorType type, const GemmCase& c, std::mt19937& rng, const char* backend) {
    const auto w = random_weights(type, c.n, c.rows, rng);
    const auto x = random_activations(type, c.n, c.n_tok, rng);
    const size_t wrb = row_bytes(type, c.n), xrb = row_bytes(vec_dot_type(type), c.n);
    const int64_t y_stride = c.rows + 3;
    const float canary = -12345.0f;
    std::vector<float> y(y_stride * c.n_tok, canary);
    gemm(type, c.n, w.data(), wrb, c.r0, c.r1, x.data(), xrb, c.n_tok, y.data(), y_stride);
    for (int64_t t = 0; t < c.n_tok; ++t)
        for (int64_t r = 0; r < y_stride; ++r) {
            const float got = y[t * y_stride + r];
            if (r < c.r0 || r >= c.r1) {
                ASSERT_EQ(got, canary) << "wrote outside rows [r0, r1): r " << r << " t " << t;
                continue;
            }
            const uint8_t* wr = w.data() + r * wrb;
            const uint8_t* xt = x.data() + t * xrb;
            ASSERT_NEAR(got, ref::vec_dot(type, c.n, wr, xt), tolerance(type, c.n, wr, xt))
                << backend << " " << tensor_type_name(type) << " n " << c.n << " rows [" << c.r0 << ", " << c.r1
                << ") n_tok " << c.n_tok << ": r " << r << " t " << t;
        }
}

TEST(KernelGemm, EveryBackendMatchesReference) {
    BackendGuard guard;
    std::mt19937 rng(13);
    for (Backend backend : runnable_backends()) {
        set_backend(backend);
        for (TensorType type : kWeightTypes) {
            const std::vector<int64_t> sizes = sizes_of(type);
            const int64_t n_small = sizes[1], n_big = sizes.back();
            for (const GemmCase& c : {GemmCase{n_small, 13, 0, 13, 1}, GemmCase{n_big, 13, 1, 12, 3},
                                      GemmCase{n_small, 9, 2, 9, 17}, GemmCase{n_big, 5, 0, 5, 8},
                                      GemmCase{n_small, 1, 0, 1, 5}, GemmCase{n_big, 4, 3, 4, 1}})
                check_gemm(type, c, rng, name_of(backend));
        }
    }
}

// Rows long enough that the row chunks (kept in L2 while the token tiles pass) hold only a
// few rows, so a gemm crosses several chunk borders.
TEST(KernelGemm, LongRowsCrossChunks) {
    BackendGuard guard;
    std::mt19937 rng(14);
    for (Backend backend : runnable_backends()) {
        if (backend == Backend::scalar) continue;
        set_backend(backend);
        check_gemm(TensorType::F32, GemmCase{8191, 19, 1, 18, 6}, rng, name_of(backend));
        check_gemm(TensorType::Q8_0, GemmCase{32 * 1024, 15, 0, 15, 5}, rng, name_of(backend));
        check_gemm(TensorType::Q4_K, GemmCase{256 * 128, 11, 2, 11, 5}, rng, name_of(backend));
    }
}

TEST(KernelGemm, EmptyRangesWriteNothing) {
    std::mt19937 rng(15);
    const auto w = random_weights(TensorType::Q8_0, 64, 4, rng);
    const auto x = random_activations(TensorType::Q8_0, 64, 2, rng);
    std::vector<float> y(8, 7.0f);
    gemm(TensorType::Q8_0, 64, w.data(), 68, 2, 2, x.data(), 68, 2, y.data(), 4);
    gemm(TensorType::Q8_0, 64, w.data(), 68, 0, 4, x.data(), 68, 0, y.data(), 4);
    for (float v : y) EXPECT_EQ(v, 7.0f);
}

TEST(KernelGemm, RejectsBadArguments) {
    std::vector<uint8_t> buf(4096);
    float y[4];
    EXPECT_THROW(gemm(TensorType::Q4_K, 200, buf.data(), 0, 0, 1, buf.data(), 0, 1, y, 1), Error);
    EXPECT_THROW(gemm(TensorType::Q8_K, 256, buf.data(), 0, 0, 1, buf.data(), 0, 1, y, 1), Error);
    EXPECT_THROW(vec_dot(TensorType::Q8_0, 48, buf.data(), buf.data()), Error);
}

}  // namespace
}  // namespace critdim::kernels
