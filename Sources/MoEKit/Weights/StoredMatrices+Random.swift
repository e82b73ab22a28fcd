/// Seeded random weights written straight into a stored format, for layers of real size (`moe bench
/// --suite realsize`): no F32 tensor of the stack is ever made (a Mixtral-8x7B layer is 2.8 GB as BF16,
/// 5.6 GB as F32), only the bytes a checkpoint would hold, laid out as ``init(quantizing:as:)`` lays them:
/// values row-major `[count, rows, columns]` (each matrix on its own pages), FP8 scales F32
/// `[count, ⌈rows/br⌉, ⌈columns/bc⌉]`, MXFP4 codes `[count, rows, columns/2]` and E8M0 scales
/// `[count, rows, columns/32]`.
///
/// The values sit in anonymous memory (huge pages), freed with the last copy of the returned value. Made
/// with `consumedByPacking` (``MoEBlock/randomStored(config:seed:format:compute:threads:)``), the packing pass
/// gives them back matrix by matrix, as it gives back a mapped file's pages, so making and packing a layer is
/// resident about once, not twice.
extension StoredMatrices {
    /// Rows made by one work item (FP8: one block row, so a block's scale and codes come from one item).
    static let randomRowBlock = 128

    /// A stack of `count` matrices `[rows, columns]` of seeded random weights in `format`, each value
    /// distributed with standard deviation about `std` around 0:
    /// - F32, BF16, F16: uniform on ±√3·std (rounded to nearest even);
    /// - FP8 E4M3: codes of a uniform value on ±448 (never the NaN codes `0x7F`/`0xFF`), each block scaled
    ///   by √3·std/448 times a random factor 2^u, u uniform on ±½ (normalised so the mean square is std²);
    /// - MXFP4: uniformly random E2M1 codes (rms 2.93), each group's E8M0 scale the power of two just below or
    ///   above std/2.93, chosen at random so that the mean square is std²;
    /// - ggml block formats: random codes, and scales chosen so that every block is centred, finite and of that size.
    ///
    /// The same `seed` gives the same bytes for any `threads` (each block of rows has its own generator).
    /// - Throws: ``WeightError/shapeMismatch(expected:actual:)`` for MXFP4 columns not a multiple of 32,
    ///   ``WeightError/unsupported(_:)`` for a non-positive std or FP8 block, ``WeightError/outOfMemory(bytes:)``.
    public static func random(format: WeightFormat, count: Int, rows: Int, columns: Int, std: Float, seed: UInt64,
                              threads: Int = Parallel.defaultThreadCount) throws(WeightError) -> StoredMatrices {
        try random(format: format, count: count, rows: rows, columns: columns, std: std, seed: seed, threads: threads, consumedByPacking: false)
    }

