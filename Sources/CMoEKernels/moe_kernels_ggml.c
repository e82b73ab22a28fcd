// Fast decoders for ggml block panels (see moe_kernels_ggml.h): one K-block slice of a packed panel to F32,
// bit for bit as the scalar reference. The decoders are written once (moe_ggml_decode_body.h) over L-lane
// vectors whose lanes are L of the panel's 32 columns: the columns' code bytes are loaded per column and
// transposed in registers (LOAD8 / LOAD4; one vpgatherdd per 4 bytes measured 1.5-3x slower on Zen 4), the
// scale words gathered, and each k of the slice is one vector store. Included once for AVX-512 (16 lanes)
// and once for AVX2 + FMA + F16C (8 lanes).
#include "moe_kernels_ggml.h"

#if defined(__x86_64__)
#include <immintrin.h>

// The reference rounds every product before it adds (`q · d + m`, `(d · sc) · q − dmin · m`): never fuse.
#pragma clang fp contract(off)

// The panel streams from memory once per K-block and item, and the decoder's loads are the first to touch
// each panel row: each row prefetches the lines 4 KiB ahead into L2 (prefetcht1, as moe_kernels_quant.c;
// past the panel's end it is harmless). Decoding slices streamed from a 256 MiB buffer on one core of the
// 2-vCPU Zen 4 (noisy host): Q8_0 2.1 -> 0.9-1.2 us a slice, Q4_K 2.0 -> 1.4-1.7, MXFP4 1.2-1.3 -> 1.1-1.3;
// 1, 2, 8 and 16 KiB ahead or prefetcht0 were no better.
#define PREFETCH_ROW(row, bytes)                                                                            \
    for (int line = 0; line < (bytes); line += 64) _mm_prefetch((const char *)(row) + 4096 + line, _MM_HINT_T1)

// ---- AVX-512: 16 columns per vector ----------------------------------------------------------------
#define TGT __attribute__((target("avx512f,avx2,fma,f16c")))
#define FN(name) name##_avx512
#define L 16
typedef uint32_t vu __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
typedef float vf __attribute__((vector_size(64)));
#define GATHER(p, idx) ((vu)_mm512_i32gather_epi32((__m512i)(idx), (const void *)(p), 1))
#define HALF(v) ((vf)_mm512_cvtph_ps(_mm512_cvtepi32_epi16((__m512i)(v))))

// 8 dwords of 16 columns: column j's 32 bytes at x + j · stride, transposed so that out[t] lane j is its
// dword t. Columns j and j + 8 share a register (low and high 256 bits), then an 8 x 8 dword transpose in
// each half: 32 shuffles for what 8 gathers would load, at a fraction of their cost on Zen 4.
TGT static inline void load8_avx512(const uint8_t *x, int stride, vu out[8]) {
    __m512i z[8], t[8], u[8];
    for (int j = 0; j < 8; j++) {
        __m256i low = _mm256_loadu_si256((const __m256i *)(const void *)(x + j * stride));
        __m256i high = _mm256_loadu_si256((const __m256i *)(const void *)(x + (j + 8) * stride));
        z[j] = _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
    }
    for (int j = 0; j < 8; j += 2) {
        t[j] = _mm512_unpacklo_epi32(z[j], z[j + 1]);
        t[j + 1] = _mm512_unpackhi_epi32(z[j], z[j + 1]);
    }
    for (int j = 0; j < 8; j += 4) {  // u[j + i]: columns j ..< j + 4, dword i (128-bit lanes 0, 2) and i + 4 (1, 3)
        u[j] = _mm512_unpacklo_epi64(t[j], t[j + 2]);
        u[j + 1] = _mm512_unpackhi_epi64(t[j], t[j + 2]);
        u[j + 2] = _mm512_unpacklo_epi64(t[j + 1], t[j + 3]);
        u[j + 3] = _mm512_unpackhi_epi64(t[j + 1], t[j + 3]);
    }
    const __m512i first = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), second = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    for (int i = 0; i < 4; i++) {
        out[i] = (vu)_mm512_permutex2var_epi64(u[i], first, u[i + 4]);
        out[i + 4] = (vu)_mm512_permutex2var_epi64(u[i], second, u[i + 4]);
    }
}

// 4 dwords of 16 columns (16 bytes each): columns j, j + 4, j + 8, j + 12 in the 128-bit lanes of one
// register, then a 4 x 4 dword transpose in each lane.
TGT static inline void load4_avx512(const uint8_t *x, int stride, vu out[4]) {
    __m512i z[4];
    for (int j = 0; j < 4; j++) {
#define ROW(c) _mm_loadu_si128((const __m128i *)(const void *)(x + (c) * stride))
        __m256i low = _mm256_inserti128_si256(_mm256_castsi128_si256(ROW(j)), ROW(j + 4), 1);
        __m256i high = _mm256_inserti128_si256(_mm256_castsi128_si256(ROW(j + 8)), ROW(j + 12), 1);
#undef ROW
        z[j] = _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
    }
    __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
    __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
    out[0] = (vu)_mm512_unpacklo_epi64(t0, t2);
    out[1] = (vu)_mm512_unpackhi_epi64(t0, t2);
    out[2] = (vu)_mm512_unpacklo_epi64(t1, t3);
    out[3] = (vu)_mm512_unpackhi_epi64(t1, t3);
}
#define LOAD8(x, stride, out) load8_avx512((x), (stride), (out))
#define LOAD4(x, stride, out) load4_avx512((x), (stride), (out))

