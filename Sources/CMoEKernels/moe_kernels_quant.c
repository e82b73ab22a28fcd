// Panel kernels for quantized weights (see moe_kernels_quant.h): the micro-tile of moe_kernels.c with
// the weight row dequantized in registers. Every dequantization is exact, i.e. bit-identical to the
// scalar definition; the FMA chains are those of moe_panel_bf16w_avx512 / moe_panel_bf16w_avx2, except
// AVX-512 MXFP4 with scales in its window, which sums each 32-k group first (see its section).
#include "moe_kernels.h"
#include "moe_kernels_quant.h"

#if defined(__x86_64__)
#include <immintrin.h>

// ---- AVX-512: 8 rows x 32 columns, 16 accumulators (as moe_kernels.c) -----------------------
#define QAVX512 __attribute__((target("avx512f")))

// Reading a float's bits through these is defined behaviour (no strict-aliasing assumption).
typedef int32_t int32_alias __attribute__((may_alias));
typedef uint16_t uint16_alias __attribute__((may_alias));

// A[k][r] in all 16 lanes. Zen 4 runs vbroadcastss from memory (what _mm512_set1_ps compiles to, whatever
// the source spelling: clang picks the floating-point form for an FMA operand) as a load plus a shuffle
// uop, on the ports the FP8 and MXFP4 dequantization shuffles (and the FMAs) use; vpbroadcastd from
// memory is a load alone. Same bits. Measured per k on one core: 8 rows 19.8 -> 18.0 cycles (MXFP4),
// 21.5 -> 18.2 (FP8); one row FP8 7.6 -> 7.0.
QAVX512 static inline __m512 broadcast_activation_512(const float *p) {
    __m512 v;
    __asm__("vpbroadcastd %1, %0" : "=v"(v) : "m"(*p));
    return v;
}

#include "moe_tile_acc.h"  // LOAD_ACC, STORE_ACC

// Software prefetch 16 KiB ahead, as moe_kernels.c (F16, and the AVX2 loops). The AVX-512 loops issue one
// per 64-byte line of weights (a quantized row is 64 (F16), 32 (FP8) or 16 (MXFP4) bytes: U = 1, 2 or 4
// rows per prefetch).
#define PREFETCH_AHEAD_BYTES 16384
#define PREFETCH(p) _mm_prefetch((const char *)(p) + PREFETCH_AHEAD_BYTES, _MM_HINT_T0)
// The AVX-512 FP8 and MXFP4 loops prefetch 4 KiB ahead (128 (FP8) or 256 (MXFP4) k: 250-350 ns at one
// row, longer with more rows) into L2 (prefetcht1), and leave the last step to L1 to the hardware. One
// row streaming from DRAM on both cores of a Zen 4, each core taking every other panel as the work items
// fall at decode: FP8 21-25 GB/s with prefetcht0 16 KiB or 4 KiB ahead, 28-30 with prefetcht1 4 KiB;
// MXFP4 19-21 -> 22; 2, 8 or 16 KiB into L2 were no better, 8 rows and L2-resident weights unchanged.
#define PREFETCH_QUANT_BYTES 4096
#define PREFETCH_QUANT(p) _mm_prefetch((const char *)(p) + PREFETCH_QUANT_BYTES, _MM_HINT_T1)

// Rows k0 ..< k1 of one scale group: LOAD_B(k) dequantizes row k into (b0, b1), then 2R FMAs.
#define FMA_ROW512(R, K)                                                                       \
    for (int i = 0; i < R; i++) {                                                              \
        __m512 x = broadcast_activation_512(a + (K) * 8 + i);                                  \
        acc[2 * i] = _mm512_fmadd_ps(x, b0, acc[2 * i]);                                       \
        acc[2 * i + 1] = _mm512_fmadd_ps(x, b1, acc[2 * i + 1]);                               \
    }
#define K_LOOP512(R, U, PF, LOAD_B)                                                            \
    {                                                                                          \
        int k = k0;                                                                            \
        for (; k + U <= k1; k += U) {                                                          \
            PF;                                                                                \
            for (int u = 0; u < U; u++) { __m512 b0, b1; LOAD_B(k + u) FMA_ROW512(R, k + u) }   \
        }                                                                                      \
        for (; k < k1; k++) { __m512 b0, b1; LOAD_B(k) FMA_ROW512(R, k) }                       \
    }

// A is a packed tile: a[k * 8 + r]. Only the first R rows are computed (R = rows, specialised); every
// element's chain is the same whatever R is. GROUP(R) runs the rows of group g (k0 ..< k1) after
// loading the group's scales, so no per-k modulo: the scales change only at group boundaries.
#define DEFINE_QTILE512(NAME, R, GROUP)                                                        \
    QAVX512 static void NAME(int rows, int depth, const float *a, const void *bv, const void *sv, int group, \
                             float *c, int accumulate) {                                       \
        __m512 acc[2 * R];                                                                     \
        LOAD_ACC(R)                                                                            \
        for (int k0 = 0, g = 0; k0 < depth; k0 += group, g++) {                                \
            int k1 = depth - k0 < group ? depth : k0 + group;                                  \
            GROUP(R)                                                                           \
        }                                                                                      \
        STORE_ACC(R)                                                                           \
        (void)sv;                                                                              \
    }

typedef void (*qtile_fn)(int, int, const float *, const void *, const void *, int, float *, int);

static inline qtile_fn pick_tile(int rows, qtile_fn r1, qtile_fn r2, qtile_fn r4, qtile_fn r8) {
    return rows <= 1 ? r1 : rows <= 2 ? r2 : rows <= 4 ? r4 : r8;
}

// -- F16: vcvtph2ps is exact.
#define LOAD_F16_512(K)                                                                        \
    b0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(b + (K) * 32)));                 \
    b1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(b + (K) * 32 + 16)));
#define GROUP_F16_512(R) { const uint16_t *b = (const uint16_t *)bv; K_LOOP512(R, 1, PREFETCH(b + k * 32), LOAD_F16_512) }

