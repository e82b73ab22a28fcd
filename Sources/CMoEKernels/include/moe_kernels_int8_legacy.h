// Int8 dot-product kernels for ggml's 32-input block types against Q8_0 activations (MoEKit's
// Int8Dot+Legacy.swift: the contract, the reference and the panel layout these read). One function per type
// per instruction set; Swift picks one by Int8Dot.ISA. Off x86-64 the symbols exist but trap.
#ifndef MOE_KERNELS_INT8_LEGACY_H
#define MOE_KERNELS_INT8_LEGACY_H

#include <stddef.h>
#include <stdint.h>

/// c[r*32 + n] (+)= the int8 dot product of activation row r (r < rows <= 8) with column n of `blocks`
/// consecutive permuted panel rows at `panel` (LegacyLayout), bit for bit Int8Dot.legacyReference.
/// Row r's codes are at quants + r*stride (this call's first block first), its block scales at
/// scales + r*stride/32 and its 16-code sums at sums + r*stride/16. accumulate == 0 starts from +0.
/// The codes must lie in -127...127 (the Q8_0 quantizer's range; the AVX2 kernels use |w| * sign(a, w)).
#define MOE_INT8_LEGACY_KERNEL(name)                                                                   \
    void name(int rows, int blocks, const int8_t *quants, const float *scales, const int16_t *sums,   \
              ptrdiff_t stride, const uint8_t *panel, float *c, int accumulate)

/// AVX-512 F/BW/VNNI (vpdpbusd on zmm, the weight codes as unsigned bytes, the offset subtracted exactly).
MOE_INT8_LEGACY_KERNEL(moe_int8_q8_0_avx512vnni);
MOE_INT8_LEGACY_KERNEL(moe_int8_q4_0_avx512vnni);
MOE_INT8_LEGACY_KERNEL(moe_int8_q4_1_avx512vnni);
MOE_INT8_LEGACY_KERNEL(moe_int8_mxfp4_avx512vnni);
MOE_INT8_LEGACY_KERNEL(moe_int8_q5_0_avx512vnni);
MOE_INT8_LEGACY_KERNEL(moe_int8_q5_1_avx512vnni);

/// AVX2 + FMA + F16C (vpmaddubsw then vpmaddwd).
MOE_INT8_LEGACY_KERNEL(moe_int8_q8_0_avx2);
MOE_INT8_LEGACY_KERNEL(moe_int8_q4_0_avx2);
MOE_INT8_LEGACY_KERNEL(moe_int8_q4_1_avx2);
MOE_INT8_LEGACY_KERNEL(moe_int8_mxfp4_avx2);
MOE_INT8_LEGACY_KERNEL(moe_int8_q5_0_avx2);
MOE_INT8_LEGACY_KERNEL(moe_int8_q5_1_avx2);

#endif
