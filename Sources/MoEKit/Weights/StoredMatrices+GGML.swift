/// Stacks of ggml block matrices (``WeightFormat/ggml(_:)``): `[count, rows, columns]`, each row
/// `columns / blockSize` blocks one after another (as a GGUF tensor stores them, `ne0` = columns), viewed in
/// place or held in bytes MoEKit made (copied blocks, quantized or random weights).
extension StoredMatrices {
    /// A copy of `bytes`: `count` matrices of `rows` rows of `columns / type.blockSize` blocks, back to back.
    /// - Throws: ``WeightError/shapeMismatch(expected:actual:)`` unless `columns` is a whole number of blocks
    ///   and `bytes` holds exactly the stack.
    public init(ggmlBlocks bytes: UnsafeRawBufferPointer, type: GGMLBlockType, count: Int, rows: Int, columns: Int) throws(WeightError) {
        let rowBytes = try Self.ggmlRowBytes(type, count: count, rows: rows, columns: columns)
        let (matrixBytes, o1) = rows.multipliedReportingOverflow(by: rowBytes)
        let (total, o2) = count.multipliedReportingOverflow(by: matrixBytes)
        guard !o1, !o2, total == bytes.count else {
            throw .shapeMismatch(expected: "\(type) [\(count), \(rows), \(columns)]: \(o1 || o2 ? "too many" : String(total)) bytes",
                                 actual: "\(bytes.count) bytes")
        }
        let owned = try AlignedBytes(count: max(total, 1))
        if total > 0, let base = bytes.baseAddress { owned.pointer.copyMemory(from: base, byteCount: total) }
        self.init(format: .ggml(type), rows: rows, columns: columns, matrices: (0..<count).map {
            Matrix(values: owned.pointer + $0 * matrixBytes, rowStride: rowBytes, columnStride: 0, scales: nil, scaleRowStride: 0)
        }, owners: [owned])
    }

    /// A view of block matrices where they lie (a mapped GGUF file): matrix m's row 0 at `bases[m]`, rows
    /// `rowStride` bytes apart (at least a row of blocks), `pages[m]` given back once packed.
    init(ggml type: GGMLBlockType, rows: Int, columns: Int, bases: [UnsafeRawPointer], rowStride: Int? = nil,
         pages: [MappedRange?] = [], owners: [AnyObject]) throws(WeightError) {
        let rowBytes = try Self.ggmlRowBytes(type, count: bases.count, rows: rows, columns: columns)
        let stride = rowStride ?? rowBytes
        guard stride >= rowBytes else { throw .shapeMismatch(expected: "a row stride of at least \(rowBytes) bytes", actual: "\(stride)") }
        self.init(format: .ggml(type), rows: rows, columns: columns, matrices: bases.enumerated().map { m, base in
            Matrix(values: base, rowStride: stride, columnStride: 0, scales: nil, scaleRowStride: 0,
                   pages: m < pages.count ? pages[m] : nil)
        }, owners: owners)
    }

    /// Bytes of one row of `columns` inputs in `type`.
    static func ggmlRowBytes(_ type: GGMLBlockType, count: Int, rows: Int, columns: Int) throws(WeightError) -> Int {
        guard count >= 0, rows >= 0, columns >= 0 else {
            throw .shapeMismatch(expected: "a non-negative shape", actual: "[\(count), \(rows), \(columns)]")
        }
        guard columns % type.blockSize == 0 else {
            throw .shapeMismatch(expected: "\(type) columns a multiple of \(type.blockSize)", actual: "\(columns)")
        }
        return columns / type.blockSize * type.bytesPerBlock
    }

    /// Block `b` (inputs `b·blockSize ..< (b+1)·blockSize`) of row `r` of matrix `m`.
    @inline(__always) func ggmlBlock(_ type: GGMLBlockType, matrix m: Int, row r: Int, block b: Int) -> UnsafeRawPointer {
        matrices[m].values + r * matrices[m].rowStride + b * type.bytesPerBlock
    }

