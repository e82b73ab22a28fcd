#include "moe_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

int moe_cpu_level(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        return __builtin_cpu_supports("avx512bf16") ? 3 : 2;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
    return 0;
}

// ---- AVX-512: 8 rows x 32 columns, 16 accumulators ------------------------------------------
#define AVX512 __attribute__((target("avx512f")))

AVX512 static inline void store_tile512(int rows, float *c, int accumulate, __m512 *acc) {
    for (int r = 0; r < rows; r++) {
        __m512 lo = acc[2 * r], hi = acc[2 * r + 1];
        if (accumulate) {
            lo = _mm512_add_ps(_mm512_loadu_ps(c + r * 32), lo);
            hi = _mm512_add_ps(_mm512_loadu_ps(c + r * 32 + 16), hi);
        }
        _mm512_storeu_ps(c + r * 32, lo);
        _mm512_storeu_ps(c + r * 32 + 16, hi);
    }
}

// A is a packed tile: a[k * 8 + r]. All 8 rows are computed (padding rows are zeros); `rows` are stored.
#define FMA_ROW512(i, p)                                                   \
    {                                                                      \
        __m512 x = _mm512_set1_ps(a[k * 8 + i]);                           \
        acc[2 * i] = _mm512_fmadd_ps(x, b0, acc[2 * i]);                   \
        acc[2 * i + 1] = _mm512_fmadd_ps(x, b1, acc[2 * i + 1]);           \
    }

#define FMA_ALL_ROWS512 \
    FMA_ROW512(0, a0) FMA_ROW512(1, a1) FMA_ROW512(2, a2) FMA_ROW512(3, a3) \
    FMA_ROW512(4, a4) FMA_ROW512(5, a5) FMA_ROW512(6, a6) FMA_ROW512(7, a7)

AVX512 void moe_panel_f32_avx512(int rows, int depth, const float *a, const float *b, float *c, int accumulate) {
    __m512 acc[16];
    for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
    for (int k = 0; k < depth; k++) {
        __m512 b0 = _mm512_loadu_ps(b + k * 32), b1 = _mm512_loadu_ps(b + k * 32 + 16);
        FMA_ALL_ROWS512
    }
    store_tile512(rows, c, accumulate, acc);
}

AVX512 static inline __m512 widen_bf16(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

AVX512 void moe_panel_bf16w_avx512(int rows, int depth, const float *a, const uint16_t *b, float *c, int accumulate) {
    __m512 acc[16];
    for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
    for (int k = 0; k < depth; k++) {
        __m512 b0 = widen_bf16(_mm256_loadu_si256((const __m256i *)(b + k * 32)));
        __m512 b1 = widen_bf16(_mm256_loadu_si256((const __m256i *)(b + k * 32 + 16)));
        FMA_ALL_ROWS512
    }
    store_tile512(rows, c, accumulate, acc);
}

// ---- AVX2: the 8 x 32 tile as 4 passes of 4 rows x 16 columns (8 ymm accumulators each). ----
#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline __m256 load8_avx2(const float *bf, const uint16_t *bh, int offset) {
    if (bf) return _mm256_loadu_ps(bf + offset);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(bh + offset))), 16));
}

AVX2 static void panel_avx2(int rows, int depth, const float *a, const float *bf, const uint16_t *bh, float *c, int accumulate) {
    for (int quarter = 0; quarter < 4; quarter++) {
        int firstRow = (quarter / 2) * 4, column = (quarter % 2) * 16;
        if (firstRow >= rows) break;
        __m256 acc[8];
        for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
        for (int k = 0; k < depth; k++) {
            __m256 b0 = load8_avx2(bf, bh, k * 32 + column), b1 = load8_avx2(bf, bh, k * 32 + column + 8);
            for (int r = 0; r < 4; r++) {
                __m256 x = _mm256_broadcast_ss(a + k * 8 + firstRow + r);
                acc[2 * r] = _mm256_fmadd_ps(x, b0, acc[2 * r]);
                acc[2 * r + 1] = _mm256_fmadd_ps(x, b1, acc[2 * r + 1]);
            }
        }
        for (int r = 0; r < 4 && firstRow + r < rows; r++) {
            float *out = c + (firstRow + r) * 32 + column;
            __m256 lo = acc[2 * r], hi = acc[2 * r + 1];
            if (accumulate) { lo = _mm256_add_ps(_mm256_loadu_ps(out), lo); hi = _mm256_add_ps(_mm256_loadu_ps(out + 8), hi); }
            _mm256_storeu_ps(out, lo);
            _mm256_storeu_ps(out + 8, hi);
        }
    }
}

AVX2 void moe_panel_f32_avx2(int rows, int depth, const float *a, const float *b, float *c, int accumulate) {
    panel_avx2(rows, depth, a, b, 0, c, accumulate);
}

AVX2 void moe_panel_bf16w_avx2(int rows, int depth, const float *a, const uint16_t *b, float *c, int accumulate) {
    panel_avx2(rows, depth, a, 0, b, c, accumulate);
}

#else  // not x86-64: Swift's portable kernels run instead.

int moe_cpu_level(void) { return 0; }
void moe_panel_f32_avx512(int rows, int depth, const float *a, const float *b, float *c, int accumulate) {}
void moe_panel_f32_avx2(int rows, int depth, const float *a, const float *b, float *c, int accumulate) {}
void moe_panel_bf16w_avx512(int rows, int depth, const float *a, const uint16_t *b, float *c, int accumulate) {}
void moe_panel_bf16w_avx2(int rows, int depth, const float *a, const uint16_t *b, float *c, int accumulate) {}

#endif

float moe_sum_f32(const float *x, size_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 += x[i]; s1 += x[i + 1]; s2 += x[i + 2]; s3 += x[i + 3];
        s4 += x[i + 4]; s5 += x[i + 5]; s6 += x[i + 6]; s7 += x[i + 7];
    }
    for (; i < n; i++) s0 += x[i];
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}
