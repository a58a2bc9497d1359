// The x86 SIMD kernels on 256-bit vectors, included by avx2.cpp and avx512.cpp, which set:
//   CRITDIM_X86_NS    the namespace the kernels live in (one per backend)
//   CRITDIM_X86_NAME  the backend's name
//   CRITDIM_X86_VNNI  1 to sum u8*s8 products with vpdpbusd (AVX-512 VNNI), 0 for maddubs+madd
//   CRITDIM_X86_{FLOAT,Q32,QK}_{RM,RN}  register tile sizes (weight rows x tokens) per kind
// The AVX-512 build shares this code on ymm registers: it gains VNNI and 32 registers (bigger
// tiles); on AMD Zen 4 a zmm operation costs two ymm ones, so ymm loses nothing there.
//
// gemm walks register tiles of RM weight rows x RN tokens: each tile loads every weight block
// once and multiplies it with RN activation rows. Rows are taken in chunks that stay in L2
// while all the token tiles pass over them.
//
// Everything here has internal linkage and uses no std:: function templates, so no function
// compiled with these flags can be merged with (and replace) a generic copy at link time.
#include <immintrin.h>

#include <type_traits>
#include <utility>

#include "kernels/internal.hpp"

namespace critdim::kernels::detail::CRITDIM_X86_NS {
namespace {

using TileFn = void (*)(const GemmArgs& a, int64_t r, int64_t t);

constexpr int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
constexpr int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline float half(uint16_t h) { return _cvtsh_ss(h); }

// Sums of four u8*s8 products in each int32 lane (exact: no saturation for |s| <= 127).
inline __m256i dot_u8s8(__m256i u, __m256i s) {
#if CRITDIM_X86_VNNI
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

// Generation streams every weight from memory once per token. The hardware prefetchers alone
// leave the quantized kernels (much work per byte, few loads in flight) at a third of the
// bandwidth a plain float sum reaches; asking for the line 2 KiB ahead of the one in use
// doubles it (gemm_dram in bench/kernels_bench.cpp: Q8_0 2.4 -> 5.9 GB/s, Q4_K 2.5 -> 6.0 on
// one thread). The distance is about what a core fetches in one DRAM latency.
constexpr int kPrefetchBytes = 2048;
inline void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0); }

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// ---------------------------------------------------------------------------------------------
// The tile driver.

template <template <int, int> class Tile, int RM, int RN>
struct TileTable {
    TileFn fn[RM * RN];
    constexpr TileTable() : fn{} {
        [this]<int... I>(std::integer_sequence<int, I...>) { ((fn[I] = &Tile<I / RN + 1, I % RN + 1>::run), ...); }
        (std::make_integer_sequence<int, RM * RN>{});
    }
};

constexpr size_t kRowChunkBytes = 128 * 1024;  // weight rows per chunk: well inside L2

template <template <int, int> class Tile, int RM, int RN>
void gemm_tiled(const GemmArgs& a, int64_t r0, int64_t r1, int64_t n_tok) {
    static constexpr TileTable<Tile, RM, RN> tiles;
    const int64_t rows_per_chunk = static_cast<int64_t>(kRowChunkBytes / (a.w_row_bytes ? a.w_row_bytes : 1));
    const int64_t chunk = imax(RM, rows_per_chunk / RM * RM);
    for (int64_t rc = r0; rc < r1; rc += chunk) {
        const int64_t rc_end = imin(r1, rc + chunk);
        for (int64_t t = 0; t < n_tok; t += RN) {
            const int64_t nt = imin(RN, n_tok - t);
            for (int64_t r = rc; r < rc_end; r += RM) {
                const int64_t nr = imin(RM, rc_end - r);
                tiles.fn[(nr - 1) * RN + (nt - 1)](a, r, t);
            }
        }
    }
}

template <template <int, int> class Tile>
float vec_dot_one(int64_t n, const void* w, const void* x) {
    float y = 0;
    const GemmArgs a{n, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(x), 0, &y, 1};
    Tile<1, 1>::run(a, 0, 0);
    return y;
}

template <class Block, int N>
void row_pointers(const uint8_t* base, size_t row_bytes, int64_t first, const Block* (&rows)[N]) {
    for (int i = 0; i < N; ++i) rows[i] = reinterpret_cast<const Block*>(base + (first + i) * row_bytes);
}

// ---------------------------------------------------------------------------------------------
// F32, F16, BF16: both operands widened to float32, fused multiply-add in float32.

struct LoadF32 {
    static constexpr int kBytes = 4;
    static __m256 load8(const uint8_t* p, int64_t k) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p) + k); }
    static float load1(const uint8_t* p, int64_t k) {
        float v;
        std::memcpy(&v, p + 4 * k, 4);
        return v;
    }
};
struct LoadF16 {
    static constexpr int kBytes = 2;
    static __m256 load8(const uint8_t* p, int64_t k) { return _mm256_cvtph_ps(load128(p + 2 * k)); }
    static float load1(const uint8_t* p, int64_t k) {
        uint16_t h;
        std::memcpy(&h, p + 2 * k, 2);
        return half(h);
    }
};
struct LoadBF16 {
    static constexpr int kBytes = 2;
    static __m256 load8(const uint8_t* p, int64_t k) {
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(p + 2 * k)), 16));
    }
    static float load1(const uint8_t* p, int64_t k) {
        uint16_t h;
        std::memcpy(&h, p + 2 * k, 2);
        return bf16_to_float(h);
    }
};

