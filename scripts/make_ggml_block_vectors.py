#!/usr/bin/env python3
"""Generate the ggml block-format test vectors MoEKit's reference dequantizers are checked against.

What it makes
-------------
Tests/Fixtures/ggml-blocks.safetensors, for each block type
(q8_0, q4_0, q4_1, q5_0, q5_1, q4_K, q5_K, q6_K, mxfp4):

    <type>.blocks     U8  [n, bytes per block]   blocks exactly as ggml stores them
    <type>.expected   U32 [n, block size]        gguf-py's `dequantize` of those blocks, as F32 bit patterns

and metadata (`gguf`, `numpy`, `seed`). The blocks are
- every code of the format (Q8_0: all 256 int8 codes, -128 included; 4/5/6-bit codes; the 64 values of
  every 6-bit K-quant scale and min; Q6_K int8 scales -128 and 127; all 16 E2M1 codes),
- every F16 scale class (zero, -0, smallest and largest subnormal, smallest normal, largest finite, both
  signs, 1.0, infinities and NaNs) as `d`, as `m`/`dmin`, and every E8M0 exponent 0..255 for MXFP4,
- random blocks (random bytes, random finite F16 scales of every magnitude), and
- blocks gguf-py's quantizers made from random floats (where gguf-py has one: Q8_0, Q4_0, Q4_1, Q5_0,
  Q5_1, MXFP4).

gguf-py's NumPy dequantizers follow ggml's `dequantize_row_*` (ggml/src/ggml-quants.c) operation for
operation, each in F32 with one rounding per operation: Q8_0/Q4_0/Q5_0 `q*d`, Q4_1/Q5_1 `q*d + m`,
Q4_K/Q5_K `(d*sc)*q - dmin*m`, Q6_K `(d*sc)*q` (in that order), MXFP4 `kvalue * 2^(e-128)`
(`ggml_e8m0_to_fp32_half`: 0xFF is 2^127, not NaN; 0 and 1 subnormal). Every product before an addition is
exact in F32 (an 11-bit F16 significand times a code of at most 6 bits, then at most 5 more), so a compiler
contracting `a*b + c` into a fused multiply-add (GCC's -ffp-contract=fast) gives the same bits: only the
final add and Q6_K's second product round. The committed vectors were also checked once against ggml's own
C (`dequantize_row_*` of ggml-org/ggml at d99724f2, compiled with gcc -O2 -ffp-contract=off and with
-O2 -march=native -ffp-contract=fast): the same bits, NaNs included.

Pinned versions (scripts/requirements-ggml-vectors.txt): gguf==0.19.0, numpy==2.4.6.
Fully deterministic (fixed seed). The committed file stays under 300 KB.

How to run (from the repository root):
    pip install -r scripts/requirements-ggml-vectors.txt && python3 scripts/make_ggml_block_vectors.py
"""
import json
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize

SEED = 20_240_812
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures",
                   "ggml-blocks.safetensors")

# name, ggml type, block size, bytes per block
TYPES = [
    ("q8_0", Q.Q8_0, 32, 34),
    ("q4_0", Q.Q4_0, 32, 18),
    ("q4_1", Q.Q4_1, 32, 20),
    ("q5_0", Q.Q5_0, 32, 22),
    ("q5_1", Q.Q5_1, 32, 24),
    ("q4_K", Q.Q4_K, 256, 144),
    ("q5_K", Q.Q5_K, 256, 176),
    ("q6_K", Q.Q6_K, 256, 210),
    ("mxfp4", Q.MXFP4, 32, 17),
]

# F16 bit patterns of every class: +0, -0, smallest/largest subnormal (both signs), smallest normal,
# largest finite (both signs), 1, -1, a value with a full mantissa, infinities, quiet and signalling NaN.
F16_SPECIALS = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00, 0xBC00,
                0x3BFF, 0x7C00, 0xFC00, 0x7E00, 0x7C01]

rng = np.random.default_rng(SEED)


