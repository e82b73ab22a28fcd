// Activations quantized per block for the int8 kernels (QuantizedActivations.swift): the rows of one 8-row
// k-major tile (tile[k * 8 + r], PackedRows' F32 layout) quantized as ggml's quantize_row_q8_0_ref and
// quantize_row_q8_K_ref do, bit for bit the Swift reference (QuantizedActivations.quantize).
// Off x86-64 the symbols exist but trap: Swift's loops run there.
#ifndef MOE_QUANTIZE_ROWS_H
#define MOE_QUANTIZE_ROWS_H

#include <stddef.h>
#include <stdint.h>

/// Rows 0 ..< rows (<= 8) of the tile, `depth` inputs each (a multiple of 32 for Q8_0, of 256 for Q8_K): row r's
/// codes to q[r * depth ...], its block scales to d[r * (depth / block) ...], its 16-code sums to
/// sums[r * (depth / 16) ...]. Q8_0: per 32 inputs, d = amax / 127, id = d ? 1 / d : 0, q = roundf(x * id) (ties away
/// from zero), d stored rounded to F16 and widened. Q8_K: per 256 inputs, max = the first input of largest
/// magnitude (with its sign), iscale = -127 / max, q = min(127, nearest-even(iscale * x)), d = 1 / iscale; a block
/// of zeros gets d = 0 and zero codes. Each scaled input is clamped to [-127, 127] and a NaN one is 0 before rounding
/// (no effect on a finite block; a block whose scale underflows or that holds an infinity stays defined).
void moe_quantize_tile_q8_0_avx512(int rows, int depth, const float *tile, int8_t *q, float *d, int16_t *sums);
void moe_quantize_tile_q8_K_avx512(int rows, int depth, const float *tile, int8_t *q, float *d, int16_t *sums);

#endif
