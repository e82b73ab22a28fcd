/// Weights MoEKit stores itself: F32 values rounded or quantized into a format, in bytes laid out
/// exactly as a checkpoint would hold them (row-major `[count, rows, columns]`, FP8 scales
/// `[count, ⌈rows/br⌉, ⌈columns/bc⌉]` F32, MXFP4 codes `[count, rows, columns/32, 16]` and E8M0
/// scales `[count, rows, columns/32]`). For tests, presets and the benchmarks.
extension StoredMatrices {
    /// Stores `values` `[count, rows, columns]` as `format`: F32 as is, BF16/F16 rounded to nearest even,
    /// FP8 with one scale per block (amax / 448, codes rounded to nearest even), MXFP4 with one power-of-two
    /// scale per 32 inputs (2^(⌊log₂ amax⌋ − 2), codes rounded to nearest), ggml block formats block by block
    /// (Q8_0 to Q5_1 and MXFP4 as ggml's `quantize_row_*_ref`, the K-quants with one pass of ggml's layout).
    /// - Throws: ``WeightError/shapeMismatch(expected:actual:)`` unless `values` is 3-D (MXFP4: columns a multiple of 32;
    ///   ggml formats: of the block size; ggml formats refuse a non-finite value).
    public init(quantizing values: Tensor<Float>, as format: WeightFormat) throws(WeightError) {
        guard values.rank == 3 else { throw .shapeMismatch(expected: "[count, rows, columns]", actual: "\(values.shape)") }
        let (count, rows, columns) = (values.shape[0], values.shape[1], values.shape[2])
        let v = values.storage
        switch format {
        case .f32, .bf16, .f16:
            let size = format == .f32 ? 4 : 2
            let bytes = try AlignedBytes(count: v.count * size)
            for i in 0..<v.count {
                switch format {
                case .f32: bytes.pointer.storeBytes(of: v[i], toByteOffset: 4 * i, as: Float.self)
                case .bf16: bytes.pointer.storeBytes(of: BFloat16(v[i]).bitPattern, toByteOffset: 2 * i, as: UInt16.self)
                default: bytes.pointer.storeBytes(of: Float16(v[i]).bitPattern, toByteOffset: 2 * i, as: UInt16.self)
                }
            }
            self.init(format: format, rows: rows, columns: columns, matrices: (0..<count).map {
                Matrix(values: bytes.pointer + $0 * rows * columns * size, rowStride: columns * size, columnStride: size, scales: nil, scaleRowStride: 0)
            }, owners: [bytes])
        case .fp8E4M3(let br, let bc):
            guard br > 0, bc > 0 else { throw .unsupported("FP8 block \(br)x\(bc)") }
            let (gr, gc) = ((rows + br - 1) / br, (columns + bc - 1) / bc)
            let codes = try AlignedBytes(count: v.count)
            let scales = try AlignedBytes(count: count * gr * gc * 4)
            let s = scales.pointer.assumingMemoryBound(to: Float.self)
            let c = codes.pointer.assumingMemoryBound(to: UInt8.self)
            for m in 0..<count {
                for bi in 0..<gr {
                    for bj in 0..<gc {
                        var amax: Float = 0
                        for r in (bi * br)..<min(rows, (bi + 1) * br) {
                            for col in (bj * bc)..<min(columns, (bj + 1) * bc) { amax = max(amax, abs(v[(m * rows + r) * columns + col])) }
                        }
                        let scale: Float = amax > 0 ? amax / 448 : 1
                        s[(m * gr + bi) * gc + bj] = scale
                        for r in (bi * br)..<min(rows, (bi + 1) * br) {
                            for col in (bj * bc)..<min(columns, (bj + 1) * bc) {
                                let i = (m * rows + r) * columns + col
                                c[i] = Self.e4m3Code(v[i] / scale)
                            }
                        }
                    }
                }
            }
            self.init(format: format, rows: rows, columns: columns, matrices: (0..<count).map {
                Matrix(values: codes.pointer + $0 * rows * columns, rowStride: columns, columnStride: 1,
                       scales: scales.pointer + $0 * gr * gc * 4, scaleRowStride: gc * 4)
            }, scaleType: .f32, owners: [codes, scales])
        case .mxfp4:
            let group = WeightFormat.mxfp4Group
            guard columns % group == 0 else { throw .shapeMismatch(expected: "MXFP4 columns a multiple of 32", actual: "\(columns)") }
            let groups = columns / group
            let codes = try AlignedBytes(count: v.count / 2)
            let scales = try AlignedBytes(count: count * rows * groups)
            let c = codes.pointer.assumingMemoryBound(to: UInt8.self)
            let s = scales.pointer.assumingMemoryBound(to: UInt8.self)
            for row in 0..<(count * rows) {
                for g in 0..<groups {
                    let base = row * columns + g * group
                    var amax: Float = 0
                    for i in 0..<group { amax = max(amax, abs(v[base + i])) }
                    let exponent = amax > 0 ? min(max(Int(amax.exponent) - 2, -127), 127) : 0
                    let e = UInt8(exponent + 127)
                    s[row * groups + g] = e
                    let scale = WeightDecoding.e8m0(e)
                    for i in stride(from: 0, to: group, by: 2) {
                        let low = Self.e2m1Code(v[base + i] / scale), high = Self.e2m1Code(v[base + i + 1] / scale)
                        c[(base + i) / 2] = low | high << 4
                    }
                }
            }
            self.init(format: format, rows: rows, columns: columns, matrices: (0..<count).map {
                Matrix(values: codes.pointer + $0 * rows * columns / 2, rowStride: columns / 2, columnStride: 0,
                       scales: scales.pointer + $0 * rows * groups, scaleRowStride: groups)
            }, scaleType: .e8m0, owners: [codes, scales])
        case .ggml(let type):
            self = try Self.quantizingGGML(values, as: type)
        }
    }

    /// The E4M3 code nearest to `x` (ties to even), saturating at ±448.
    static func e4m3Code(_ x: Float) -> UInt8 {
        let sign: UInt8 = x.sign == .minus ? 0x80 : 0
        let a = min(abs(x), 448)
        guard a.isFinite else { return sign | 0x7E }
        var exponent = Int(a.exponent)
        if a < 0x1p-6 {  // subnormal: m · 2^-9
            let m = UInt8((a * 0x1p9).rounded(.toNearestOrEven))
            return sign | m  // m = 8 is the smallest normal's code
        }
        var m = Int((a * Float(sign: .plus, exponent: 3 - exponent, significand: 1)).rounded(.toNearestOrEven))
        if m == 16 { m = 8; exponent += 1 }
        if exponent > 8 || (exponent == 8 && m > 14) { return sign | 0x7E }
        return sign | UInt8((exponent + 7) << 3) | UInt8(m - 8)
    }

    /// The E2M1 code nearest to `x` (first of equals), saturating at ±6.
    static func e2m1Code(_ x: Float) -> UInt8 {
        var best: UInt8 = 0
        var distance = Float.infinity
        for code in 0..<8 {
            let d = abs(abs(x) - WeightDecoding.e2m1Table[code])
            if d < distance { (best, distance) = (UInt8(code), d) }
        }
        return (x.sign == .minus && best != 0 ? 8 : 0) | best
    }
}
