// Panel kernels for quantized weights (see moe_kernels_quant.h): the micro-tile of moe_kernels.c with
// the weight row dequantized in registers. Every dequantization is exact, i.e. bit-identical to the
// scalar definition; the FMA chains are those of moe_panel_bf16w_avx512 / moe_panel_bf16w_avx2.
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

// -- MXFP4. 16 bytes widen to 16 lanes; vpermps indexes the signed 16-entry E2M1 table by the low
// nibble (it reads only the index's low 4 bits) and by the high nibble after a shift; then one multiply
// by 2^(e - 127), built exactly as a float once per group: bits e << 23 for e >= 1 (a normal power of
// two) and 0x00400000 = 2^-127 for e = 0 (max picks it, as e << 23 >= 2^23 otherwise). A product with an
// exact power of two is exact wherever it is representable, and e2m1 * 2^(e - 127) always is (a multiple
// of 2^-128, above the subnormal step 2^-149) unless it overflows to infinity, as ldexpf does.
// (vscalefps by e - 127 is exact as well, but 10% slower with one row on the machine measured.)
QAVX512 static inline __m512 e2m1_table_512(void) {
    return _mm512_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                          -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f);
}
QAVX512 static inline __m512 e8m0_powers_512(const uint8_t *p) {
    __m512i e = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm512_castsi512_ps(_mm512_max_epi32(_mm512_slli_epi32(e, 23), _mm512_set1_epi32(0x00400000)));
}
QAVX512 static inline void mxfp4_dequant_512(const uint8_t *p, __m512 table, __m512 p0, __m512 p1, __m512 *b0, __m512 *b1) {
    __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
    *b0 = _mm512_mul_ps(_mm512_permutexvar_ps(q, table), p0);
    *b1 = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table), p1);
}

#define LOAD_MXFP4_512(K) mxfp4_dequant_512(b + (K) * 16, table, p0, p1, &b0, &b1);
#define GROUP_MXFP4_512(R)                                                                     \
    {                                                                                          \
        const uint8_t *b = (const uint8_t *)bv;                                                \
        const uint8_t *s = (const uint8_t *)sv + (long)g * 32;                                 \
        __m512 table = e2m1_table_512();                                                       \
        __m512 p0 = e8m0_powers_512(s), p1 = e8m0_powers_512(s + 16);                          \
        K_LOOP512(R, 4, PREFETCH_QUANT(b + k * 16), LOAD_MXFP4_512)                            \
    }

DEFINE_QTILE512(mxfp4_r1, 1, GROUP_MXFP4_512)
DEFINE_QTILE512(mxfp4_r2, 2, GROUP_MXFP4_512)
DEFINE_QTILE512(mxfp4_r4, 4, GROUP_MXFP4_512)
DEFINE_QTILE512(mxfp4_r8, 8, GROUP_MXFP4_512)

