// CPU features from CPUID and XCR0, and Linux's AMX permission (see moe_cpu.h).
#include "moe_cpu.h"

#if defined(__x86_64__)
#include <cpuid.h>

static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    // xgetbv with ECX = 0 as raw asm: no `xsave` target attribute needed; only run when OSXSAVE is set.
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

moe_cpu_info moe_cpu_detect(void) {
    moe_cpu_info info = {0, 0, 0};
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return info;
    unsigned maxLeaf = eax;
    if (maxLeaf < 1) return info;
    __cpuid(1, eax, ebx, ecx, edx);
    int osxsave = (ecx >> 27) & 1;
    if ((ecx >> 12) & 1) info.cpuid |= MOE_CPU_FMA;
    if ((ecx >> 29) & 1) info.cpuid |= MOE_CPU_F16C;
    if (maxLeaf >= 7) {
        __cpuid_count(7, 0, eax, ebx, ecx, edx);
        unsigned subleaves = eax;
        if ((ebx >> 5) & 1) info.cpuid |= MOE_CPU_AVX2;
        if ((ebx >> 16) & 1) info.cpuid |= MOE_CPU_AVX512F;
        if ((ebx >> 30) & 1) info.cpuid |= MOE_CPU_AVX512BW;
        if ((ecx >> 11) & 1) info.cpuid |= MOE_CPU_AVX512VNNI;
        if ((edx >> 25) & 1) info.cpuid |= MOE_CPU_AMX_INT8;
        if ((edx >> 24) & 1) info.cpuid |= MOE_CPU_AMX_TILE;
        if ((edx >> 22) & 1) info.cpuid |= MOE_CPU_AMX_BF16;
        if (subleaves >= 1) {
            __cpuid_count(7, 1, eax, ebx, ecx, edx);
            if ((eax >> 5) & 1) info.cpuid |= MOE_CPU_AVX512BF16;
            if ((eax >> 4) & 1) info.cpuid |= MOE_CPU_AVXVNNI;
        }
    }
    if (!osxsave) return info;
    info.xcr0 = read_xcr0();
    const uint64_t ymm = 0x6, zmm = 0xE0, tiles = (1ull << 17) | (1ull << 18);
    if ((info.xcr0 & ymm) == ymm) {
        info.usable |= info.cpuid & (MOE_CPU_AVX2 | MOE_CPU_FMA | MOE_CPU_F16C | MOE_CPU_AVXVNNI);
        if ((info.xcr0 & zmm) == zmm)
            info.usable |= info.cpuid & (MOE_CPU_AVX512F | MOE_CPU_AVX512BF16 | MOE_CPU_AVX512BW | MOE_CPU_AVX512VNNI);
    }
    if ((info.xcr0 & tiles) == tiles) info.usable |= info.cpuid & (MOE_CPU_AMX_TILE | MOE_CPU_AMX_BF16 | MOE_CPU_AMX_INT8);
    return info;
}

#else

moe_cpu_info moe_cpu_detect(void) {
    moe_cpu_info info = {0, 0, 0};
    return info;
}

#endif

#if defined(__x86_64__) && defined(__linux__)
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MOE_ARCH_GET_XCOMP_PERM 0x1022
#define MOE_ARCH_REQ_XCOMP_PERM 0x1023
#define MOE_XFEATURE_XTILEDATA 18

int moe_amx_request_permission(void) {
    if (syscall(SYS_arch_prctl, MOE_ARCH_REQ_XCOMP_PERM, MOE_XFEATURE_XTILEDATA) != 0) return errno > 0 ? errno : EINVAL;
    unsigned long permitted = 0;
    if (syscall(SYS_arch_prctl, MOE_ARCH_GET_XCOMP_PERM, &permitted) != 0) return errno > 0 ? errno : EINVAL;
    return (permitted >> MOE_XFEATURE_XTILEDATA) & 1 ? MOE_AMX_PERMISSION_GRANTED : MOE_AMX_PERMISSION_NOT_LISTED;
}

#else

int moe_amx_request_permission(void) { return MOE_AMX_PERMISSION_UNSUPPORTED; }

#endif
