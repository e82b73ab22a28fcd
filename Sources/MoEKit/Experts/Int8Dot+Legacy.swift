import CMoEKernels

// The 32-input block types against Q8_0 activations: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and ggml's MXFP4.
extension Int8Dot {
    /// Whether `type` is one of the 32-input types with int8 kernels here.
    static func legacySupports(_ type: GGMLBlockType) -> Bool {
        switch type {
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .mxfp4: true
        case .q4_K, .q5_K, .q6_K: false
        }
    }

    /// Permutes one panel row (the 32 columns' stored blocks of one k-block) into the int8 kernels' layout
    /// (``LegacyLayout``). Bytes are only moved.
    static func legacyLayout(_ type: GGMLBlockType, row: UnsafeMutableRawPointer) {
        let layout = LegacyLayout(type)
        withUnsafeTemporaryAllocation(byteCount: layout.rowBytes, alignment: 64) { buffer in
            let stored = UnsafeMutableRawPointer(buffer.baseAddress.unsafelyUnwrapped)
            stored.copyMemory(from: row, byteCount: layout.rowBytes)
            layout.forEachByte { storedOffset, permutedOffset in
                row.storeBytes(of: stored.load(fromByteOffset: storedOffset, as: UInt8.self), toByteOffset: permutedOffset, as: UInt8.self)
            }
        }
    }

    /// The inverse of ``legacyLayout(_:row:)``: one permuted panel row back to the 32 stored blocks.
    static func legacyStoredLayout(_ type: GGMLBlockType, row: UnsafeRawPointer, into stored: UnsafeMutableRawPointer) {
        LegacyLayout(type).forEachByte { storedOffset, permutedOffset in
            stored.storeBytes(of: row.load(fromByteOffset: permutedOffset, as: UInt8.self), toByteOffset: storedOffset, as: UInt8.self)
        }
    }

    /// The specification, over STORED panel rows. For row `r < rows` and column `n < 32`:
    ///
    ///     sum = accumulate ? c[r·32 + n] : +0
    ///     for each block b ascending:
    ///         isum = Σ_j wq_j · aq_j                 (exact, Int32, j < 32)
    ///         sum  = fma(dw · da, Float(isum), sum)   (dw · da rounded once, then one fused multiply-add)
    ///         Q4_1, Q5_1: sum = fma(mw · da, Float(Σ_j aq_j), sum)
    ///     c[r·32 + n] = sum
    ///
    /// `aq` and `da` are the row's Q8_0 codes and block scale (``QuantizedActivations``; the code sum of a block
    /// is its two 16-code sums). `wq` is the weight's integer code as ggml's `vec_dot` uses it: Q8_0 `qs[j]`;
    /// Q4_0 nibble − 8; Q4_1 the nibble; Q5_0 the nibble with bit j of `qh` as bit 4, − 16; Q5_1 that 5-bit code; MXFP4 `kvalues_mxfp4[nibble]` (byte j holds input j low, j + 16 high
    /// in the 4-bit types). `dw` is the F16 `d` widened, or for MXFP4 ``GGMLBlocks/e8m0Half(_:)`` of `e`
    /// (2^(e − 128), e = 0xFF giving 2^127); `mw` is Q4_1's or Q5_1's F16 `m`. So `dw · wq` is the dequantized weight.
    static func legacyReference(_ type: GGMLBlockType, rows: Int, blocks: Int, activations: Rows, panel: UnsafeRawPointer,
                                c: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let width = PanelMatrices.width, bytes = type.bytesPerBlock
        for r in 0..<rows {
            let q = activations.quants + r * activations.stride
            let d = activations.scales + r * activations.stride / 32
            let s = activations.sums + r * activations.stride / QuantizedActivations.sumGroup
            for n in 0..<width {
                var sum: Float = accumulate ? c[r * width + n] : 0
                for b in 0..<blocks {
                    let block = panel + (b * width + n) * bytes
                    let a = q + 32 * b, da = d[b]
                    var isum: Int32 = 0
                    for j in 0..<32 { isum += legacyCode(type, block, j) * Int32(a[j]) }
                    sum.addProduct(legacyScale(type, block) * da, Float(isum))
                    if type == .q4_1 || type == .q5_1 {
                        let codeSum = Int32(s[2 * b]) + Int32(s[2 * b + 1])
                        sum.addProduct(WeightDecoding.f16(block.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) * da, Float(codeSum))
                    }
                }
                c[r * width + n] = sum
            }
        }
    }

