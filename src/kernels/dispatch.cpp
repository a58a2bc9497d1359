// The public entry points: argument checks, then the kernel of the backend chosen once at
// run time from what the CPU supports (set_backend overrides it for tests and benchmarks).
#include <cpuid.h>

#include <atomic>
#include <string>

#include "kernels/internal.hpp"

namespace critdim::kernels {

using namespace detail;

namespace detail {

namespace {

void gemm_scalar(TensorType type, const GemmArgs& a, int64_t r0, int64_t r1, int64_t n_tok) {
    for (int64_t t = 0; t < n_tok; ++t)
        for (int64_t r = r0; r < r1; ++r)
            a.y[t * a.y_stride + r] = ref::vec_dot(type, a.n, a.w + r * a.w_row_bytes, a.x + t * a.x_row_bytes);
}

template <TensorType T>
float vec_dot_scalar(int64_t n, const void* w, const void* x) {
    return ref::vec_dot(T, n, w, x);
}
template <TensorType T>
void quantize_scalar(const float* src, void* dst, int64_t n) {
    ref::quantize_activations(T, src, dst, n);
}
template <TensorType T>
void gemm_scalar(const GemmArgs& a, int64_t r0, int64_t r1, int64_t n_tok) {
    gemm_scalar(T, a, r0, r1, n_tok);
}

}  // namespace

const KernelTable& scalar_table() {
    using enum TensorType;
    static const KernelTable table = {
        "scalar",
        {vec_dot_scalar<F32>, vec_dot_scalar<F16>, vec_dot_scalar<BF16>, vec_dot_scalar<Q8_0>, vec_dot_scalar<Q4_0>,
         vec_dot_scalar<Q4_K>, vec_dot_scalar<Q6_K>},
        {gemm_scalar<F32>, gemm_scalar<F16>, gemm_scalar<BF16>, gemm_scalar<Q8_0>, gemm_scalar<Q4_0>, gemm_scalar<Q4_K>,
         gemm_scalar<Q6_K>},
        {quantize_scalar<F32>, quantize_scalar<F16>, quantize_scalar<BF16>, quantize_scalar<Q8_0>,
         quantize_scalar<Q4_0>, quantize_scalar<Q4_K>, quantize_scalar<Q6_K>},
    };
    return table;
}

}  // namespace detail

namespace {

// F16C (CPUID leaf 1, ECX bit 29): clang's __builtin_cpu_supports does not know the name.
bool cpu_has_f16c() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
}

bool cpu_supports(Backend backend) {
    __builtin_cpu_init();
    switch (backend) {
        case Backend::scalar:
            return true;
        case Backend::avx2:
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
        case Backend::avx512:
            return cpu_supports(Backend::avx2) && __builtin_cpu_supports("avx512f") &&
                   __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                   __builtin_cpu_supports("avx512vnni");
    }
    return false;
}

const KernelTable& table_of(Backend backend) {
    switch (backend) {
        case Backend::avx512:
            return avx512_table();
        case Backend::avx2:
            return avx2_table();
        case Backend::scalar:
            break;
    }
    return scalar_table();
}

struct Selection {
    std::atomic<const KernelTable*> table{&table_of(detected_backend())};
};

Selection& selection() {
    static Selection s;
    return s;
}

const KernelTable& current() { return *selection().table.load(std::memory_order_relaxed); }

int checked_index(TensorType weight, int64_t n, const char* what) {
    const int i = weight_index(weight);
    if (i < 0) throw Error(ErrorKind::internal, tensor_type_name(weight), std::string(what) + ": not a weight type");
    const int64_t block = tensor_type_info(vec_dot_type(weight)).block_size;
    if (n % block != 0 || n % tensor_type_info(weight).block_size != 0)
        throw Error(ErrorKind::internal, tensor_type_name(weight),
                    std::string(what) + ": row length " + std::to_string(n) + " is not a multiple of the block size");
    return i;
}

}  // namespace

Backend detected_backend() {
    if (cpu_supports(Backend::avx512)) return Backend::avx512;
    if (cpu_supports(Backend::avx2)) return Backend::avx2;
    return Backend::scalar;
}

void set_backend(Backend backend) {
    // The name comes from here, not from the table: nothing compiled for an instruction set the
    // CPU lacks may run, not even the accessor of its table.
    static const char* const names[] = {"scalar", "avx2", "avx512"};
    if (!cpu_supports(backend))
        throw Error(ErrorKind::usage, "kernels",
                    std::string("this CPU cannot run the ") + names[static_cast<int>(backend)] + " backend");
    selection().table.store(&table_of(backend), std::memory_order_relaxed);
}

const char* backend_name() { return current().name; }

void dequantize_row(TensorType type, const void* src, float* dst, int64_t n) { ref::dequantize_row(type, src, dst, n); }

void quantize_row(TensorType type, const float* src, void* dst, int64_t n) {
    (void)tensor_row_bytes(type, n);  // checks n against the block size
    quantize_row_weight(type, src, dst, n);
}

void quantize_activations(TensorType weight, const float* src, void* dst, int64_t n) {
    current().quantize_activations[checked_index(weight, n, "quantize_activations")](src, dst, n);
}

float vec_dot(TensorType weight, int64_t n, const void* w, const void* x) {
    return current().vec_dot[checked_index(weight, n, "vec_dot")](n, w, x);
}

void gemm(TensorType weight, int64_t n, const void* w, size_t w_row_bytes, int64_t r0, int64_t r1, const void* x,
          size_t x_row_bytes, int64_t n_tok, float* y, int64_t y_stride) {
    const int i = checked_index(weight, n, "gemm");
    if (r0 >= r1 || n_tok <= 0) return;
    const GemmArgs args{
        n, static_cast<const uint8_t*>(w), w_row_bytes, static_cast<const uint8_t*>(x), x_row_bytes, y, y_stride};
    current().gemm[i](args, r0, r1, n_tok);
}

}  // namespace critdim::kernels
