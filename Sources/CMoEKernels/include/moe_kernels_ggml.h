// MoEKit's fast decoders for ggml block panels (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, MXFP4):
// one K-block slice of a packed panel decoded to F32, bit for bit as MoEKit's scalar reference
// (GGMLBlocks.decodePanelReference, itself bit for bit ggml's dequantize_row_*). Each function carries its
// own target attribute; Swift picks one at run time by moe_cpu_level() (the AVX2 one also needs F16C,
// which every AVX2 + FMA CPU has). Off x86-64 the symbols exist but trap: Swift's reference runs there.
#ifndef MOE_KERNELS_GGML_H
#define MOE_KERNELS_GGML_H

#include <stdint.h>

/// The ggml_type ids these decoders take (GGMLBlockType.ggmlTypeID).
enum {
    MOE_GGML_Q4_0 = 2,
    MOE_GGML_Q4_1 = 3,
    MOE_GGML_Q5_0 = 6,
    MOE_GGML_Q5_1 = 7,
    MOE_GGML_Q8_0 = 8,
    MOE_GGML_Q4_K = 12,
    MOE_GGML_Q5_K = 13,
    MOE_GGML_Q6_K = 14,
    MOE_GGML_MXFP4 = 39,
};

/// Decodes `blocks` panel rows of a block panel of ggml type `type` (one of the MOE_GGML_* ids; any other
/// traps): panel row b is the 32 columns' stored blocks for k-block b, column 0 first, `32 * bytesPerBlock`
/// bytes. Value k of column n of row b goes to out[(b * blockSize + k) * 32 + n], so `out` receives
/// `blocks * blockSize` rows of 32 floats (k-major). Reads exactly the panel rows' bytes; `out` needs no
/// alignment. NaN and infinite F16 scales give NaN or infinite values, as in the reference (NaN payloads
/// may differ).
void moe_ggml_decode_panel_avx512(int type, const uint8_t *panel, int blocks, float *out);
void moe_ggml_decode_panel_avx2(int type, const uint8_t *panel, int blocks, float *out);

#endif
