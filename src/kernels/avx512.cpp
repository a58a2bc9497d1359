// The AVX-512 backend: x86_kernels.inl with 32 vector registers (bigger tiles) and u8*s8 sums
// with VNNI's vpdpbusd. Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni (plus the
// AVX2 set); run only where the CPU has them.
#define CRITDIM_X86_NS avx512
#define CRITDIM_X86_NAME "avx512"
#define CRITDIM_X86_VNNI 1
#define CRITDIM_X86_FLOAT_RM 4
#define CRITDIM_X86_FLOAT_RN 4
#define CRITDIM_X86_Q32_RM 4
#define CRITDIM_X86_Q32_RN 4
#define CRITDIM_X86_QK_RM 4
#define CRITDIM_X86_QK_RN 4
#include "kernels/x86_kernels.inl"

namespace critdim::kernels::detail {
const KernelTable& avx512_table() { return avx512::kTable; }
}  // namespace critdim::kernels::detail
