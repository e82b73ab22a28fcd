// The ggml block decoders of moe_kernels_ggml.c, written once over L-lane vectors and included once per
// instruction set (private to the C target). The including file defines:
//   TGT          the target attribute;  FN(name)  the name with the ISA's suffix;  L  the lanes (16 or 8)
//   vu, vi, vf   L-lane uint32 / int32 / float vector types (clang vector extensions)
//   GATHER(p, idx)   vu: lane j the 4 bytes at p + idx[j] (unaligned): the blocks' scale words
//   LOAD8(p, stride, out) / LOAD4(p, stride, out)   vu out[8] / out[4]: lane j of out[t] the 4 bytes at
//                    p + j · stride + 4t (each lane's 32 or 16 bytes loaded and transposed in registers)
//   HALF(v)          vf: the F16 in the low 16 bits of each lane, widened exactly (subnormals included)
//   MX_VALUE(code)   vf: ggml's kvalues_mxfp4[code] (code 0..15 per lane; code 8 is +0)
//
// Every decoder takes L columns' blocks at x, x + bytes, … (idx = lane · bytes) and writes value k of lane
// j to y[k * 32 + j]: lanes are columns, so each k is one vector store once the codes are transposed. Each
// value is formed by the reference's F32 operations in the reference's order (moe_kernels_ggml.c turns FP
// contraction off, so no product is fused into the following add).

#define CVT(v) __builtin_convertvector((vi)(v), vf)

TGT static inline void FN(store)(float *p, vf v) { __builtin_memcpy(p, &v, sizeof v); }

/// Value k of the lanes' blocks (the block's k-th input) at row k of the slice.
#define OUT(k, v) FN(store)(y + (k) * 32, (v))

/// `qs[j] · d`.
TGT static void FN(q8_0)(const uint8_t *x, float *y, vi idx) {
    vf d = HALF(GATHER(x, idx));
    vu q[8];
    LOAD8(x + 2, 34, q);
    for (int t = 0; t < 8; t++) {
        for (int i = 0; i < 4; i++) OUT(4 * t + i, CVT((vi)(q[t] << (24 - 8 * i)) >> 24) * d);
    }
}

/// `((qs[j] & 0xF) − 8) · d`, input j + 16 from the high nibble.
TGT static void FN(q4_0)(const uint8_t *x, float *y, vi idx) {
    vf d = HALF(GATHER(x, idx));
    vu q[4];
    LOAD4(x + 2, 18, q);
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < 4; i++) {
            vu b = q[t] >> (8 * i);
            OUT(4 * t + i, CVT((vi)(b & 0xF) - 8) * d);
            OUT(16 + 4 * t + i, CVT((vi)((b >> 4) & 0xF) - 8) * d);
        }
    }
}

/// `(qs[j] & 0xF) · d + m`, input j + 16 from the high nibble.
TGT static void FN(q4_1)(const uint8_t *x, float *y, vi idx) {
    vu dm = GATHER(x, idx);
    vf d = HALF(dm), m = HALF(dm >> 16);
    vu q[4];
    LOAD4(x + 4, 20, q);
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < 4; i++) {
            vu b = q[t] >> (8 * i);
            OUT(4 * t + i, CVT(b & 0xF) * d + m);
            OUT(16 + 4 * t + i, CVT((b >> 4) & 0xF) * d + m);
        }
    }
}

/// The 5-bit code of input k: its nibble with bit k of qh as bit 4.
#define CODE5(nibble, qh, k) ((nibble) | ((((qh) >> (k)) & 1) << 4))

/// `(q − 16) · d`, bit k of qh the fifth bit of input k.
TGT static void FN(q5_0)(const uint8_t *x, float *y, vi idx) {
    vf d = HALF(GATHER(x, idx));
    vu qh = GATHER(x + 2, idx), q[4];
    LOAD4(x + 6, 22, q);
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < 4; i++) {
            int k = 4 * t + i;
            vu b = q[t] >> (8 * i);
            OUT(k, CVT((vi)CODE5(b & 0xF, qh, k) - 16) * d);
            OUT(k + 16, CVT((vi)CODE5((b >> 4) & 0xF, qh, k + 16) - 16) * d);
        }
    }
}