    /// ``random(format:count:rows:columns:std:seed:threads:)``; with `consumedByPacking` the packing pass frees
    /// each matrix's values once packed (reading the stack afterwards gives zeros: pack it once).
    static func random(format: WeightFormat, count: Int, rows: Int, columns: Int, std: Float, seed: UInt64,
                       threads: Int, consumedByPacking: Bool) throws(WeightError) -> StoredMatrices {
        guard count >= 0, rows >= 0, columns >= 0 else {
            throw .shapeMismatch(expected: "a non-negative shape", actual: "[\(count), \(rows), \(columns)]")
        }
        guard std.isFinite, std > 0 else { throw .unsupported("random weights need a finite positive standard deviation, not \(std)") }
        let rowBytes: Int
        switch format {
        case .f32: rowBytes = 4 * columns
        case .bf16, .f16: rowBytes = 2 * columns
        case .fp8E4M3(let br, let bc):
            guard br > 0, bc > 0 else { throw .unsupported("FP8 block \(br)x\(bc)") }
            rowBytes = columns
        case .mxfp4:
            guard columns % WeightFormat.mxfp4Group == 0 else {
                throw .shapeMismatch(expected: "MXFP4 columns a multiple of 32", actual: "\(columns)")
            }
            rowBytes = columns / 2
        case .ggml(let type):
            rowBytes = try ggmlRowBytes(type, count: count, rows: rows, columns: columns)
        }
        let page = max(Int(sysconf(Int32(_SC_PAGESIZE))), 1)
        let (matrixBytes, o1) = rows.multipliedReportingOverflow(by: rowBytes)
        let matrixStride = (matrixBytes + page - 1) / page * page
        let (total, o2) = count.multipliedReportingOverflow(by: matrixStride)
        guard !o1, !o2 else { throw .outOfMemory(bytes: .max) }
        let values = try MappedFile(anonymous: max(total, page))
        let base = UnsafeMutableRawPointer(mutating: values.bytes.baseAddress.unsafelyUnwrapped)

        var scales: AlignedBytes?
        var blockRows = randomRowBlock
        var scaleRowStride = 0, scalesPerMatrix = 0
        switch format {
        case .f32, .bf16, .f16, .ggml: break
        case .fp8E4M3(let br, let bc):
            let (gr, gc) = ((rows + br - 1) / br, (columns + bc - 1) / bc)
            scales = try AlignedBytes(count: count * gr * gc * 4)
            (blockRows, scaleRowStride, scalesPerMatrix) = (br, gc * 4, gr * gc * 4)
        case .mxfp4:
            let groups = columns / WeightFormat.mxfp4Group
            scales = try AlignedBytes(count: count * rows * groups)
            (scaleRowStride, scalesPerMatrix) = (groups, rows * groups)
        }
        let scaleBase = scales?.pointer
        let blocks = (rows + blockRows - 1) / blockRows
        let bound = std * Float(3).squareRoot()
        // MXFP4: the mean square of a uniformly random E2M1 code is 68.5 / 8; the scale exponent is e or e + 1
        // with the probability that makes E[4^exponent] = (std / rms)².
        let mxTarget = Double(std) / (68.5 / 8).squareRoot()
        let mxLow = Int(log2(mxTarget).rounded(.down))
        let mxPLow = (4 - pow(4, log2(mxTarget) - Double(mxLow))) / 3
        let mxLowByte = UInt8(clamping: min(max(mxLow + 127, 1), 253))
        let mxThreshold = UInt64(mxPLow * 0x1p32)
        // FP8: E[4^u] for u uniform on ±½ is 1.5 / ln 4.
        let fp8Scale = bound / 448 / Float((1.5 / log(4.0)).squareRoot())

        Self.uniformE4M3.withUnsafeBufferPointer { e4m3 in
            Parallel.forEach(count * blocks, threads: threads) { item in
                let (m, b) = (item / blocks, item % blocks)
                var mix = SplitMix64(seed: seed ^ (UInt64(m) &* 0xD1B5_4A32_D192_ED03) ^ (UInt64(b) &* 0x8CB9_2BA7_2F3D_8DD7))
                var rng = SplitMix64(seed: mix.next())
                let matrix = base + m * matrixStride
                let (first, last) = (b * blockRows, min(rows, (b + 1) * blockRows))
                switch format {
                case .f32:
                    for r in first..<last {
                        let row = (matrix + r * rowBytes).assumingMemoryBound(to: Float.self)
                        var c = 0
                        while c < columns {
                            var bits = rng.next()
                            for _ in 0..<min(2, columns - c) {
                                // (k + ½) / 2^24 mapped onto ±1: symmetric, never ±1 itself.
                                let k = Float(UInt32(truncatingIfNeeded: bits) >> 8)
                                row[c] = (k * 0x1p-23 + 0x1p-24 - 1) * bound
                                bits >>= 32
                                c += 1
                            }
                        }
                    }
                case .bf16, .f16:
                    let bf16 = format == .bf16
                    for r in first..<last {
                        let row = (matrix + r * rowBytes).assumingMemoryBound(to: UInt16.self)
                        var c = 0
                        while c < columns {
                            var bits = rng.next()
                            for _ in 0..<min(4, columns - c) {
                                let x = (Float(UInt16(truncatingIfNeeded: bits)) * 0x1p-15 + 0x1p-16 - 1) * bound
                                row[c] = bf16 ? BFloat16(x).bitPattern : Float16(x).bitPattern
                                bits >>= 16
                                c += 1
                            }
                        }
                    }
                case .fp8E4M3(_, let bc):
                    let s = (scaleBase.unsafelyUnwrapped + m * scalesPerMatrix + b * scaleRowStride).assumingMemoryBound(to: Float.self)
                    for j in 0..<((columns + bc - 1) / bc) {
                        let u = Float(rng.next() >> 40) * 0x1p-24 - 0.5
                        s[j] = fp8Scale * exp2f(u)
                    }
                    for r in first..<last {
                        let row = (matrix + r * rowBytes).assumingMemoryBound(to: UInt8.self)
                        var c = 0
                        while c < columns {
                            var bits = rng.next()
                            for _ in 0..<min(4, columns - c) {
                                row[c] = e4m3[Int(UInt16(truncatingIfNeeded: bits))]
                                bits >>= 16
                                c += 1
                            }
                        }
                    }
                case .mxfp4:
                    let s = (scaleBase.unsafelyUnwrapped + m * scalesPerMatrix).assumingMemoryBound(to: UInt8.self)
                    for r in first..<last {
                        Self.fillRandomBytes(matrix + r * rowBytes, count: rowBytes, rng: &rng)
                        for g in 0..<scaleRowStride {
                            s[r * scaleRowStride + g] = rng.next() >> 32 < mxThreshold ? mxLowByte : mxLowByte + 1
                        }
                    }
                case .ggml(let type):
                    for r in first..<last {
                        Self.fillRandomBlocks(type, matrix + r * rowBytes, blocks: columns / type.blockSize, std: std, rng: &rng)
                    }
                }
            }
        }
        let columnStride: Int = switch format {
        case .f32: 4
        case .bf16, .f16: 2
        case .fp8E4M3: 1
        case .mxfp4, .ggml: 0
        }
        let matrices = (0..<count).map { m in
            Matrix(values: base + m * matrixStride, rowStride: rowBytes, columnStride: columnStride,
                   scales: scaleBase.map { UnsafeRawPointer($0 + m * scalesPerMatrix) }, scaleRowStride: scaleRowStride,
                   pages: consumedByPacking ? MappedRange(file: values, range: (m * matrixStride)..<(m * matrixStride + matrixBytes)) : nil)
        }
        let scaleType: ScaleType = format == .mxfp4 ? .e8m0 : .f32
        return StoredMatrices(format: format, rows: rows, columns: columns, matrices: matrices, scaleType: scaleType,
                              owners: [values] + (scales.map { [$0] } ?? []))
    }

    /// Writes `count` random bytes at `target`.
    @inline(__always)
    private static func fillRandomBytes(_ target: UnsafeMutableRawPointer, count: Int, rng: inout SplitMix64) {
        var c = 0
        while c + 8 <= count {
            (target + c).storeBytes(of: rng.next(), toByteOffset: 0, as: UInt64.self)
            c += 8
        }
        if c < count {
            var bits = rng.next()
            while c < count {
                target.storeBytes(of: UInt8(truncatingIfNeeded: bits), toByteOffset: c, as: UInt8.self)
                bits >>= 8
                c += 1
            }
        }
    }

    /// The E4M3 code of (k + ½) / 2^16 mapped onto ±448, for every 16-bit k: a uniform value, quantized as
    /// ``e4m3Code(_:)`` quantizes (never a NaN code).
    static let uniformE4M3: [UInt8] = (0..<65536).map { k in
        e4m3Code((Float(k) * 0x1p-15 + 0x1p-16 - 1) * 448)
    }
}
