// MoEKit's ISA-specific inner kernels: the few loops Swift cannot express with the instructions
// this CPU has (AVX-512 FMA, AVX-512 BF16, AVX2 FMA) without compiling the whole package for them.
// Each function carries its own target attribute; Swift picks one at run time by moe_cpu_level().
// Everything else (packing, scheduling, epilogues) is Swift.
#ifndef MOE_KERNELS_H
#define MOE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// Panel width in output columns of every packed weight panel (two 512-bit registers of floats).
#define MOE_PANEL_WIDTH 32
/// Rows of one micro-tile (accumulators: 8 rows x 2 registers = 16 of the 32 zmm registers).
#define MOE_TILE_ROWS 8

/// 0: portable (no kernel here), 1: AVX2 + FMA, 2: AVX-512F, 3: AVX-512F + AVX-512 BF16.
int moe_cpu_level(void);

/// C[r][0..<32] (+)= sum over k in 0..<depth of A[k*8 + r] * B[k][0..<32], stored for r < rows <= 8.
/// A is one packed row tile (depth x 8, rows past `rows` zero); B is one packed F32 panel (depth x 32,
/// contiguous); C has row stride 32. accumulate == 0 starts from zero. Ascending k, FMA. With accumulate,
/// the AVX-512 kernels continue the FMA chain from C; the AVX2 kernel sums the K-block from zero and adds
/// it to C (each is deterministic; the instruction set is fixed per machine).
void moe_panel_f32_avx512(int rows, int depth, const float *a, const float *b, float *c, int accumulate);
void moe_panel_f32_avx2(int rows, int depth, const float *a, const float *b, float *c, int accumulate);

/// The same with B stored as bfloat16 (depth x 32 uint16), widened exactly to F32 in registers.
void moe_panel_bf16w_avx512(int rows, int depth, const float *a, const uint16_t *b, float *c, int accumulate);
void moe_panel_bf16w_avx2(int rows, int depth, const float *a, const uint16_t *b, float *c, int accumulate);

/// C (+)= A x B with bf16 activations and bf16 weights (vdpbf16ps, F32 accumulation; AVX-512 BF16 only).
/// a[kp*8 + r] packs (A[r][2kp], A[r][2kp+1]); b[kp*32 + n] packs (B[2kp][n], B[2kp+1][n]); low half first.
void moe_panel_bf16dot_avx512(int rows, int pairs, const uint32_t *a, const uint32_t *b, float *c, int accumulate);

/// SwiGLU epilogue for n <= 32 columns: out[j] = silu(g[j] + gb[j]) * (u[j] + ub[j]) (gb/ub may be NULL).
/// AVX-512 only (polynomial exp, ~2e-7 relative).
void moe_swiglu_avx512(int n, const float *g, const float *gb, const float *u, const float *ub, float *out);

/// Writes one computed block into k-major row tiles (the activation layout the next projection reads):
/// for each of the block's 8-row tiles t (rows >= 1; padding rows up to a multiple of 8 written as zero),
/// tile[t][c][r] = block[(8t + r) * 32 + c] for c < columns <= 32. `out` points at the block's column 0 in
/// the first tile (element 8 * first column); tiles are `tile_stride` elements apart. AVX-512 only.
void moe_write_tiles_f32_avx512(int rows, int columns, const float *block, float *out, long tile_stride);
/// The same rounded to bf16 k-pairs (round to nearest even, NaN kept quiet, exactly as MoEKit's BFloat16):
/// tile[t][cp][r] = bf16(block[.. 2cp]) | bf16(block[.. 2cp + 1]) << 16 (the high half zero past `columns`).
void moe_write_tiles_pairs_avx512(int rows, int columns, const float *block, uint32_t *out, long tile_stride);

/// Gathers one 8-row tile k-major: out[k*8 + r] = rows[r][k] * scales[r] for r < live (<= 8), zero for
/// r >= live, k < depth (8x8 transposes in registers). AVX2 + FMA machines and up.
void moe_gather_tile_f32_avx2(int live, int depth, const float *const *rows, const float *scales, float *out);
/// The same as bf16 k-pairs (rounded as MoEKit's BFloat16): out[kp*8 + r] = bf16(x[2kp]) | bf16(x[2kp+1]) << 16,
/// the high half zero past an odd depth.
void moe_gather_tile_pairs_avx2(int live, int depth, const float *const *rows, const float *scales, uint32_t *out);

/// Sums n floats (memory-bandwidth probe); the value is returned so the read cannot be elided.
float moe_sum_f32(const float *x, size_t n);

/// Asks glibc's malloc to keep freed memory (no mmap/munmap per large buffer); no-op elsewhere.
void moe_retain_freed_memory(void);

/// The x86 `pause` hint for spin loops (a no-op elsewhere).
static inline void moe_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#endif
