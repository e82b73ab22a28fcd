// Int8 kernels for the K-quants against Q8_K activations (see moe_kernels_int8_kquants.h). The panel layout
// puts column n of 16 (AVX-512) or 8 (AVX2) columns in 32-bit lane n, four consecutive inputs per lane, so
// the integer dot products need no horizontal sums: vpdpbusd (unsigned weight codes x signed activation
// codes) accumulates each column in its lane against a 4-byte broadcast of the activations. The 6-bit scales
// and mins are unpacked here, once per super-block and half panel, shared by the rows. Integer sums are
// exact (Int8Dot.kQuantReference argues the bounds); the F32 steps are the reference's, one intrinsic each
// (mul, then fmadd / fnmadd), so nothing is contracted.
#include "moe_kernels_int8_kquants.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define KQ512 __attribute__((target("avx512f,avx512bw,avx512vnni"), always_inline)) static inline
#define KQ512_ENTRY __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define KQ256 __attribute__((target("avx2,fma,f16c"), always_inline)) static inline
#define KQ256_ENTRY __attribute__((target("avx2,fma,f16c")))

// Loops over registers (rows, half panels, quarters, groups) are unrolled so their arrays stay in registers.
#define UNROLL _Pragma("clang loop unroll(full)")

typedef int32_t int32_alias __attribute__((may_alias, aligned(1)));

// Permuted field offsets (Int8Dot.kQuantFields): bytes from the start of one panel row.
enum {
    Q4K_ROW = 4608, Q4K_DMIN = 64, Q4K_SCALES = 128, Q4K_QS = 512,
    Q5K_ROW = 5632, Q5K_QH = 512, Q5K_QS = 1536,
    Q6K_ROW = 6720, Q6K_SCALES = 64, Q6K_CODES = 576,
};

// Weights streamed once at one or two rows: fetched 4 KiB ahead into L2 (as moe_kernels_quant.c's quantized
// loops); overridable for speed experiments (-DKQ_PREFETCH(p)=...).
#ifndef KQ_PREFETCH
#define KQ_PREFETCH(p) _mm_prefetch((const char *)(p) + 4096, _MM_HINT_T1)
#endif

// One row's activations at one super-block.
typedef struct {
    const int8_t *q;
    const int16_t *s;
    float d;
} act_block;

static inline int32_t load32(const void *p) { return *(const int32_alias *)p; }

// ---- AVX-512 --------------------------------------------------------------------------------------------

// The eight 6-bit scales and mins of 16 columns (get_scale_min_k4 on each lane's 12 bytes s0 | s1 | s2):
// bytes j of sc[0] are scale j, of sc[1] scale 4 + j; likewise the mins.
typedef struct { __m512i sc[2], m[2]; } kscales512;

KQ512 kscales512 unpack_scales512(const uint8_t *p) {
    const __m512i s0 = _mm512_loadu_si512(p), s1 = _mm512_loadu_si512(p + 128), s2 = _mm512_loadu_si512(p + 256);
    const __m512i m6 = _mm512_set1_epi8(0x3F), m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x03);
    kscales512 k;
    k.sc[0] = _mm512_and_si512(s0, m6);
    k.m[0] = _mm512_and_si512(s1, m6);
    k.sc[1] = _mm512_or_si512(_mm512_and_si512(s2, m4), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s0, 6), m2), 4));
    k.m[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(s2, 4), m4),
                             _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s1, 6), m2), 4));
    return k;
}

// Byte k of each lane as an Int32.
KQ512 __m512i lane_byte512(__m512i v, int k) {
    return k == 3 ? _mm512_srli_epi32(v, 24) : _mm512_and_si512(_mm512_srli_epi32(v, 8 * k), _mm512_set1_epi32(0xFF));
}

// Moves bit p of every byte to bit 4 (other bits garbage, to be masked).
KQ512 __m512i bit_to_4_512(__m512i v, int p) {
    return p < 4 ? _mm512_slli_epi16(v, 4 - p) : p > 4 ? _mm512_srli_epi16(v, p - 4) : v;
}