DEFINE_QTILE512(f16_r1, 1, GROUP_F16_512)
DEFINE_QTILE512(f16_r2, 2, GROUP_F16_512)
DEFINE_QTILE512(f16_r4, 4, GROUP_F16_512)
DEFINE_QTILE512(f16_r8, 8, GROUP_F16_512)

QAVX512 void moe_panel_f16_avx512(int rows, int depth, const float *a, const uint16_t *b, float *c, int accumulate) {
    pick_tile(rows, f16_r1, f16_r2, f16_r4, f16_r8)(rows, depth, a, b, 0, depth, c, accumulate);
}

// -- FP8 E4M3. The code's bits placed into an IEEE half, ((code & 0x80) << 8) | ((code & 0x7F) << 7),
// are e4m3(code) * 2^-8 exactly, subnormals included (both formats have 3 mantissa bits, and the
// exponent biases differ by 8); vcvtph2ps widens it exactly. Then W = that * (scale * 256): scale * 256
// is exact while |scale| < 2^120, and the product is the real number e4m3 * scale rounded once, as the
// scalar e4m3 * scale. A call with a scale of magnitude >= 2^120 (not from any real checkpoint, but
// handled) takes (that * 256) * scale instead: the first product is e4m3 itself, exact.
// Sign-extending the byte to 16 bits and shifting left by 7 gives the half with bit 14 also set for
// negative codes; clearing bit 14 leaves exactly the bits above.
QAVX512 static inline __m512 fp8_down8_512(const uint8_t *p) {
    __m256i h = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
    h = _mm256_and_si256(_mm256_slli_epi16(h, 7), _mm256_set1_epi16((short)0xBFFF));
    return _mm512_cvtph_ps(h);
}
QAVX512 static inline __m512 fp8_dequant_512(const uint8_t *p, __m512 scale256) {
    return _mm512_mul_ps(fp8_down8_512(p), scale256);
}
QAVX512 static inline __m512 fp8_dequant_wide_512(const uint8_t *p, __m512 scale) {
    return _mm512_mul_ps(_mm512_mul_ps(fp8_down8_512(p), _mm512_set1_ps(256.0f)), scale);
}
// One row (decode), where the dequantization is most of the work per FMA: the code's bits placed into
// an F32, ((code & 0x80) << 24) | ((code & 0x7F) << 20), are e4m3(code) * 2^-120 exactly (a normal F32
// with exponent E4 + 120 - 127 for E4 >= 1; for E4 = 0 the F32 subnormal M3 * 2^-129, again exact), and
// W = that * (scale * 2^120) is the same single rounding of e4m3 * scale, with scale * 2^120 exact while
// |scale| < 2^8 (real FP8 checkpoints' block scales are far below 1). Sign-extended to 32 bits and
// shifted left by 20, the code has bits 27..31 all equal to its sign; clearing 27..30 leaves the bits
// above. No vcvtph2ps: 7.3 -> 5.8 cycles per k on one Zen 4 core. The subnormal operands (codes with
// E4 = 0: about 1e-4 of the weights of a real checkpoint, whose blocks are scaled to 448, but 1/16 of
// uniformly random codes) cost Zen 4 a slow path when mixed into a vector: on uniform codes this is no
// faster than the vcvtph2ps path with one row and 6% slower with two or four, so more rows keep that
// path. Under MXCSR.DAZ (set by some host programs) the subnormals would read as zero: the vcvtph2ps path
// then too.
QAVX512 static inline __m512 fp8_down120_512(const uint8_t *p) {
    __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_slli_epi32(q, 20), _mm512_set1_epi32((int)0x87FFFFFF)));
}
// 2 if any of n (a multiple of 16) scales has magnitude >= 2^120, where scale * 256 overflows, else 1 if
// any has magnitude >= 2^8, where scale * 2^120 does, else 0 (a NaN scale is fine on every path). One pass
// over the call's scales (32 floats per group: 1/32 of the weight bytes at group 128) picks the kernel,
// which keeps the rare cases out of the hot loops (a per-group choice between two loops in one function
// made clang shuffle the accumulators).
QAVX512 static int fp8_scale_class_512(const float *s, long n) {
    __mmask16 big = 0, huge = 0;
    for (long i = 0; i < n; i += 16) {
        __m512 magnitude = _mm512_abs_ps(_mm512_loadu_ps(s + i));
        big |= _mm512_cmp_ps_mask(magnitude, _mm512_set1_ps(0x1p8f), _CMP_GE_OQ);
        huge |= _mm512_cmp_ps_mask(magnitude, _mm512_set1_ps(0x1p120f), _CMP_GE_OQ);
    }
    return huge ? 2 : big ? 1 : 0;
}

#define LOAD_FP8_512(K) b0 = fp8_dequant_512(b + (K) * 32, s0); b1 = fp8_dequant_512(b + (K) * 32 + 16, s1);
#define LOAD_FP8_WIDE_512(K) b0 = fp8_dequant_wide_512(b + (K) * 32, s0); b1 = fp8_dequant_wide_512(b + (K) * 32 + 16, s1);
#define GROUP_FP8_512(R, SCALE, LOAD_B)                                                        \
    {                                                                                          \
        const uint8_t *b = (const uint8_t *)bv;                                                \
        const float *s = (const float *)sv + (long)g * 32;                                     \
        __m512 s0 = _mm512_mul_ps(_mm512_loadu_ps(s), _mm512_set1_ps(SCALE));                  \
        __m512 s1 = _mm512_mul_ps(_mm512_loadu_ps(s + 16), _mm512_set1_ps(SCALE));             \
        K_LOOP512(R, 2, PREFETCH_QUANT(b + k * 32), LOAD_B)                                    \
    }
#define LOAD_FP8_BITS_512(K)                                                                   \
    b0 = _mm512_mul_ps(fp8_down120_512(b + (K) * 32), s0);                                     \
    b1 = _mm512_mul_ps(fp8_down120_512(b + (K) * 32 + 16), s1);