/// `q · d + m`, bit k of qh the fifth bit of input k.
TGT static void FN(q5_1)(const uint8_t *x, float *y, vi idx) {
    vu dm = GATHER(x, idx);
    vf d = HALF(dm), m = HALF(dm >> 16);
    vu qh = GATHER(x + 4, idx), q[4];
    LOAD4(x + 8, 24, q);
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < 4; i++) {
            int k = 4 * t + i;
            vu b = q[t] >> (8 * i);
            OUT(k, CVT(CODE5(b & 0xF, qh, k)) * d + m);
            OUT(k + 16, CVT(CODE5((b >> 4) & 0xF, qh, k + 16)) * d + m);
        }
    }
}

/// Byte i (0..<12) of the K-quants' packed scales, s[w] holding bytes 4w ..< 4w + 4.
#define SBYTE(s, i) (((s)[(i) >> 2] >> (8 * ((i) & 3))) & 0xFF)

/// ggml's get_scale_min_k4 per lane: the scale and min of group j (0..<8) as `d · sc` and `dmin · m`.
TGT static inline void FN(scale_min)(const vu s[3], int j, vf d, vf dmin, vf *scale, vf *min) {
    vu sc, m;
    if (j < 4) {
        sc = SBYTE(s, j) & 63;
        m = SBYTE(s, j + 4) & 63;
    } else {
        sc = (SBYTE(s, j + 4) & 0xF) | ((SBYTE(s, j - 4) >> 6) << 4);
        m = (SBYTE(s, j + 4) >> 4) | ((SBYTE(s, j) >> 6) << 4);
    }
    *scale = d * CVT(sc);
    *min = dmin * CVT(m);
}

/// Q4_K and Q5_K (qh non-null): groups of 64 inputs, the low nibbles of 32 bytes then their high nibbles,
/// `(d · sc) · q − dmin · m` with each half's scale and min; Q5_K's fifth bits are bit 2g (low half) and
/// 2g + 1 (high half) of qh[l] in group g.
TGT static inline void FN(kquant4)(const uint8_t *x, float *y, int bytes, int withHigh) {
    vu head[4], qh[8];  // head: d and dmin, then the 12 bytes of scales
    LOAD4(x, bytes, head);
    vf d = HALF(head[0]), dmin = HALF(head[0] >> 16);
    const vu *s = head + 1;
    if (withHigh) LOAD8(x + 16, bytes, qh);
    const uint8_t *qs = x + (withHigh ? 48 : 16);
    for (int g = 0; g < 4; g++) {
        vf d1, min1, d2, min2;
        FN(scale_min)(s, 2 * g, d, dmin, &d1, &min1);
        FN(scale_min)(s, 2 * g + 1, d, dmin, &d2, &min2);
        vu q[8];
        LOAD8(qs + 32 * g, bytes, q);
        for (int t = 0; t < 8; t++) {
            for (int i = 0; i < 4; i++) {
                int l = 4 * t + i;
                vu b = q[t] >> (8 * i), lo = b & 0xF, hi = (b >> 4) & 0xF;
                if (withHigh) {
                    vu h = qh[t] >> (8 * i);
                    lo |= ((h >> (2 * g)) & 1) << 4;
                    hi |= ((h >> (2 * g + 1)) & 1) << 4;
                }
                OUT(64 * g + l, d1 * CVT(lo) - min1);
                OUT(64 * g + 32 + l, d2 * CVT(hi) - min2);
            }
        }
    }
}

TGT static void FN(q4_K)(const uint8_t *x, float *y, vi idx) { (void)idx; FN(kquant4)(x, y, 144, 0); }
TGT static void FN(q5_K)(const uint8_t *x, float *y, vi idx) { (void)idx; FN(kquant4)(x, y, 176, 1); }

