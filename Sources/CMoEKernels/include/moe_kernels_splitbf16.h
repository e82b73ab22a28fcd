// Split-BF16 exact-F32 micro-tiles (issue 11's stretch goal; NOT used by the forward path): each F32
// operand is the sum of three bfloat16 parts (x = x0 + x1 + x2, exactly for normal values), and a product
// x*w is the sum of the six significant cross terms x0w0, x0w1, x1w0, x0w2, x1w1, x2w0, each exact in F32,
// accumulated in F32 by vdpbf16ps (AVX-512 BF16). The specification is MoEKit's SplitBF16 (Swift), which
// also packs both operands.
#ifndef MOE_KERNELS_SPLITBF16_H
#define MOE_KERNELS_SPLITBF16_H

#include <stdint.h>

/// A tile (3 words per k and row): a[(3k + j)*8 + r], low half first, for j = 0: (x0 | x2), 1: (x1 | x0),
/// 2: (x0 | x1) of A[r][k]. B panel (2 words per k and column): b[(2k + j)*32 + n], j = 0: (w2 | w0),
/// 1: (w0 | w1) of W[k][n]. Per k, three vdpbf16ps (each adds its high product, then its low one):
/// (x0|x2)(w2|w0) -> x2w0, x0w2; (x1|x0)(w0|w1) -> x0w1, x1w0; (x0|x1)(w0|w1) -> x1w1, x0w0.
///
/// accumulate: 0 starts from zero and stores; 1 continues C's chain (one chain over every K-block);
/// 2 sums this K-block from zero and adds it to C (blocked summation: far less F32 rounding error at
/// large K, see SplitBF16Tests). rows <= 8; C has row stride 32.
///
/// One accumulator: C[r][n] (+)= the six terms of every k in that order, in one F32 chain.
void moe_panel_splitbf16_avx512(int rows, int depth, const uint32_t *a, const uint32_t *b, float *c, int accumulate);
/// Two accumulators: x1w1 and x0w0 into a main chain (started from C with accumulate == 1), the four
/// correction terms into a second chain started from zero; main + correction at the end of the call.
void moe_panel_splitbf16_2acc_avx512(int rows, int depth, const uint32_t *a, const uint32_t *b, float *c, int accumulate);

#endif