// One row (decode) runs on the FMA latency: two chains of `depth` FMAs, 4 cycles each, for 16 bytes of
// weights per k. The two multiplies by 2^(e - 127) per k (FMA ports) made mxfp4_r1 take 6.0 cycles per k
// on Zen 4 instead: here the power of two moves onto the activation, x' = x * 2^(e - 127) per column (an
// integer add of (e - 127) << 23 to x's bits, on any vector port), and the FMA takes x' and the bare
// table value e2m1(code): 4.75 cycles per k. The FMA rounds the exact product once, and x' * e2m1 =
// x * (e2m1 * 2^(e - 127)) = x * W exactly, so every element's chain is bit for bit the one of mxfp4_r1
// (the sign of a zero product included) -- provided x' is exactly x * 2^(e - 127) and W is finite: x
// normal with a biased exponent in [64, 191] and every scale of the call in [64, 190] (then x' has a
// biased exponent in [1, 254], and |W| < 6 * 2^63). Both are checked alongside the loop (the scales per
// group; the activations with an integer subtract and OR per k on the scalar ports); if anything is
// outside (a zero, subnormal, huge or non-finite activation, or a scale below 2^-63 or above 2^63, which
// real activations and checkpoints do not come near), mxfp4_r1 recomputes the call before anything is
// stored. The window test reads the activation's upper 16 bits h (sign, exponent ex, 7 mantissa bits):
// bits 14..7 of h - (64 << 7) are (ex - 64) mod 256, whose top bit (bit 14) is clear exactly when
// 64 <= ex <= 191; OR-ed over the call, bit 14 flags any activation outside. (Read as the same 32 bits as
// the vector broadcast, clang turned the broadcast into one from a general register, a shuffle uop, or
// vectorised the checks into gathers.)
#define MXFP4_FOLD_CHECK(K) window |= (uint32_t)((const uint16_alias *)(a + (K) * 8))[1] - 0x2000u;
// One 32-k group's scales of one panel (32 bytes at s): the exponent offsets (e - 127) << 23 for columns
// 0..15 (o0) and 16..31 (o1), and the running min / max of the call's scales for the window test.
QAVX512 static inline void mxfp4_fold_offsets(const uint8_t *s, __m512i *o0, __m512i *o1, __m512i *elo, __m512i *ehi) {
    __m512i e0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)s));
    __m512i e1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(s + 16)));
    *elo = _mm512_min_epu32(*elo, _mm512_min_epu32(e0, e1));
    *ehi = _mm512_max_epu32(*ehi, _mm512_max_epu32(e0, e1));
    *o0 = _mm512_slli_epi32(_mm512_sub_epi32(e0, _mm512_set1_epi32(127)), 23);
    *o1 = _mm512_slli_epi32(_mm512_sub_epi32(e1, _mm512_set1_epi32(127)), 23);
}
// One k of one panel (16 bytes at p): the activation's bits x, shifted by each column's exponent offset,
// times the bare E2M1 value, into the two accumulators.
QAVX512 static inline void mxfp4_fold_fma(const uint8_t *p, __m512i x, __m512i o0, __m512i o1, __m512 table,
                                          __m512 *acc0, __m512 *acc1) {
    __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
    *acc0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_add_epi32(x, o0)), _mm512_permutexvar_ps(q, table), *acc0);
    *acc1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_add_epi32(x, o1)), _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table), *acc1);
}
// Whether the fold was exact for the whole call (see above): every activation and every scale in its window.
QAVX512 static inline int mxfp4_fold_exact(uint32_t window, __m512i elo, __m512i ehi) {
    return (window & 0x4000u) == 0 && _mm512_reduce_min_epu32(elo) >= 64 && _mm512_reduce_max_epu32(ehi) <= 190;
}
#define MXFP4_FOLD_X(K) _mm512_set1_epi32(((const int32_alias *)a)[(K) * 8])
#define MXFP4_FOLD_STEP(K) mxfp4_fold_fma(b + (K) * 16, MXFP4_FOLD_X(K), o0, o1, table, &acc0, &acc1);
QAVX512 static void mxfp4_fold_r1(int rows, int depth, const float *a, const void *bv, const void *sv, int group,
                                  float *c, int accumulate) {
    const uint8_t *b = (const uint8_t *)bv, *s = (const uint8_t *)sv;
    __m512 acc0 = accumulate ? _mm512_loadu_ps(c) : _mm512_setzero_ps();
    __m512 acc1 = accumulate ? _mm512_loadu_ps(c + 16) : _mm512_setzero_ps();
    __m512 table = e2m1_table_512();
    __m512i elo = _mm512_set1_epi32(255), ehi = _mm512_setzero_si512();
    uint32_t window = 0;
    for (int k0 = 0; k0 < depth; k0 += 32) {
        int k1 = depth - k0 < 32 ? depth : k0 + 32, k = k0;
        __m512i o0, o1;
        mxfp4_fold_offsets(s + k0, &o0, &o1, &elo, &ehi);
        for (; k + 4 <= k1; k += 4) {
            PREFETCH_QUANT(b + k * 16);
            MXFP4_FOLD_CHECK(k) MXFP4_FOLD_CHECK(k + 1) MXFP4_FOLD_CHECK(k + 2) MXFP4_FOLD_CHECK(k + 3)
            MXFP4_FOLD_STEP(k) MXFP4_FOLD_STEP(k + 1) MXFP4_FOLD_STEP(k + 2) MXFP4_FOLD_STEP(k + 3)
        }
        for (; k < k1; k++) { MXFP4_FOLD_CHECK(k) MXFP4_FOLD_STEP(k) }
    }
    if (__builtin_expect(!mxfp4_fold_exact(window, elo, ehi), 0)) {
        mxfp4_r1(rows, depth, a, bv, sv, group, c, accumulate);
        return;
    }
    _mm512_storeu_ps(c, acc0);
    _mm512_storeu_ps(c + 16, acc1);
}

QAVX512 void moe_panel_mxfp4_avx512(int rows, int depth, const float *a, const uint8_t *b, const uint8_t *scales,
                                    float *c, int accumulate) {
    pick_tile(rows, mxfp4_fold_r1, mxfp4_r2, mxfp4_r4, mxfp4_r8)(rows, depth, a, b, scales, 32, c, accumulate);
}

// ---- AVX-512 one row, two panels (decode). One row of one panel is two FMA chains; the FMA latency, not
// memory, then bounds a core. These take two panels of the same row at once (four chains, one activation
// broadcast): each panel's chain is exactly the one-panel kernel's (same weights, same ascending-k FMAs,
// same fallbacks), so results do not change, only the schedule.
// Measured on one Zen 4 core, weights in L1, TSC cycles (2.6 GHz) per panel and k for MXFP4: two one-panel
// calls 3.4-3.7, this pair 3.2-3.4. Variants tried in a harness and not kept: per-group partial sums
// scaled once per group (changes the rounding; 3.15-3.2 alone), a panel layout with four k in each
// 64-byte line so that shifts replace vpmovzxbd (3.1 one panel, 2.9 paired), both together 2.7-2.8. What
// remains is the two vpermps and one FMA per 16 weights: MXFP4 decode stays compute-bound near 14-15 GB/s
// a core, below two cores' share of DRAM bandwidth (docs/PERFORMANCE.md, 2026-12-01 second session).
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

