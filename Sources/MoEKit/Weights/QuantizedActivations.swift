import CMoEKernels

/// Activations quantized per block to 8 bits, as llama.cpp quantizes them before its integer dot products
/// (``ComputeMode/int8``): each run of ``Kind/blockSize`` inputs of a row becomes int8 codes and one F32
/// scale, plus the sum of every 16 consecutive codes (the weight formats with an offset or a minimum
/// subtract it once per group instead of once per product).
///
/// Row `r` (a padded row of ``PackedRows``) holds `quants[r·depth ..< (r+1)·depth]`,
/// `scales[r·depth/blockSize …]` and `sums[r·depth/16 …]`; padding rows are zero everywhere.
struct QuantizedActivations: Sendable {
    /// The activation format a weight format's integer dot product reads (ggml's `vec_dot_type`).
    enum Kind: Sendable, Equatable {
        /// ggml's `block_q8_0`: 32 inputs, `d = amax / 127` rounded to F16, `q = roundf(x / d)` (ties away
        /// from zero). For Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and MXFP4 weights.
        case q8_0
        /// ggml's `block_q8_K`: 256 inputs, `iscale = −127 / max` (max the input of largest magnitude, with
        /// its sign), `q = min(127, nearest(iscale · x))` (ties to even), `d = 1 / iscale` in F32. For the K-quants.
        case q8_K

        /// Inputs per scale: 32 or 256.
        var blockSize: Int { self == .q8_0 ? 32 : 256 }

        /// The kind `type`'s integer dot product pairs with (ggml's `type_traits_cpu[type].vec_dot_type`;
        /// Q4_1 and Q5_1 take Q8_0 here, their minimum multiplied by the block's code sum).
        init(_ type: GGMLBlockType) {
            switch type {
            case .q4_K, .q5_K, .q6_K: self = .q8_K
            case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .mxfp4: self = .q8_0
            }
        }
    }

    /// Inputs per sum of ``sums``.
    static let sumGroup = 16

    let kind: Kind
    /// Rows (padded rows of the ``PackedRows`` they were made from).
    let rowCount: Int
    /// Inputs per row: a whole number of blocks.
    let depth: Int
    /// `rowCount × depth` codes.
    private(set) var quants: [Int8]
    /// `rowCount × depth / blockSize` scales.
    private(set) var scales: [Float]
    /// `rowCount × depth / 16` sums of 16 consecutive codes.
    private(set) var sums: [Int16]

    /// The packed rows' tiles quantized row by row (padding rows zero); `rows.depth` must be a whole number
    /// of `kind` blocks (the weights' blocks cover every input, so it is). `vectorized` runs the AVX-512 C
    /// quantizers (`moe_quantize_rows.h`, bit for bit ``quantize(_:_:stride:depth:quants:scales:sums:)``; the default
    /// where the int8 kernels are AVX-512 VNNI), else the Swift loops.
    init(_ rows: PackedRows, kind: Kind, threads: Int, vectorized: Bool = Int8Dot.ISA.detected == .avx512vnni) {
        let tile = TileKernel.rows
        let depth = rows.depth
        let rowCount = rows.tileFirstRow.count * tile
        self.kind = kind
        self.rowCount = rowCount
        self.depth = depth
        let blocks = depth / kind.blockSize, groups = depth / Self.sumGroup
        var quants = [Int8](repeating: 0, count: rowCount * depth)
        var scales = [Float](repeating: 0, count: rowCount * blocks)
        var sums = [Int16](repeating: 0, count: rowCount * groups)
        let counts = rows.tileRowCount
        rows.withPointers { floats, _ in
            quants.withUnsafeMutableBufferPointer { q in
                scales.withUnsafeMutableBufferPointer { d in
                    sums.withUnsafeMutableBufferPointer { s in
                        let (qBase, dBase, sBase) = (q.baseAddress.unsafelyUnwrapped, d.baseAddress.unsafelyUnwrapped, s.baseAddress.unsafelyUnwrapped)
                        Parallel.forEach(counts.count, threads: threads) { t in
                            if vectorized {
                                let (first, tileInputs) = (t * tile, t * tile * depth)
                                let quantize = kind == .q8_0 ? moe_quantize_tile_q8_0_avx512 : moe_quantize_tile_q8_K_avx512
                                quantize(Int32(counts[t]), Int32(depth), floats + tileInputs, qBase + first * depth,
                                         dBase + first * blocks, sBase + first * groups)
                                return
                            }
                            for r in 0..<counts[t] {
                                let row = t * tile + r
                                Self.quantize(kind, floats + t * tile * depth + r, stride: tile, depth: depth,
                                              quants: qBase + row * depth, scales: dBase + row * blocks, sums: sBase + row * groups)
                            }
                        }
                    }
                }
            }
        }
        self.quants = quants
        self.scales = scales
        self.sums = sums
    }