// One super-block of Q4_K (FIFTH = 0) or Q5_K (FIFTH = 1) for R rows and NH half panels from half H0:
// c[r*32 + 16h ..] = fnmadd(dmin*da, M, fmadd(dw*da, S, c)).
KQ512 void q45_block512(const int R, const int NH, const int H0, const int FIFTH, const uint8_t *row,
                        const act_block *a, float *c) {
    const int qs_at = FIFTH ? Q5K_QS : Q4K_QS;
    const __m512i m4 = _mm512_set1_epi8(0x0F), b4 = _mm512_set1_epi8(0x10);
    kscales512 k[2];
    __m512i S[2][8];
    UNROLL for (int h = 0; h < NH; h++) {
        k[h] = unpack_scales512(row + Q4K_SCALES + 64 * (H0 + h));
        UNROLL for (int r = 0; r < R; r++) S[h][r] = _mm512_setzero_si512();
    }
    UNROLL for (int g = 0; g < 4; g++) {
        __m512i lo_acc[2][8], hi_acc[2][8];
        UNROLL for (int h = 0; h < NH; h++)
            UNROLL for (int r = 0; r < R; r++) lo_acc[h][r] = hi_acc[h][r] = _mm512_setzero_si512();
        for (int l4 = 0; l4 < 8; l4++) {
            UNROLL for (int h = 0; h < NH; h++) {
                const uint8_t *w = row + qs_at + (8 * g + l4) * 128 + 64 * (H0 + h);
                if (R <= 2) {
                    // 4 KiB ahead reaches the next panel row's scales and most of its codes; one whole row ahead
                    // (32 blocks) the rest of its codes.
                    KQ_PREFETCH(w);
                    _mm_prefetch((const char *)w + 32 * (FIFTH ? 176 : 144), _MM_HINT_T1);
                }
                const __m512i v = _mm512_loadu_si512(w);
                __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                if (FIFTH) {
                    const __m512i qh = _mm512_loadu_si512(row + Q5K_QH + l4 * 128 + 64 * (H0 + h));
                    lo = _mm512_or_si512(lo, _mm512_and_si512(bit_to_4_512(qh, 2 * g), b4));
                    hi = _mm512_or_si512(hi, _mm512_and_si512(bit_to_4_512(qh, 2 * g + 1), b4));
                }
                UNROLL for (int r = 0; r < R; r++) {
                    const __m512i xl = _mm512_set1_epi32(load32(a[r].q + 64 * g + 4 * l4));
                    const __m512i xh = _mm512_set1_epi32(load32(a[r].q + 64 * g + 32 + 4 * l4));
                    lo_acc[h][r] = _mm512_dpbusd_epi32(lo_acc[h][r], lo, xl);
                    hi_acc[h][r] = _mm512_dpbusd_epi32(hi_acc[h][r], hi, xh);
                }
            }
        }
        UNROLL for (int h = 0; h < NH; h++) {
            const int j = 2 * g;  // groups j (low nibbles) and j + 1 (high), bytes j % 4 of sc[j / 4]
            const __m512i scl = lane_byte512(k[h].sc[j / 4], j % 4), sch = lane_byte512(k[h].sc[j / 4], j % 4 + 1);
            UNROLL for (int r = 0; r < R; r++)
                S[h][r] = _mm512_add_epi32(S[h][r], _mm512_add_epi32(_mm512_mullo_epi32(lo_acc[h][r], scl),
                                                                     _mm512_mullo_epi32(hi_acc[h][r], sch)));
        }
    }
    UNROLL for (int h = 0; h < NH; h++) {
        // M = sum_j m_j * (sum16[2j] + sum16[2j+1]): vpdpwssd of (m_j, m_j) with the two sums as one Int32.
        __m512i M[8];
        UNROLL for (int r = 0; r < R; r++) M[r] = _mm512_setzero_si512();
        UNROLL for (int j = 0; j < 8; j++) {
            const __m512i m = lane_byte512(k[h].m[j / 4], j % 4), pair = _mm512_or_si512(m, _mm512_slli_epi32(m, 16));
            UNROLL for (int r = 0; r < R; r++) M[r] = _mm512_dpwssd_epi32(M[r], pair, _mm512_set1_epi32(load32(a[r].s + 2 * j)));
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 32 * (H0 + h))));
        const __m512 dm = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + Q4K_DMIN + 32 * (H0 + h))));
        UNROLL for (int r = 0; r < R; r++) {
            float *cr = c + r * 32 + 16 * (H0 + h);
            const __m512 da = _mm512_set1_ps(a[r].d);
            __m512 sum = _mm512_loadu_ps(cr);
            sum = _mm512_fmadd_ps(_mm512_mul_ps(dw, da), _mm512_cvtepi32_ps(S[h][r]), sum);
            sum = _mm512_fnmadd_ps(_mm512_mul_ps(dm, da), _mm512_cvtepi32_ps(M[r]), sum);
            _mm512_storeu_ps(cr, sum);
        }
    }
}

