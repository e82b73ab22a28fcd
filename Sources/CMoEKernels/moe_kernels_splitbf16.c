// Split-BF16 exact-F32 micro-tiles with vdpbf16ps (see moe_kernels_splitbf16.h). Not used by the forward
// path: a measurement of the numerics and speed issue 11's AMX exact-F32 mode would have.
#include "moe_kernels_splitbf16.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define SPLIT __attribute__((target("avx512f,avx512bf16")))
#define SPLIT_PREFETCH(p) _mm_prefetch((const char *)(p) + 16384, _MM_HINT_T0)

#define bh(v) ((__m512bh)(v))

// 8 rows x 32 columns, one F32 chain per element: 16 accumulators.
#define DEFINE_SPLIT_TILE(NAME, R)                                                                       \
    SPLIT static void NAME(int rows, int depth, const uint32_t *a, const uint32_t *b, float *c, int accumulate) { \
        __m512 acc[2 * R];                                                                               \
        for (int i = 0; i < R; i++) {                                                                    \
            int live = i < rows && accumulate == 1;                                                      \
            acc[2 * i] = live ? _mm512_loadu_ps(c + i * 32) : _mm512_setzero_ps();                       \
            acc[2 * i + 1] = live ? _mm512_loadu_ps(c + i * 32 + 16) : _mm512_setzero_ps();              \
        }                                                                                                \
        for (int k = 0; k < depth; k++) {                                                                \
            const uint32_t *bk = b + k * 64;                                                             \
            SPLIT_PREFETCH(bk);                                                                          \
            SPLIT_PREFETCH(bk + 32);                                                                     \
            __m512bh v0 = bh(_mm512_loadu_si512(bk)), v1 = bh(_mm512_loadu_si512(bk + 16));              \
            __m512bh u0 = bh(_mm512_loadu_si512(bk + 32)), u1 = bh(_mm512_loadu_si512(bk + 48));         \
            const uint32_t *ak = a + k * 24;                                                             \
            for (int i = 0; i < R; i++) {                                                                \
                __m512bh s = bh(_mm512_set1_epi32((int)ak[i]));                                          \
                __m512bh q = bh(_mm512_set1_epi32((int)ak[8 + i]));                                      \
                __m512bh p = bh(_mm512_set1_epi32((int)ak[16 + i]));                                     \
                acc[2 * i] = _mm512_dpbf16_ps(acc[2 * i], s, v0);                                        \
                acc[2 * i + 1] = _mm512_dpbf16_ps(acc[2 * i + 1], s, v1);                                \
                acc[2 * i] = _mm512_dpbf16_ps(acc[2 * i], q, u0);                                        \
                acc[2 * i + 1] = _mm512_dpbf16_ps(acc[2 * i + 1], q, u1);                                \
                acc[2 * i] = _mm512_dpbf16_ps(acc[2 * i], p, u0);                                        \
                acc[2 * i + 1] = _mm512_dpbf16_ps(acc[2 * i + 1], p, u1);                                \
            }                                                                                            \
        }                                                                                                \
        for (int i = 0; i < R && i < rows; i++) {                                                        \
            if (accumulate == 2) {                                                                       \
                acc[2 * i] = _mm512_add_ps(_mm512_loadu_ps(c + i * 32), acc[2 * i]);                     \
                acc[2 * i + 1] = _mm512_add_ps(_mm512_loadu_ps(c + i * 32 + 16), acc[2 * i + 1]);        \
            }                                                                                            \
            _mm512_storeu_ps(c + i * 32, acc[2 * i]);                                                    \
            _mm512_storeu_ps(c + i * 32 + 16, acc[2 * i + 1]);                                           \
        }                                                                                                \
    }

DEFINE_SPLIT_TILE(split_r1, 1)
DEFINE_SPLIT_TILE(split_r2, 2)
DEFINE_SPLIT_TILE(split_r4, 4)
DEFINE_SPLIT_TILE(split_r8, 8)

