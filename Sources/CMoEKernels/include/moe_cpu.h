// What this CPU and its operating system let MoEKit's kernels use, read from CPUID and XCR0 (not from
// the compiler's cpu model), and Linux's per-process permission for AMX tile data.
#ifndef MOE_CPU_H
#define MOE_CPU_H

#include <stdint.h>

/// Feature bits of moe_cpu_info (the names /proc/cpuinfo uses: avx2, fma, f16c, avx512f, avx512_bf16,
/// amx_tile, amx_bf16, avx512bw, avx512_vnni, avx_vnni, amx_int8).
#define MOE_CPU_AVX2 0x01        /* CPUID.7.0:EBX[5] */
#define MOE_CPU_FMA 0x02         /* CPUID.1:ECX[12] */
#define MOE_CPU_F16C 0x04        /* CPUID.1:ECX[29] */
#define MOE_CPU_AVX512F 0x08     /* CPUID.7.0:EBX[16] */
#define MOE_CPU_AVX512BF16 0x10  /* CPUID.7.1:EAX[5] */
#define MOE_CPU_AMX_TILE 0x20    /* CPUID.7.0:EDX[24] */
#define MOE_CPU_AMX_BF16 0x40    /* CPUID.7.0:EDX[22] */
#define MOE_CPU_AVX512BW 0x80    /* CPUID.7.0:EBX[30] */
#define MOE_CPU_AVX512VNNI 0x100 /* CPUID.7.0:ECX[11] */
#define MOE_CPU_AVXVNNI 0x200    /* CPUID.7.1:EAX[4] */
#define MOE_CPU_AMX_INT8 0x400   /* CPUID.7.0:EDX[25] */

typedef struct {
    /// The MOE_CPU_* bits CPUID reports.
    uint32_t cpuid;
    /// Those of them whose registers the OS also saves (XCR0 via xgetbv, read only when CPUID.1:ECX[27]
    /// OSXSAVE is set): YMM state (bits 1, 2) for AVX2/FMA/F16C, + opmask/ZMM state (bits 5, 6, 7) for
    /// AVX-512, + XTILECFG/XTILEDATA (bits 17, 18) for AMX.
    uint32_t usable;
    /// XCR0, or 0 without OSXSAVE (or off x86-64).
    uint64_t xcr0;
} moe_cpu_info;

/// Reads CPUID and XCR0 (cheap; no side effect). All zero off x86-64.
moe_cpu_info moe_cpu_detect(void);

/// moe_amx_request_permission: granted (or already held).
#define MOE_AMX_PERMISSION_GRANTED 0
/// Not Linux on x86-64: no arch_prctl to ask.
#define MOE_AMX_PERMISSION_UNSUPPORTED -1
/// arch_prctl(ARCH_REQ_XCOMP_PERM) succeeded but ARCH_GET_XCOMP_PERM does not list XTILEDATA.
#define MOE_AMX_PERMISSION_NOT_LISTED -2

/// Asks Linux for the permission to use AMX tile data in this process:
/// arch_prctl(ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18), then checks ARCH_GET_XCOMP_PERM
/// (0x1022). Returns MOE_AMX_PERMISSION_GRANTED, a positive errno of the refusal (EINVAL: a kernel
/// before 5.16 or one without AMX support; EPERM/ENOSPC: refused, e.g. by the sigaltstack size check),
/// or one of the negative codes above. Call it only when moe_cpu_detect().usable has both AMX bits.
/// The permission, once granted, lasts for the process (larger signal frames for every thread).
int moe_amx_request_permission(void);

#endif
