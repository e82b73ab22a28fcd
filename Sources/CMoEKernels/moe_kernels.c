#include "moe_kernels.h"

#if defined(__GLIBC__)
#include <malloc.h>
void moe_retain_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}
#else
void moe_retain_freed_memory(void) {}
#endif

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

#include "moe_tile_acc.h"  // LOAD_ACC, STORE_ACC

// A is a packed tile: a[k * 8 + r]. Only the first R rows are computed (R = rows, specialised so a
// decode step with one or two rows does not pay for eight); every element's accumulation chain is the
// same whatever R is, so a token's result does not depend on how many rows share its tile.
// Weights stream from memory once per row block; the hardware prefetcher alone leaves the kernel
// waiting on them (qwen3 shapes: 363 vs 485 GFLOP/s on one core with a software prefetch 16 KiB ahead,
// mixtral shapes 480 vs 520). Panels are contiguous per expert, so "ahead" runs on into the next K-block
// and panel.
#define PREFETCH_AHEAD_BYTES 16384
#define PREFETCH(p) _mm_prefetch((const char *)(p) + PREFETCH_AHEAD_BYTES, _MM_HINT_T0)

#define DEFINE_TILE512(NAME, R, LOAD_B)                                                        \
    AVX512 static void NAME(int rows, int depth, const float *a, const void *bv, float *c, int accumulate) { \
        /* Local accumulators: if they lived in `c` through the loop, the compiler would store \
           them after every FMA, since a float load may alias a vector store (2.5x slower). */  \
        __m512 acc[2 * R];                                                                     \
        LOAD_ACC(R)                                                                            \
        for (int k = 0; k < depth; k++) {                                                      \
            __m512 b0, b1;                                                                     \
            LOAD_B                                                                             \
            for (int i = 0; i < R; i++) {                                                      \
                __m512 x = _mm512_set1_ps(a[k * 8 + i]);                                       \
                acc[2 * i] = _mm512_fmadd_ps(x, b0, acc[2 * i]);                               \
                acc[2 * i + 1] = _mm512_fmadd_ps(x, b1, acc[2 * i + 1]);                       \
            }                                                                                  \
        }                                                                                      \
        STORE_ACC(R)                                                                           \
    }

AVX512 static inline __m512 widen_bf16(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

#define LOAD_F32 { const float *b = (const float *)bv; PREFETCH(b + k * 32); PREFETCH(b + k * 32 + 16); \
    b0 = _mm512_loadu_ps(b + k * 32); b1 = _mm512_loadu_ps(b + k * 32 + 16); }
#define LOAD_BF16 { const uint16_t *b = (const uint16_t *)bv; PREFETCH(b + k * 32); \
    b0 = widen_bf16(_mm256_loadu_si256((const __m256i *)(b + k * 32))); \
    b1 = widen_bf16(_mm256_loadu_si256((const __m256i *)(b + k * 32 + 16))); }

DEFINE_TILE512(f32_r1, 1, LOAD_F32)
DEFINE_TILE512(f32_r2, 2, LOAD_F32)
DEFINE_TILE512(f32_r4, 4, LOAD_F32)
DEFINE_TILE512(f32_r8, 8, LOAD_F32)
DEFINE_TILE512(bf16_r1, 1, LOAD_BF16)
DEFINE_TILE512(bf16_r2, 2, LOAD_BF16)
DEFINE_TILE512(bf16_r4, 4, LOAD_BF16)
DEFINE_TILE512(bf16_r8, 8, LOAD_BF16)

typedef void (*tile512_fn)(int, int, const float *, const void *, float *, int);

AVX512 static void run_tile512(int rows, int depth, const float *a, const void *b, float *c, int accumulate,
                               tile512_fn r1, tile512_fn r2, tile512_fn r4, tile512_fn r8) {
    (rows <= 1 ? r1 : rows <= 2 ? r2 : rows <= 4 ? r4 : r8)(rows, depth, a, b, c, accumulate);
}

AVX512 void moe_panel_f32_avx512(int rows, int depth, const float *a, const float *b, float *c, int accumulate) {
    run_tile512(rows, depth, a, b, c, accumulate, f32_r1, f32_r2, f32_r4, f32_r8);
}

AVX512 void moe_panel_bf16w_avx512(int rows, int depth, const float *a, const uint16_t *b, float *c, int accumulate) {
    run_tile512(rows, depth, a, b, c, accumulate, bf16_r1, bf16_r2, bf16_r4, bf16_r8);
}

// ---- AVX-512 BF16: vdpbf16ps, bf16 activations x bf16 weights, F32 accumulation ---------------
// A tile: a[kp * 8 + r] holds (A[r][2kp], A[r][2kp+1]) as two bf16 in one 32-bit word; a panel:
// b[kp * 32 + n] holds (B[2kp][n], B[2kp+1][n]). One instruction does 16 lanes x 2 products.
#define BF16DOT __attribute__((target("avx512f,avx512bf16")))