/// Two halves of 128 inputs; input l, l + 32, l + 64, l + 96 of a half take the low / high nibbles of
/// ql[l], ql[l + 32] and the 2-bit fields of qh[l]: `(d · sc) · (q − 32)`, sc one int8 per 16 inputs.
TGT static void FN(q6_K)(const uint8_t *x, float *y, vi idx) {
    vf d = HALF(GATHER(x + 206, idx) >> 16);  // d is the last 2 bytes: read 206 ..< 210, not past the block
    vu sw[4];  // the 16 int8 scales
    LOAD4(x + 192, 210, sw);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = x + 64 * h, *qh = x + 128 + 32 * h;
        vf ds[8];
        for (int s = 0; s < 8; s++) ds[s] = d * CVT((vi)(sw[2 * h + (s >> 2)] << (24 - 8 * (s & 3))) >> 24);
        float *out = y + 128 * h * 32;
        vu low[8], high[8], top[8];
        LOAD8(ql, 210, low);
        LOAD8(ql + 32, 210, high);
        LOAD8(qh, 210, top);
        for (int t = 0; t < 8; t++) {
            int g = t / 4;  // (4t + i) / 16
            for (int i = 0; i < 4; i++) {
                int l = 4 * t + i;
                vu lb = low[t] >> (8 * i), hb = high[t] >> (8 * i), tb = top[t] >> (8 * i);
                vi q1 = (vi)((lb & 0xF) | ((tb & 3) << 4)) - 32;
                vi q2 = (vi)((hb & 0xF) | (((tb >> 2) & 3) << 4)) - 32;
                vi q3 = (vi)(((lb >> 4) & 0xF) | (((tb >> 4) & 3) << 4)) - 32;
                vi q4 = (vi)(((hb >> 4) & 0xF) | (((tb >> 6) & 3) << 4)) - 32;
                FN(store)(out + l * 32, ds[g] * CVT(q1));
                FN(store)(out + (l + 32) * 32, ds[g + 2] * CVT(q2));
                FN(store)(out + (l + 64) * 32, ds[g + 4] * CVT(q3));
                FN(store)(out + (l + 96) * 32, ds[g + 6] * CVT(q4));
            }
        }
    }
}

/// `kvalues[qs[j] & 0xF] · 2^(e − 128)`, input j + 16 from the high nibble.
TGT static void FN(mxfp4)(const uint8_t *x, float *y, vi idx) {
    vu e = GATHER(x, idx) & 0xFF;
    // ggml_e8m0_to_fp32_half: e < 2 subnormal (0x00200000 << e), else exponent field e − 1.
    vu small = (vu)(e < 2);
    vu subnormal = ((vu){} + 0x00200000u) << (e & 1);
    vf d = (vf)((small & subnormal) | (~small & ((e - 1) << 23)));
    vu q[4];
    LOAD4(x + 1, 17, q);
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < 4; i++) {
            vu b = q[t] >> (8 * i);
            OUT(4 * t + i, MX_VALUE(b & 0xF) * d);
            OUT(16 + 4 * t + i, MX_VALUE((b >> 4) & 0xF) * d);
        }
    }
}

#undef OUT
#undef CODE5
#undef SBYTE
#undef CVT

/// Every panel row, L columns at a time.
#define DECODE_ROWS(FORMAT, BYTES, SIZE)                                                                    \
    for (int b = 0; b < blocks; b++) {                                                                     \
        PREFETCH_ROW(panel + (long)b * 32 * (BYTES), 32 * (BYTES));                                        \
        for (int c = 0; c < 32; c += L) {                                                                  \
            FN(FORMAT)(panel + ((long)b * 32 + c) * (BYTES), out + (long)b * (SIZE) * 32 + c, lane * (BYTES)); \
        }                                                                                                  \
    }

TGT void FN(moe_ggml_decode_panel)(int type, const uint8_t *panel, int blocks, float *out) {
    vi lane;
    for (int j = 0; j < L; j++) lane[j] = j;
    switch (type) {
    case MOE_GGML_Q8_0: DECODE_ROWS(q8_0, 34, 32) break;
    case MOE_GGML_Q4_0: DECODE_ROWS(q4_0, 18, 32) break;
    case MOE_GGML_Q4_1: DECODE_ROWS(q4_1, 20, 32) break;
    case MOE_GGML_Q5_0: DECODE_ROWS(q5_0, 22, 32) break;
    case MOE_GGML_Q5_1: DECODE_ROWS(q5_1, 24, 32) break;
    case MOE_GGML_Q4_K: DECODE_ROWS(q4_K, 144, 256) break;
    case MOE_GGML_Q5_K: DECODE_ROWS(q5_K, 176, 256) break;
    case MOE_GGML_Q6_K: DECODE_ROWS(q6_K, 210, 256) break;
    case MOE_GGML_MXFP4: DECODE_ROWS(mxfp4, 17, 32) break;
    default: __builtin_trap();
    }
}

#undef DECODE_ROWS