template <class Load>
struct FloatTiles {
    template <int RM, int RN>
    struct Tile {
        static void run(const GemmArgs& a, int64_t r, int64_t t) {
            const uint8_t* w[RM];
            const uint8_t* x[RN];
            for (int i = 0; i < RM; ++i) w[i] = a.w + (r + i) * a.w_row_bytes;
            for (int j = 0; j < RN; ++j) x[j] = a.x + (t + j) * a.x_row_bytes;
            __m256 acc[RM][RN];
            for (int i = 0; i < RM; ++i)
                for (int j = 0; j < RN; ++j) acc[i][j] = _mm256_setzero_ps();
            int64_t k = 0;
            for (; k + 8 <= a.n; k += 8) {
                __m256 xv[RN];
                for (int j = 0; j < RN; ++j) xv[j] = Load::load8(x[j], k);
                for (int i = 0; i < RM; ++i) {
                    prefetch(w[i] + k * Load::kBytes);
                    const __m256 wv = Load::load8(w[i], k);
                    for (int j = 0; j < RN; ++j) acc[i][j] = _mm256_fmadd_ps(wv, xv[j], acc[i][j]);
                }
            }
            for (int i = 0; i < RM; ++i)
                for (int j = 0; j < RN; ++j) {
                    float s = hsum(acc[i][j]);
                    for (int64_t kk = k; kk < a.n; ++kk) s += Load::load1(w[i], kk) * Load::load1(x[j], kk);
                    a.y[(t + j) * a.y_stride + r + i] = s;
                }
        }
    };
};

// ---------------------------------------------------------------------------------------------
// Q8_0 and Q4_0 weights with Q8_0 activations: per block of 32 an exact integer dot product,
// then acc += float(isum) * d_w * d_x in float32 lanes (summed across lanes at the end).