// Q6_K reads its code rows in layout order (step (vh, l4): ql rows 16vh + l4 and 16vh + 8 + l4, qh row 8vh + l4,
// 384 bytes stored together), one forward stream; each line is prefetched one whole panel row ahead.
#define Q6_PREFETCH(p) _mm_prefetch((const char *)(p) + 32 * 210, _MM_HINT_T1)

// One Q6_K super-block for R rows, NH half panels from H0, and the code quarters x in X0 ..< X0 + XN (each
// quarter is one 4-bit plane of ql plus a 2-bit field of qh: inputs 128vh + 32x + l), adding its part of
// sum_j sc_j * sum_i q_i * a_i to S; q6_finish512 adds the -32 offset and does the F32 step.
KQ512 void q6_part512(const int R, const int NH, const int H0, const int X0, const int XN, const uint8_t *row,
                      const act_block *a, __m512i S[][8]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    for (int vh = 0; vh < 2; vh++) {
        for (int quarter = 0; quarter < 2; quarter++) {  // inputs l = 16*quarter ..< 16*quarter + 16 of each 32
            __m512i D[2][4][8];
            UNROLL for (int h = 0; h < NH; h++)
                UNROLL for (int x = X0; x < X0 + XN; x++)
                    UNROLL for (int r = 0; r < R; r++) D[h][x][r] = _mm512_setzero_si512();
            UNROLL for (int l4 = 4 * quarter; l4 < 4 * quarter + 4; l4++) {
                UNROLL for (int h = 0; h < NH; h++) {
                    const int col = 64 * (H0 + h);
                    const uint8_t *pa = row + Q6K_CODES + (8 * vh + l4) * 384 + col, *pb = pa + 128, *ph = pa + 256;
                    if (R <= 2 && X0 == 0) { Q6_PREFETCH(pa); Q6_PREFETCH(pb); Q6_PREFETCH(ph); }
                    const __m512i qh = _mm512_loadu_si512(ph);
                    __m512i q[4];
                    UNROLL for (int x = X0; x < X0 + XN; x++) {
                        const __m512i ql = _mm512_loadu_si512(x % 2 == 0 ? pa : pb);
                        const __m512i nib = x < 2 ? ql : _mm512_srli_epi16(ql, 4);
                        const __m512i top = x == 0 ? _mm512_slli_epi16(qh, 4) : x == 1 ? _mm512_slli_epi16(qh, 2)
                                          : x == 2 ? qh : _mm512_srli_epi16(qh, 2);
                        q[x] = _mm512_or_si512(_mm512_and_si512(nib, m4), _mm512_and_si512(top, m30));
                    }
                    UNROLL for (int r = 0; r < R; r++)
                        UNROLL for (int x = X0; x < X0 + XN; x++)
                            D[h][x][r] = _mm512_dpbusd_epi32(D[h][x][r], q[x],
                                                             _mm512_set1_epi32(load32(a[r].q + 128 * vh + 32 * x + 4 * l4)));
                }
            }
            UNROLL for (int h = 0; h < NH; h++)
                UNROLL for (int x = X0; x < X0 + XN; x++) {
                    const int j = 8 * vh + 2 * x + quarter;  // the 16-input group
                    const __m512i v = _mm512_loadu_si512(row + Q6K_SCALES + (j / 4) * 128 + 64 * (H0 + h));
                    const __m512i sc = _mm512_srai_epi32(_mm512_slli_epi32(v, 24 - 8 * (j % 4)), 24);
                    UNROLL for (int r = 0; r < R; r++) S[h][r] = _mm512_add_epi32(S[h][r], _mm512_mullo_epi32(D[h][x][r], sc));
                }
        }
    }
}