#define DEFINE_DOT_TILE(NAME, R)                                                                      \
    BF16DOT static void NAME(int rows, int pairs, const uint32_t *a, const uint32_t *b, float *c, int accumulate) { \
        __m512 acc[2 * R];                                                                            \
        LOAD_ACC(R)                                                                                   \
        for (int k = 0; k < pairs; k++) {                                                             \
            PREFETCH(b + k * 32);                                                                     \
            PREFETCH(b + k * 32 + 16);                                                                \
            __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)(b + k * 32));                   \
            __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(b + k * 32 + 16));              \
            for (int i = 0; i < R; i++) {                                                             \
                __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[k * 8 + i]);                          \
                acc[2 * i] = _mm512_dpbf16_ps(acc[2 * i], x, b0);                                     \
                acc[2 * i + 1] = _mm512_dpbf16_ps(acc[2 * i + 1], x, b1);                             \
            }                                                                                         \
        }                                                                                             \
        STORE_ACC(R)                                                                                  \
    }

DEFINE_DOT_TILE(dot_r1, 1)
DEFINE_DOT_TILE(dot_r2, 2)
DEFINE_DOT_TILE(dot_r4, 4)
DEFINE_DOT_TILE(dot_r8, 8)

BF16DOT void moe_panel_bf16dot_avx512(int rows, int pairs, const uint32_t *a, const uint32_t *b, float *c, int accumulate) {
    if (rows <= 1) dot_r1(rows, pairs, a, b, c, accumulate);
    else if (rows <= 2) dot_r2(rows, pairs, a, b, c, accumulate);
    else if (rows <= 4) dot_r4(rows, pairs, a, b, c, accumulate);
    else dot_r8(rows, pairs, a, b, c, accumulate);
}

// ---- SwiGLU epilogue: out = silu(g + bg) * (u + bu), 16 lanes at a time ----------------------
// exp by range reduction (x = n ln2 + r, |r| <= ln2/2) and a degree-6 polynomial: relative error
// about 2e-7, well inside the 1e-5 parity budget; identical results for an element wherever its row is.
AVX512 static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

AVX512 void moe_swiglu_avx512(int n, const float *g, const float *gb, const float *u, const float *ub, float *out) {
    for (int j = 0; j < n; j += 16) {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        __m512 gv = _mm512_maskz_loadu_ps(m, g + j), uv = _mm512_maskz_loadu_ps(m, u + j);
        if (gb) gv = _mm512_add_ps(gv, _mm512_maskz_loadu_ps(m, gb + j));
        if (ub) uv = _mm512_add_ps(uv, _mm512_maskz_loadu_ps(m, ub + j));
        __m512 silu = _mm512_div_ps(gv, _mm512_add_ps(_mm512_set1_ps(1.0f), exp512(_mm512_sub_ps(_mm512_setzero_ps(), gv))));
        _mm512_mask_storeu_ps(out + j, m, _mm512_mul_ps(silu, uv));
    }
}

// ---- Writers into k-major row tiles: a block row's 32 values scatter 8 apart ---------------
AVX512 static inline __m512i eight_apart(void) {
    return _mm512_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120);
}

AVX512 static inline __mmask16 first(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

AVX512 void moe_write_tiles_f32_avx512(int rows, int columns, const float *block, float *out, long tile_stride) {
    __mmask16 lo = first(columns), hi = first(columns - 16);
    int tiles = (rows + 7) / 8;
    for (int t = 0; t < tiles; t++) {
        float *tile = out + t * tile_stride;
        for (int r = 0; r < 8; r++) {
            int live = t * 8 + r < rows;
            const float *row = block + (t * 8 + r) * 32;
            __m512 v0 = live ? _mm512_maskz_loadu_ps(lo, row) : _mm512_setzero_ps();
            __m512 v1 = live ? _mm512_maskz_loadu_ps(hi, row + 16) : _mm512_setzero_ps();
            _mm512_mask_i32scatter_ps(tile + r, lo, eight_apart(), v0, 4);
            _mm512_mask_i32scatter_ps(tile + 16 * 8 + r, hi, eight_apart(), v1, 4);
        }
    }
}

// bf16 bits of 16 floats, as BFloat16.init(Float): NaN -> high half | 0x40, else round to nearest even.
AVX512 static inline __m512i bf16_bits(__m512 x) {
    __m512i u = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb)), 16);
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_mask_blend_epi32(nan, rounded, quiet);
}

