import CMoEKernels

// The K-quants (Q4_K, Q5_K, Q6_K) against Q8_K activations: the panel layout, the reference and the dispatch
// to the C kernels of moe_kernels_int8_kquants.c.
extension Int8Dot {
    /// Whether `type` is a K-quant with int8 kernels here.
    static func kQuantSupports(_ type: GGMLBlockType) -> Bool {
        switch type {
        case .q4_K, .q5_K, .q6_K: true
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .mxfp4: false
        }
    }

    /// One field of a stored K-quant block as the int8 kernels read it: `bytes` bytes at `offset` in the
    /// stored block, cut into units of `unit` bytes (2: an F16 scale; 4: four codes or scale bytes).
    struct KQuantField {
        var offset: Int, bytes: Int, unit: Int
    }

    /// The permuted layout of one panel row (the 32 columns' blocks of one k-block): the fields in this order,
    /// each as `[unit t][column n]`, i.e. unit t of column n at `base + (t · 32 + n) · unit`, `base` the bytes
    /// of the fields before it. So one 64-byte load at a unit holds that unit of 16 consecutive columns,
    /// column n in 32-bit lane n (`vpdpbusd` accumulates a column per lane, 4 consecutive inputs per unit of
    /// codes); the header (d, dmin, 6-bit scales) comes first. The permutation only moves bytes; the kernels
    /// unpack the scales. moe_kernels_int8_kquants.h spells out the same offsets for the C kernels.
    ///
    /// | type | fields (stored offset, bytes, unit) | permuted offsets |
    /// | --- | --- | --- |
    /// | Q4_K | d (0, 2, 2), dmin (2, 2, 2), scales (4, 12, 4), qs (16, 128, 4) | 0, 64, 128, 512 |
    /// | Q5_K | d, dmin, scales as Q4_K, qh (16, 32, 4), qs (48, 128, 4) | 0, 64, 128, 512, 1536 |
    /// | Q6_K | d (208, 2, 2), scales (192, 16, 4), ql (0, 128, 4), qh (128, 64, 4) | 0, 64, 576, then regrouped |
    ///
    /// Q6_K's 48 code rows (32 of ql, 16 of qh, `32 · 4` = 128 bytes each) are then regrouped from 576 in the
    /// order its kernels use them (``q6KStreamOffset(_:)``): step (vh, l) of a super-block reads ql rows
    /// 16·vh + l and 16·vh + 8 + l and qh row 8·vh + l, and these three are stored together, so a panel row
    /// is read as one forward stream instead of three interleaved ones (one row from DRAM on two cores:
    /// 17–19 → 24–25 GB/s, docs/PERFORMANCE.md 2026-12-02 third session).
    static func kQuantFields(_ type: GGMLBlockType) -> [KQuantField] {
        switch type {
        case .q4_K:
            [KQuantField(offset: 0, bytes: 2, unit: 2), KQuantField(offset: 2, bytes: 2, unit: 2),
             KQuantField(offset: 4, bytes: 12, unit: 4), KQuantField(offset: 16, bytes: 128, unit: 4)]
        case .q5_K:
            [KQuantField(offset: 0, bytes: 2, unit: 2), KQuantField(offset: 2, bytes: 2, unit: 2),
             KQuantField(offset: 4, bytes: 12, unit: 4), KQuantField(offset: 16, bytes: 32, unit: 4),
             KQuantField(offset: 48, bytes: 128, unit: 4)]
        case .q6_K:
            [KQuantField(offset: 208, bytes: 2, unit: 2), KQuantField(offset: 192, bytes: 16, unit: 4),
             KQuantField(offset: 0, bytes: 128, unit: 4), KQuantField(offset: 128, bytes: 64, unit: 4)]
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .mxfp4:
            preconditionFailure("\(type) is not a K-quant")
        }
    }

    /// Calls `move(storedOffset, permutedOffset, bytes)` for every unit of one panel row of `type`.
    @inline(__always)
    private static func kQuantUnits(_ type: GGMLBlockType, _ move: (Int, Int, Int) -> Void) {
        let width = PanelMatrices.width, blockBytes = type.bytesPerBlock
        var base = 0
        for field in kQuantFields(type) {
            for t in 0..<(field.bytes / field.unit) {
                for n in 0..<width {
                    let at = base + (t * width + n) * field.unit
                    move(n * blockBytes + field.offset + t * field.unit, type == .q6_K ? q6KStreamOffset(at) : at, field.unit)
                }
            }
            base += width * field.bytes
        }
    }