// S -= 32 * sum_j sc_j * sum16[j] (vpdpwssd of (-32 sc_2p, -32 sc_2p+1) with the two sums as one Int32),
// then c = fmadd(dw*da, S, c).
KQ512 void q6_finish512(const int R, const int NH, const int H0, const uint8_t *row, const act_block *a,
                        __m512i S[][8], float *c) {
    UNROLL for (int h = 0; h < NH; h++) {
        UNROLL for (int t = 0; t < 4; t++) {
            const __m512i v = _mm512_loadu_si512(row + Q6K_SCALES + t * 128 + 64 * (H0 + h));
            UNROLL for (int half = 0; half < 2; half++) {
                // Words (sc_4t+2half, sc_4t+2half+1) sign-extended: shift each byte into the top of its word.
                const __m512i pick = _mm512_set4_epi32((int)(0x0D800C80u + 0x02000200u * half), (int)(0x09800880u + 0x02000200u * half),
                                                       (int)(0x05800480u + 0x02000200u * half), (int)(0x01800080u + 0x02000200u * half));
                const __m512i words = _mm512_srai_epi16(_mm512_shuffle_epi8(v, pick), 8);
                const __m512i neg32 = _mm512_sub_epi16(_mm512_setzero_si512(), _mm512_slli_epi16(words, 5));
                const int j = 4 * t + 2 * half;
                UNROLL for (int r = 0; r < R; r++)
                    S[h][r] = _mm512_dpwssd_epi32(S[h][r], neg32, _mm512_set1_epi32(load32(a[r].s + j)));
            }
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 32 * (H0 + h))));
        UNROLL for (int r = 0; r < R; r++) {
            float *cr = c + r * 32 + 16 * (H0 + h);
            __m512 sum = _mm512_loadu_ps(cr);
            sum = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(a[r].d)), _mm512_cvtepi32_ps(S[h][r]), sum);
            _mm512_storeu_ps(cr, sum);
        }
    }
}

KQ512 void q6_block512(const int R, const int NH, const int H0, const int XN, const uint8_t *row, const act_block *a, float *c) {
    __m512i S[2][8];
    UNROLL for (int h = 0; h < NH; h++)
        UNROLL for (int r = 0; r < R; r++) S[h][r] = _mm512_setzero_si512();
    UNROLL for (int x0 = 0; x0 < 4; x0 += XN) q6_part512(R, NH, H0, x0, XN, row, a, S);
    q6_finish512(R, NH, H0, row, a, S, c);
}

// Type 0: Q4_K, 1: Q5_K, 2: Q6_K. Few rows take both half panels at once (more independent chains);
// more rows one half at a time (and Q6_K at 5+ rows two code quarters at a time) to stay in 32 registers.
KQ512 void kquant_rows512(const int TYPE, const int R, const uint8_t *row, const act_block *a, float *c) {
    if (TYPE < 2) {
        if (R <= 4) q45_block512(R, 2, 0, TYPE, row, a, c);
        else { q45_block512(R, 1, 0, TYPE, row, a, c); q45_block512(R, 1, 1, TYPE, row, a, c); }
    } else {
        if (R <= 2) q6_block512(R, 2, 0, 4, row, a, c);
        else UNROLL for (int h = 0; h < 2; h++) q6_block512(R, 1, h, R <= 4 ? 4 : 2, row, a, c);
    }
}