#define GROUP_FP8_FAST_512(R) GROUP_FP8_512(R, 256.0f, LOAD_FP8_512)
#define GROUP_FP8_WIDE_512(R) GROUP_FP8_512(R, 1.0f, LOAD_FP8_WIDE_512)
#define GROUP_FP8_BITS_512(R) GROUP_FP8_512(R, 0x1p120f, LOAD_FP8_BITS_512)

DEFINE_QTILE512(fp8_bits_r1, 1, GROUP_FP8_BITS_512)
DEFINE_QTILE512(fp8_r1, 1, GROUP_FP8_FAST_512)
DEFINE_QTILE512(fp8_r2, 2, GROUP_FP8_FAST_512)
DEFINE_QTILE512(fp8_r4, 4, GROUP_FP8_FAST_512)
DEFINE_QTILE512(fp8_r8, 8, GROUP_FP8_FAST_512)
DEFINE_QTILE512(fp8_wide_r1, 1, GROUP_FP8_WIDE_512)
DEFINE_QTILE512(fp8_wide_r2, 2, GROUP_FP8_WIDE_512)
DEFINE_QTILE512(fp8_wide_r4, 4, GROUP_FP8_WIDE_512)
DEFINE_QTILE512(fp8_wide_r8, 8, GROUP_FP8_WIDE_512)

QAVX512 void moe_panel_fp8_avx512(int rows, int depth, const float *a, const uint8_t *b, const float *scales, int group,
                                  float *c, int accumulate) {
    long n = depth > 0 ? (long)((depth + group - 1) / group) * 32 : 0;
    int scale_class = fp8_scale_class_512(scales, n);
    qtile_fn tile = scale_class == 2 ? pick_tile(rows, fp8_wide_r1, fp8_wide_r2, fp8_wide_r4, fp8_wide_r8)
                                     : pick_tile(rows, fp8_r1, fp8_r2, fp8_r4, fp8_r8);
    if (rows <= 1 && scale_class == 0 && !(_mm_getcsr() & 0x0040))   // 0x0040: MXCSR.DAZ
        tile = fp8_bits_r1;
    tile(rows, depth, a, b, scales, group, c, accumulate);
}

// -- MXFP4. The panel (PanelMatrices, "mxfp4"): the k of each whole quad k ..< k + 4 in one 64-byte line,
// lane j's 32-bit word holding bytes k, k + 1, k + 2, k + 3 of columns j (low nibble) and j + 16 (high
// nibble); the last depth % 4 k (only at the end of a panel) 16 bytes each, byte j. vpermps indexes the
// signed 16-entry E2M1 table by the low 4 bits of each lane's index, so the quad's eight nibbles of a lane
// are its word shifted right by 0, 4, ..., 28: shifts replace the byte-to-lane widening (vpmovzxbd) of a
// 16-byte row. The power 2^(e - 127) is built exactly as a float once per group: bits e << 23 for e >= 1
// (a normal power of two) and 0x00400000 = 2^-127 for e = 0 (max picks it, as e << 23 >= 2^23 otherwise).
//
// Two ways to sum, chosen per call from the call's scales alone (not from the activations, and the same
// for every row count, so a token gives the same bits alone or in a batch):
// - every scale in [64, 190] (real checkpoints: 2^-63 .. 2^63): per 32-k group, the bare E2M1 values'
//   FMA chain from zero, g = sum x * e2m1, then C = fma(g, 2^(e - 127), C), one rounding per group
//   (the product with the power of two is exact: g * 2^(e - 127) is normal or zero unless g is below
//   2^-63, where both ways round anyway). One multiply-add per 32 k instead of one multiply per k.
// - else W = e2m1 * 2^(e - 127) per element (exact wherever representable: a multiple of 2^-128 unless it
//   overflows to infinity, as ldexpf does), then C's FMA chain over k, as the scalar reference.
// Measured (two threads streaming 4 experts from DRAM, one row, two panels a call, a C harness interleaving
// the variants; docs/PERFORMANCE.md, 2026-12-02 third session): the earlier byte-widening layout with the
// power folded into the activation's exponent 24.8 GB/s best, this layout with that fold 26, this layout
// summed per group 28.5; a loop that only loads the same bytes 37-42. With the weights in L3 this kernel
// still makes only 29-32 GB/s (the load loop 145-170): it is bound by the vector pipes, one vpermps and one
// FMA per 16 weights. Not faster: the shifts replaced by loads at byte offsets 1..3 (the same 29), or a
// vpermw table of bfloat16 values widened by shifts (one 16-bit lookup per 32 weights, 28.5).
QAVX512 static inline __m512 e2m1_table_512(void) {
    return _mm512_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                          -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f);
}
QAVX512 static inline __m512 e8m0_powers_512(const uint8_t *p) {
    __m512i e = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm512_castsi512_ps(_mm512_max_epi32(_mm512_slli_epi32(e, 23), _mm512_set1_epi32(0x00400000)));
}
// The E2M1 values of columns 0..15 (*b0) and 16..31 (*b1) of k = quad + u, from the quad's line q.
#define MXFP4_QUAD_512(q, u, table, b0, b1)                                                    \
    b0 = _mm512_permutexvar_ps((u) == 0 ? (q) : _mm512_srli_epi32((q), 8 * (u)), table);       \
    b1 = _mm512_permutexvar_ps(_mm512_srli_epi32((q), 8 * (u) + 4), table);
// The same of a tail k (16 bytes at p).
#define MXFP4_TAIL_512(p, table, b0, b1)                                                       \
    {                                                                                          \
        __m512i t = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p)));               \
        b0 = _mm512_permutexvar_ps(t, table);                                                  \
        b1 = _mm512_permutexvar_ps(_mm512_srli_epi32(t, 4), table);                            \
    }
