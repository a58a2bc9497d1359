// critdim kernels: the tensor types critdim computes with (F32, F16, BF16, Q8_0, Q4_0, Q4_K,
// Q6_K, and Q8_K for activations), their dequantization and quantization, and the dot products
// and matrix products of weights with activations, each with a scalar reference and SIMD
// versions chosen at run time (AVX-512 where present, else AVX2, else scalar).
//
// Like llama.cpp's CPU backend, a weight row meets the activations in the weight's
// "vec_dot type": activations are first converted (F16 -> half, BF16 -> bfloat16, Q8_0/Q4_0 ->
// Q8_0 blocks of 32, Q4_K/Q6_K -> Q8_K blocks of 256) and the dot product runs on the pair.
#pragma once

#include <cstddef>
#include <cstdint>

#include "critdim/base.hpp"

namespace critdim::kernels {

// IEEE half and bfloat16 conversions (round to nearest even, as ggml does).
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

// The type activations are converted to before meeting a weight of type `weight`.
TensorType vec_dot_type(TensorType weight);

// Bytes of one row of n elements of `type` (n must be a multiple of its block size).
inline size_t row_bytes(TensorType type, int64_t n) { return tensor_row_bytes(type, n); }

// Dequantize n elements (n a multiple of the block size). Any supported type, and Q8_K.
void dequantize_row(TensorType type, const void* src, float* dst, int64_t n);

// Quantize n elements to `type`. For weights (F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K) this is
// ggml's reference quantizer where it is exact to state (F16, BF16, Q8_0, Q4_0) and a
// faithful block format for the k-quants; for activations use quantize_activations.
void quantize_row(TensorType type, const float* src, void* dst, int64_t n);

// Convert a row of float32 activations to vec_dot_type(weight), exactly as llama.cpp's CPU
// backend does (Q8_0: d = half(amax/127), q = round-half-even(x*127/amax); Q8_K: see .cpp).
void quantize_activations(TensorType weight, const float* src, void* dst, int64_t n);

// dot(weight row w of type `weight`, activation row x already in vec_dot_type(weight)).
float vec_dot(TensorType weight, int64_t n, const void* w, const void* x);

// Matrix product on a block of weight rows:
//   y[t * y_stride + r] = dot(w row r, x row t)   for r in [r0, r1), t in [0, n_tok)
// w rows are w_row_bytes apart, x rows (in vec_dot_type(weight)) x_row_bytes apart.
// Single-threaded; callers split [0, n_rows) across threads.
void gemm(TensorType weight, int64_t n, const void* w, size_t w_row_bytes, int64_t r0, int64_t r1, const void* x,
          size_t x_row_bytes, int64_t n_tok, float* y, int64_t y_stride);

// Which implementation runs: "avx512", "avx2" or "scalar". set_backend() forces one (tests
// compare each against the scalar reference); it refuses one the CPU cannot run.
const char* backend_name();
enum class Backend { scalar, avx2, avx512 };
Backend detected_backend();
void set_backend(Backend backend);

// The scalar reference of every kernel above: plain loops, the ground truth for tests.
namespace ref {
void dequantize_row(TensorType type, const void* src, float* dst, int64_t n);
void quantize_activations(TensorType weight, const float* src, void* dst, int64_t n);
float vec_dot(TensorType weight, int64_t n, const void* w, const void* x);
}  // namespace ref

}  // namespace critdim::kernels
