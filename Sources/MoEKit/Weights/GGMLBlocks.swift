/// A ggml block format: a row of a GGUF tensor is a run of blocks of ``blockSize`` inputs, each
/// ``bytesPerBlock`` bytes holding its codes and its scales (ggml's `block_q8_0`, `block_q4_K`, …,
/// `ggml-common.h`). MoEKit keeps the blocks as stored and decodes them with ``GGMLBlocks``.
public enum GGMLBlockType: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// `{f16 d; int8 qs[32]}`: d · q.
    case q8_0
    /// `{f16 d; u8 qs[16]}`: d · (q − 8); byte j holds input j (low nibble) and j + 16 (high).
    case q4_0
    /// `{f16 d, m; u8 qs[16]}`: d · q + m.
    case q4_1
    /// `{f16 d; u8 qh[4]; u8 qs[16]}`: d · (q − 16), bit j of `qh` the fifth bit of input j.
    case q5_0
    /// `{f16 d, m; u8 qh[4]; u8 qs[16]}`: d · q + m.
    case q5_1
    /// `{f16 d, dmin; u8 scales[12]; u8 qs[128]}`: eight 32-input groups, 6-bit scale and min each:
    /// (d · sc) · q − dmin · m.
    case q4_K
    /// `{f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}`: as Q4_K with a fifth bit.
    case q5_K
    /// `{u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d}`: sixteen 16-input groups: (d · sc) · (q − 32).
    case q6_K
    /// ggml's MXFP4, `{u8 e; u8 qs[16]}`: byte j holds input j (low nibble) and j + 16 (high), E2M1 codes,
    /// value = 2·e2m1 · 2^(e − 128) (`kvalues_mxfp4` × `ggml_e8m0_to_fp32_half`; e = 0xFF is 2^127, not NaN).
    /// Not the nibble order of GPT-OSS's safetensors MXFP4 (``WeightFormat/mxfp4``: inputs 2j, 2j + 1).
    case mxfp4

    /// Inputs per block: 32, or 256 for the K-quants.
    public var blockSize: Int {
        switch self {
        case .q4_K, .q5_K, .q6_K: 256
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .mxfp4: 32
        }
    }

    /// Bytes per block.
    public var bytesPerBlock: Int {
        switch self {
        case .q8_0: 34
        case .q4_0: 18
        case .q4_1: 20
        case .q5_0: 22
        case .q5_1: 24
        case .q4_K: 144
        case .q5_K: 176
        case .q6_K: 210
        case .mxfp4: 17
        }
    }

    /// Storage bits per weight, scales included (Q4_K 4.5, Q6_K 6.5625, Q8_0 8.5).
    public var bitsPerWeight: Double { Double(8 * bytesPerBlock) / Double(blockSize) }

    /// ggml's type name in lower case with its `_K` kept: `q8_0`, `q4_K`, `mxfp4`.
    public var description: String { rawValue }

    /// The `ggml_type` id a GGUF file stores (`GGML_TYPE_Q4_K` = 12, `GGML_TYPE_MXFP4` = 39).
    public var ggmlTypeID: UInt32 {
        switch self {
        case .q4_0: 2
        case .q4_1: 3
        case .q5_0: 6
        case .q5_1: 7
        case .q8_0: 8
        case .q4_K: 12
        case .q5_K: 13
        case .q6_K: 14
        case .mxfp4: 39
        }
    }

    /// The block type of a `ggml_type` id, `nil` for ids that are not one of these block formats.
    public init?(ggmlTypeID id: UInt32) {
        guard let type = Self.allCases.first(where: { $0.ggmlTypeID == id }) else { return nil }
        self = type
    }
}