    /// Element (`r`, `c`) of matrix `m`: its block decoded by the reference (``GGMLBlocks``).
    func ggmlElement(_ type: GGMLBlockType, matrix m: Int, row r: Int, column c: Int) -> Float {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: type.blockSize) { values in
            GGMLBlocks.dequantize(type, block: ggmlBlock(type, matrix: m, row: r, block: c / type.blockSize), into: values.baseAddress.unsafelyUnwrapped)
            return values[c % type.blockSize]
        }
    }

    /// `values` `[count, rows, columns]` quantized to `type` row by row, block by block (see ``GGMLQuantizer``).
    /// - Throws: ``WeightError/nonFinite(matrix:source:)`` for a NaN or infinite value.
    static func quantizingGGML(_ values: Tensor<Float>, as type: GGMLBlockType) throws(WeightError) -> StoredMatrices {
        let (count, rows, columns) = (values.shape[0], values.shape[1], values.shape[2])
        let rowBytes = try ggmlRowBytes(type, count: count, rows: rows, columns: columns)
        if let bad = values.storage.firstIndex(where: { !$0.isFinite }) { throw .nonFinite(matrix: bad / max(rows * columns, 1), source: 0) }
        let bytes = try AlignedBytes(count: max(count * rows * rowBytes, 1))
        values.storage.withUnsafeBufferPointer { v in
            guard let base = v.baseAddress else { return }
            for b in 0..<(count * rows * columns / max(type.blockSize, 1)) {
                GGMLQuantizer.quantize(type, base + b * type.blockSize, into: bytes.pointer + b * type.bytesPerBlock)
            }
        }
        return StoredMatrices(format: .ggml(type), rows: rows, columns: columns, matrices: (0..<count).map {
            Matrix(values: bytes.pointer + $0 * rows * rowBytes, rowStride: rowBytes, columnStride: 0, scales: nil, scaleRowStride: 0)
        }, owners: [bytes])
    }

    /// Writes `blocks` random blocks of `type` at `target` whose values have a standard deviation of about `std`
    /// around 0 (``random(format:count:rows:columns:std:seed:threads:)``): random codes, and scales (F16, 6-bit,
    /// int8, E8M0) chosen so every block is centred and of that size. Every block is valid and finite.
    static func fillRandomBlocks(_ type: GGMLBlockType, _ target: UnsafeMutableRawPointer, blocks: Int, std: Float, rng: inout SplitMix64) {
        @inline(__always) func half(_ x: Float, _ offset: Int, _ block: UnsafeMutableRawPointer) {
            block.storeBytes(of: Float16(x).bitPattern, toByteOffset: offset, as: UInt16.self)
        }
        @inline(__always) func bytes(_ block: UnsafeMutableRawPointer, _ from: Int, _ count: Int) {
            var c = from
            while c < from + count {
                var bits = rng.next()
                for _ in 0..<min(8, from + count - c) {
                    block.storeBytes(of: UInt8(truncatingIfNeeded: bits), toByteOffset: c, as: UInt8.self)
                    bits >>= 8
                    c += 1
                }
            }
        }
        // The root mean square of a uniformly random code: int8 73.9; 4-bit q − 8 4.637, q − 7.5 4.610; 5-bit
        // q − 16 9.247, q − 15.5 9.233; 6-bit q − 32 18.48; doubled E2M1 5.852. K-quant scales are uniform on
        // 32..63 (6-bit, rms 48.4) or ±32..127 (Q6_K, rms 84.1). Codes centred on −½ (Q8_0, Q4_0, Q5_0) get a
        // scale of random sign, so the mean is 0.
        for i in 0..<blocks {
            let block = target + i * type.bytesPerBlock
            let sign: Float = rng.next() >> 63 == 0 ? 1 : -1
            switch type {
            case .q8_0:
                half(sign * std / 73.9, 0, block); bytes(block, 2, 32)
            case .q4_0:
                half(sign * std / 4.637, 0, block); bytes(block, 2, 16)
            case .q4_1:
                let d = Float(Float16(std / 4.610))
                half(d, 0, block); half(-7.5 * d, 2, block); bytes(block, 4, 16)
            case .q5_0:
                half(sign * std / 9.247, 0, block); bytes(block, 2, 20)
            case .q5_1:
                let d = Float(Float16(std / 9.233))
                half(d, 0, block); half(-15.5 * d, 2, block); bytes(block, 4, 20)
            case .q4_K, .q5_K:
                // scale = min per group, dmin = centre · d: every group is d·sc·(q − centre).
                let (rms, centre): (Float, Float) = type == .q4_K ? (4.610, 7.5) : (9.233, 15.5)
                let d = Float(Float16(std / (rms * 48.4)))
                half(d, 0, block); half(centre * d, 2, block)
                var groups = [UInt8](repeating: 0, count: 8)
                var bits = rng.next()
                for g in 0..<8 { groups[g] = 32 + UInt8(truncatingIfNeeded: bits & 31); bits >>= 5 }
                GGMLQuantizer.packScaleMins(groups, groups, into: block + 4)
                bytes(block, 16, type.bytesPerBlock - 16)
            case .q6_K:
                bytes(block, 0, 192)
                for g in 0..<16 {
                    let bits = rng.next()
                    let magnitude = 32 + Int(bits % 96)
                    block.storeBytes(of: UInt8(bitPattern: Int8(bits >> 63 == 0 ? magnitude : -magnitude)), toByteOffset: 192 + g, as: UInt8.self)
                }
                half(std / (18.48 * 84.1), 208, block)
            case .mxfp4:
                // 2^(e − 128) just below or above std / 5.852, chosen so that the mean square is std².
                let target = Double(std) / 5.852
                let low = Int(log2(target).rounded(.down))
                let pLow = (4 - pow(4, log2(target) - Double(low))) / 3
                let e = UInt8(clamping: min(max(low + 128, 2), 250))
                block.storeBytes(of: Double(rng.next() >> 11) * 0x1p-53 < pLow ? e : e + 1, toByteOffset: 0, as: UInt8.self)
                bytes(block, 1, 16)
            }
        }
    }
}

