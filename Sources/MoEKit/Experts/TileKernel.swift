import CMoEKernels

/// The compute stage of the fast kernels: `C[rows × 32] (+)= A[rows × depth] · panel[depth × 32]` for
/// up to ``rows`` rows, accumulating in `Float` in ascending k.
///
/// The instruction set is chosen once, at run time, from the CPU's features: AVX-512 (16 zmm
/// accumulators), AVX2 + FMA, or portable Swift SIMD. BF16 panels are widened exactly in registers.
enum TileKernel {
    /// Rows of one micro-tile.
    static let rows = Int(MOE_TILE_ROWS)
    /// Depth of one K-block: a 256 × 32 F32 panel slice (32 KiB) stays in L1 across a row block's tiles.
    static let depthBlock = 256
    /// K-pairs of one BF16-compute K-block: a 256 × 32 pair panel slice is 32 KiB too. Measured on
    /// mixtral shapes against 128 pairs: +15 % (each call amortises its accumulator load/store over
    /// twice the `vdpbf16ps` work).
    static let pairBlock = 256

    /// The instruction sets a micro-tile can run on.
    enum ISA: Int, Sendable, CaseIterable, Comparable {
        case portable = 0, avx2 = 1, avx512 = 2

        static func < (a: ISA, b: ISA) -> Bool { a.rawValue < b.rawValue }

        /// The best this CPU has, chosen once from its features.
        static let detected: ISA = ISA(rawValue: min(Int(moe_cpu_level()), 2)) ?? .portable

        /// Every level this CPU can run (tests compare them all against the reference).
        static var available: [ISA] { allCases.filter { $0 <= detected } }
    }

    /// A short name of the kernels in use, for reports.
    static var isaName: String {
        switch ISA.detected {
        case .avx512: moe_cpu_level() >= 3 ? "avx512 (bf16 capable)" : "avx512"
        case .avx2: "avx2+fma"
        case .portable: "portable simd"
        }
    }

    /// One micro-tile: `a` is a packed row tile (`a[k·8 + r]`, see ``PackedRows``) at `k = k0`;
    /// `panelStart` is the element offset of the panel's row `k = k0`.
    @inline(__always)
    static func multiply(isa: ISA, rows: Int, depth: Int, a: UnsafePointer<Float>,
                         f32 weights: UnsafePointer<Float>?, bf16 halves: UnsafePointer<UInt16>?, panelStart: Int,
                         c: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let acc: Int32 = accumulate ? 1 : 0
        if let weights {
            let b = weights + panelStart
            switch isa {
            case .avx512: moe_panel_f32_avx512(Int32(rows), Int32(depth), a, b, c, acc)
            case .avx2: moe_panel_f32_avx2(Int32(rows), Int32(depth), a, b, c, acc)
            case .portable: portable(rows: rows, depth: depth, a: a, c: c, accumulate: accumulate) { b[$0] }
            }
        } else if let halves {
            let b = halves + panelStart
            switch isa {
            case .avx512: moe_panel_bf16w_avx512(Int32(rows), Int32(depth), a, b, c, acc)
            case .avx2: moe_panel_bf16w_avx2(Int32(rows), Int32(depth), a, b, c, acc)
            case .portable: portable(rows: rows, depth: depth, a: a, c: c, accumulate: accumulate) {
                Float(bitPattern: UInt32(b[$0]) << 16)
            }
            }
        }
    }

    /// One BF16-compute micro-tile: `pairs` k-pairs of bf16 activations (`a[kp·8 + r]`) and weights
    /// (`b[kp·32 + n]`). `vdpbf16ps` on AVX-512 BF16 CPUs; elsewhere each pair is widened exactly and
    /// accumulated in F32 (same math, not the same last bit as the instruction).
    @inline(__always)
    static func multiplyPairs(rows: Int, pairs: Int, a: UnsafePointer<UInt32>, b: UnsafePointer<UInt32>,
                              c: UnsafeMutablePointer<Float>, accumulate: Bool) {
        if hasBF16Dot {
            moe_panel_bf16dot_avx512(Int32(rows), Int32(pairs), a, b, c, accumulate ? 1 : 0)
            return
        }
        let width = PackedPanels.width
        for r in 0..<rows {
            for n in 0..<width {
                var acc: Float = 0
                for kp in 0..<pairs {
                    let (x, w) = (a[kp * TileKernel.rows + r], b[kp * width + n])
                    acc += Float(bitPattern: x << 16) * Float(bitPattern: w << 16)
                    acc += Float(bitPattern: x & 0xFFFF_0000) * Float(bitPattern: w & 0xFFFF_0000)
                }
                c[r * width + n] = accumulate ? c[r * width + n] + acc : acc
            }
        }
    }

    /// Whether the CPU has AVX-512 BF16 (`vdpbf16ps`).
    static let hasBF16Dot = moe_cpu_level() >= 3

    /// Portable Swift: one row at a time, four `SIMD8` accumulators (multiply then add: without FMA
    /// in the baseline ISA, `addProduct` becomes a libm call per lane).
    @inline(__always)
    static func portable(rows: Int, depth: Int, a: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                         accumulate: Bool, weight: (Int) -> Float) {
        let width = PackedPanels.width
        for r in 0..<rows {
            var acc = [SIMD8<Float>](repeating: SIMD8(), count: width / 8)
            for k in 0..<depth {
                let x = SIMD8<Float>(repeating: a[k * TileKernel.rows + r])
                for v in 0..<(width / 8) {
                    var b = SIMD8<Float>()
                    for lane in 0..<8 { b[lane] = weight(k * width + v * 8 + lane) }
                    acc[v] += x * b
                }
            }
            for v in 0..<(width / 8) {
                for lane in 0..<8 {
                    let out = c + r * width + v * 8 + lane
                    out.pointee = accumulate ? out.pointee + acc[v][lane] : acc[v][lane]
                }
            }
        }
    }
}
