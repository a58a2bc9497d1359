// The AVX2 backend (with FMA and F16C): x86_kernels.inl on 16 ymm registers, u8*s8 sums
// with maddubs + madd. Compiled with -mavx2 -mfma -mf16c; run only where the CPU has them.
#define CRITDIM_X86_NS avx2
#define CRITDIM_X86_NAME "avx2"
#define CRITDIM_X86_VNNI 0
#define CRITDIM_X86_FLOAT_RM 4
#define CRITDIM_X86_FLOAT_RN 3
#define CRITDIM_X86_Q32_RM 3
#define CRITDIM_X86_Q32_RN 2
#define CRITDIM_X86_QK_RM 2
#define CRITDIM_X86_QK_RN 4
#include "kernels/x86_kernels.inl"

namespace critdim::kernels::detail {
const KernelTable& avx2_table() { return avx2::kTable; }
}  // namespace critdim::kernels::detail