// The activations of rows 0 ..< R at block b.
static inline void act_at(int R, act_block *a, int b, const int8_t *aq, const float *ad, const int16_t *as, ptrdiff_t stride) {
    UNROLL for (int r = 0; r < R; r++) {
        a[r].q = aq + r * stride + 256 * b;
        a[r].d = ad[r * (stride / 256) + b];
        a[r].s = as + r * (stride / 16) + 16 * b;
    }
}

static inline void zero_rows(int rows, float *c) {
    for (int i = 0; i < rows * 32; i++) c[i] = 0.0f;
}

// One function per (type, ISA, rows): R is a constant inside BODY (kquant_rows512 or kquant_rows256), so the
// row loops unroll. ENTRY is the ISA's target attribute.
#define KQ_ROWS(ENTRY, BODY, FN, TYPE, R, ROWBYTES)                                                         \
    ENTRY static void FN(int blocks, const int8_t *aq, const float *ad, const int16_t *as, ptrdiff_t stride, \
                         const uint8_t *panel, float *c) {                                                  \
        for (int b = 0; b < blocks; b++) {                                                                  \
            act_block a[8];                                                                                 \
            act_at(R, a, b, aq, ad, as, stride);                                                            \
            BODY(TYPE, R, panel + (ptrdiff_t)b * ROWBYTES, a, c);                                           \
        }                                                                                                   \
    }
#define KQ_ROWS512(FN, TYPE, R, ROWBYTES) KQ_ROWS(KQ512_ENTRY, kquant_rows512, FN, TYPE, R, ROWBYTES)
#define KQ_TYPE512(NAME, TYPE, ROWBYTES)                                                                    \
    KQ_ROWS512(NAME##_r1, TYPE, 1, ROWBYTES) KQ_ROWS512(NAME##_r2, TYPE, 2, ROWBYTES)                            \
    KQ_ROWS512(NAME##_r3, TYPE, 3, ROWBYTES) KQ_ROWS512(NAME##_r4, TYPE, 4, ROWBYTES)                            \
    KQ_ROWS512(NAME##_r5, TYPE, 5, ROWBYTES) KQ_ROWS512(NAME##_r6, TYPE, 6, ROWBYTES)                            \
    KQ_ROWS512(NAME##_r7, TYPE, 7, ROWBYTES) KQ_ROWS512(NAME##_r8, TYPE, 8, ROWBYTES)                            \
    KQ512_ENTRY void NAME(int rows, int blocks, const int8_t *aq, const float *ad, const int16_t *as,       \
                          ptrdiff_t stride, const void *panel, float *c, int accumulate) {                  \
        if (!accumulate) zero_rows(rows, c);                                                                \
        void (*const fns[8])(int, const int8_t *, const float *, const int16_t *, ptrdiff_t, const uint8_t *, \
                             float *) = {NAME##_r1, NAME##_r2, NAME##_r3, NAME##_r4,                        \
                                         NAME##_r5, NAME##_r6, NAME##_r7, NAME##_r8};                       \
        if (rows >= 1 && rows <= 8) fns[rows - 1](blocks, aq, ad, as, stride, (const uint8_t *)panel, c);   \
    }

KQ_TYPE512(moe_int8_q4k_avx512, 0, Q4K_ROW)
KQ_TYPE512(moe_int8_q5k_avx512, 1, Q5K_ROW)
KQ_TYPE512(moe_int8_q6k_avx512, 2, Q6K_ROW)

// ---- AVX2 -----------------------------------------------------------------------------------------------
// A quad is 8 columns (one ymm, 32 bytes of a 128-byte unit row). vpmaddubsw (unsigned codes x signed
// activations: a pair sums to at most 2*63*128 = 16128, no saturation) then vpmaddwd with (sc, sc) words
// multiplies by the group's scale exactly. Q4_K adds 8 vpmaddubsw results in Int16 first (8*2*15*128 =
// 30720 < 32768), Q5_K 4 (4*2*31*128 = 31744). Up to 4 rows per pass over the weights.

typedef struct { __m256i sc[2], m[2]; } kscales256;

KQ256 kscales256 unpack_scales256(const uint8_t *p) {
    const __m256i s0 = _mm256_loadu_si256((const __m256i *)p), s1 = _mm256_loadu_si256((const __m256i *)(p + 128));
    const __m256i s2 = _mm256_loadu_si256((const __m256i *)(p + 256));
    const __m256i m6 = _mm256_set1_epi8(0x3F), m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
    kscales256 k;
    k.sc[0] = _mm256_and_si256(s0, m6);
    k.m[0] = _mm256_and_si256(s1, m6);
    k.sc[1] = _mm256_or_si256(_mm256_and_si256(s2, m4), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(s0, 6), m2), 4));
    k.m[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(s2, 4), m4),
                             _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(s1, 6), m2), 4));
    return k;
}

