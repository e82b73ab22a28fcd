// Int8 kernels for the 32-input ggml block types against Q8_0 activations (moe_kernels_int8_legacy.h).
// Per k-block: exact Int32 sums of code products, 16 (zmm) or 8 (ymm) columns per register, one column per
// 32-bit lane; then per (row, column) the F32 steps of Int8Dot.legacyReference in its order, as intrinsics
// (a separate mul and fmadd: the compiler never contracts intrinsics).
//
// Panel row of one k-block (LegacyLayout): the scale fields (`head` bytes), then 64-byte code chunks, chunk
// 2g + h holding bytes 4g..4g+3 of column 16h + c's codes in its 32-bit lane c.
#include "moe_kernels_int8_legacy.h"

enum { T_Q8_0, T_Q4_0, T_Q4_1, T_MXFP4, T_Q5_0, T_Q5_1 };

// Bytes of the scale fields and of one panel row.
#define HEAD_BYTES(T) ((T) == T_Q4_1 ? 128 : (T) == T_MXFP4 ? 32 : (T) == T_Q5_0 ? 192 : (T) == T_Q5_1 ? 256 : 64)
#define ROW_BYTES(T) \
    (32 * ((T) == T_Q8_0 ? 34 : (T) == T_Q4_0 ? 18 : (T) == T_Q4_1 ? 20 : (T) == T_Q5_0 ? 22 : (T) == T_Q5_1 ? 24 : 17))
// Where the 32 columns' fifth-bit words qh (4 bytes each, column-major) start; whether the type has a minimum m.
#define QH_OFFSET(T) ((T) == T_Q5_0 ? 64 : 128)
#define IS_Q5(T) ((T) == T_Q5_0 || (T) == T_Q5_1)
#define HAS_MIN(T) ((T) == T_Q4_1 || (T) == T_Q5_1)

#if defined(__x86_64__)
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

// Prefetch into L2 4 KiB ahead (as the FP8 / MXFP4 panel kernels, moe_kernels_quant.c), one per 64 bytes.
#define PREFETCH_AHEAD 4096
#define PREFETCH_L2(p) _mm_prefetch((const char *)(p) + PREFETCH_AHEAD, _MM_HINT_T1)

// ggml's kvalues_mxfp4 + 12 (all >= 0, so the codes are unsigned bytes; 12 * the code sum is subtracted).
#define MXFP4_OFFSET 12
#define MXFP4_TABLE 12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0

// Row r's code sum over block b: its two 16-code sums.
INLINE int32_t code_sum(const int16_t *sums, ptrdiff_t stride, int r, int b) {
    const int16_t *s = sums + r * (stride / 16) + 2 * b;
    return (int32_t)s[0] + (int32_t)s[1];
}

// ---- AVX-512 VNNI ---------------------------------------------------------------------------------

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

// The 4 activation codes at p in every 32-bit lane (vpbroadcastd from memory: a load alone).
VNNI INLINE __m512i broadcast4_512(const int8_t *p) {
    int32_t v;
    __builtin_memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

// 2^(e - 128) as ggml_e8m0_to_fp32_half, for 16 exponent bytes: (e - 1) << 23, or 0x200000 << e for e < 2.
VNNI INLINE __m512 e8m0_half_512(const uint8_t *e) {
    __m512i x = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)e));
    __m512i normal = _mm512_slli_epi32(_mm512_sub_epi32(x, _mm512_set1_epi32(1)), 23);
    __m512i tiny = _mm512_sllv_epi32(_mm512_set1_epi32(0x200000), x);
    __mmask16 small = _mm512_cmplt_epu32_mask(x, _mm512_set1_epi32(2));
    return _mm512_castsi512_ps(_mm512_mask_blend_epi32(small, normal, tiny));
}

// The 32 F16 scales at p, widened: columns 0-15 and 16-31.
VNNI INLINE void f16_scales_512(const uint8_t *p, __m512 *s0, __m512 *s1) {
    *s0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    *s1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32)));
}