    /// Quantizes one row of `depth` inputs read at `x[i·stride]` (ggml's `quantize_row_q8_0_ref` and
    /// `quantize_row_q8_K_ref`, bit for bit), with the 16-input code sums.
    static func quantize(_ kind: Kind, _ x: UnsafePointer<Float>, stride: Int, depth: Int, quants q: UnsafeMutablePointer<Int8>,
                         scales d: UnsafeMutablePointer<Float>, sums s: UnsafeMutablePointer<Int16>) {
        let size = kind.blockSize
        for b in 0..<(depth / size) {
            let first = b * size
            switch kind {
            case .q8_0:
                var amax: Float = 0
                for i in first..<(first + size) { amax = max(amax, abs(x[i * stride])) }
                let scale = amax / 127
                let inverse: Float = scale != 0 ? 1 / scale : 0
                for i in first..<(first + size) { q[i] = code(x[i * stride] * inverse, .toNearestOrAwayFromZero) }
                d[b] = Float(Float16(scale))  // block_q8_0 stores d as F16; the dot product reads it back
            case .q8_K:
                var amax: Float = 0, signedMax: Float = 0
                for i in first..<(first + size) {
                    let magnitude = abs(x[i * stride])
                    if magnitude > amax { amax = magnitude; signedMax = x[i * stride] }
                }
                guard amax != 0 else {
                    for i in first..<(first + size) { q[i] = 0 }
                    d[b] = 0
                    continue
                }
                let inverse = -127 / signedMax
                // ggml's nearest_int: ties to even (|v| ≤ 127 here, well inside its magic-number range).
                for i in first..<(first + size) { q[i] = code(inverse * x[i * stride], .toNearestOrEven) }
                d[b] = 1 / inverse
            }
        }
        for g in 0..<(depth / sumGroup) {
            var sum: Int16 = 0
            for i in (g * sumGroup)..<((g + 1) * sumGroup) { sum &+= Int16(q[i]) }
            s[g] = sum
        }
    }

    /// One code: `v` (the input times the block's inverse scale) clamped to ±127, then rounded. For a finite block
    /// |v| ≤ 127 (+ rounding), so the clamp changes nothing there; it keeps a block whose scale underflows (an
    /// inverse of infinity: all inputs below about 1e-38) or that holds an infinity from a trap: a NaN product
    /// (0 · ∞) is code 0, ±∞ is ±127 (the block's F16 scale is then 0, or not finite, so the output says so).
    @inline(__always) static func code(_ v: Float, _ rule: FloatingPointRoundingRule) -> Int8 {
        guard !v.isNaN else { return 0 }
        return Int8(min(max(v, -127), 127).rounded(rule))
    }

    /// Calls `body` with the base pointers of the codes, scales and sums (one-element stand-ins when empty).
    func withPointers<R>(_ body: (_ quants: UnsafePointer<Int8>, _ scales: UnsafePointer<Float>, _ sums: UnsafePointer<Int16>) -> R) -> R {
        let (q, d, s) = (quants.isEmpty ? [0] : quants, scales.isEmpty ? [0] : scales, sums.isEmpty ? [0] : sums)
        return q.withUnsafeBufferPointer { q in
            d.withUnsafeBufferPointer { d in
                // Non-empty arrays always have a base address.
                s.withUnsafeBufferPointer { s in body(q.baseAddress.unsafelyUnwrapped, d.baseAddress.unsafelyUnwrapped, s.baseAddress.unsafelyUnwrapped) }
            }
        }
    }
}
