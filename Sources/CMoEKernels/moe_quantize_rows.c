// Per-block 8-bit quantization of activation tiles (moe_quantize_rows.h). Each row's block is gathered from the
// k-major tile 16 inputs at a time (stride 8 floats), reduced, scaled and rounded in registers; the F32 steps are
// the Swift reference's, one intrinsic each.
#include "moe_quantize_rows.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,f16c")))

// Row r's inputs k0 ..< k0 + 16 of the tile.
AVX512 static inline __m512 gather16(const float *tile, int r, int k0) {
    const __m512i index = _mm512_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120);
    return _mm512_i32gather_ps(index, tile + (ptrdiff_t)k0 * 8 + r, 4);
}

// v with NaN lanes zeroed and clamped to [-127, 127] (QuantizedActivations.code: a no-op on a finite block).
AVX512 static inline __m512 clamp127(__m512 v) {
    v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
    return _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
}

// Stores 16 codes (int32 lanes in -128...127) and their sum.
AVX512 static inline void store16(__m512i codes, int8_t *q, int16_t *sum) {
    _mm_storeu_si128((__m128i *)q, _mm512_cvtsepi32_epi8(codes));
    *sum = (int16_t)_mm512_reduce_add_epi32(codes);
}

AVX512 void moe_quantize_tile_q8_0_avx512(int rows, int depth, const float *tile, int8_t *q, float *d, int16_t *sums) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    const __m512i signBit = _mm512_set1_epi32((int)0x80000000);
    for (int r = 0; r < rows; r++) {
        for (int b = 0; b < depth / 32; b++) {
            __m512 x0 = gather16(tile, r, 32 * b), x1 = gather16(tile, r, 32 * b + 16);
            float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
            float scale = amax / 127.0f;
            float inverse = scale != 0 ? 1.0f / scale : 0.0f;
            __m512 id = _mm512_set1_ps(inverse);
            for (int h = 0; h < 2; h++) {
                __m512 v = clamp127(_mm512_mul_ps(h == 0 ? x0 : x1, id));
                // roundf: truncate, then one step away from zero when the dropped fraction is at least a half.
                __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
                __m512 fraction = _mm512_abs_ps(_mm512_sub_ps(v, t));
                __mmask16 up = _mm512_cmp_ps_mask(fraction, half, _CMP_GE_OQ);
                __m512 step = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(_mm512_castps_si512(v), signBit),
                                                                  _mm512_castps_si512(one)));
                __m512 rounded = _mm512_mask_add_ps(t, up, t, step);
                store16(_mm512_cvttps_epi32(rounded), q + (ptrdiff_t)r * depth + 32 * b + 16 * h,
                        sums + (ptrdiff_t)r * (depth / 16) + 2 * b + h);
            }
            d[(ptrdiff_t)r * (depth / 32) + b] = _cvtsh_ss(_cvtss_sh(scale, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        }
    }
}

AVX512 void moe_quantize_tile_q8_K_avx512(int rows, int depth, const float *tile, int8_t *q, float *d, int16_t *sums) {
    for (int r = 0; r < rows; r++) {
        for (int b = 0; b < depth / 256; b++) {
            __m512 x[16];
            __m512 magnitude = _mm512_setzero_ps();
            for (int i = 0; i < 16; i++) {
                x[i] = gather16(tile, r, 256 * b + 16 * i);
                magnitude = _mm512_max_ps(magnitude, _mm512_abs_ps(x[i]));
            }
            float amax = _mm512_reduce_max_ps(magnitude);
            int8_t *qb = q + (ptrdiff_t)r * depth + 256 * b;
            int16_t *sb = sums + (ptrdiff_t)r * (depth / 16) + 16 * b;
            if (amax == 0) {
                for (int i = 0; i < 256; i++) qb[i] = 0;
                for (int i = 0; i < 16; i++) sb[i] = 0;
                d[(ptrdiff_t)r * (depth / 256) + b] = 0;
                continue;
            }
            // The first input whose magnitude is amax, with its sign.
            float signedMax = amax;
            __m512 target = _mm512_set1_ps(amax);
            for (int i = 0; i < 16; i++) {
                __mmask16 hit = _mm512_cmp_ps_mask(_mm512_abs_ps(x[i]), target, _CMP_EQ_OQ);
                if (hit) {
                    float lanes[16];
                    _mm512_storeu_ps(lanes, x[i]);
                    signedMax = lanes[__builtin_ctz(hit)];
                    break;
                }
            }
            float iscale = -127.0f / signedMax;
            __m512 s = _mm512_set1_ps(iscale);
            for (int i = 0; i < 16; i++) {
                __m512i codes = _mm512_cvt_roundps_epi32(clamp127(_mm512_mul_ps(s, x[i])), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                store16(codes, qb + 16 * i, sb + i);
            }
            d[(ptrdiff_t)r * (depth / 256) + b] = 1.0f / iscale;
        }
    }
}

#else

void moe_quantize_tile_q8_0_avx512(int rows, int depth, const float *tile, int8_t *q, float *d, int16_t *sums) { __builtin_trap(); }
void moe_quantize_tile_q8_K_avx512(int rows, int depth, const float *tile, int8_t *q, float *d, int16_t *sums) { __builtin_trap(); }

#endif