// Rows k0 ..< k1 of one group (k1 - k0 <= 32; k0 a multiple of 4): whole quads, then the tail, each k's
// values (b0, b1) into BODY.
#define MXFP4_GROUP_LOOP_512(b, BODY, R)                                                          \
    {                                                                                          \
        int k = k0;                                                                            \
        for (; k + 4 <= k1; k += 4) {                                                          \
            PREFETCH_QUANT(b + k * 16);                                                        \
            __m512i q = _mm512_loadu_si512((const void *)(b + k * 16));                        \
            for (int u = 0; u < 4; u++) { __m512 b0, b1; MXFP4_QUAD_512(q, u, table, b0, b1) BODY(k + u, R) } \
        }                                                                                      \
        for (; k < k1; k++) { __m512 b0, b1; MXFP4_TAIL_512(b + k * 16, table, b0, b1) BODY(k, R) } \
    }

// Per element: W = e2m1 * power, then the rows' FMAs (FMA_ROW512 takes b0, b1).
#define MXFP4_SCALED_BODY(K, R) b0 = _mm512_mul_ps(b0, p0); b1 = _mm512_mul_ps(b1, p1); FMA_ROW512(R, K)
#define GROUP_MXFP4_512(R)                                                                     \
    {                                                                                          \
        const uint8_t *b = (const uint8_t *)bv;                                                \
        const uint8_t *s = (const uint8_t *)sv + (long)g * 32;                                 \
        __m512 table = e2m1_table_512();                                                       \
        __m512 p0 = e8m0_powers_512(s), p1 = e8m0_powers_512(s + 16);                          \
        MXFP4_GROUP_LOOP_512(b, MXFP4_SCALED_BODY, R)                                             \
    }
DEFINE_QTILE512(mxfp4_r1, 1, GROUP_MXFP4_512)
DEFINE_QTILE512(mxfp4_r2, 2, GROUP_MXFP4_512)
DEFINE_QTILE512(mxfp4_r4, 4, GROUP_MXFP4_512)
DEFINE_QTILE512(mxfp4_r8, 8, GROUP_MXFP4_512)

// Per group, one half of the columns at a time (0..15, then 16..31): the R rows' group sums from zero,
// then C = fma(sum, power, C) into the half's R accumulators. Sums and both halves' accumulators stay in
// registers (3R of the 32 at 8 rows); each half re-reads the group's 512 bytes of weights from L1 and the
// activations, and looks up only its own nibbles. (C in memory, both halves per k: 7% slower at 8 rows.)
// One half's body: the k's values of that half (b0: columns 0..15, b1: 16..31) into the R rows' sums. The
// other half's lookup is dead code, which the compiler drops.
#define MXFP4_SUM_ROWS512(K, R, W)                                                             \
    for (int i = 0; i < R; i++) sum[i] = _mm512_fmadd_ps(broadcast_activation_512(a + (K) * 8 + i), W, sum[i]);
#define MXFP4_LOW_BODY(K, R) MXFP4_SUM_ROWS512(K, R, b0) (void)b1;
#define MXFP4_HIGH_BODY(K, R) MXFP4_SUM_ROWS512(K, R, b1) (void)b0;
#define MXFP4_HALF_GROUP512(R, BODY, f, p)                                                     \
    {                                                                                          \
        __m512 sum[R];                                                                         \
        for (int i = 0; i < R; i++) sum[i] = _mm512_setzero_ps();                              \
        MXFP4_GROUP_LOOP_512(b, BODY, R)                                                       \
        for (int i = 0; i < R; i++) f[i] = _mm512_fmadd_ps(sum[i], p, f[i]);                   \
    }
#define DEFINE_MXFP4_GROUPED512(NAME, R)                                                       \
    QAVX512 static void NAME(int rows, int depth, const float *a, const void *bv, const void *sv, int group, \
                             float *c, int accumulate) {                                       \
        const uint8_t *b = (const uint8_t *)bv, *s = (const uint8_t *)sv;                      \
        __m512 table = e2m1_table_512();                                                       \
        __m512 lo[R], hi[R];                                                                   \
        for (int i = 0; i < R; i++) {                                                          \
            int live = i < rows && accumulate;                                                 \
            lo[i] = live ? _mm512_loadu_ps(c + i * 32) : _mm512_setzero_ps();                  \
            hi[i] = live ? _mm512_loadu_ps(c + i * 32 + 16) : _mm512_setzero_ps();             \
        }                                                                                      \
        for (int k0 = 0; k0 < depth; k0 += 32) {                                               \
            int k1 = depth - k0 < 32 ? depth : k0 + 32;                                        \
            MXFP4_HALF_GROUP512(R, MXFP4_LOW_BODY, lo, e8m0_powers_512(s + k0))                \
            MXFP4_HALF_GROUP512(R, MXFP4_HIGH_BODY, hi, e8m0_powers_512(s + k0 + 16))          \
        }                                                                                      \
        for (int i = 0; i < R && i < rows; i++) {                                              \
            _mm512_storeu_ps(c + i * 32, lo[i]);                                               \
            _mm512_storeu_ps(c + i * 32 + 16, hi[i]);                                          \
        }                                                                                      \
        (void)group;                                                                           \
    }
DEFINE_MXFP4_GROUPED512(mxfp4_grouped_r1, 1)
DEFINE_MXFP4_GROUPED512(mxfp4_grouped_r2, 2)
DEFINE_MXFP4_GROUPED512(mxfp4_grouped_r4, 4)
DEFINE_MXFP4_GROUPED512(mxfp4_grouped_r8, 8)