struct WeightQ8_0 {
    using Block = BlockQ8_0;
    static __m256i quants(const Block& b) { return load256(b.qs); }
};
struct WeightQ4_0 {
    using Block = BlockQ4_0;
    static __m256i quants(const Block& b) {  // -8 .. 7, in element order
        const __m128i q = load128(b.qs), m4 = _mm_set1_epi8(0x0F);
        const __m128i lo = _mm_and_si128(q, m4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
        return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
    }
};

template <class Weight>
struct Block32Tiles {
    using Block = typename Weight::Block;
    template <int RM, int RN>
    struct Tile {
        static void run(const GemmArgs& a, int64_t r, int64_t t) {
            const Block* w[RM];
            const BlockQ8_0* x[RN];
            row_pointers(a.w, a.w_row_bytes, r, w);
            row_pointers(a.x, a.x_row_bytes, t, x);
            __m256 acc[RM][RN];
            for (int i = 0; i < RM; ++i)
                for (int j = 0; j < RN; ++j) acc[i][j] = _mm256_setzero_ps();
            const int64_t nb = a.n / kQK8_0;
            for (int64_t b = 0; b < nb; ++b) {
                // |w| as the unsigned operand and x with w's sign: exact for every int8 weight
                // (also -128) since activations stay within -127..127.
                __m256i xq[RN];
                __m256 dx[RN];
                for (int j = 0; j < RN; ++j) {
                    xq[j] = load256(x[j][b].qs);
                    dx[j] = _mm256_set1_ps(half(x[j][b].d));
                }
                for (int i = 0; i < RM; ++i) {
                    prefetch(&w[i][b]);
                    const __m256i wq = Weight::quants(w[i][b]);
                    const __m256i w_abs = _mm256_sign_epi8(wq, wq);
                    const __m256 dw = _mm256_set1_ps(half(w[i][b].d));
                    for (int j = 0; j < RN; ++j) {
                        const __m256i isum = dot_u8s8(w_abs, _mm256_sign_epi8(xq[j], wq));
                        acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, dx[j]), acc[i][j]);
                    }
                }
            }
            for (int i = 0; i < RM; ++i)
                for (int j = 0; j < RN; ++j) a.y[(t + j) * a.y_stride + r + i] = hsum(acc[i][j]);
        }
    };
};

// ---------------------------------------------------------------------------------------------
// Q4_K and Q6_K weights with Q8_K activations. Each weight super-block of the tile's rows is
// first unpacked to unsigned bytes plus int16 scale vectors (once, for all RN tokens); then
// per (row, token): isum = sum_j madd(maddubs(q_j, x_j), scale_j), exact in int32.

// Per unpacked row: 256 quants and, for each 32-element chunk j, the int16 scale of each
// maddubs lane (lanes 0-7 cover elements 0-15 of the chunk, lanes 8-15 elements 16-31).
struct UnpackedK {
    alignas(32) uint8_t q[kQK_K];
    __m256i scale[8];
    __m256i bsum_weights;  // Q4_K: mins per 16 elements; Q6_K: 32 * scales per 16 elements
    float d, dmin;
};

struct WeightQ4_K {
    using Block = BlockQ4_K;
    static void unpack(const Block& b, UnpackedK& u) {
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        for (int pair = 0; pair < 4; ++pair) {
            const __m256i v = load256(b.qs + 32 * pair);
            _mm256_store_si256(reinterpret_cast<__m256i*>(u.q + 64 * pair), _mm256_and_si256(v, m4));
            _mm256_store_si256(reinterpret_cast<__m256i*>(u.q + 64 * pair + 32),
                               _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
        }
        alignas(16) uint8_t mins[16];
        for (int j = 0; j < 8; ++j) {
            uint8_t sc, m;
            scale_min_k4(j, b.scales, sc, m);
            u.scale[j] = _mm256_set1_epi16(sc);
            mins[2 * j] = mins[2 * j + 1] = m;
        }
        u.bsum_weights = _mm256_cvtepu8_epi16(load128(mins));
        u.d = half(b.d);
        u.dmin = half(b.dmin);
    }
};

struct WeightQ6_K {
    using Block = BlockQ6_K;
    static void unpack(const Block& b, UnpackedK& u) {  // quants 0..63 (stored value + 32)
        const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
        for (int h = 0; h < 2; ++h) {
            const __m256i ql0 = load256(b.ql + 64 * h), ql1 = load256(b.ql + 64 * h + 32);
            const __m256i qh = load256(b.qh + 32 * h);
            auto* out = reinterpret_cast<__m256i*>(u.q + 128 * h);
            _mm256_store_si256(
                out + 0, _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)));
            _mm256_store_si256(
                out + 1, _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)));
            _mm256_store_si256(
                out + 2, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30)));
            _mm256_store_si256(out + 3, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                                        _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30)));
        }
        for (int j = 0; j < 8; ++j)
            u.scale[j] = _mm256_set_m128i(_mm_set1_epi16(b.scales[2 * j + 1]), _mm_set1_epi16(b.scales[2 * j]));
        // sum (q - 32) * x = sum q * x - 32 * sum x: the second term from the bsums.
        u.bsum_weights = _mm256_slli_epi16(_mm256_cvtepi8_epi16(load128(b.scales)), 5);
        u.d = half(b.d);
        u.dmin = 0.0f;
    }
};

