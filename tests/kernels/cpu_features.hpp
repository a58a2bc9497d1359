// CPU features the kernel tests ask about. F16C comes from CPUID directly: clang's
// __builtin_cpu_supports does not know the name.
#pragma once

#include <cpuid.h>

namespace critdim::test {

inline bool cpu_has_f16c() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
}

}  // namespace critdim::test