// Whether the scales of `groups` groups of one panel (32 bytes each) are all in [64, 190]: the grouped sum.
// Byte minimum and maximum on 256-bit vectors (every AVX-512 CPU has AVX2; byte compares of 512-bit vectors
// would need AVX-512 BW).
__attribute__((target("avx512f,avx2"))) static int mxfp4_scales_in_window(const uint8_t *s, int groups) {
    __m256i lo = _mm256_set1_epi8((char)255), hi = _mm256_setzero_si256();
    for (int i = 0; i < groups; i++) {
        __m256i e = _mm256_loadu_si256((const __m256i *)(s + i * 32));
        lo = _mm256_min_epu8(lo, e);
        hi = _mm256_max_epu8(hi, e);
    }
    __m256i low_ok = _mm256_cmpeq_epi8(_mm256_max_epu8(lo, _mm256_set1_epi8(64)), lo);
    __m256i high_ok = _mm256_cmpeq_epi8(_mm256_min_epu8(hi, _mm256_set1_epi8((char)190)), hi);
    return _mm256_movemask_epi8(_mm256_and_si256(low_ok, high_ok)) == -1;
}

QAVX512 void moe_panel_mxfp4_avx512(int rows, int depth, const float *a, const uint8_t *b, const uint8_t *scales,
                                    float *c, int accumulate) {
    qtile_fn tile = mxfp4_scales_in_window(scales, (depth + 31) / 32)
                        ? pick_tile(rows, mxfp4_grouped_r1, mxfp4_grouped_r2, mxfp4_grouped_r4, mxfp4_grouped_r8)
                        : pick_tile(rows, mxfp4_r1, mxfp4_r2, mxfp4_r4, mxfp4_r8);
    tile(rows, depth, a, b, scales, 32, c, accumulate);
}

// ---- AVX-512 one row, two panels (decode). One row of one panel is two FMA chains; the FMA latency, not
// memory, then bounds a core. These take two panels of the same row at once (four chains, one activation
// broadcast): each panel's chain is exactly the one-panel kernel's (same weights, same ascending-k FMAs,
// same fallbacks), so results do not change, only the schedule.
// MXFP4 (moe_panel_pair_mxfp4_avx512 below): its layout of four k per 64-byte line and its per-group sums
// came from the same measurement (one core, weights in L1, TSC cycles per panel and k: the earlier
// byte-widening pair 3.2-3.4, both changes 2.7-2.8), then from two cores streaming DRAM (see the MXFP4 section).
QAVX512 static void fp8_bits_pair_r1(int depth, const float *a, const uint8_t *bA, const float *sA, const uint8_t *bB,
                                     const float *sB, int group, float *cA, float *cB, int accumulate) {
    __m512 a0 = accumulate ? _mm512_loadu_ps(cA) : _mm512_setzero_ps();
    __m512 a1 = accumulate ? _mm512_loadu_ps(cA + 16) : _mm512_setzero_ps();
    __m512 b0 = accumulate ? _mm512_loadu_ps(cB) : _mm512_setzero_ps();
    __m512 b1 = accumulate ? _mm512_loadu_ps(cB + 16) : _mm512_setzero_ps();
    const __m512 up = _mm512_set1_ps(0x1p120f);
    for (int k0 = 0, g = 0; k0 < depth; k0 += group, g++) {
        int k1 = depth - k0 < group ? depth : k0 + group, k = k0;
        __m512 sA0 = _mm512_mul_ps(_mm512_loadu_ps(sA + (long)g * 32), up);
        __m512 sA1 = _mm512_mul_ps(_mm512_loadu_ps(sA + (long)g * 32 + 16), up);
        __m512 sB0 = _mm512_mul_ps(_mm512_loadu_ps(sB + (long)g * 32), up);
        __m512 sB1 = _mm512_mul_ps(_mm512_loadu_ps(sB + (long)g * 32 + 16), up);
#define FP8_PAIR_STEP(K)                                                                       \
        {                                                                                      \
            __m512 x = broadcast_activation_512(a + (K) * 8);                                  \
            a0 = _mm512_fmadd_ps(x, _mm512_mul_ps(fp8_down120_512(bA + (K) * 32), sA0), a0);   \
            a1 = _mm512_fmadd_ps(x, _mm512_mul_ps(fp8_down120_512(bA + (K) * 32 + 16), sA1), a1); \
            b0 = _mm512_fmadd_ps(x, _mm512_mul_ps(fp8_down120_512(bB + (K) * 32), sB0), b0);   \
            b1 = _mm512_fmadd_ps(x, _mm512_mul_ps(fp8_down120_512(bB + (K) * 32 + 16), sB1), b1); \
        }
        for (; k + 2 <= k1; k += 2) {
            PREFETCH_QUANT(bA + k * 32);
            PREFETCH_QUANT(bB + k * 32);
            FP8_PAIR_STEP(k) FP8_PAIR_STEP(k + 1)
        }
        for (; k < k1; k++) FP8_PAIR_STEP(k)
#undef FP8_PAIR_STEP
    }
    _mm512_storeu_ps(cA, a0);
    _mm512_storeu_ps(cA + 16, a1);
    _mm512_storeu_ps(cB, b0);
    _mm512_storeu_ps(cB + 16, b1);
}

QAVX512 void moe_panel_pair_fp8_avx512(int depth, const float *a, const uint8_t *bA, const float *sA, const uint8_t *bB,
                                       const float *sB, int group, float *cA, float *cB, int accumulate) {
    long n = depth > 0 ? (long)((depth + group - 1) / group) * 32 : 0;
    if (fp8_scale_class_512(sA, n) == 0 && fp8_scale_class_512(sB, n) == 0 && !(_mm_getcsr() & 0x0040)) {
        fp8_bits_pair_r1(depth, a, bA, sA, bB, sB, group, cA, cB, accumulate);
        return;
    }
    moe_panel_fp8_avx512(1, depth, a, bA, sA, group, cA, accumulate);
    moe_panel_fp8_avx512(1, depth, a, bB, sB, group, cB, accumulate);
}