// The fifth bits of chunk g's codes: bit 4g + j (low nibbles; 16 + 4g + j for the high ones) of the qh word in
// lane c, as 0x10 in byte j of lane c. vpshufb brings qh byte (4g + j) / 8 to byte j, vptestmb picks its bit.
VNNI INLINE __m512i fifth_bits_512(__m512i qh, int g, int high) {
    const __m512i lanes = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12));
    const int first = (4 * g) / 8 + 2 * high;
    __m512i x = _mm512_shuffle_epi8(qh, _mm512_add_epi8(lanes, _mm512_set1_epi8((char)first)));
    __mmask64 k = _mm512_test_epi8_mask(x, _mm512_set1_epi32(g % 2 ? (int)0x80402010 : 0x08040201));
    return _mm512_maskz_mov_epi8(k, _mm512_set1_epi8(0x10));
}

VNNI INLINE void legacy_512(const int T, const int R, int blocks, const int8_t *q, const float *d, const int16_t *s,
                            ptrdiff_t stride, const uint8_t *w, float *c, int accumulate) {
    const int offset = T == T_Q8_0 ? 128 : T == T_Q4_0 ? 8 : T == T_MXFP4 ? MXFP4_OFFSET : T == T_Q5_0 ? 16 : 0;
    const __m512i nibble = _mm512_set1_epi8(0x0F), flip = _mm512_set1_epi8((char)0x80);
    const __m512i table = _mm512_broadcast_i32x4(_mm_setr_epi8(MXFP4_TABLE));
    __m512 f[8][2];
    for (int r = 0; r < R; r++) {
        f[r][0] = accumulate ? _mm512_loadu_ps(c + 32 * r) : _mm512_setzero_ps();
        f[r][1] = accumulate ? _mm512_loadu_ps(c + 32 * r + 16) : _mm512_setzero_ps();
    }
    for (int b = 0; b < blocks; b++, w += ROW_BYTES(T)) {
        const uint8_t *codes = w + HEAD_BYTES(T);
        for (int l = 0; l < ROW_BYTES(T); l += 64) PREFETCH_L2(w + l);
        __m512i acc[8][2];
        int32_t sa[8];
        for (int r = 0; r < R; r++) {
            sa[r] = code_sum(s, stride, r, b);
            acc[r][0] = acc[r][1] = _mm512_set1_epi32(-offset * sa[r]);
        }
        if (T == T_Q8_0) {
            for (int g = 0; g < 8; g++) {
                __m512i w0 = _mm512_xor_si512(_mm512_loadu_si512(codes + 128 * g), flip);
                __m512i w1 = _mm512_xor_si512(_mm512_loadu_si512(codes + 128 * g + 64), flip);
                for (int r = 0; r < R; r++) {
                    __m512i x = broadcast4_512(q + r * stride + 32 * b + 4 * g);
                    acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], w0, x);
                    acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], w1, x);
                }
            }
        } else {
            for (int g = 0; g < 4; g++) {
                __m512i raw0 = _mm512_loadu_si512(codes + 128 * g), raw1 = _mm512_loadu_si512(codes + 128 * g + 64);
                __m512i lo0 = _mm512_and_si512(raw0, nibble), hi0 = _mm512_and_si512(_mm512_srli_epi16(raw0, 4), nibble);
                __m512i lo1 = _mm512_and_si512(raw1, nibble), hi1 = _mm512_and_si512(_mm512_srli_epi16(raw1, 4), nibble);
                if (T == T_MXFP4) {
                    lo0 = _mm512_shuffle_epi8(table, lo0), hi0 = _mm512_shuffle_epi8(table, hi0);
                    lo1 = _mm512_shuffle_epi8(table, lo1), hi1 = _mm512_shuffle_epi8(table, hi1);
                }
                if (IS_Q5(T)) {
                    __m512i qh0 = _mm512_loadu_si512(w + QH_OFFSET(T)), qh1 = _mm512_loadu_si512(w + QH_OFFSET(T) + 64);
                    lo0 = _mm512_or_si512(lo0, fifth_bits_512(qh0, g, 0)), hi0 = _mm512_or_si512(hi0, fifth_bits_512(qh0, g, 1));
                    lo1 = _mm512_or_si512(lo1, fifth_bits_512(qh1, g, 0)), hi1 = _mm512_or_si512(hi1, fifth_bits_512(qh1, g, 1));
                }
                for (int r = 0; r < R; r++) {
                    __m512i xl = broadcast4_512(q + r * stride + 32 * b + 4 * g);
                    __m512i xh = broadcast4_512(q + r * stride + 32 * b + 16 + 4 * g);
                    acc[r][0] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(acc[r][0], lo0, xl), hi0, xh);
                    acc[r][1] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(acc[r][1], lo1, xl), hi1, xh);
                }
            }
        }
        __m512 dw0, dw1, mw0, mw1;
        if (T == T_MXFP4) {
            dw0 = e8m0_half_512(w), dw1 = e8m0_half_512(w + 16);
        } else {
            f16_scales_512(w, &dw0, &dw1);
        }
        if (HAS_MIN(T)) f16_scales_512(w + 64, &mw0, &mw1);
        for (int r = 0; r < R; r++) {
            __m512 da = _mm512_set1_ps(d[r * (stride / 32) + b]);
            f[r][0] = _mm512_fmadd_ps(_mm512_mul_ps(dw0, da), _mm512_cvtepi32_ps(acc[r][0]), f[r][0]);
            f[r][1] = _mm512_fmadd_ps(_mm512_mul_ps(dw1, da), _mm512_cvtepi32_ps(acc[r][1]), f[r][1]);
            if (HAS_MIN(T)) {
                __m512 sum = _mm512_set1_ps((float)sa[r]);
                f[r][0] = _mm512_fmadd_ps(_mm512_mul_ps(mw0, da), sum, f[r][0]);
                f[r][1] = _mm512_fmadd_ps(_mm512_mul_ps(mw1, da), sum, f[r][1]);
            }
        }
    }
    for (int r = 0; r < R; r++) {
        _mm512_storeu_ps(c + 32 * r, f[r][0]);
        _mm512_storeu_ps(c + 32 * r + 16, f[r][1]);
    }
}