    /// Where Q6_K's field layout puts a byte at `offset` once its code rows are regrouped (see
    /// ``kQuantFields(_:)``): from 576, rows of 128 bytes, ql row t = 16·vh + 8·s + l (s 0 or 1, l < 8) to
    /// slot 3·(8·vh + l) + s, qh row 8·vh + l to slot 3·(8·vh + l) + 2; d and the scales stay.
    static func q6KStreamOffset(_ offset: Int) -> Int {
        let (start, rowBytes) = (576, 128)
        guard offset >= start else { return offset }
        let (r, within) = ((offset - start) / rowBytes, (offset - start) % rowBytes)
        let slot = r < 32 ? 3 * (8 * (r / 16) + r % 8) + (r % 16) / 8 : 3 * (r - 32) + 2
        return start + slot * rowBytes + within
    }

    /// Permutes one stored panel row into the layout of ``kQuantFields(_:)``, in place.
    static func kQuantLayout(_ type: GGMLBlockType, row: UnsafeMutableRawPointer) {
        let rowBytes = PanelMatrices.width * type.bytesPerBlock
        withUnsafeTemporaryAllocation(byteCount: rowBytes, alignment: 64) { buffer in
            let stored = buffer.baseAddress.unsafelyUnwrapped
            stored.copyMemory(from: row, byteCount: rowBytes)
            kQuantUnits(type) { from, to, bytes in (row + to).copyMemory(from: stored + from, byteCount: bytes) }
        }
    }

    /// The inverse of ``kQuantLayout(_:row:)``: the stored blocks of one permuted panel row, into `stored`.
    static func kQuantStoredLayout(_ type: GGMLBlockType, row: UnsafeRawPointer, into stored: UnsafeMutableRawPointer) {
        kQuantUnits(type) { from, to, bytes in (stored + from).copyMemory(from: row + to, byteCount: bytes) }
    }

    /// The specification, over STORED blocks: for row `r < rows` and column `n < 32`, `sum = accumulate ?
    /// c[r·32 + n] : 0`, then for each 256-input super-block b in ascending order, with `dw`, `dmin` the
    /// block's F16 scales widened, `da` the activations' F32 scale and `a` their codes:
    ///
    /// - Q4_K / Q5_K (value `(dw·sc_j)·q − dmin·m_j`, 8 groups j of 32 inputs, 6-bit sc_j, m_j):
    ///   `S = Σ_j sc_j · Σ_{i∈j} q_i·a_i`, `M = Σ_j m_j · (sum16[2j] + sum16[2j+1])`, then
    ///   `sum = fma(dw·da, Float(S), sum)`, then `sum = fma(−(dmin·da), Float(M), sum)`.
    /// - Q6_K (value `(dw·sc_j)·(q − 32)`, 16 groups j of 16 inputs, int8 sc_j):
    ///   `S = Σ_j sc_j · (Σ_{i∈j} q_i·a_i − 32·sum16[j])`, then `sum = fma(dw·da, Float(S), sum)`.
    ///
    /// Every `dw·da` and `dmin·da` is one F32 product, every fma one rounding (ggml's vec_dot_q4_K_q8_K /
    /// q6_K math; the float order is this one, fixed). The integer sums are exact in Int32: with codes
    /// |a| ≤ 128, |S| ≤ 8·63·(32·15·128) < 2^25 (Q4_K), 8·63·(32·31·128) < 2^26 (Q5_K) and
    /// 16·128·(16·32·128) = 2^27 (Q6_K, as |Σ_{i∈j} (q_i − 32)·a_i| ≤ 16·32·128), |M| ≤ 8·63·(32·128) < 2^21;
    /// so the kernels may add the same products in any order (Int32 arithmetic wraps, the result fits).
    static func kQuantReference(_ type: GGMLBlockType, rows: Int, blocks: Int, activations: Rows, panel: UnsafeRawPointer,
                                c: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let width = PanelMatrices.width, bytes = type.bytesPerBlock
        for r in 0..<rows {
            let quants = activations.quants + r * activations.stride
            let scales = activations.scales + r * activations.stride / 256
            let sums = activations.sums + r * activations.stride / QuantizedActivations.sumGroup
            for n in 0..<width {
                var sum: Float = accumulate ? c[r * width + n] : 0
                for b in 0..<blocks {
                    let block = panel + (b * width + n) * bytes
                    let a = quants + 256 * b, s = sums + 16 * b, da = scales[b]
                    switch type {
                    case .q4_K, .q5_K:
                        let (S, M) = kQuantSums45(type == .q5_K, block, a, s)
                        sum.addProduct(half(block, 0) * da, Float(S))
                        sum.addProduct(-(half(block, 2) * da), Float(M))
                    case .q6_K:
                        sum.addProduct(half(block, 208) * da, Float(kQuantSum6(block, a, s)))
                    case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .mxfp4:
                        preconditionFailure("\(type) is not a K-quant")
                    }
                }
                c[r * width + n] = sum
            }
        }
    }