/// Simple deterministic quantizers into the ggml block formats, for weights MoEKit makes itself (tests, presets):
/// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and MXFP4 as ggml's `quantize_row_*_ref`; the K-quants with one pass of
/// ggml's layout (per-group min/max → 6-bit scales relative to the block's largest, codes rounded to nearest) —
/// valid blocks, not ggml's optimised search. Non-finite inputs give whatever ggml's arithmetic gives.
/// Package access: the tests' GGUF writer (Tests/MoETestSupport) stores quantized tensors with it.
package enum GGMLQuantizer {
    /// Quantizes `type.blockSize` values at `x` into one block at `y`.
    package static func quantize(_ type: GGMLBlockType, _ x: UnsafePointer<Float>, into y: UnsafeMutableRawPointer) {
        switch type {
        case .q8_0:
            var amax: Float = 0
            for j in 0..<32 { amax = max(amax, abs(x[j])) }
            let d = amax / 127, id: Float = d != 0 ? 1 / d : 0
            storeHalf(d, y, 0)
            for j in 0..<32 { y.storeBytes(of: UInt8(bitPattern: Int8(level((x[j] * id).rounded(), -128, 127))), toByteOffset: 2 + j, as: UInt8.self) }
        case .q4_0, .q5_0:
            let levels: Float = type == .q4_0 ? 8 : 16
            var amax: Float = 0, signedMax: Float = 0
            for j in 0..<32 where amax < abs(x[j]) { (amax, signedMax) = (abs(x[j]), x[j]) }
            let d = signedMax / -levels, id: Float = d != 0 ? 1 / d : 0
            storeHalf(d, y, 0)
            let top = Int(2 * levels - 1)
            let q = (0..<32).map { j in level((x[j] * id + levels + 0.5).rounded(.towardZero), 0, top) }
            storeCodes(q, type == .q4_0 ? nil : 2, qs: type == .q4_0 ? 2 : 6, y)
        case .q4_1, .q5_1:
            var low = Float.infinity, high = -Float.infinity
            for j in 0..<32 { (low, high) = (min(low, x[j]), max(high, x[j])) }
            let top = type == .q4_1 ? 15 : 31
            let d = (high - low) / Float(top), id: Float = d != 0 ? 1 / d : 0
            storeHalf(d, y, 0); storeHalf(low, y, 2)
            let q = (0..<32).map { j in level(((x[j] - low) * id + 0.5).rounded(.towardZero), 0, top) }
            storeCodes(q, type == .q4_1 ? nil : 4, qs: type == .q4_1 ? 4 : 8, y)
        case .q4_K, .q5_K:
            quantizeK(x, fiveBits: type == .q5_K, y)
        case .q6_K:
            quantizeQ6K(x, y)
        case .mxfp4:
            var amax: Float = 0
            for j in 0..<32 { amax = max(amax, abs(x[j])) }
            let e = amax > 0 ? UInt8(level(log2f(amax).rounded(.down) - 2 + 127, 0, 254)) : 0
            let d = GGMLBlocks.e8m0Half(e)
            y.storeBytes(of: e, toByteOffset: 0, as: UInt8.self)
            func best(_ v: Float) -> UInt8 {
                var (index, error) = (0, abs(Float(GGMLBlocks.mxfp4Value(0)) * d - v))
                for i in 1..<16 {
                    let e = abs(Float(GGMLBlocks.mxfp4Value(UInt8(i))) * d - v)
                    if e < error { (index, error) = (i, e) }
                }
                return UInt8(index)
            }
            for j in 0..<16 { y.storeBytes(of: best(x[j]) | best(x[j + 16]) << 4, toByteOffset: 1 + j, as: UInt8.self) }
        }
    }

    /// `v` (a whole number, or anything) clamped to `lo...hi`, as an integer (NaN gives `lo`).
    @inline(__always) private static func level(_ v: Float, _ lo: Int, _ hi: Int) -> Int {
        v >= Float(hi) ? hi : v > Float(lo) ? Int(v) : lo
    }

    private static func storeHalf(_ v: Float, _ y: UnsafeMutableRawPointer, _ offset: Int) {
        y.storeBytes(of: Float16(v).bitPattern, toByteOffset: offset, as: UInt16.self)
    }

    /// 32 codes of 4 or 5 bits: nibbles at `qs` (input j low, j + 16 high), fifth bits as a little-endian word at `qh`.
    private static func storeCodes(_ q: [Int], _ qh: Int?, qs: Int, _ y: UnsafeMutableRawPointer) {
        var high: UInt32 = 0
        for j in 0..<32 where q[j] & 16 != 0 { high |= 1 << UInt32(j) }
        if let qh { y.storeBytes(of: high.littleEndian, toByteOffset: qh, as: UInt32.self) }
        for j in 0..<16 { y.storeBytes(of: UInt8(q[j] & 0xF) | UInt8(q[j + 16] & 0xF) << 4, toByteOffset: qs + j, as: UInt8.self) }
    }

    /// The 12 bytes of eight 6-bit scales and mins (the inverse of ggml's `get_scale_min_k4`).
    static func packScaleMins(_ scales: [UInt8], _ mins: [UInt8], into q: UnsafeMutableRawPointer) {
        for j in 0..<4 {
            q.storeBytes(of: (scales[j] & 63) | (scales[j + 4] >> 4) << 6, toByteOffset: j, as: UInt8.self)
            q.storeBytes(of: (mins[j] & 63) | (mins[j + 4] >> 4) << 6, toByteOffset: j + 4, as: UInt8.self)
            q.storeBytes(of: (scales[j + 4] & 0xF) | (mins[j + 4] & 0xF) << 4, toByteOffset: j + 8, as: UInt8.self)
        }
    }

    /// Q4_K / Q5_K: per 32-input group a scale (max − min) / levels and a min ≤ 0, both as 6-bit multiples of
    /// the block's `d` and `dmin`; codes the nearest level of the decoded group scale and min.
    private static func quantizeK(_ x: UnsafePointer<Float>, fiveBits: Bool, _ y: UnsafeMutableRawPointer) {
        let top = fiveBits ? 31 : 15
        var scales = [Float](repeating: 0, count: 8), mins = [Float](repeating: 0, count: 8)
        for g in 0..<8 {
            var low: Float = 0, high = -Float.infinity
            for l in 0..<32 { (low, high) = (min(low, x[32 * g + l]), max(high, x[32 * g + l])) }
            (scales[g], mins[g]) = ((high - low) / Float(top), -low)
        }
        let maxScale = scales.max() ?? 0, maxMin = mins.max() ?? 0
        let (iScale, iMin): (Float, Float) = (maxScale > 0 ? 63 / maxScale : 0, maxMin > 0 ? 63 / maxMin : 0)
        let ls = scales.map { UInt8(level(($0 * iScale).rounded(.toNearestOrEven), 0, 63)) }
        let lm = mins.map { UInt8(level(($0 * iMin).rounded(.toNearestOrEven), 0, 63)) }
        storeHalf(maxScale / 63, y, 0); storeHalf(maxMin / 63, y, 2)
        packScaleMins(ls, lm, into: y + 4)
        let d = WeightDecoding.f16(y.loadUnaligned(as: UInt16.self)), dmin = WeightDecoding.f16(y.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        var codes = [Int](repeating: 0, count: 256)
        for g in 0..<8 {
            let dd = d * Float(ls[g]), dm = dmin * Float(lm[g])
            guard dd != 0 else { continue }
            for l in 0..<32 { codes[32 * g + l] = level(((x[32 * g + l] + dm) / dd).rounded(.toNearestOrEven), 0, top) }
        }
        let qs = fiveBits ? 48 : 16
        if fiveBits { for l in 0..<32 { y.storeBytes(of: UInt8(0), toByteOffset: 16 + l, as: UInt8.self) } }
        for g in 0..<4 {
            for l in 0..<32 {
                let (a, b) = (codes[64 * g + l], codes[64 * g + 32 + l])
                y.storeBytes(of: UInt8(a & 0xF) | UInt8(b & 0xF) << 4, toByteOffset: qs + 32 * g + l, as: UInt8.self)
                if fiveBits {
                    let high = (a >> 4) << (2 * g) | (b >> 4) << (2 * g + 1)
                    y.storeBytes(of: y.load(fromByteOffset: 16 + l, as: UInt8.self) | UInt8(high), toByteOffset: 16 + l, as: UInt8.self)
                }
            }
        }
    }

    /// Q6_K as ggml's reference lays it out: per 16-input group the signed extreme / −32, int8 group scales relative
    /// to the largest (−128 · scale / largest), codes −32...31.
    private static func quantizeQ6K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var scales = [Float](repeating: 0, count: 16)
        var maxScale: Float = 0, maxAbs: Float = 0
        for g in 0..<16 {
            var amax: Float = 0, signed: Float = 0
            for l in 0..<16 where abs(x[16 * g + l]) > amax { (amax, signed) = (abs(x[16 * g + l]), x[16 * g + l]) }
            scales[g] = signed / -32
            if abs(scales[g]) > maxAbs { (maxAbs, maxScale) = (abs(scales[g]), scales[g]) }
        }
        var codes = [Int](repeating: 32, count: 256)
        guard maxAbs > 0 else {
            for i in 0..<210 { y.storeBytes(of: UInt8(0), toByteOffset: i, as: UInt8.self) }
            pack6(codes, y)
            return
        }
        let iScale = -128 / maxScale
        storeHalf(1 / iScale, y, 208)
        let d = WeightDecoding.f16(y.loadUnaligned(fromByteOffset: 208, as: UInt16.self))
        for g in 0..<16 {
            let sc = Int8(level((iScale * scales[g]).rounded(.toNearestOrEven), -128, 127))
            y.storeBytes(of: UInt8(bitPattern: sc), toByteOffset: 192 + g, as: UInt8.self)
            let dd = d * Float(sc)
            guard dd != 0 else { continue }
            for l in 0..<16 { codes[16 * g + l] = level((x[16 * g + l] / dd).rounded(.toNearestOrEven), -32, 31) + 32 }
        }
        pack6(codes, y)
    }

    /// The `ql`/`qh` bytes of 256 six-bit codes (0...63).
    private static func pack6(_ codes: [Int], _ y: UnsafeMutableRawPointer) {
        for h in 0..<2 {
            let (c, ql, qh) = (128 * h, 64 * h, 128 + 32 * h)
            for l in 0..<32 {
                let (q1, q2, q3, q4) = (codes[c + l], codes[c + l + 32], codes[c + l + 64], codes[c + l + 96])
                y.storeBytes(of: UInt8(q1 & 0xF | (q3 & 0xF) << 4), toByteOffset: ql + l, as: UInt8.self)
                y.storeBytes(of: UInt8(q2 & 0xF | (q4 & 0xF) << 4), toByteOffset: ql + l + 32, as: UInt8.self)
                y.storeBytes(of: UInt8(q1 >> 4 | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6), toByteOffset: qh + l, as: UInt8.self)
            }
        }
    }
}