// One function per (type, ISA, rows): rows is a constant inside BODY (legacy_512 or legacy_256), so the row
// loops unroll.
#define DEFINE_ROWS(name, BODY, T)                                                                     \
    MOE_INT8_LEGACY_KERNEL(name) {                                                                     \
        switch (rows) {                                                                                \
        case 1: BODY(T, 1, blocks, quants, scales, sums, stride, panel, c, accumulate); break;        \
        case 2: BODY(T, 2, blocks, quants, scales, sums, stride, panel, c, accumulate); break;        \
        case 3: BODY(T, 3, blocks, quants, scales, sums, stride, panel, c, accumulate); break;        \
        case 4: BODY(T, 4, blocks, quants, scales, sums, stride, panel, c, accumulate); break;        \
        case 5: BODY(T, 5, blocks, quants, scales, sums, stride, panel, c, accumulate); break;        \
        case 6: BODY(T, 6, blocks, quants, scales, sums, stride, panel, c, accumulate); break;        \
        case 7: BODY(T, 7, blocks, quants, scales, sums, stride, panel, c, accumulate); break;        \
        case 8: BODY(T, 8, blocks, quants, scales, sums, stride, panel, c, accumulate); break;        \
        default: break;                                                                                \
        }                                                                                              \
    }
VNNI DEFINE_ROWS(moe_int8_q8_0_avx512vnni, legacy_512, T_Q8_0)
VNNI DEFINE_ROWS(moe_int8_q4_0_avx512vnni, legacy_512, T_Q4_0)
VNNI DEFINE_ROWS(moe_int8_q4_1_avx512vnni, legacy_512, T_Q4_1)
VNNI DEFINE_ROWS(moe_int8_mxfp4_avx512vnni, legacy_512, T_MXFP4)
VNNI DEFINE_ROWS(moe_int8_q5_0_avx512vnni, legacy_512, T_Q5_0)
VNNI DEFINE_ROWS(moe_int8_q5_1_avx512vnni, legacy_512, T_Q5_1)