// kvalues_mxfp4 as floats, one vpermps per vector.
TGT static inline vf mx_value_avx512(vu code) {
    const __m512 table = _mm512_setr_ps(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
    return (vf)_mm512_permutexvar_ps((__m512i)code, table);
}
#define MX_VALUE(code) mx_value_avx512(code)

#include "moe_ggml_decode_body.h"

#undef TGT
#undef FN
#undef L
#undef GATHER
#undef HALF
#undef MX_VALUE
#undef LOAD8
#undef LOAD4

// ---- AVX2 + FMA + F16C: 8 columns per vector -------------------------------------------------------
#define TGT __attribute__((target("avx2,fma,f16c")))
#define FN(name) name##_avx2
#define L 8
typedef uint32_t vu8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));
typedef float vf8 __attribute__((vector_size(32)));
#define vu vu8
#define vi vi8
#define vf vf8
#define GATHER(p, idx) ((vu)_mm256_i32gather_epi32((const int *)(const void *)(p), (__m256i)(idx), 1))

// The low 16 bits of the 8 lanes packed into 128 bits (packus of values <= 0xFFFF, then qwords 0 and 2),
// widened by vcvtph2ps.
TGT static inline vf half_avx2(vu v) {
    __m256i low = (__m256i)(v & 0xFFFF);
    __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(low, low), 0x08);
    return (vf)_mm256_cvtph_ps(_mm256_castsi256_si128(packed));
}
#define HALF(v) half_avx2(v)

// 8 dwords of 8 columns (32 bytes each at x + j · stride), transposed: out[t] lane j is column j's dword t.
TGT static inline void load8_avx2(const uint8_t *x, int stride, vu out[8]) {
    __m256i z[8], t[8], u[8];
    for (int j = 0; j < 8; j++) z[j] = _mm256_loadu_si256((const __m256i *)(const void *)(x + j * stride));
    for (int j = 0; j < 8; j += 2) {
        t[j] = _mm256_unpacklo_epi32(z[j], z[j + 1]);
        t[j + 1] = _mm256_unpackhi_epi32(z[j], z[j + 1]);
    }
    for (int j = 0; j < 8; j += 4) {  // u[j + i]: columns j ..< j + 4, dword i (low 128 bits) and i + 4 (high)
        u[j] = _mm256_unpacklo_epi64(t[j], t[j + 2]);
        u[j + 1] = _mm256_unpackhi_epi64(t[j], t[j + 2]);
        u[j + 2] = _mm256_unpacklo_epi64(t[j + 1], t[j + 3]);
        u[j + 3] = _mm256_unpackhi_epi64(t[j + 1], t[j + 3]);
    }
    for (int i = 0; i < 4; i++) {
        out[i] = (vu)_mm256_permute2x128_si256(u[i], u[i + 4], 0x20);
        out[i + 4] = (vu)_mm256_permute2x128_si256(u[i], u[i + 4], 0x31);
    }
}

// 4 dwords of 8 columns (16 bytes each): columns j and j + 4 in one register, a 4 x 4 transpose per lane.
TGT static inline void load4_avx2(const uint8_t *x, int stride, vu out[4]) {
    __m256i z[4];
    for (int j = 0; j < 4; j++) {
        __m128i low = _mm_loadu_si128((const __m128i *)(const void *)(x + j * stride));
        __m128i high = _mm_loadu_si128((const __m128i *)(const void *)(x + (j + 4) * stride));
        z[j] = _mm256_inserti128_si256(_mm256_castsi128_si256(low), high, 1);
    }
    __m256i t0 = _mm256_unpacklo_epi32(z[0], z[1]), t1 = _mm256_unpackhi_epi32(z[0], z[1]);
    __m256i t2 = _mm256_unpacklo_epi32(z[2], z[3]), t3 = _mm256_unpackhi_epi32(z[2], z[3]);
    out[0] = (vu)_mm256_unpacklo_epi64(t0, t2);
    out[1] = (vu)_mm256_unpackhi_epi64(t0, t2);
    out[2] = (vu)_mm256_unpacklo_epi64(t1, t3);
    out[3] = (vu)_mm256_unpackhi_epi64(t1, t3);
}
#define LOAD8(x, stride, out) load8_avx2((x), (stride), (out))
#define LOAD4(x, stride, out) load4_avx2((x), (stride), (out))

// kvalues_mxfp4: the sign-bit-clear and sign-bit-set halves of the table (vpermps reads index bits 0-2),
// picked by bit 3 (code 8 is +0, as ggml's integer table).
TGT static inline vf mx_value_avx2(vu code) {
    const __m256 positive = _mm256_setr_ps(0, 1, 2, 3, 4, 6, 8, 12);
    const __m256 negative = _mm256_setr_ps(0, -1, -2, -3, -4, -6, -8, -12);
    __m256 p = _mm256_permutevar8x32_ps(positive, (__m256i)code);
    __m256 n = _mm256_permutevar8x32_ps(negative, (__m256i)code);
    return (vf)_mm256_blendv_ps(p, n, (__m256)(code << 28));
}
#define MX_VALUE(code) mx_value_avx2(code)

#include "moe_ggml_decode_body.h"

#else  // not x86-64: Swift's reference decoders run instead; these are never called.

void moe_ggml_decode_panel_avx512(int type, const uint8_t *panel, int blocks, float *out) { __builtin_trap(); }
void moe_ggml_decode_panel_avx2(int type, const uint8_t *panel, int blocks, float *out) { __builtin_trap(); }

#endif