def f16_random(n):
    """Random finite F16 scales of every magnitude and sign: uniform exponent field 0..30, random mantissa."""
    exponent = rng.integers(0, 31, size=n, dtype=np.uint16)
    mantissa = rng.integers(0, 1024, size=n, dtype=np.uint16)
    sign = rng.integers(0, 2, size=n, dtype=np.uint16) << 15
    return (sign | (exponent << 10) | mantissa).astype(np.uint16)


def f16_typical(n):
    """F16 scales as real checkpoints have them: positive, about 1e-4 .. 1e-2."""
    return (np.float32(10.0) ** rng.uniform(-4, -2, size=n).astype(np.float32)).astype(np.float16).view(np.uint16)


def scale_column(n, specials=True):
    """n F16 scales: the specials first (when asked), then a mix of typical and arbitrary finite ones."""
    s = list(F16_SPECIALS) if specials else []
    rest = n - len(s)
    typical = f16_typical(rest // 2)
    arbitrary = f16_random(rest - rest // 2)
    return np.concatenate([np.array(s, dtype=np.uint16), typical, arbitrary]).astype(np.uint16)


def u16_bytes(v):
    return np.asarray(v, dtype="<u2").reshape(-1, 1).view(np.uint8)


def random_bytes(n, width):
    return rng.integers(0, 256, size=(n, width), dtype=np.uint8)


def from_quantizer(qtype, n, block_size):
    """n blocks gguf-py's quantizer makes from random floats (a few rows of mixed magnitudes, one all zero)."""
    x = rng.standard_normal((n, block_size)).astype(np.float32)
    x *= (np.float32(10.0) ** rng.uniform(-6, 3, size=(n, 1))).astype(np.float32)
    x[0] = 0
    x[1, 3] = 1e4  # one outlier
    return quantize(x, qtype).reshape(n, -1)


def nibbles(low, high):
    return (np.asarray(low, dtype=np.uint8) & 0xF) | ((np.asarray(high, dtype=np.uint8) & 0xF) << 4)


def q5_fields(q):
    """32 five-bit codes per row -> (qh as 4 bytes little-endian, qs 16 bytes): ggml's Q5_0/Q5_1 layout."""
    q = np.asarray(q, dtype=np.uint32)
    qs = nibbles(q[:, :16], q[:, 16:])
    qh = np.zeros(q.shape[0], dtype=np.uint32)
    for j in range(32):
        qh |= ((q[:, j] >> 4) & 1) << j
    return qh.astype("<u4").reshape(-1, 1).view(np.uint8), qs


def k_scales(sc, m):
    """8 six-bit scales and mins per row -> the 12 packed bytes of Q4_K/Q5_K (inverse of get_scale_min_k4)."""
    sc = np.asarray(sc, dtype=np.uint8)
    m = np.asarray(m, dtype=np.uint8)
    q = np.zeros((sc.shape[0], 12), dtype=np.uint8)
    for j in range(4):
        q[:, j] = (sc[:, j] & 63) | ((sc[:, j + 4] >> 4) << 6)
        q[:, j + 4] = (m[:, j] & 63) | ((m[:, j + 4] >> 4) << 6)
        q[:, j + 8] = (sc[:, j + 4] & 0xF) | ((m[:, j + 4] & 0xF) << 4)
    return q


def all_codes(n, bits, width):
    """n rows of `width` codes of `bits` bits, row i holding codes (i*width + j) mod 2^bits: every code appears."""
    return ((np.arange(n * width).reshape(n, width)) % (1 << bits)).astype(np.uint32)


def make_q8_0():
    rows = []
    # Every int8 code (8 blocks of 32), under a few scales.
    codes = np.arange(256, dtype=np.uint8).reshape(8, 32)
    d = np.array([0x3C00, 0x0001, 0xBC00, 0x03FF, 0x7BFF, 0x2E66, 0x8400, 0x1234], dtype=np.uint16)
    rows.append(np.concatenate([u16_bytes(d), codes], axis=1))
    # Every scale class (and random ones) with random codes that include -128 and 127.
    d = scale_column(72)
    qs = random_bytes(len(d), 32)
    qs[:, 0] = 0x80
    qs[:, 1] = 0x7F
    rows.append(np.concatenate([u16_bytes(d), qs], axis=1))
    rows.append(from_quantizer(Q.Q8_0, 24, 32))
    return np.concatenate(rows)


def make_q4_0():
    rows = []
    d = scale_column(64)
    qs = random_bytes(len(d), 16)
    qs[:8] = nibbles(np.arange(16)[None, :16].repeat(8, 0), 15 - np.arange(16)[None, :16].repeat(8, 0))[:, :16]
    rows.append(np.concatenate([u16_bytes(d), qs], axis=1))
    rows.append(from_quantizer(Q.Q4_0, 16, 32))
    return np.concatenate(rows)


def make_q4_1():
    rows = []
    n = 72
    d = scale_column(n)
    m = np.concatenate([scale_column(n - 24, specials=False), np.array(F16_SPECIALS + F16_SPECIALS[:8], dtype=np.uint16)])
    qs = random_bytes(n, 16)
    qs[:4] = nibbles(np.tile(np.arange(16), (4, 1)), np.tile(np.arange(15, -1, -1), (4, 1)))
    rows.append(np.concatenate([u16_bytes(d), u16_bytes(m), qs], axis=1))
    rows.append(from_quantizer(Q.Q4_1, 16, 32))
    return np.concatenate(rows)


def make_q5_0():
    rows = []
    d = scale_column(64)
    q = rng.integers(0, 32, size=(len(d), 32)).astype(np.uint32)
    q[:4] = all_codes(4, 5, 32)
    q[4:8] = 31 - all_codes(4, 5, 32)
    qh, qs = q5_fields(q)
    rows.append(np.concatenate([u16_bytes(d), qh, qs], axis=1))
    rows.append(from_quantizer(Q.Q5_0, 16, 32))
    return np.concatenate(rows)


def make_q5_1():
    rows = []
    n = 72
    d = scale_column(n)
    m = np.concatenate([scale_column(n - 24, specials=False), np.array(F16_SPECIALS + F16_SPECIALS[:8], dtype=np.uint16)])
    q = rng.integers(0, 32, size=(n, 32)).astype(np.uint32)
    q[:4] = all_codes(4, 5, 32)
    qh, qs = q5_fields(q)
    rows.append(np.concatenate([u16_bytes(d), u16_bytes(m), qh, qs], axis=1))
    rows.append(from_quantizer(Q.Q5_1, 16, 32))
    return np.concatenate(rows)


def k_quant_scales(n):
    """Scale/min codes: blocks 0..7 hold every 6-bit value as a scale and as a min; the rest random bytes."""
    sc = rng.integers(0, 64, size=(n, 8)).astype(np.uint8)
    m = rng.integers(0, 64, size=(n, 8)).astype(np.uint8)
    values = np.arange(64, dtype=np.uint8).reshape(8, 8)
    sc[:8] = values
    m[:8] = 63 - values
    packed = k_scales(sc, m)
    packed[16:] = random_bytes(n - 16, 12)  # arbitrary bytes are valid too
    return packed


K_BLOCKS = 40


def k_super_scales(n):
    """d and dmin of n K-quant blocks: blocks 8..23 take every F16 class as d, 24..39 as dmin (the other typical)."""
    d = f16_typical(n)
    dmin = f16_typical(n)
    d[8:24] = F16_SPECIALS
    dmin[24:40] = F16_SPECIALS
    return d, dmin


def make_q4_K():
    n = K_BLOCKS
    d, dmin = k_super_scales(n)
    qs = random_bytes(n, 128)
    qs[:2] = nibbles(all_codes(2, 4, 128), 15 - all_codes(2, 4, 128))
    return np.concatenate([u16_bytes(d), u16_bytes(dmin), k_quant_scales(n), qs], axis=1)


def make_q5_K():
    n = K_BLOCKS
    d, dmin = k_super_scales(n)
    qh = random_bytes(n, 32)
    qs = random_bytes(n, 128)
    qh[:2] = np.array([0x00, 0xFF] * 16, dtype=np.uint8)
    qs[:2] = nibbles(all_codes(2, 4, 128), 15 - all_codes(2, 4, 128))
    return np.concatenate([u16_bytes(d), u16_bytes(dmin), k_quant_scales(n), qh, qs], axis=1)


def make_q6_K():
    n = K_BLOCKS
    ql = random_bytes(n, 128)
    qh = random_bytes(n, 64)
    scales = random_bytes(n, 16)
    # Every 6-bit code: block 0's ql/qh bytes count up (ql nibbles and qh 2-bit fields cover all 64 codes).
    ql[0] = np.arange(128, dtype=np.uint8) * 17
    qh[0] = np.arange(64, dtype=np.uint8) * 5
    ql[1] = np.arange(128, dtype=np.uint8)
    qh[1] = (np.arange(64, dtype=np.uint8) * 37) & 0xFF
    scales[2, :4] = [0x80, 0x7F, 0x00, 0xFF]  # -128, 127, 0, -1
    d = f16_typical(n)
    d[8:24] = F16_SPECIALS
    d[24:] = f16_random(n - 24)
    return np.concatenate([ql, qh, scales, u16_bytes(d)], axis=1)


def make_mxfp4():
    rows = []
    # Every exponent 0..255, each block holding all 16 E2M1 codes in both halves.
    e = np.arange(256, dtype=np.uint8).reshape(-1, 1)
    qs = np.tile(nibbles(np.arange(16), np.arange(15, -1, -1)), (256, 1))
    rows.append(np.concatenate([e, qs], axis=1))
    rows.append(np.concatenate([random_bytes(16, 1), random_bytes(16, 16)], axis=1))
    rows.append(from_quantizer(Q.MXFP4, 16, 32))
    return np.concatenate(rows)


MAKERS = {"q8_0": make_q8_0, "q4_0": make_q4_0, "q4_1": make_q4_1, "q5_0": make_q5_0, "q5_1": make_q5_1,
          "q4_K": make_q4_K, "q5_K": make_q5_K, "q6_K": make_q6_K, "mxfp4": make_mxfp4}


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    data = bytearray()
    for name, dtype, array in tensors:
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(data)


def main():
    assert sys.byteorder == "little"
    tensors = []
    for name, qtype, block_size, type_size in TYPES:
        assert gguf.GGML_QUANT_SIZES[qtype] == (block_size, type_size), name
        blocks = np.ascontiguousarray(MAKERS[name]().astype(np.uint8))
        assert blocks.shape[1] == type_size, (name, blocks.shape)
        with np.errstate(all="ignore"):
            expected = dequantize(blocks, qtype).astype(np.float32).reshape(blocks.shape[0], block_size)
        bits = expected.view(np.uint32)
        tensors.append((f"{name}.blocks", "U8", blocks))
        tensors.append((f"{name}.expected", "U32", bits))
        print(f"{name}: {blocks.shape[0]} blocks, {int(np.isnan(expected).sum())} NaN, "
              f"{int(np.isinf(expected).sum())} inf, {int(((bits & 0x7F800000) == 0).sum() - (expected == 0).sum())} subnormal")
    metadata = {"gguf": _gguf_version(), "numpy": np.__version__,
                "seed": str(SEED), "generator": "scripts/make_ggml_block_vectors.py"}
    write_safetensors(OUT, tensors, metadata)
    print(f"wrote {os.path.relpath(OUT)} ({os.path.getsize(OUT)} bytes), gguf {metadata['gguf']}, numpy {metadata['numpy']}")


def _gguf_version():
    from importlib.metadata import version
    return version("gguf")


if __name__ == "__main__":
    main()