// Byte k of each lane (unsigned) in both words of the lane.
KQ256 __m256i lane_pair256(__m256i v, int k) {
    const __m256i b = _mm256_and_si256(_mm256_srli_epi32(v, 8 * k), _mm256_set1_epi32(0xFF));
    return _mm256_or_si256(b, _mm256_slli_epi32(b, 16));
}

KQ256 __m256i bit_to_4_256(__m256i v, int p) {
    return p < 4 ? _mm256_slli_epi16(v, 4 - p) : p > 4 ? _mm256_srli_epi16(v, p - 4) : v;
}

KQ256 __m256i bcast32_256(const void *p) { return _mm256_set1_epi32(load32(p)); }

KQ256 void q45_quad256(const int R, const int FIFTH, const int QD, const uint8_t *row, const act_block *a, float *c) {
    const int col = 32 * QD, qs_at = FIFTH ? Q5K_QS : Q4K_QS;
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    const kscales256 k = unpack_scales256(row + Q4K_SCALES + col);
    __m256i S[4];
    UNROLL for (int r = 0; r < R; r++) S[r] = _mm256_setzero_si256();
    UNROLL for (int g = 0; g < 4; g++) {
        const __m256i scl = lane_pair256(k.sc[g / 2], (2 * g) % 4), sch = lane_pair256(k.sc[g / 2], (2 * g) % 4 + 1);
        __m256i pl[4], ph[4];
        UNROLL for (int r = 0; r < R; r++) pl[r] = ph[r] = _mm256_setzero_si256();
        UNROLL for (int l4 = 0; l4 < 8; l4++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(row + qs_at + (8 * g + l4) * 128 + col));
            __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (FIFTH) {
                const __m256i qh = _mm256_loadu_si256((const __m256i *)(row + Q5K_QH + l4 * 128 + col));
                lo = _mm256_or_si256(lo, _mm256_and_si256(bit_to_4_256(qh, 2 * g), b4));
                hi = _mm256_or_si256(hi, _mm256_and_si256(bit_to_4_256(qh, 2 * g + 1), b4));
            }
            UNROLL for (int r = 0; r < R; r++) {
                pl[r] = _mm256_add_epi16(pl[r], _mm256_maddubs_epi16(lo, bcast32_256(a[r].q + 64 * g + 4 * l4)));
                ph[r] = _mm256_add_epi16(ph[r], _mm256_maddubs_epi16(hi, bcast32_256(a[r].q + 64 * g + 32 + 4 * l4)));
            }
            if (l4 == 7 || (FIFTH && l4 == 3))
                UNROLL for (int r = 0; r < R; r++) {
                    S[r] = _mm256_add_epi32(S[r], _mm256_add_epi32(_mm256_madd_epi16(pl[r], scl), _mm256_madd_epi16(ph[r], sch)));
                    pl[r] = ph[r] = _mm256_setzero_si256();
                }
        }
    }
    __m256i M[4];
    UNROLL for (int r = 0; r < R; r++) M[r] = _mm256_setzero_si256();
    UNROLL for (int j = 0; j < 8; j++) {
        const __m256i pair = lane_pair256(k.m[j / 4], j % 4);
        UNROLL for (int r = 0; r < R; r++) M[r] = _mm256_add_epi32(M[r], _mm256_madd_epi16(pair, bcast32_256(a[r].s + 2 * j)));
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 16 * QD)));
    const __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + Q4K_DMIN + 16 * QD)));
    UNROLL for (int r = 0; r < R; r++) {
        float *cr = c + r * 32 + 8 * QD;
        const __m256 da = _mm256_set1_ps(a[r].d);
        __m256 sum = _mm256_loadu_ps(cr);
        sum = _mm256_fmadd_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(S[r]), sum);
        sum = _mm256_fnmadd_ps(_mm256_mul_ps(dm, da), _mm256_cvtepi32_ps(M[r]), sum);
        _mm256_storeu_ps(cr, sum);
    }
}

