// MoEKit's int8 kernels for the ggml K-quants (Q4_K, Q5_K, Q6_K) against Q8_K activations (ComputeMode.int8):
// the C side of Int8Dot+KQuants.swift. Each function carries its own target attribute; Swift picks one by
// Int8Dot.ISA. Off x86-64 the symbols exist but trap (Swift never calls them there).
#ifndef MOE_KERNELS_INT8_KQUANTS_H
#define MOE_KERNELS_INT8_KQUANTS_H

#include <stddef.h>
#include <stdint.h>

/// c[r*32 + n] (+)= the dot product of activation row r (r < rows <= 8) with column n of one panel, over
/// `blocks` consecutive 256-input super-blocks, bit for bit as Int8Dot.kQuantReference: per super-block the
/// exact Int32 sums S (and M for Q4_K / Q5_K), then sum = fma(dw*da, S, sum) (then sum = fma(-(dmin*da), M,
/// sum)), in ascending block order; accumulate == 0 starts from zero. Rows past `rows` are not touched.
///
/// Activations: row r's int8 codes at aq + r*stride, its F32 scales at ad + r*(stride/256), its Int16 sums
/// of 16 codes at as + r*(stride/16) (this call's first input; codes in -128...127).
///
/// `panel`: `blocks` panel rows of 32 * bytesPerBlock bytes, each permuted (Int8Dot.kQuantLayout) into
/// fields stored [unit t][column n] (unit t of column n at base + (t*32 + n)*unit):
///   Q4_K (4608 bytes): d f16 @0, dmin f16 @64, scales 3 x 4 bytes @128, qs 32 x 4 bytes @512;
///   Q5_K (5632 bytes): d @0, dmin @64, scales @128, qh 8 x 4 bytes @512, qs 32 x 4 bytes @1536;
///   Q6_K (6720 bytes): d @0, scales 4 x 4 bytes @64, then from @576 the code rows (128 bytes each) in the order
///   the kernels stream them: for vh < 2, l < 8, ql row 16vh + l, ql row 16vh + 8 + l, qh row 8vh + l.
void moe_int8_q4k_avx512(int rows, int blocks, const int8_t *aq, const float *ad, const int16_t *as, ptrdiff_t stride,
                         const void *panel, float *c, int accumulate);
void moe_int8_q4k_avx2(int rows, int blocks, const int8_t *aq, const float *ad, const int16_t *as, ptrdiff_t stride,
                       const void *panel, float *c, int accumulate);
void moe_int8_q5k_avx512(int rows, int blocks, const int8_t *aq, const float *ad, const int16_t *as, ptrdiff_t stride,
                         const void *panel, float *c, int accumulate);
void moe_int8_q5k_avx2(int rows, int blocks, const int8_t *aq, const float *ad, const int16_t *as, ptrdiff_t stride,
                       const void *panel, float *c, int accumulate);
void moe_int8_q6k_avx512(int rows, int blocks, const int8_t *aq, const float *ad, const int16_t *as, ptrdiff_t stride,
                         const void *panel, float *c, int accumulate);
void moe_int8_q6k_avx2(int rows, int blocks, const int8_t *aq, const float *ad, const int16_t *as, ptrdiff_t stride,
                       const void *panel, float *c, int accumulate);

#endif