// The grouped MXFP4 sum (mxfp4_grouped_r1) over two panels, C in registers: one row streams two panels'
// quads with four group-sum chains and one activation broadcast per k. Scales outside the window (of
// either panel): each panel as moe_panel_mxfp4_avx512, which then takes the per-element kernel.
QAVX512 void moe_panel_pair_mxfp4_avx512(
    int depth, const float *a, const uint8_t *bA, const uint8_t *sA, const uint8_t *bB, const uint8_t *sB,
    float *cA, float *cB, int accumulate) {
    int groups = (depth + 31) / 32;
    if (!mxfp4_scales_in_window(sA, groups) || !mxfp4_scales_in_window(sB, groups)) {
        moe_panel_mxfp4_avx512(1, depth, a, bA, sA, cA, accumulate);
        moe_panel_mxfp4_avx512(1, depth, a, bB, sB, cB, accumulate);
        return;
    }
    __m512 a0 = accumulate ? _mm512_loadu_ps(cA) : _mm512_setzero_ps();
    __m512 a1 = accumulate ? _mm512_loadu_ps(cA + 16) : _mm512_setzero_ps();
    __m512 b0 = accumulate ? _mm512_loadu_ps(cB) : _mm512_setzero_ps();
    __m512 b1 = accumulate ? _mm512_loadu_ps(cB + 16) : _mm512_setzero_ps();
    __m512 table = e2m1_table_512();
    for (int k0 = 0; k0 < depth; k0 += 32) {
        int k1 = depth - k0 < 32 ? depth : k0 + 32, k = k0;
        __m512 gA0 = _mm512_setzero_ps(), gA1 = gA0, gB0 = gA0, gB1 = gA0;
#define MXFP4_PAIR_FMA(K, wA0, wA1, wB0, wB1)                                                  \
        {                                                                                      \
            __m512 x = broadcast_activation_512(a + (K) * 8);                                  \
            gA0 = _mm512_fmadd_ps(x, wA0, gA0);                                                \
            gA1 = _mm512_fmadd_ps(x, wA1, gA1);                                                \
            gB0 = _mm512_fmadd_ps(x, wB0, gB0);                                                \
            gB1 = _mm512_fmadd_ps(x, wB1, gB1);                                                \
        }
        for (; k + 4 <= k1; k += 4) {
            PREFETCH_QUANT(bA + k * 16);
            PREFETCH_QUANT(bB + k * 16);
            __m512i qA = _mm512_loadu_si512((const void *)(bA + k * 16));
            __m512i qB = _mm512_loadu_si512((const void *)(bB + k * 16));
            for (int u = 0; u < 4; u++) {
                __m512 wA0, wA1, wB0, wB1;
                MXFP4_QUAD_512(qA, u, table, wA0, wA1)
                MXFP4_QUAD_512(qB, u, table, wB0, wB1)
                MXFP4_PAIR_FMA(k + u, wA0, wA1, wB0, wB1)
            }
        }
        for (; k < k1; k++) {
            __m512 wA0, wA1, wB0, wB1;
            MXFP4_TAIL_512(bA + k * 16, table, wA0, wA1)
            MXFP4_TAIL_512(bB + k * 16, table, wB0, wB1)
            MXFP4_PAIR_FMA(k, wA0, wA1, wB0, wB1)
        }
#undef MXFP4_PAIR_FMA
        a0 = _mm512_fmadd_ps(gA0, e8m0_powers_512(sA + k0), a0);
        a1 = _mm512_fmadd_ps(gA1, e8m0_powers_512(sA + k0 + 16), a1);
        b0 = _mm512_fmadd_ps(gB0, e8m0_powers_512(sB + k0), b0);
        b1 = _mm512_fmadd_ps(gB1, e8m0_powers_512(sB + k0 + 16), b1);
    }
    _mm512_storeu_ps(cA, a0);
    _mm512_storeu_ps(cA + 16, a1);
    _mm512_storeu_ps(cB, b0);
    _mm512_storeu_ps(cB + 16, b1);
}

// ---- AVX2: the 8 x 32 tile in passes of R rows x 8V columns, R * V accumulators (8, or 4 for one
// row): one and two rows take all 32 columns in one pass, four rows two passes of 16, eight rows four
// passes of 8. Each weight is dequantized once per call, and one row still has 4 independent FMA
// chains. Each pass sums its K-block from zero and adds it to C, as moe_panel_bf16w_avx2; every
// element's chain is the same whatever R is.
#define QAVX2 __attribute__((target("avx2,fma")))
#define QAVX2_F16C __attribute__((target("avx2,fma,f16c")))
#define VECTORS(R) ((R) >= 8 ? 1 : (R) >= 4 ? 2 : 4)

// LOAD_W(k, v) dequantizes the 8 weights of row k, columns col + 8v ..< col + 8v + 8, into w[v].
#define K_STEP256(R, K, LOAD_W)                                                                \
    {                                                                                          \
        __m256 w[VECTORS(R)];                                                                  \
        for (int v = 0; v < VECTORS(R); v++) { LOAD_W(K, v) }                                  \
        for (int i = 0; i < R; i++) {                                                          \
            __m256 x = _mm256_broadcast_ss(a + (K) * 8 + i);                                   \
            for (int v = 0; v < VECTORS(R); v++)                                               \
                acc[i * VECTORS(R) + v] = _mm256_fmadd_ps(x, w[v], acc[i * VECTORS(R) + v]);   \
        }                                                                                      \
    }
// One prefetch per row k here: unrolled to one per 64-byte line (as K_LOOP512), clang spilled an
// accumulator out of the 16 ymm registers (FP8 with 8 rows: 52 instead of 80 GFLOP/s).
#define K_LOOP256(R, PF, LOAD_W)                                                               \
    for (int k = k0; k < k1; k++) {                                                            \
        PF;                                                                                    \
        K_STEP256(R, k, LOAD_W)                                                                \
    }