// Words (sc, sc), sc = the signed byte k of each lane, or (sc_k, sc_k+1) when PAIR: vpshufb puts each byte
// into the top of a word, vpsraw 8 sign-extends it.
KQ256 __m256i scale_words256(__m256i v, int k, int PAIR) {
    const int k1 = PAIR ? k + 1 : k;
    const uint32_t base = 0x80u | ((uint32_t)k << 8) | (0x80u << 16) | ((uint32_t)k1 << 24);
    const __m256i pick = _mm256_setr_epi32((int)base, (int)(base + 0x04000400u), (int)(base + 0x08000800u), (int)(base + 0x0C000C00u),
                                           (int)base, (int)(base + 0x04000400u), (int)(base + 0x08000800u), (int)(base + 0x0C000C00u));
    return _mm256_srai_epi16(_mm256_shuffle_epi8(v, pick), 8);
}

KQ256 void q6_quad256(const int R, const int QD, const uint8_t *row, const act_block *a, float *c) {
    const int col = 32 * QD;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256i S[4];
    UNROLL for (int r = 0; r < R; r++) S[r] = _mm256_setzero_si256();
    UNROLL for (int vh = 0; vh < 2; vh++) {
        __m256i scp[4];
        for (int l4 = 0; l4 < 8; l4++) {
            if (l4 % 4 == 0)
                UNROLL for (int x = 0; x < 4; x++) {
                    const int j = 8 * vh + 2 * x + l4 / 4;
                    const __m256i v = _mm256_loadu_si256((const __m256i *)(row + Q6K_SCALES + (j / 4) * 128 + col));
                    scp[x] = scale_words256(v, j % 4, 0);
                }
            const uint8_t *pa = row + Q6K_CODES + (8 * vh + l4) * 384 + col;
            const __m256i qa = _mm256_loadu_si256((const __m256i *)pa), qb = _mm256_loadu_si256((const __m256i *)(pa + 128));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(pa + 256));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(qa, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            q[1] = _mm256_or_si256(_mm256_and_si256(qb, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qa, 4), m4), _mm256_and_si256(qh, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qb, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            UNROLL for (int r = 0; r < R; r++)
                UNROLL for (int x = 0; x < 4; x++)
                    S[r] = _mm256_add_epi32(S[r], _mm256_madd_epi16(_mm256_maddubs_epi16(q[x], bcast32_256(a[r].q + 128 * vh + 32 * x + 4 * l4)), scp[x]));
        }
    }
    UNROLL for (int t = 0; t < 4; t++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(row + Q6K_SCALES + t * 128 + col));
        UNROLL for (int half = 0; half < 2; half++) {
            const __m256i neg32 = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(scale_words256(v, 2 * half, 1), 5));
            UNROLL for (int r = 0; r < R; r++)
                S[r] = _mm256_add_epi32(S[r], _mm256_madd_epi16(neg32, bcast32_256(a[r].s + 4 * t + 2 * half)));
        }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 16 * QD)));
    UNROLL for (int r = 0; r < R; r++) {
        float *cr = c + r * 32 + 8 * QD;
        __m256 sum = _mm256_loadu_ps(cr);
        sum = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(a[r].d)), _mm256_cvtepi32_ps(S[r]), sum);
        _mm256_storeu_ps(cr, sum);
    }
}

