// MoEKit's panel kernels for quantized weights (F16, FP8 E4M3 with block scales, MXFP4): the same
// 8 x 32 micro-tile as moe_panel_bf16w_avx512 / moe_panel_bf16w_avx2 (moe_kernels.h), with the weight
// dequantized in registers exactly as MoEKit's scalar definition, then used in the same FMA chain.
// Each function carries its own target attribute; Swift picks one at run time by moe_cpu_level()
// (the *_avx2 F16 and FP8 kernels also need F16C, which every AVX2 + FMA CPU has).
// Off x86-64 the symbols exist but trap: Swift's portable kernels run there.
#ifndef MOE_KERNELS_QUANT_H
#define MOE_KERNELS_QUANT_H

#include <stdint.h>

/// C[r][0..<32] (+)= sum over k in 0..<depth of A[k*8 + r] * W[k][0..<32], stored for r < rows <= 8
/// (rows past `rows` of C are not touched). A is one packed row tile (depth x 8, rows past `rows` zero);
/// C has row stride 32. accumulate == 0 starts from zero. Ascending k, FMA, one chain per element whatever
/// `rows` is. With accumulate, the AVX-512 kernels continue the FMA chain from C; the AVX2 kernels sum the
/// K-block from zero and add it to C (as moe_panel_bf16w_*).
///
/// F16 panel: b[k*32 + n] holds the IEEE half bits of W[k][n]; W = (float)half, exact.
void moe_panel_f16_avx512(int rows, int depth, const float *a, const uint16_t *b, float *c, int accumulate);
void moe_panel_f16_avx2(int rows, int depth, const float *a, const uint16_t *b, float *c, int accumulate);

/// FP8 panel with per-column block scales: b[k*32 + n] is the OCP E4M3 ("e4m3fn": bias 7, subnormals,
/// no infinities) code of column n; scales[(k / group) * 32 + n] the F32 scale of column n for k-group
/// k / group (k counted from this call's first k, which sits on a group boundary; group > 0; depth may
/// end mid-group). W = e4m3(code) * scale as one F32 multiply rounded to nearest, bit for bit, for every
/// scale (finite, subnormal, huge, infinite). The NaN codes 0x7F / 0xFF must not occur (they read as
/// +-480 * scale).
void moe_panel_fp8_avx512(int rows, int depth, const float *a, const uint8_t *b, const float *scales, int group,
                          float *c, int accumulate);
void moe_panel_fp8_avx2(int rows, int depth, const float *a, const uint8_t *b, const float *scales, int group,
                        float *c, int accumulate);

/// MXFP4 panel (PanelMatrices.mxfp4Byte): one byte per k and j < 16 holds the E2M1 code (bit 3 sign,
/// magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6) of W[k][j] in its low nibble and of W[k][j + 16] in its high nibble;
/// for k in a whole quad (k < depth & ~3) that byte is b[(k & ~3)*16 + j*4 + (k & 3)] (lane j's 32-bit word
/// holds the quad's four), for the last depth % 4 k it is b[k*16 + j]. scales[(k / 32) * 32 + n] is the E8M0
/// exponent byte e of column n for k-group k / 32 (this call's first k is a multiple of 32 relative to
/// `scales`; depth may end mid-group). W = e2m1(code) * 2^(e - 127), exact (as ldexpf, subnormal results
/// included, overflow to infinity); e = 0xFF (NaN) must not occur. The AVX-512 kernels sum per 32-k group,
/// then multiply by 2^(e - 127), when every scale of the call is in [64, 190]; else, and on AVX2, per element.
void moe_panel_mxfp4_avx512(int rows, int depth, const float *a, const uint8_t *b, const uint8_t *scales,
                            float *c, int accumulate);
void moe_panel_mxfp4_avx2(int rows, int depth, const float *a, const uint8_t *b, const uint8_t *scales,
                          float *c, int accumulate);

/// One row, two panels (decode): moe_panel_*_avx512 with rows = 1 on panel A (bA, sA -> cA) and panel B
/// (bB, sB -> cB) over the same activations, in one loop (four FMA chains instead of two). Bit for bit the
/// two one-panel calls.
void moe_panel_pair_fp8_avx512(int depth, const float *a, const uint8_t *bA, const float *sA, const uint8_t *bB,
                               const float *sB, int group, float *cA, float *cB, int accumulate);
void moe_panel_pair_mxfp4_avx512(int depth, const float *a, const uint8_t *bA, const uint8_t *sA,
                                 const uint8_t *bB, const uint8_t *sB, float *cA, float *cB, int accumulate);

#endif