template <class Weight>
struct SuperBlockTiles {
    using Block = typename Weight::Block;
    template <int RM, int RN>
    struct Tile {
        static void run(const GemmArgs& a, int64_t r, int64_t t) {
            const Block* w[RM];
            const BlockQ8_K* x[RN];
            row_pointers(a.w, a.w_row_bytes, r, w);
            row_pointers(a.x, a.x_row_bytes, t, x);
            __m256 acc[RM][RN];
            for (int i = 0; i < RM; ++i)
                for (int j = 0; j < RN; ++j) acc[i][j] = _mm256_setzero_ps();
            UnpackedK u[RM];
            const int64_t nb = a.n / kQK_K;
            for (int64_t b = 0; b < nb; ++b) {
                for (int i = 0; i < RM; ++i) {
                    prefetch(&w[i][b]);
                    prefetch(reinterpret_cast<const uint8_t*>(&w[i][b]) + 64);
                    prefetch(reinterpret_cast<const uint8_t*>(&w[i][b]) + 128);
                    Weight::unpack(w[i][b], u[i]);
                }
                for (int j = 0; j < RN; ++j) {
                    const BlockQ8_K& xb = x[j][b];
                    const __m256i bsums = load256(xb.bsums);
                    for (int i = 0; i < RM; ++i) {
                        __m256i isum = _mm256_setzero_si256();
                        for (int c = 0; c < 8; ++c) {
                            const __m256i p = _mm256_maddubs_epi16(
                                _mm256_load_si256(reinterpret_cast<const __m256i*>(u[i].q + 32 * c)),
                                load256(xb.qs + 32 * c));
                            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, u[i].scale[c]));
                        }
                        const __m256i bsum_term = _mm256_madd_epi16(bsums, u[i].bsum_weights);
                        if constexpr (std::is_same_v<Weight, WeightQ6_K>) {
                            isum = _mm256_sub_epi32(isum, bsum_term);
                            acc[i][j] =
                                _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(u[i].d * xb.d), acc[i][j]);
                        } else {
                            acc[i][j] =
                                _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(u[i].d * xb.d), acc[i][j]);
                            acc[i][j] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(bsum_term),
                                                         _mm256_set1_ps(u[i].dmin * xb.d), acc[i][j]);
                        }
                    }
                }
            }
            for (int i = 0; i < RM; ++i)
                for (int j = 0; j < RN; ++j) a.y[(t + j) * a.y_stride + r + i] = hsum(acc[i][j]);
        }
    };
};

// ---------------------------------------------------------------------------------------------
// Activation conversions, bit-identical to the scalar reference (and to llama.cpp's AVX code).

void activations_f32(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, static_cast<size_t>(n) * 4); }

void activations_f16(const float* src, void* dst, int64_t n) {
    auto* h = static_cast<uint16_t*>(dst);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)  // F16C rounds to nearest even and keeps NaNs quiet, as the reference
        _mm_storeu_si128(reinterpret_cast<__m128i*>(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) h[i] = float_to_half(src[i]);
}

void activations_bf16(const float* src, void* dst, int64_t n) {
    auto* h = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) h[i] = float_to_bf16(src[i]);
}

inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

inline int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

// round-half-even(x * scale) for 32 floats, as four int32 vectors.
inline void round_32(const float* x, __m256 scale, __m256i (&i32)[4]) {
    for (int k = 0; k < 4; ++k)
        i32[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), scale),
                                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// Four int32 vectors (values within int8) to 32 int8 in element order.