// MXFP4's exponent-add fold (mxfp4_fold_r1) over two panels: one window check for the shared activations,
// the scale window over both panels' scales; outside it, each panel takes moe_panel_mxfp4_avx512.
QAVX512 void moe_panel_pair_mxfp4_avx512(int depth, const float *a, const uint8_t *bA, const uint8_t *sA,
                                         const uint8_t *bB, const uint8_t *sB, float *cA, float *cB, int accumulate) {
    __m512 a0 = accumulate ? _mm512_loadu_ps(cA) : _mm512_setzero_ps();
    __m512 a1 = accumulate ? _mm512_loadu_ps(cA + 16) : _mm512_setzero_ps();
    __m512 b0 = accumulate ? _mm512_loadu_ps(cB) : _mm512_setzero_ps();
    __m512 b1 = accumulate ? _mm512_loadu_ps(cB + 16) : _mm512_setzero_ps();
    __m512 table = e2m1_table_512();
    __m512i elo = _mm512_set1_epi32(255), ehi = _mm512_setzero_si512();
    uint32_t window = 0;
    for (int k0 = 0; k0 < depth; k0 += 32) {
        int k1 = depth - k0 < 32 ? depth : k0 + 32, k = k0;
        __m512i oA0, oA1, oB0, oB1;
        mxfp4_fold_offsets(sA + k0, &oA0, &oA1, &elo, &ehi);
        mxfp4_fold_offsets(sB + k0, &oB0, &oB1, &elo, &ehi);
#define MXFP4_PAIR_STEP(K)                                                                     \
        {                                                                                      \
            __m512i x = MXFP4_FOLD_X(K);                                                       \
            mxfp4_fold_fma(bA + (K) * 16, x, oA0, oA1, table, &a0, &a1);                       \
            mxfp4_fold_fma(bB + (K) * 16, x, oB0, oB1, table, &b0, &b1);                       \
        }
        for (; k + 4 <= k1; k += 4) {
            PREFETCH_QUANT(bA + k * 16);
            PREFETCH_QUANT(bB + k * 16);
            MXFP4_FOLD_CHECK(k) MXFP4_FOLD_CHECK(k + 1) MXFP4_FOLD_CHECK(k + 2) MXFP4_FOLD_CHECK(k + 3)
            MXFP4_PAIR_STEP(k) MXFP4_PAIR_STEP(k + 1) MXFP4_PAIR_STEP(k + 2) MXFP4_PAIR_STEP(k + 3)
        }
        for (; k < k1; k++) { MXFP4_FOLD_CHECK(k) MXFP4_PAIR_STEP(k) }
#undef MXFP4_PAIR_STEP
    }
    if (__builtin_expect(!mxfp4_fold_exact(window, elo, ehi), 0)) {
        moe_panel_mxfp4_avx512(1, depth, a, bA, sA, cA, accumulate);
        moe_panel_mxfp4_avx512(1, depth, a, bB, sB, cB, accumulate);
        return;
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

// -- MXFP4. Columns n ..< n + 8 are the low nibbles of bytes n ..< n + 8 (n < 16) or the high nibbles
// of bytes n - 16 ..< n - 8. vpermps looks the magnitude up by the nibble's low 3 bits; bit 3, shifted
// to bit 31, is the sign. The power 2^(e - 127) and its exactness: as e8m0_powers_512.
QAVX2 static inline __m256 e8m0_powers_256(const uint8_t *p) {
    __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_max_epi32(_mm256_slli_epi32(e, 23), _mm256_set1_epi32(0x00400000)));
}
QAVX2 static inline __m256 mxfp4_dequant_256(const uint8_t *p, __m256i shift, __m256 magnitudes, __m256 power) {
    __m256i q = _mm256_srlv_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)), shift);
    __m256 sign = _mm256_and_ps(_mm256_castsi256_ps(_mm256_slli_epi32(q, 28)), _mm256_set1_ps(-0.0f));
    return _mm256_mul_ps(_mm256_xor_ps(_mm256_permutevar8x32_ps(magnitudes, q), sign), power);
}

#define LOAD_MXFP4_256(K, v) w[v] = mxfp4_dequant_256(b + (K) * 16 + ((col + 8 * (v)) & 15), shift[v], magnitudes, power[v]);
#define GROUP_MXFP4_256(R)                                                                     \
    {                                                                                          \
        const uint8_t *b = (const uint8_t *)bv;                                                \
        __m256 magnitudes = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f);    \
        __m256i shift[VECTORS(R)];                                                             \
        __m256 power[VECTORS(R)];                                                              \
        for (int v = 0; v < VECTORS(R); v++) {                                                 \
            shift[v] = _mm256_set1_epi32(col + 8 * v >= 16 ? 4 : 0);                           \
            power[v] = e8m0_powers_256((const uint8_t *)sv + (long)g * 32 + col + 8 * v);      \
        }                                                                                      \
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