AVX512 void moe_write_tiles_pairs_avx512(int rows, int columns, const float *block, uint32_t *out, long tile_stride) {
    __mmask16 lo = first(columns), hi = first(columns - 16), words = first((columns + 1) / 2);
    int tiles = (rows + 7) / 8;
    for (int t = 0; t < tiles; t++) {
        uint32_t *tile = out + t * tile_stride;
        for (int r = 0; r < 8; r++) {
            __m512i packed = _mm512_setzero_si512();
            if (t * 8 + r < rows) {
                const float *row = block + (t * 8 + r) * 32;
                // Masked-off columns load as +0.0, whose bf16 is 0: the pad half of an odd last pair.
                __m256i h0 = _mm512_cvtepi32_epi16(bf16_bits(_mm512_maskz_loadu_ps(lo, row)));
                __m256i h1 = _mm512_cvtepi32_epi16(bf16_bits(_mm512_maskz_loadu_ps(hi, row + 16)));
                packed = _mm512_inserti64x4(_mm512_castsi256_si512(h0), h1, 1);  // word j = c(2j) | c(2j+1) << 16
            }
            _mm512_mask_i32scatter_epi32(tile + r, words, eight_apart(), packed, 4);
        }
    }
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

// ---- Gather: 8 source rows into one k-major tile, 8 k at a time through an 8x8 transpose ------
AVX2 static inline void transpose8(__m256 *v) {
    __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
    __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    v[0] = _mm256_permute2f128_ps(s0, s4, 0x20); v[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    v[2] = _mm256_permute2f128_ps(s2, s6, 0x20); v[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    v[4] = _mm256_permute2f128_ps(s0, s4, 0x31); v[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    v[6] = _mm256_permute2f128_ps(s2, s6, 0x31); v[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// Column block [k0, k0 + 8) of the tile's rows, scaled, transposed: v[j] = the 8 rows' values at k0 + j.
// Past `depth` (a tail block) the values are zero.
AVX2 static inline void load_block8(int live, int depth, int k0, const float *const *rows, const float *scales, __m256 *v) {
    for (int r = 0; r < 8; r++) {
        if (r >= live) { v[r] = _mm256_setzero_ps(); continue; }
        __m256 x;
        if (k0 + 8 <= depth) x = _mm256_loadu_ps(rows[r] + k0);
        else {
            float tail[8] = {0};
            for (int j = 0; k0 + j < depth; j++) tail[j] = rows[r][k0 + j];
            x = _mm256_loadu_ps(tail);
        }
        v[r] = _mm256_mul_ps(x, _mm256_set1_ps(scales[r]));
    }
    transpose8(v);
}

AVX2 void moe_gather_tile_f32_avx2(int live, int depth, const float *const *rows, const float *scales, float *out) {
    for (int k0 = 0; k0 < depth; k0 += 8) {
        __m256 v[8];
        load_block8(live, depth, k0, rows, scales, v);
        for (int j = 0; j < 8 && k0 + j < depth; j++) _mm256_storeu_ps(out + (k0 + j) * 8, v[j]);
    }
}

// bf16 bits in the low half of each lane, as BFloat16.init(Float).
AVX2 static inline __m256i bf16_bits8(__m256 x) {
    __m256i u = _mm256_castps_si256(x);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), lsb)), 16);
    __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    return _mm256_blendv_epi8(rounded, quiet, _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)));
}

AVX2 void moe_gather_tile_pairs_avx2(int live, int depth, const float *const *rows, const float *scales, uint32_t *out) {
    int pairs = (depth + 1) / 2;
    for (int k0 = 0; k0 < depth; k0 += 8) {
        __m256 v[8];
        load_block8(live, depth, k0, rows, scales, v);  // zero past depth: the pad half of an odd last pair
        for (int j = 0; j < 4 && k0 / 2 + j < pairs; j++) {
            __m256i word = _mm256_or_si256(bf16_bits8(v[2 * j]), _mm256_slli_epi32(bf16_bits8(v[2 * j + 1]), 16));
            _mm256_storeu_si256((__m256i *)(out + (k0 / 2 + j) * 8), word);
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
void moe_panel_bf16dot_avx512(int rows, int pairs, const uint32_t *a, const uint32_t *b, float *c, int accumulate) {}
void moe_swiglu_avx512(int n, const float *g, const float *gb, const float *u, const float *ub, float *out) {}
void moe_write_tiles_f32_avx512(int rows, int columns, const float *block, float *out, long tile_stride) {}
void moe_gather_tile_f32_avx2(int live, int depth, const float *const *rows, const float *scales, float *out) {}
void moe_gather_tile_pairs_avx2(int live, int depth, const float *const *rows, const float *scales, uint32_t *out) {}
void moe_write_tiles_pairs_avx512(int rows, int columns, const float *block, uint32_t *out, long tile_stride) {}

#endif

#if defined(__x86_64__)
__attribute__((target("avx2"))) static float sum_avx2(const float *x, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(x + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(x + i + 24));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    float s = 0;
    for (int l = 0; l < 8; l++) s += lanes[l];
    for (; i < n; i++) s += x[i];
    return s;
}
#endif

float moe_sum_f32(const float *x, size_t n) {
#if defined(__x86_64__)
    if (moe_cpu_level() >= 1) return sum_avx2(x, n);
#endif
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) { s0 += x[i]; s1 += x[i + 1]; s2 += x[i + 2]; s3 += x[i + 3]; }
    for (; i < n; i++) s0 += x[i];
    return (s0 + s1) + (s2 + s3);
}