inline void store_packed_32(int8_t* dst, const __m256i (&i32)[4]) {
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i32[0], i32[1]), _mm256_packs_epi32(i32[2], i32[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst),  // undo the per-lane interleave of the packs
                        _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

void activations_q8_0(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockQ8_0*>(dst);
    for (int64_t b = 0; b < n / kQK8_0; ++b) {
        const float* x = src + b * kQK8_0;
        __m256 m = abs_ps(_mm256_loadu_ps(x));
        for (int k = 1; k < 4; ++k) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + 8 * k)));
        const float amax = hmax(m);
        y[b].d = _cvtss_sh(amax / 127.f, _MM_FROUND_TO_NEAREST_INT);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        __m256i i32[4];
        round_32(x, _mm256_set1_ps(id), i32);
        store_packed_32(y[b].qs, i32);
    }
}

void activations_q8_k(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockQ8_K*>(dst);
    for (int64_t b = 0; b < n / kQK_K; ++b) {
        const float* x = src + b * kQK_K;
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < kQK_K; k += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + k)));
        const float amax = hmax(m);
        if (amax == 0.0f) {
            std::memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        int first = 0;  // the first element of largest magnitude gives the scale its sign
        while (!(x[first] == amax || x[first] == -amax)) ++first;
        const float iscale = -127.f / x[first];
        for (int c = 0; c < kQK_K / 32; ++c) {
            __m256i i32[4];
            round_32(x + 32 * c, _mm256_set1_ps(iscale), i32);
            for (auto& v : i32) v = _mm256_min_epi32(v, _mm256_set1_epi32(127));
            store_packed_32(y[b].qs + 32 * c, i32);
            y[b].bsums[2 * c] = static_cast<int16_t>(hsum_i32(_mm256_add_epi32(i32[0], i32[1])));
            y[b].bsums[2 * c + 1] = static_cast<int16_t>(hsum_i32(_mm256_add_epi32(i32[2], i32[3])));
        }
        y[b].d = 1 / iscale;
    }
}

// ---------------------------------------------------------------------------------------------

const KernelTable kTable = {
    CRITDIM_X86_NAME,
    {
        vec_dot_one<FloatTiles<LoadF32>::Tile>,
        vec_dot_one<FloatTiles<LoadF16>::Tile>,
        vec_dot_one<FloatTiles<LoadBF16>::Tile>,
        vec_dot_one<Block32Tiles<WeightQ8_0>::Tile>,
        vec_dot_one<Block32Tiles<WeightQ4_0>::Tile>,
        vec_dot_one<SuperBlockTiles<WeightQ4_K>::Tile>,
        vec_dot_one<SuperBlockTiles<WeightQ6_K>::Tile>,
    },
    {
        gemm_tiled<FloatTiles<LoadF32>::Tile, CRITDIM_X86_FLOAT_RM, CRITDIM_X86_FLOAT_RN>,
        gemm_tiled<FloatTiles<LoadF16>::Tile, CRITDIM_X86_FLOAT_RM, CRITDIM_X86_FLOAT_RN>,
        gemm_tiled<FloatTiles<LoadBF16>::Tile, CRITDIM_X86_FLOAT_RM, CRITDIM_X86_FLOAT_RN>,
        gemm_tiled<Block32Tiles<WeightQ8_0>::Tile, CRITDIM_X86_Q32_RM, CRITDIM_X86_Q32_RN>,
        gemm_tiled<Block32Tiles<WeightQ4_0>::Tile, CRITDIM_X86_Q32_RM, CRITDIM_X86_Q32_RN>,
        gemm_tiled<SuperBlockTiles<WeightQ4_K>::Tile, CRITDIM_X86_QK_RM, CRITDIM_X86_QK_RN>,
        gemm_tiled<SuperBlockTiles<WeightQ6_K>::Tile, CRITDIM_X86_QK_RM, CRITDIM_X86_QK_RN>,
    },
    {activations_f32, activations_f16, activations_bf16, activations_q8_0, activations_q8_0, activations_q8_k,
     activations_q8_k},
};

}  // namespace
}  // namespace critdim::kernels::detail::CRITDIM_X86_NS