SPLIT void moe_panel_splitbf16_avx512(int rows, int depth, const uint32_t *a, const uint32_t *b, float *c, int accumulate) {
    if (rows <= 1) split_r1(rows, depth, a, b, c, accumulate);
    else if (rows <= 2) split_r2(rows, depth, a, b, c, accumulate);
    else if (rows <= 4) split_r4(rows, depth, a, b, c, accumulate);
    else split_r8(rows, depth, a, b, c, accumulate);
}

// Two chains per element (main: x1w1, x0w0; correction: the other four) need 32 accumulators for 8 x 32:
// one 16-column half at a time (16 accumulators), the half's weights read twice from L1.
#define DEFINE_SPLIT2_TILE(NAME, R)                                                                      \
    SPLIT static void NAME(int rows, int depth, const uint32_t *a, const uint32_t *b, float *c, int accumulate) { \
        for (int half = 0; half < 2; half++) {                                                           \
            int col = half * 16;                                                                         \
            __m512 main[R], corr[R];                                                                     \
            for (int i = 0; i < R; i++) {                                                                \
                main[i] = i < rows && accumulate == 1 ? _mm512_loadu_ps(c + i * 32 + col) : _mm512_setzero_ps(); \
                corr[i] = _mm512_setzero_ps();                                                           \
            }                                                                                            \
            for (int k = 0; k < depth; k++) {                                                            \
                const uint32_t *bk = b + k * 64 + col;                                                   \
                if (half == 0) { SPLIT_PREFETCH(b + k * 64); SPLIT_PREFETCH(b + k * 64 + 32); }          \
                __m512bh v = bh(_mm512_loadu_si512(bk)), u = bh(_mm512_loadu_si512(bk + 32));            \
                const uint32_t *ak = a + k * 24;                                                         \
                for (int i = 0; i < R; i++) {                                                            \
                    corr[i] = _mm512_dpbf16_ps(corr[i], bh(_mm512_set1_epi32((int)ak[i])), v);           \
                    corr[i] = _mm512_dpbf16_ps(corr[i], bh(_mm512_set1_epi32((int)ak[8 + i])), u);       \
                    main[i] = _mm512_dpbf16_ps(main[i], bh(_mm512_set1_epi32((int)ak[16 + i])), u);      \
                }                                                                                        \
            }                                                                                            \
            for (int i = 0; i < R && i < rows; i++) {                                                    \
                __m512 sum = _mm512_add_ps(main[i], corr[i]);                                            \
                if (accumulate == 2) sum = _mm512_add_ps(_mm512_loadu_ps(c + i * 32 + col), sum);        \
                _mm512_storeu_ps(c + i * 32 + col, sum);                                                 \
            }                                                                                            \
        }                                                                                                \
    }

DEFINE_SPLIT2_TILE(split2_r1, 1)
DEFINE_SPLIT2_TILE(split2_r2, 2)
DEFINE_SPLIT2_TILE(split2_r4, 4)
DEFINE_SPLIT2_TILE(split2_r8, 8)

SPLIT void moe_panel_splitbf16_2acc_avx512(int rows, int depth, const uint32_t *a, const uint32_t *b, float *c, int accumulate) {
    if (rows <= 1) split2_r1(rows, depth, a, b, c, accumulate);
    else if (rows <= 2) split2_r2(rows, depth, a, b, c, accumulate);
    else if (rows <= 4) split2_r4(rows, depth, a, b, c, accumulate);
    else split2_r8(rows, depth, a, b, c, accumulate);
}

#else

void moe_panel_splitbf16_avx512(int rows, int depth, const uint32_t *a, const uint32_t *b, float *c, int accumulate) {}
void moe_panel_splitbf16_2acc_avx512(int rows, int depth, const uint32_t *a, const uint32_t *b, float *c, int accumulate) {}

#endif