// ---- AVX2 -----------------------------------------------------------------------------------------

#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 INLINE __m256i broadcast4_256(const int8_t *p) {
    int32_t v;
    __builtin_memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// 2^(e - 128) for the 8 exponent bytes at e.
AVX2 INLINE __m256 e8m0_half_256(const uint8_t *e) {
    __m256i x = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)e));
    __m256i normal = _mm256_slli_epi32(_mm256_sub_epi32(x, _mm256_set1_epi32(1)), 23);
    __m256i tiny = _mm256_sllv_epi32(_mm256_set1_epi32(0x200000), x);
    __m256i small = _mm256_cmpgt_epi32(_mm256_set1_epi32(2), x);
    return _mm256_castsi256_ps(_mm256_blendv_epi8(normal, tiny, small));
}

AVX2 INLINE __m256 f16_scales_256(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

// fifth_bits_512 for 8 columns: byte j of lane c is 0x10 where bit 4g + j (+ 16 when high) of qh's lane c is set.
AVX2 INLINE __m256i fifth_bits_256(__m256i qh, int g, int high) {
    const __m256i lanes = _mm256_broadcastsi128_si256(_mm_setr_epi8(0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12));
    const int first = (4 * g) / 8 + 2 * high;
    const __m256i select = _mm256_set1_epi32(g % 2 ? (int)0x80402010 : 0x08040201);
    __m256i x = _mm256_shuffle_epi8(qh, _mm256_add_epi8(lanes, _mm256_set1_epi8((char)first)));
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(x, select), select);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// Per block, the 32 columns in quarters of 8 (one ymm lane each): 8 row accumulators live at a time.
// Q8_0 takes |w| * sign(a, w) (pairs <= 2 * 128 * 127: no int16 saturation while a != -128); the nibble
// types are unsigned codes <= 31, two vpmaddubsw pairs summed in int16 (<= 4 * 31 * 127) before vpmaddwd.
AVX2 INLINE void legacy_256(const int T, const int R, int blocks, const int8_t *q, const float *d, const int16_t *s,
                            ptrdiff_t stride, const uint8_t *w, float *c, int accumulate) {
    const int offset = T == T_Q4_0 ? 8 : T == T_MXFP4 ? MXFP4_OFFSET : T == T_Q5_0 ? 16 : 0;
    const __m256i nibble = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    const __m256i table = _mm256_broadcastsi128_si256(_mm_setr_epi8(MXFP4_TABLE));
    if (!accumulate)
        for (int r = 0; r < R; r++)
            for (int i = 0; i < 32; i += 8) _mm256_storeu_ps(c + 32 * r + i, _mm256_setzero_ps());
    for (int b = 0; b < blocks; b++, w += ROW_BYTES(T)) {
        const uint8_t *codes = w + HEAD_BYTES(T);
        for (int l = 0; l < ROW_BYTES(T); l += 64) PREFETCH_L2(w + l);
        int32_t sa[8];
        for (int r = 0; r < R; r++) sa[r] = code_sum(s, stride, r, b);
        for (int quarter = 0; quarter < 4; quarter++) {
            // Columns 8 * quarter ..< 8 * quarter + 8: half h = quarter / 2 of each chunk, its 32-byte part.
            const uint8_t *part = codes + 64 * (quarter / 2) + 32 * (quarter % 2);
            __m256i acc[8];
            for (int r = 0; r < R; r++) acc[r] = _mm256_set1_epi32(-offset * sa[r]);
            if (T == T_Q8_0) {
                for (int g = 0; g < 8; g++) {
                    __m256i wv = _mm256_loadu_si256((const __m256i *)(part + 128 * g));
                    __m256i magnitude = _mm256_abs_epi8(wv);
                    for (int r = 0; r < R; r++) {
                        __m256i x = _mm256_sign_epi8(broadcast4_256(q + r * stride + 32 * b + 4 * g), wv);
                        acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, x), ones));
                    }
                }
            } else {
                for (int g = 0; g < 4; g++) {
                    __m256i raw = _mm256_loadu_si256((const __m256i *)(part + 128 * g));
                    __m256i lo = _mm256_and_si256(raw, nibble), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), nibble);
                    if (T == T_MXFP4) lo = _mm256_shuffle_epi8(table, lo), hi = _mm256_shuffle_epi8(table, hi);
                    if (IS_Q5(T)) {
                        __m256i qh = _mm256_loadu_si256((const __m256i *)(w + QH_OFFSET(T) + 32 * quarter));
                        lo = _mm256_or_si256(lo, fifth_bits_256(qh, g, 0)), hi = _mm256_or_si256(hi, fifth_bits_256(qh, g, 1));
                    }
                    for (int r = 0; r < R; r++) {
                        __m256i xl = broadcast4_256(q + r * stride + 32 * b + 4 * g);
                        __m256i xh = broadcast4_256(q + r * stride + 32 * b + 16 + 4 * g);
                        __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xl), _mm256_maddubs_epi16(hi, xh));
                        acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(pairs, ones));
                    }
                }
            }
            __m256 dw = T == T_MXFP4 ? e8m0_half_256(w + 8 * quarter) : f16_scales_256(w + 16 * quarter);
            __m256 mw = HAS_MIN(T) ? f16_scales_256(w + 64 + 16 * quarter) : _mm256_setzero_ps();
            for (int r = 0; r < R; r++) {
                float *out = c + 32 * r + 8 * quarter;
                __m256 da = _mm256_set1_ps(d[r * (stride / 32) + b]);
                __m256 sum = _mm256_fmadd_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(acc[r]), _mm256_loadu_ps(out));
                if (HAS_MIN(T)) sum = _mm256_fmadd_ps(_mm256_mul_ps(mw, da), _mm256_set1_ps((float)sa[r]), sum);
                _mm256_storeu_ps(out, sum);
            }
        }
    }
}