    @inline(__always) private static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        WeightDecoding.f16(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// Q4_K (or Q5_K, `fifthBit`) super-block: `S = Σ_j sc_j · Σ q_i·a_i` and `M = Σ_j m_j · codeSum_j`.
    private static func kQuantSums45(_ fifthBit: Bool, _ block: UnsafeRawPointer, _ a: UnsafePointer<Int8>,
                                     _ sums: UnsafePointer<Int16>) -> (Int32, Int32) {
        let scales = block + 4, qh = block + 16, qs = block + (fifthBit ? 48 : 16)
        var S: Int32 = 0, M: Int32 = 0
        for j in 0..<8 {
            let (sc, m) = GGMLBlocks.scaleMin(j, scales)
            var dot: Int32 = 0
            for l in 0..<32 {
                let byte = qs.load(fromByteOffset: 32 * (j / 2) + l, as: UInt8.self)
                var q = Int32(j % 2 == 0 ? byte & 0xF : byte >> 4)
                if fifthBit { q += Int32((qh.load(fromByteOffset: l, as: UInt8.self) >> UInt8(j)) & 1) << 4 }
                dot += q * Int32(a[32 * j + l])
            }
            S += Int32(sc) * dot
            M += Int32(m) * (Int32(sums[2 * j]) + Int32(sums[2 * j + 1]))
        }
        return (S, M)
    }

    /// Q6_K super-block: `S = Σ_j sc_j · (Σ q_i·a_i − 32·sum16_j)`.
    private static func kQuantSum6(_ block: UnsafeRawPointer, _ a: UnsafePointer<Int8>, _ sums: UnsafePointer<Int16>) -> Int32 {
        var S: Int32 = 0
        for j in 0..<16 {
            var dot: Int32 = 0
            for i in (16 * j)..<(16 * j + 16) {
                // Input i: half h of 128, quarter x of 32, position l: nibble of ql[64h + l (+32 if x odd)]
                // (high if x ≥ 2), bits 2x of qh[32h + l].
                let h = i / 128, x = (i % 128) / 32, l = i % 32
                let low = block.load(fromByteOffset: 64 * h + l + (x % 2) * 32, as: UInt8.self)
                let top = block.load(fromByteOffset: 128 + 32 * h + l, as: UInt8.self)
                let q = Int32(x < 2 ? low & 0xF : low >> 4) | Int32((top >> UInt8(2 * x)) & 3) << 4
                dot += q * Int32(a[i])
            }
            let sc = Int32(Int8(bitPattern: block.load(fromByteOffset: 192 + j, as: UInt8.self)))
            S += sc * (dot - 32 * Int32(sums[j]))
        }
        return S
    }

    /// The C kernel of `type` on `isa` over permuted panel rows.
    static func kQuantMultiply(_ type: GGMLBlockType, isa: ISA, rows: Int, blocks: Int, activations: Rows, panel: UnsafeRawPointer,
                               c: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let a = activations
        let kernel: (Int32, Int32, UnsafePointer<Int8>, UnsafePointer<Float>, UnsafePointer<Int16>, Int,
                     UnsafeRawPointer, UnsafeMutablePointer<Float>, Int32) -> Void
        switch (type, isa) {
        case (.q4_K, .avx512vnni): kernel = moe_int8_q4k_avx512
        case (.q4_K, .avx2): kernel = moe_int8_q4k_avx2
        case (.q5_K, .avx512vnni): kernel = moe_int8_q5k_avx512
        case (.q5_K, .avx2): kernel = moe_int8_q5k_avx2
        case (.q6_K, .avx512vnni): kernel = moe_int8_q6k_avx512
        case (.q6_K, .avx2): kernel = moe_int8_q6k_avx2
        default:
            // No C kernel for this pair (Int8Dot passes only K-quants, on AVX2 or AVX-512 VNNI): the portable road.
            return Int8Dot.multiply(type, isa: .portable, rows: rows, blocks: blocks, activations: activations, panel: panel, c: c,
                                    accumulate: accumulate)
        }
        kernel(Int32(rows), Int32(blocks), a.quants, a.scales, a.sums, a.stride, panel, c, accumulate ? 1 : 0)
    }
}
