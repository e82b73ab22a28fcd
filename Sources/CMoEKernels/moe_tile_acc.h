// The micro-tiles' accumulator load and store, shared by moe_kernels.c and moe_kernels_quant.c (private to
// the C target: not in include/, so Swift never sees it). Expanded inside a kernel with `rows`, `accumulate`,
// `c` and `__m512 acc[2 * R]` in scope.
#ifndef MOE_TILE_ACC_H
#define MOE_TILE_ACC_H

// The accumulators start from C (accumulate: a later K-block continues the sum) or from zero, and
// only the tile's live rows are loaded and stored.
#define LOAD_ACC(R)                                                                            \
    for (int i = 0; i < R; i++) {                                                              \
        int live = i < rows && accumulate;                                                     \
        acc[2 * i] = live ? _mm512_loadu_ps(c + i * 32) : _mm512_setzero_ps();                  \
        acc[2 * i + 1] = live ? _mm512_loadu_ps(c + i * 32 + 16) : _mm512_setzero_ps();         \
    }
#define STORE_ACC(R)                                                                           \
    for (int i = 0; i < R && i < rows; i++) {                                                  \
        _mm512_storeu_ps(c + i * 32, acc[2 * i]);                                              \
        _mm512_storeu_ps(c + i * 32 + 16, acc[2 * i + 1]);                                     \
    }

#endif