    /// The fast kernel for `type` on `isa` over PERMUTED panel rows (C, `moe_kernels_int8_legacy.h`).
    static func legacyMultiply(_ type: GGMLBlockType, isa: ISA, rows: Int, blocks: Int, activations: Rows, panel: UnsafeRawPointer,
                               c: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let kernel: LegacyKernel
        switch (type, isa) {
        case (.q8_0, .avx512vnni): kernel = moe_int8_q8_0_avx512vnni
        case (.q4_0, .avx512vnni): kernel = moe_int8_q4_0_avx512vnni
        case (.q4_1, .avx512vnni): kernel = moe_int8_q4_1_avx512vnni
        case (.mxfp4, .avx512vnni): kernel = moe_int8_mxfp4_avx512vnni
        case (.q5_0, .avx512vnni): kernel = moe_int8_q5_0_avx512vnni
        case (.q5_1, .avx512vnni): kernel = moe_int8_q5_1_avx512vnni
        case (.q8_0, .avx2): kernel = moe_int8_q8_0_avx2
        case (.q4_0, .avx2): kernel = moe_int8_q4_0_avx2
        case (.q4_1, .avx2): kernel = moe_int8_q4_1_avx2
        case (.mxfp4, .avx2): kernel = moe_int8_mxfp4_avx2
        case (.q5_0, .avx2): kernel = moe_int8_q5_0_avx2
        case (.q5_1, .avx2): kernel = moe_int8_q5_1_avx2
        default:
            // No C kernel for this pair (Int8Dot passes only these types, on AVX2 or AVX-512 VNNI): the portable road.
            return Int8Dot.multiply(type, isa: .portable, rows: rows, blocks: blocks, activations: activations, panel: panel, c: c,
                                    accumulate: accumulate)
        }
        kernel(Int32(rows), Int32(blocks), activations.quants, activations.scales, activations.sums, activations.stride,
               panel.assumingMemoryBound(to: UInt8.self), c, accumulate ? 1 : 0)
    }

    /// The C kernels' signature (`moe_int8_<type>_<isa>`).
    private typealias LegacyKernel = @convention(c) (Int32, Int32, UnsafePointer<Int8>?, UnsafePointer<Float>?, UnsafePointer<Int16>?, Int,
                                                     UnsafePointer<UInt8>?, UnsafeMutablePointer<Float>?, Int32) -> Void

    /// Input `j`'s integer code in a stored block (the `wq` of ``legacyReference(_:rows:blocks:activations:panel:c:accumulate:)``).
    @inline(__always) private static func legacyCode(_ type: GGMLBlockType, _ block: UnsafeRawPointer, _ j: Int) -> Int32 {
        @inline(__always) func nibble(_ codes: Int) -> UInt8 {
            let byte = block.load(fromByteOffset: codes + j % 16, as: UInt8.self)
            return j < 16 ? byte & 0xF : byte >> 4
        }
        @inline(__always) func fifth(_ qh: Int) -> UInt8 {
            UInt8(truncatingIfNeeded: UInt32(littleEndian: block.loadUnaligned(fromByteOffset: qh, as: UInt32.self)) >> UInt32(j) & 1) << 4
        }
        switch type {
        case .q8_0: return Int32(block.load(fromByteOffset: 2 + j, as: Int8.self))
        case .q4_0: return Int32(nibble(2)) - 8
        case .q4_1: return Int32(nibble(4))
        case .q5_0: return Int32(nibble(6) | fifth(2)) - 16
        case .q5_1: return Int32(nibble(8) | fifth(4))
        case .mxfp4: return GGMLBlocks.mxfp4Value(nibble(1))
        case .q4_K, .q5_K, .q6_K: preconditionFailure("no int8 reference for \(type)")
        }
    }