// NAME##_rows runs one scale group of one pass on accumulators it loads and stores (inlined: they stay
// in registers). Written straight into the pass and group loops, the same code made clang keep eight
// accumulators in two register sets and copy them across on every k (8 moves per 8 FMAs), or spill one.
#define DEFINE_QTILE256(NAME, R, TARGET, GROUP)                                                \
    TARGET static inline __attribute__((always_inline)) void NAME##_rows(int k0, int k1, int g, int col, const float *a, \
                                                             const void *bv, const void *sv, __m256 *sums) { \
        __m256 acc[R * VECTORS(R)];                                                            \
        for (int i = 0; i < R * VECTORS(R); i++) acc[i] = sums[i];                             \
        GROUP(R)                                                                               \
        for (int i = 0; i < R * VECTORS(R); i++) sums[i] = acc[i];                             \
        (void)sv, (void)g;                                                                     \
    }                                                                                          \
    TARGET static void NAME(int rows, int depth, const float *a, const void *bv, const void *sv, int group, \
                            float *c, int accumulate) {                                        \
        enum { V = VECTORS(R) };                                                               \
        for (int col = 0; col < 32; col += 8 * V) {                                            \
            __m256 acc[R * V];                                                                 \
            for (int i = 0; i < R * V; i++) acc[i] = _mm256_setzero_ps();                      \
            for (int k0 = 0, g = 0; k0 < depth; k0 += group, g++)                              \
                NAME##_rows(k0, depth - k0 < group ? depth : k0 + group, g, col, a, bv, sv, acc); \
            for (int i = 0; i < R && i < rows; i++)                                            \
                for (int v = 0; v < V; v++) {                                                  \
                    float *out = c + i * 32 + col + 8 * v;                                     \
                    __m256 sum = acc[i * V + v];                                               \
                    if (accumulate) sum = _mm256_add_ps(_mm256_loadu_ps(out), sum);            \
                    _mm256_storeu_ps(out, sum);                                                \
                }                                                                              \
        }                                                                                      \
    }

// -- F16
#define LOAD_F16_256(K, v) w[v] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + (K) * 32 + col + 8 * (v))));
#define GROUP_F16_256(R) { const uint16_t *b = (const uint16_t *)bv; K_LOOP256(R, PREFETCH(b + k * 32), LOAD_F16_256) }

DEFINE_QTILE256(f16_avx2_r1, 1, QAVX2_F16C, GROUP_F16_256)
DEFINE_QTILE256(f16_avx2_r2, 2, QAVX2_F16C, GROUP_F16_256)
DEFINE_QTILE256(f16_avx2_r4, 4, QAVX2_F16C, GROUP_F16_256)
DEFINE_QTILE256(f16_avx2_r8, 8, QAVX2_F16C, GROUP_F16_256)

QAVX2_F16C void moe_panel_f16_avx2(int rows, int depth, const float *a, const uint16_t *b, float *c, int accumulate) {
    pick_tile(rows, f16_avx2_r1, f16_avx2_r2, f16_avx2_r4, f16_avx2_r8)(rows, depth, a, b, 0, depth, c, accumulate);
}

// -- FP8 E4M3: as fp8_down8_512, 8 lanes.
QAVX2_F16C static inline __m256 fp8_down8_256(const uint8_t *p) {
    __m128i h = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)p));
    h = _mm_and_si128(_mm_slli_epi16(h, 7), _mm_set1_epi16((short)0xBFFF));
    return _mm256_cvtph_ps(h);
}
QAVX2_F16C static inline __m256 fp8_dequant_256(const uint8_t *p, __m256 scale256) {
    return _mm256_mul_ps(fp8_down8_256(p), scale256);
}
QAVX2_F16C static inline __m256 fp8_dequant_wide_256(const uint8_t *p, __m256 scale) {
    return _mm256_mul_ps(_mm256_mul_ps(fp8_down8_256(p), _mm256_set1_ps(256.0f)), scale);
}
QAVX2 static int fp8_any_huge_scale_256(const float *s, long n) {  // as fp8_any_huge_scale_512
    __m256 huge = _mm256_setzero_ps();
    for (long i = 0; i < n; i += 8) {
        __m256 magnitude = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_loadu_ps(s + i));
        huge = _mm256_or_ps(huge, _mm256_cmp_ps(magnitude, _mm256_set1_ps(0x1p120f), _CMP_GE_OQ));
    }
    return _mm256_movemask_ps(huge) != 0;
}

#define LOAD_FP8_256(K, v) w[v] = fp8_dequant_256(b + (K) * 32 + col + 8 * (v), s[v]);
#define LOAD_FP8_WIDE_256(K, v) w[v] = fp8_dequant_wide_256(b + (K) * 32 + col + 8 * (v), s[v]);
#define GROUP_FP8_256(R, SCALE, LOAD_W)                                                        \
    {                                                                                          \
        const uint8_t *b = (const uint8_t *)bv;                                                \
        __m256 s[VECTORS(R)];                                                                  \
        for (int v = 0; v < VECTORS(R); v++)                                                   \
            s[v] = _mm256_mul_ps(_mm256_loadu_ps((const float *)sv + (long)g * 32 + col + 8 * v), _mm256_set1_ps(SCALE)); \
        K_LOOP256(R, PREFETCH(b + k * 32), LOAD_W)                                             \
    }
#define GROUP_FP8_FAST_256(R) GROUP_FP8_256(R, 256.0f, LOAD_FP8_256)
#define GROUP_FP8_WIDE_256(R) GROUP_FP8_256(R, 1.0f, LOAD_FP8_WIDE_256)

DEFINE_QTILE256(fp8_avx2_r1, 1, QAVX2_F16C, GROUP_FP8_FAST_256)
DEFINE_QTILE256(fp8_avx2_r2, 2, QAVX2_F16C, GROUP_FP8_FAST_256)
DEFINE_QTILE256(fp8_avx2_r4, 4, QAVX2_F16C, GROUP_FP8_FAST_256)
DEFINE_QTILE256(fp8_avx2_r8, 8, QAVX2_F16C, GROUP_FP8_FAST_256)
DEFINE_QTILE256(fp8_wide_avx2_r1, 1, QAVX2_F16C, GROUP_FP8_WIDE_256)
DEFINE_QTILE256(fp8_wide_avx2_r2, 2, QAVX2_F16C, GROUP_FP8_WIDE_256)
DEFINE_QTILE256(fp8_wide_avx2_r4, 4, QAVX2_F16C, GROUP_FP8_WIDE_256)
DEFINE_QTILE256(fp8_wide_avx2_r8, 8, QAVX2_F16C, GROUP_FP8_WIDE_256)