AVX2 DEFINE_ROWS(moe_int8_q8_0_avx2, legacy_256, T_Q8_0)
AVX2 DEFINE_ROWS(moe_int8_q4_0_avx2, legacy_256, T_Q4_0)
AVX2 DEFINE_ROWS(moe_int8_q4_1_avx2, legacy_256, T_Q4_1)
AVX2 DEFINE_ROWS(moe_int8_mxfp4_avx2, legacy_256, T_MXFP4)
AVX2 DEFINE_ROWS(moe_int8_q5_0_avx2, legacy_256, T_Q5_0)
AVX2 DEFINE_ROWS(moe_int8_q5_1_avx2, legacy_256, T_Q5_1)

#else  // not x86-64: Swift's portable path runs instead; these are never called.

#define TRAP(name) MOE_INT8_LEGACY_KERNEL(name) { __builtin_trap(); }
TRAP(moe_int8_q8_0_avx512vnni)
TRAP(moe_int8_q4_0_avx512vnni)
TRAP(moe_int8_q4_1_avx512vnni)
TRAP(moe_int8_mxfp4_avx512vnni)
TRAP(moe_int8_q8_0_avx2)
TRAP(moe_int8_q4_0_avx2)
TRAP(moe_int8_q4_1_avx2)
TRAP(moe_int8_mxfp4_avx2)
TRAP(moe_int8_q5_0_avx512vnni)
TRAP(moe_int8_q5_1_avx512vnni)
TRAP(moe_int8_q5_0_avx2)
TRAP(moe_int8_q5_1_avx2)

#endif