KQ256 void kquant_rows256(const int TYPE, const int R, const uint8_t *row, const act_block *a, float *c) {
    UNROLL for (int qd = 0; qd < 4; qd++) {
        if (TYPE < 2) q45_quad256(R, TYPE, qd, row, a, c);
        else q6_quad256(R, qd, row, a, c);
    }
}

#define KQ_ROWS256(FN, TYPE, R, ROWBYTES) KQ_ROWS(KQ256_ENTRY, kquant_rows256, FN, TYPE, R, ROWBYTES)
#define KQ_TYPE256(NAME, TYPE, ROWBYTES)                                                                    \
    KQ_ROWS256(NAME##_r1, TYPE, 1, ROWBYTES) KQ_ROWS256(NAME##_r2, TYPE, 2, ROWBYTES)                      \
    KQ_ROWS256(NAME##_r3, TYPE, 3, ROWBYTES) KQ_ROWS256(NAME##_r4, TYPE, 4, ROWBYTES)                      \
    KQ256_ENTRY void NAME(int rows, int blocks, const int8_t *aq, const float *ad, const int16_t *as,       \
                          ptrdiff_t stride, const void *panel, float *c, int accumulate) {                  \
        if (!accumulate) zero_rows(rows, c);                                                                \
        void (*const fns[4])(int, const int8_t *, const float *, const int16_t *, ptrdiff_t, const uint8_t *, \
                             float *) = {NAME##_r1, NAME##_r2, NAME##_r3, NAME##_r4};                       \
        /* Rows 0-3, then rows 4-7: a second pass over each panel row, from L1. */                           \
        for (int r0 = 0; r0 < rows && r0 < 8; r0 += 4) {                                                     \
            const int n = rows - r0 < 4 ? rows - r0 : 4;                                                    \
            fns[n - 1](blocks, aq + r0 * stride, ad + r0 * (stride / 256), as + r0 * (stride / 16), stride,  \
                       (const uint8_t *)panel, c + 32 * r0);                                                \
        }                                                                                                   \
    }

KQ_TYPE256(moe_int8_q4k_avx2, 0, Q4K_ROW)
KQ_TYPE256(moe_int8_q5k_avx2, 1, Q5K_ROW)
KQ_TYPE256(moe_int8_q6k_avx2, 2, Q6K_ROW)

#else

void moe_int8_q4k_avx512(int rows, int blocks, const int8_t *aq, const float *ad, const int16_t *as, ptrdiff_t stride,
                         const void *panel, float *c, int accumulate) { __builtin_trap(); }
void moe_int8_q5k_avx512(int rows, int blocks, const int8_t *aq, const float *ad, const int16_t *as, ptrdiff_t stride,
                         const void *panel, float *c, int accumulate) { __builtin_trap(); }
void moe_int8_q6k_avx512(int rows, int blocks, const int8_t *aq, const float *ad, const int16_t *as, ptrdiff_t stride,
                         const void *panel, float *c, int accumulate) { __builtin_trap(); }
void moe_int8_q4k_avx2(int rows, int blocks, const int8_t *aq, const float *ad, const int16_t *as, ptrdiff_t stride,
                       const void *panel, float *c, int accumulate) { __builtin_trap(); }
void moe_int8_q5k_avx2(int rows, int blocks, const int8_t *aq, const float *ad, const int16_t *as, ptrdiff_t stride,
                       const void *panel, float *c, int accumulate) { __builtin_trap(); }
void moe_int8_q6k_avx2(int rows, int blocks, const int8_t *aq, const float *ad, const int16_t *as, ptrdiff_t stride,
                       const void *panel, float *c, int accumulate) { __builtin_trap(); }

#endif