QAVX2_F16C void moe_panel_fp8_avx2(int rows, int depth, const float *a, const uint8_t *b, const float *scales, int group,
                                   float *c, int accumulate) {
    long n = depth > 0 ? (long)((depth + group - 1) / group) * 32 : 0;
    qtile_fn tile = fp8_any_huge_scale_256(scales, n)
                        ? pick_tile(rows, fp8_wide_avx2_r1, fp8_wide_avx2_r2, fp8_wide_avx2_r4, fp8_wide_avx2_r8)
                        : pick_tile(rows, fp8_avx2_r1, fp8_avx2_r2, fp8_avx2_r4, fp8_avx2_r8);
    tile(rows, depth, a, b, scales, group, c, accumulate);
}

// -- MXFP4 (layout: as the AVX-512 section). Columns n ..< n + 8 of a whole quad's k = quad + u are the
// words of lanes n % 16 ..< n % 16 + 8 shifted right by 8u (+ 4 for columns 16..31); of a tail k, the
// bytes n % 16 ..< n % 16 + 8 widened (and shifted by 4). vpermps looks the magnitude up by the index's low
// 3 bits; bit 3, shifted to bit 31, is the sign. The power 2^(e - 127) and its exactness: as
// e8m0_powers_512. Every call sums per element (W = e2m1 * power, then the FMA chain).
QAVX2 static inline __m256 e8m0_powers_256(const uint8_t *p) {
    __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_max_epi32(_mm256_slli_epi32(e, 23), _mm256_set1_epi32(0x00400000)));
}
QAVX2 static inline __m256 mxfp4_value_256(__m256i q, __m256 magnitudes, __m256 power) {
    __m256 sign = _mm256_and_ps(_mm256_castsi256_ps(_mm256_slli_epi32(q, 28)), _mm256_set1_ps(-0.0f));
    return _mm256_mul_ps(_mm256_xor_ps(_mm256_permutevar8x32_ps(magnitudes, q), sign), power);
}
QAVX2 static inline __m256i mxfp4_codes_256(const uint8_t *b, int k, int quads_end, int col) {
    int n = col & 15, high = col >= 16 ? 4 : 0;
    if (k < quads_end)
        return _mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)(b + (k & ~3) * 16 + n * 4)), 8 * (k & 3) + high);
    return _mm256_srli_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + k * 16 + n))), high);
}

#define LOAD_MXFP4_256(K, v) w[v] = mxfp4_value_256(mxfp4_codes_256(b, K, k1 & ~3, col + 8 * (v)), magnitudes, power[v]);
#define GROUP_MXFP4_256(R)                                                                     \
    {                                                                                          \
        const uint8_t *b = (const uint8_t *)bv;                                                \
        __m256 magnitudes = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f);    \
        __m256 power[VECTORS(R)];                                                              \
        for (int v = 0; v < VECTORS(R); v++)                                                   \
            power[v] = e8m0_powers_256((const uint8_t *)sv + (long)g * 32 + col + 8 * v);      \
        K_LOOP256(R, PREFETCH(b + k * 16), LOAD_MXFP4_256)                                     \
    }

DEFINE_QTILE256(mxfp4_avx2_r1, 1, QAVX2, GROUP_MXFP4_256)
DEFINE_QTILE256(mxfp4_avx2_r2, 2, QAVX2, GROUP_MXFP4_256)
DEFINE_QTILE256(mxfp4_avx2_r4, 4, QAVX2, GROUP_MXFP4_256)
DEFINE_QTILE256(mxfp4_avx2_r8, 8, QAVX2, GROUP_MXFP4_256)

QAVX2 void moe_panel_mxfp4_avx2(int rows, int depth, const float *a, const uint8_t *b, const uint8_t *scales,
                                float *c, int accumulate) {
    pick_tile(rows, mxfp4_avx2_r1, mxfp4_avx2_r2, mxfp4_avx2_r4, mxfp4_avx2_r8)(rows, depth, a, b, scales, 32, c, accumulate);
}

#else  // not x86-64: Swift's portable kernels run instead; these are never called.

void moe_panel_f16_avx512(int rows, int depth, const float *a, const uint16_t *b, float *c, int accumulate) { __builtin_trap(); }
void moe_panel_f16_avx2(int rows, int depth, const float *a, const uint16_t *b, float *c, int accumulate) { __builtin_trap(); }
void moe_panel_fp8_avx512(int rows, int depth, const float *a, const uint8_t *b, const float *scales, int group,
                          float *c, int accumulate) { __builtin_trap(); }
void moe_panel_fp8_avx2(int rows, int depth, const float *a, const uint8_t *b, const float *scales, int group,
                        float *c, int accumulate) { __builtin_trap(); }
void moe_panel_mxfp4_avx512(int rows, int depth, const float *a, const uint8_t *b, const uint8_t *scales,
                            float *c, int accumulate) { __builtin_trap(); }
void moe_panel_mxfp4_avx2(int rows, int depth, const float *a, const uint8_t *b, const uint8_t *scales,
                          float *c, int accumulate) { __builtin_trap(); }

void moe_panel_pair_fp8_avx512(int depth, const float *a, const uint8_t *bA, const float *sA, const uint8_t *bB,
                               const float *sB, int group, float *cA, float *cB, int accumulate) { __builtin_trap(); }
void moe_panel_pair_mxfp4_avx512(int depth, const float *a, const uint8_t *bA, const uint8_t *sA,
                                 const uint8_t *bB, const uint8_t *sB, float *cA, float *cB, int accumulate) { __builtin_trap(); }

#endif
