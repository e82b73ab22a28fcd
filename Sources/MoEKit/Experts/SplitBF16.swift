/// Exact-F32 products from bfloat16 arithmetic (issue 11's stretch goal: an F32 mode for AMX, whose only
/// floating-point product is bf16 × bf16 → F32). Reference level — scalar Swift, the specification of
/// `moe_panel_splitbf16_avx512` — and NOT wired into the forward path: no ``ComputeMode`` uses it.
///
/// Each F32 value is the sum of three bfloat16 parts, x = x0 + x1 + x2 with x0 = bf16(x), x1 = bf16(x − x0),
/// x2 = bf16(x − x0 − x1), and the split is exact: x − x0 and x − x0 − x1 are computed exactly (both are
/// multiples of ulp(x) below 2¹⁶·ulp(x)), and the last remainder is a multiple of ulp(x) of at most 2⁷·ulp(x),
/// so it fits bf16's 8 significant bits — three parts carry F32's 24 (for |x| ≥ 2⁻¹¹⁰, where x2 stays a
/// normal bf16; `vdpbf16ps` and AMX treat bf16 subnormals as zero, and overflow at |x| ≥ (2 − 2⁻⁸)·2¹²⁷).
/// |x1| ≤ 2⁻⁸|x| and |x2| ≤ 2⁻¹⁶|x|, so of the nine exact cross terms of x·w the six kept ones — x0w0,
/// x0w1, x1w0, x0w2, x1w1, x2w0, each a 16-bit product, exact in F32 — leave out at most
/// |x1w2| + |x2w1| + |x2w2| ≤ (2⁻²³ + 2⁻³²)|xw|: about one F32 ulp per product. The rest of the error is the
/// F32 accumulation's: six roundings per k in one chain (``Accumulation/single``), or two in the main chain
/// plus four on a chain 2⁸ times smaller (``Accumulation/twoChains``), against one for an FMA. Measured
/// (SplitBF16Tests): one chain over K = 14336 reaches 1e-5 relative, two chains or K-blocks of 256 summed
/// from zero (`blockDepth`) stay near or below the F32 FMA chain's error.
enum SplitBF16 {
    /// The three bfloat16 parts of an F32 value, largest first.
    struct Parts: Equatable, Sendable {
        var x0: BFloat16, x1: BFloat16, x2: BFloat16
        /// The parts as F32 (exact).
        var floats: (Float, Float, Float) { (x0.float, x1.float, x2.float) }
    }

    /// How the six terms of each k are summed.
    enum Accumulation: Sendable, CaseIterable {
        /// One F32 chain per output: per k, x2w0, x0w2, x0w1, x1w0, x1w1, x0w0 (three `vdpbf16ps`, each
        /// adding its high product then its low one).
        case single
        /// x1w1, x0w0 into a main chain, x2w0, x0w2, x0w1, x1w0 into a correction chain from zero;
        /// their sum at the end.
        case twoChains
    }

    /// x = x0 + x1 + x2 (see the type's discussion for when it is exact).
    @inline(__always)
    static func split(_ x: Float) -> Parts {
        let x0 = BFloat16(x)
        let r1 = x - x0.float
        let x1 = BFloat16(r1)
        return Parts(x0: x0, x1: x1, x2: BFloat16(r1 - x1.float))
    }

    /// Σ_k x[k·xStride] · w[k·wStride] in split-BF16 arithmetic, the terms in the kernel's order: one chain
    /// from `initial` (`blockDepth` nil, as the kernels continue C across K-blocks), or each K-block of
    /// `blockDepth` k summed from zero and added to the running F32 total (which starts at `initial`).
    static func dot(_ x: UnsafePointer<Float>, stride xStride: Int = 1, _ w: UnsafePointer<Float>, stride wStride: Int = 1,
                    depth: Int, accumulation: Accumulation, blockDepth: Int? = nil, initial: Float = 0) -> Float {
        guard let blockDepth, blockDepth < depth else {
            return chain(x, stride: xStride, w, stride: wStride, depth: depth, accumulation: accumulation, initial: initial)
        }
        precondition(blockDepth > 0, "K-blocks of \(blockDepth) k")
        var total = initial
        for k0 in stride(from: 0, to: depth, by: blockDepth) {
            total += chain(x + k0 * xStride, stride: xStride, w + k0 * wStride, stride: wStride, depth: min(blockDepth, depth - k0),
                           accumulation: accumulation, initial: 0)
        }
        return total
    }