/// The reference dequantizers: one block → ``GGMLBlockType/blockSize`` F32 values, bit for bit as ggml's
/// `dequantize_row_*` (`ggml/src/ggml-quants.c`) computes them: F16 scales widened exactly, then each
/// operation in F32 in ggml's order (`(d·sc)·q`, `d1·q − m1`, `q·d + m`). Every product that precedes an
/// addition is exact in F32, so ggml's results do not depend on whether its compiler fuses `a·b + c`.
/// Checked against gguf-py's NumPy dequantizers (`Tests/Fixtures/ggml-blocks.safetensors`).
///
/// Each has a `stride`: value i goes to `out[i · stride]` (1 for a row, the panel width when a kernel
/// decodes a packed panel into `[k][32]`), so the reference and the fast path share one decoder.
public enum GGMLBlocks {
    /// ggml's `kvalues_mxfp4`: the E2M1 values doubled (bit 3 the sign).
    public static let mxfp4Values: [Int8] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]

    /// `ggml_e8m0_to_fp32_half`: 2^(e − 128), exact for every byte (0 and 1 subnormal, 0xFF = 2^127).
    @inline(__always) public static func e8m0Half(_ e: UInt8) -> Float {
        e < 2 ? Float(bitPattern: UInt32(0x0020_0000) << UInt32(e)) : Float(bitPattern: UInt32(e - 1) << 23)
    }

    /// Decodes one block of `type` at `block` into `out[0 ..< blockSize]`.
    public static func dequantize(_ type: GGMLBlockType, block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        dequantize(type, block: block, into: out, stride: 1)
    }

    /// Decodes `blocks` consecutive blocks stored at `row` into `out[0 ..< blocks · blockSize]`.
    public static func dequantizeRow(_ type: GGMLBlockType, _ row: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<max(blocks, 0) {
            dequantize(type, block: row + b * type.bytesPerBlock, into: out + b * type.blockSize, stride: 1)
        }
    }

    /// Decodes one block, value i to `out[i · stride]`.
    @inline(__always)
    static func dequantize(_ type: GGMLBlockType, block: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, stride: Int) {
        switch type {
        case .q8_0: q8_0(block, out, stride)
        case .q4_0: q4_0(block, out, stride)
        case .q4_1: q4_1(block, out, stride)
        case .q5_0: q5_0(block, out, stride)
        case .q5_1: q5_1(block, out, stride)
        case .q4_K: q4_K(block, out, stride)
        case .q5_K: q5_K(block, out, stride)
        case .q6_K: q6_K(block, out, stride)
        case .mxfp4: mxfp4(block, out, stride)
        }
    }

    /// K-block slice of a packed block panel (``PanelMatrices/Element/blocks(_:)``): `blocks` k-blocks, each the
    /// 32 columns' blocks one after another, decoded to F32 `out[k][32]` (`blocks · blockSize` rows of 32).
    /// The scalar reference of ``decodePanel(_:_:blocks:into:isa:)`` (its `.portable` kernel).
    static func decodePanelReference(_ type: GGMLBlockType, _ panel: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        let width = PanelMatrices.width
        let (size, bytes) = (type.blockSize, type.bytesPerBlock)
        @inline(__always) func each(_ decode: (UnsafeRawPointer, UnsafeMutablePointer<Float>, Int) -> Void) {
            for b in 0..<blocks {
                let source = panel + b * width * bytes, target = out + b * size * width
                for n in 0..<width { decode(source + n * bytes, target + n, width) }
            }
        }
        switch type {
        case .q8_0: each(q8_0)
        case .q4_0: each(q4_0)
        case .q4_1: each(q4_1)
        case .q5_0: each(q5_0)
        case .q5_1: each(q5_1)
        case .q4_K: each(q4_K)
        case .q5_K: each(q5_K)
        case .q6_K: each(q6_K)
        case .mxfp4: each(mxfp4)
        }
    }

    /// Whether every value of a block is finite: its F16 scales are (from finite scales every value ggml forms
    /// is finite: at most 65504 · 127 · 32 in magnitude), and an MXFP4 block with e ≥ 253 does not overflow
    /// (12 · 2^125 is infinite, 0 · 2^127 is not).
    static func isFinite(_ type: GGMLBlockType, block: UnsafeRawPointer) -> Bool {
        @inline(__always) func finite(_ offset: Int) -> Bool { block.loadUnaligned(fromByteOffset: offset, as: UInt16.self) & 0x7C00 != 0x7C00 }
        switch type {
        case .q8_0, .q4_0, .q5_0: return finite(0)
        case .q4_1, .q5_1, .q4_K, .q5_K: return finite(0) && finite(2)
        case .q6_K: return finite(208)
        case .mxfp4:
            guard byte(block, 0) >= 253 else { return true }
            return withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { values in
                mxfp4(block, values.baseAddress.unsafelyUnwrapped, 1)
                return values.allSatisfy(\.isFinite)
            }
        }
    }

    // MARK: - One function per format (ggml's `dequantize_row_*` for one block)

    @inline(__always) private static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        WeightDecoding.f16(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always) private static func byte(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 {
        p.load(fromByteOffset: offset, as: UInt8.self)
    }

    /// `y[j] = qs[j] · d`.
    @inline(__always) static func q8_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ s: Int) {
        let d = half(x, 0)
        for j in 0..<32 { y[j * s] = Float(Int8(bitPattern: byte(x, 2 + j))) * d }
    }

    /// `y[j] = ((qs[j] & 0xF) − 8) · d`, `y[j + 16] = ((qs[j] >> 4) − 8) · d`.
    @inline(__always) static func q4_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ s: Int) {
        let d = half(x, 0)
        for j in 0..<16 {
            let q = byte(x, 2 + j)
            y[j * s] = Float(Int32(q & 0xF) - 8) * d
            y[(j + 16) * s] = Float(Int32(q >> 4) - 8) * d
        }
    }

    /// `y[j] = (qs[j] & 0xF) · d + m`, `y[j + 16] = (qs[j] >> 4) · d + m`.
    @inline(__always) static func q4_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ s: Int) {
        let d = half(x, 0), m = half(x, 2)
        for j in 0..<16 {
            let q = byte(x, 4 + j)
            y[j * s] = Float(q & 0xF) * d + m
            y[(j + 16) * s] = Float(q >> 4) * d + m
        }
    }

    /// Q4_0 with bit j (and j + 16) of `qh` as the codes' fifth bit, centred on 16.
    @inline(__always) static func q5_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ s: Int) {
        let d = half(x, 0)
        let qh = UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        for j in 0..<16 {
            let q = byte(x, 6 + j)
            let h0 = ((qh >> UInt32(j)) << 4) & 0x10, h1 = (qh >> UInt32(j + 12)) & 0x10
            y[j * s] = Float(Int32(UInt32(q & 0xF) | h0) - 16) * d
            y[(j + 16) * s] = Float(Int32(UInt32(q >> 4) | h1) - 16) * d
        }
    }

    /// Q4_1 with bit j (and j + 16) of `qh` as the codes' fifth bit.
    @inline(__always) static func q5_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ s: Int) {
        let d = half(x, 0), m = half(x, 2)
        let qh = UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        for j in 0..<16 {
            let q = byte(x, 8 + j)
            let h0 = ((qh >> UInt32(j)) << 4) & 0x10, h1 = (qh >> UInt32(j + 12)) & 0x10
            y[j * s] = Float(UInt32(q & 0xF) | h0) * d + m
            y[(j + 16) * s] = Float(UInt32(q >> 4) | h1) * d + m
        }
    }

    /// ggml's `get_scale_min_k4`: the 6-bit scale and min of group `j` (0..<8) from the 12 bytes at `q`.
    @inline(__always) static func scaleMin(_ j: Int, _ q: UnsafeRawPointer) -> (scale: UInt8, min: UInt8) {
        if j < 4 { return (byte(q, j) & 63, byte(q, j + 4) & 63) }
        return ((byte(q, j + 4) & 0xF) | ((byte(q, j - 4) >> 6) << 4), (byte(q, j + 4) >> 4) | ((byte(q, j) >> 6) << 4))
    }

    /// Groups of 64 inputs: the low nibbles of 32 bytes then their high nibbles, each half with its scale and min.
    @inline(__always) static func q4_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ s: Int) {
        let d = half(x, 0), dmin = half(x, 2)
        let scales = x + 4, qs = x + 16
        for g in 0..<4 {
            let (sc1, m1) = scaleMin(2 * g, scales), (sc2, m2) = scaleMin(2 * g + 1, scales)
            let d1 = d * Float(sc1), min1 = dmin * Float(m1)
            let d2 = d * Float(sc2), min2 = dmin * Float(m2)
            let out = y + 64 * g * s
            for l in 0..<32 {
                let q = byte(qs, 32 * g + l)
                out[l * s] = d1 * Float(q & 0xF) - min1
                out[(l + 32) * s] = d2 * Float(q >> 4) - min2
            }
        }
    }

    /// Q4_K with a fifth bit per input: bit 2g (low half) and 2g + 1 (high half) of `qh[l]` in group g.
    @inline(__always) static func q5_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ s: Int) {
        let d = half(x, 0), dmin = half(x, 2)
        let scales = x + 4, qh = x + 16, qs = x + 48
        for g in 0..<4 {
            let (sc1, m1) = scaleMin(2 * g, scales), (sc2, m2) = scaleMin(2 * g + 1, scales)
            let d1 = d * Float(sc1), min1 = dmin * Float(m1)
            let d2 = d * Float(sc2), min2 = dmin * Float(m2)
            let (u1, u2) = (UInt8(1) << UInt8(2 * g), UInt8(2) << UInt8(2 * g))
            let out = y + 64 * g * s
            for l in 0..<32 {
                let q = byte(qs, 32 * g + l), h = byte(qh, l)
                out[l * s] = d1 * Float((q & 0xF) + (h & u1 != 0 ? 16 : 0)) - min1
                out[(l + 32) * s] = d2 * Float((q >> 4) + (h & u2 != 0 ? 16 : 0)) - min2
            }
        }
    }

    /// Two halves of 128 inputs; in each, input l, l + 32, l + 64, l + 96 take the low/high nibbles of
    /// `ql[l]`, `ql[l + 32]` and the 2-bit fields of `qh[l]`; `(d · sc) · (q − 32)` with sc one int8 per 16 inputs.
    @inline(__always) static func q6_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ s: Int) {
        let d = half(x, 208)
        for h in 0..<2 {
            let ql = x + 64 * h, qh = x + 128 + 32 * h, sc = x + 192 + 8 * h
            let out = y + 128 * h * s
            for l in 0..<32 {
                let i = l / 16
                let low = byte(ql, l), high = byte(ql, l + 32), top = byte(qh, l)
                let q1 = Int8(bitPattern: (low & 0xF) | ((top >> 0) & 3) << 4) - 32
                let q2 = Int8(bitPattern: (high & 0xF) | ((top >> 2) & 3) << 4) - 32
                let q3 = Int8(bitPattern: (low >> 4) | ((top >> 4) & 3) << 4) - 32
                let q4 = Int8(bitPattern: (high >> 4) | ((top >> 6) & 3) << 4) - 32
                out[l * s] = d * Float(Int8(bitPattern: byte(sc, i))) * Float(q1)
                out[(l + 32) * s] = d * Float(Int8(bitPattern: byte(sc, i + 2))) * Float(q2)
                out[(l + 64) * s] = d * Float(Int8(bitPattern: byte(sc, i + 4))) * Float(q3)
                out[(l + 96) * s] = d * Float(Int8(bitPattern: byte(sc, i + 6))) * Float(q4)
            }
        }
    }

    /// `y[j] = kvalues[qs[j] & 0xF] · 2^(e − 128)`, `y[j + 16]` from the high nibble.
    @inline(__always) static func mxfp4(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ s: Int) {
        let d = e8m0Half(byte(x, 0))
        for j in 0..<16 {
            let q = byte(x, 1 + j)
            y[j * s] = Float(mxfp4Value(q & 0xF)) * d
            y[(j + 16) * s] = Float(mxfp4Value(q >> 4)) * d
        }
    }

    /// `kvalues_mxfp4[code]` without a table: magnitudes 0, 1, 2, 3, 4, 6, 8, 12 as nibbles of one word (an
    /// integer, so code 8 is +0 as in ggml's table).
    @inline(__always) static func mxfp4Value(_ code: UInt8) -> Int32 {
        let magnitude = Int32((UInt32(0xC864_3210) >> (4 * UInt32(code & 7))) & 0xF)
        return code & 8 != 0 ? -magnitude : magnitude
    }
}