    /// A stored block's scale `dw`: its F16 `d` widened, or MXFP4's 2^(e − 128).
    @inline(__always) private static func legacyScale(_ type: GGMLBlockType, _ block: UnsafeRawPointer) -> Float {
        type == .mxfp4 ? GGMLBlocks.e8m0Half(block.load(as: UInt8.self)) : WeightDecoding.f16(block.loadUnaligned(as: UInt16.self))
    }
}

/// The int8 kernels' layout of one panel row of a 32-input block type (`32 · bytesPerBlock` bytes, the same
/// bytes as the 32 stored blocks, moved):
///
/// 1. the blocks' scale fields, one field at a time, column-major: Q8_0 / Q4_0 `d[32]` (F16), Q4_1 `d[32]` then
///    `m[32]`, Q5_0 `d[32]` then `qh[32]` (4 bytes each: one 32-bit lane per column), Q5_1 `d`, `m`, `qh`, MXFP4 `e[32]`;
/// 2. the codes in 64-byte chunks, chunk `2g + h` (g < codeBytes / 4, h < 2) holding column `16h + c`'s code
///    bytes `4g ..< 4g + 4` at bytes `4c ..< 4c + 4`: one zmm load gives 4 consecutive code bytes of 16 columns,
///    one per 32-bit lane, so `vpdpbusd` against a 4-byte broadcast of the activations sums 16 columns at once.
///    Q8_0 chunk `2g + h` holds inputs `4g ..< 4g + 4`; in the 4-bit types the low nibbles hold inputs
///    `4g ..< 4g + 4` and the high nibbles inputs `16 + 4g ..< 16 + 4g + 4` (the stored nibble order, kept).
struct LegacyLayout {
    /// The block's scale fields (byte offset, size), in the order they are laid out.
    let fields: [(offset: Int, size: Int)]
    /// Offset and count of the block's code bytes.
    let codes: (offset: Int, count: Int)
    let bytesPerBlock: Int

    /// Bytes of one panel row.
    var rowBytes: Int { PanelMatrices.width * bytesPerBlock }

    init(_ type: GGMLBlockType) {
        bytesPerBlock = type.bytesPerBlock
        switch type {
        case .q8_0: (fields, codes) = ([(0, 2)], (2, 32))
        case .q4_0: (fields, codes) = ([(0, 2)], (2, 16))
        case .q4_1: (fields, codes) = ([(0, 2), (2, 2)], (4, 16))
        case .q5_0: (fields, codes) = ([(0, 2), (2, 4)], (6, 16))
        case .q5_1: (fields, codes) = ([(0, 2), (2, 2), (4, 4)], (8, 16))
        case .mxfp4: (fields, codes) = ([(0, 1)], (1, 16))
        case .q4_K, .q5_K, .q6_K: preconditionFailure("\(type) is not a 32-input block type")
        }
    }

    /// Calls `body(stored, permuted)` for every byte of a panel row: its offset in the stored blocks and in this layout.
    func forEachByte(_ body: (_ stored: Int, _ permuted: Int) -> Void) {
        let width = PanelMatrices.width
        var base = 0
        for field in fields {
            for n in 0..<width {
                for i in 0..<field.size { body(n * bytesPerBlock + field.offset + i, base + n * field.size + i) }
            }
            base += width * field.size
        }
        for n in 0..<width {
            let (h, lane) = (n / 16, n % 16)
            for i in 0..<codes.count {
                let (g, j) = (i / 4, i % 4)
                body(n * bytesPerBlock + codes.offset + i, base + 64 * (2 * g + h) + 4 * lane + j)
            }
        }
    }
}