    /// One accumulation chain (two with ``Accumulation/twoChains``) over `depth` k.
    private static func chain(_ x: UnsafePointer<Float>, stride xStride: Int, _ w: UnsafePointer<Float>, stride wStride: Int,
                              depth: Int, accumulation: Accumulation, initial: Float) -> Float {
        var main = initial, correction: Float = 0
        for k in 0..<depth {
            let (x0, x1, x2) = split(x[k * xStride]).floats
            let (w0, w1, w2) = split(w[k * wStride]).floats
            switch accumulation {
            case .single:
                main = main + x2 * w0
                main = main + x0 * w2
                main = main + x0 * w1
                main = main + x1 * w0
                main = main + x1 * w1
                main = main + x0 * w0
            case .twoChains:
                correction = correction + x2 * w0
                correction = correction + x0 * w2
                correction = correction + x0 * w1
                correction = correction + x1 * w0
                main = main + x1 * w1
                main = main + x0 * w0
            }
        }
        return accumulation == .single ? main : main + correction
    }

    /// Σ_k x[k] · w[k] in split-BF16 arithmetic.
    static func dot(_ x: [Float], _ w: [Float], accumulation: Accumulation, blockDepth: Int? = nil) -> Float {
        precondition(x.count == w.count, "dot of \(x.count) and \(w.count) values")
        return x.withUnsafeBufferPointer { xb in
            w.withUnsafeBufferPointer { wb in
                guard let xp = xb.baseAddress, let wp = wb.baseAddress else { return 0 }
                return dot(xp, wp, depth: x.count, accumulation: accumulation, blockDepth: blockDepth)
            }
        }
    }

    /// A projection y[r][n] = Σ_k x[r][k] · w[n][k]: `x` is [rows, depth], `w` [columns, depth] (the stored
    /// [out, in] layout), the result [rows, columns], all row-major.
    static func multiply(_ x: [Float], rows: Int, _ w: [Float], columns: Int, depth: Int, accumulation: Accumulation,
                         blockDepth: Int? = nil) -> [Float] {
        precondition(x.count == rows * depth && w.count == columns * depth, "shapes of a split-BF16 projection")
        var y = [Float](repeating: .nan, count: rows * columns)
        x.withUnsafeBufferPointer { xb in
            w.withUnsafeBufferPointer { wb in
                guard let xp = xb.baseAddress, let wp = wb.baseAddress else { return }
                for r in 0..<rows {
                    for n in 0..<columns {
                        y[r * columns + n] = dot(xp + r * depth, wp + n * depth, depth: depth, accumulation: accumulation,
                                                 blockDepth: blockDepth)
                    }
                }
            }
        }
        return y
    }

    // MARK: Packing for moe_panel_splitbf16_*_avx512

    /// A 32-bit word of two bf16, `low` in the low half (the order `vdpbf16ps` pairs them in).
    @inline(__always)
    static func word(_ low: BFloat16, _ high: BFloat16) -> UInt32 { UInt32(low.bitPattern) | UInt32(high.bitPattern) << 16 }

    /// One row tile for the kernels: rows `firstRow ..< firstRow + count` (count ≤ 8; rows past it zero) of
    /// `x` [rows, depth], as `a[(3k + j)·8 + r]` with j = 0: (x0 | x2), 1: (x1 | x0), 2: (x0 | x1).
    static func packTile(_ x: [Float], depth: Int, firstRow: Int, count: Int) -> [UInt32] {
        let tile = TileKernel.rows
        precondition(count >= 0 && count <= tile && x.count >= (firstRow + count) * depth, "rows of a split-BF16 tile")
        var a = [UInt32](repeating: 0, count: depth * 3 * tile)
        for r in 0..<count {
            for k in 0..<depth {
                let p = split(x[(firstRow + r) * depth + k])
                a[(3 * k) * tile + r] = word(p.x0, p.x2)
                a[(3 * k + 1) * tile + r] = word(p.x1, p.x0)
                a[(3 * k + 2) * tile + r] = word(p.x0, p.x1)
            }
        }
        return a
    }

    /// One 32-column panel for the kernels: columns `firstColumn ..< firstColumn + 32` of the projection
    /// (rows of `w` [columns, depth]; columns past the matrix zero), as `b[(2k + j)·32 + n]` with
    /// j = 0: (w2 | w0), 1: (w0 | w1).
    static func packPanel(_ w: [Float], columns: Int, depth: Int, firstColumn: Int) -> [UInt32] {
        let width = PanelMatrices.width
        precondition(w.count == columns * depth, "shape of a split-BF16 panel")
        var b = [UInt32](repeating: 0, count: depth * 2 * width)
        for n in 0..<min(width, columns - firstColumn) {
            for k in 0..<depth {
                let p = split(w[(firstColumn + n) * depth + k])
                b[(2 * k) * width + n] = word(p.x2, p.x0)
                b[(2 * k + 1) * width + n] = word(p.x0, p.x1)
            }
        }
        return b
    }
}
