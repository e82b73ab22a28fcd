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

        /// The best this CPU has, chosen once from its features, or lower when the environment variable
        /// `MOEKIT_ISA` names a lower level (`avx512-bf16`, `avx512`, `avx2`, `swift`; `amx-bf16` caps nothing:
        /// there is no AMX kernel, see ``KernelSelection``).
        static let detected: ISA = ISA(rawValue: min(level, 2)) ?? .portable

        /// The CPU's level (0 portable, 1 AVX2, 2 AVX-512, 3 AVX-512 BF16), capped by `MOEKIT_ISA`.
        static let level: Int = {
            let cpu = Int(moe_cpu_level())
            guard let forced = ProcessInfo.processInfo.environment["MOEKIT_ISA"] else { return cpu }
            let named = ISALevel(name: forced)?.rawValue ?? cpu
            return min(cpu, named)
        }()

        /// Every level this CPU can run (tests compare them all against the reference).
        static var available: [ISA] { allCases.filter { $0 <= detected } }
    }

    /// The kernels in use, as `moe bench` names them (`machine.isa`): `avx512-bf16`, `avx512`, `avx2`, `swift`.
    static var isaName: String {
        switch ISA.detected {
        case .avx512: hasBF16Dot ? "avx512-bf16" : "avx512"
        case .avx2: "avx2"
        case .portable: "swift"
        }
    }

    /// One micro-tile over one K-block of a panel: the one place that maps (panel element × instruction
    /// set) to a kernel. `a` is a packed row tile at the block's first k (F32 `a[k·8 + r]`, or bf16
    /// pairs `a[kp·8 + r]` for ``PanelMatrices/Element/bf16Pairs``); `b` is the panel at that k; `scales`
    /// the panel's scales at the block's first scale group (FP8, MXFP4); `depth` in k (pairs for BF16
    /// compute).
    @inline(__always)
    static func multiply(isa: ISA, element: PanelMatrices.Element, rows: Int, depth: Int, a: UnsafeRawPointer,
                         b: UnsafeRawPointer, scales: UnsafeRawPointer?, c: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let acc: Int32 = accumulate ? 1 : 0
        let (r, d) = (Int32(rows), Int32(depth))
        let x = a.assumingMemoryBound(to: Float.self)
        switch element {
        case .f32:
            let w = b.assumingMemoryBound(to: Float.self)
            switch isa {
            case .avx512: moe_panel_f32_avx512(r, d, x, w, c, acc)
            case .avx2: moe_panel_f32_avx2(r, d, x, w, c, acc)
            case .portable: portable(rows: rows, depth: depth, a: x, c: c, accumulate: accumulate) { w[$0] }
            }
        case .bf16:
            let w = b.assumingMemoryBound(to: UInt16.self)
            switch isa {
            case .avx512: moe_panel_bf16w_avx512(r, d, x, w, c, acc)
            case .avx2: moe_panel_bf16w_avx2(r, d, x, w, c, acc)
            case .portable: portable(rows: rows, depth: depth, a: x, c: c, accumulate: accumulate) { WeightDecoding.bf16(w[$0]) }
            }
        case .f16:
            let w = b.assumingMemoryBound(to: UInt16.self)
            switch isa {
            case .avx512: moe_panel_f16_avx512(r, d, x, w, c, acc)
            case .avx2: moe_panel_f16_avx2(r, d, x, w, c, acc)
            case .portable: portable(rows: rows, depth: depth, a: x, c: c, accumulate: accumulate) { WeightDecoding.f16(w[$0]) }
            }
        case .fp8(let group):
            let w = b.assumingMemoryBound(to: UInt8.self)
            let s = scales.unsafelyUnwrapped.assumingMemoryBound(to: Float.self)
            switch isa {
            case .avx512: moe_panel_fp8_avx512(r, d, x, w, s, Int32(group), c, acc)
            case .avx2: moe_panel_fp8_avx2(r, d, x, w, s, Int32(group), c, acc)
            case .portable:
                let width = PanelMatrices.width
                portable(rows: rows, depth: depth, a: x, c: c, accumulate: accumulate) { i in
                    WeightDecoding.e4m3(w[i]) * s[(i / width / group) * width + i % width]
                }
            }
        case .mxfp4:
            let w = b.assumingMemoryBound(to: UInt8.self)
            let s = scales.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self)
            switch isa {
            case .avx512: moe_panel_mxfp4_avx512(r, d, x, w, s, c, acc)
            case .avx2: moe_panel_mxfp4_avx2(r, d, x, w, s, c, acc)
            case .portable:
                let (width, half) = (PanelMatrices.width, PanelMatrices.width / 2)
                portable(rows: rows, depth: depth, a: x, c: c, accumulate: accumulate) { i in
                    let (k, n) = (i / width, i % width)
                    let byte = w[PanelMatrices.mxfp4Byte(k: k, column: n, depth: depth)]
                    return WeightDecoding.mxfp4(code: n < half ? byte & 0xF : byte >> 4, scale: s[(k / WeightFormat.mxfp4Group) * width + n])
                }
            }
        case .bf16Pairs:
            multiplyPairs(rows: rows, pairs: depth, a: a.assumingMemoryBound(to: UInt32.self), b: b.assumingMemoryBound(to: UInt32.self),
                          c: c, accumulate: accumulate)
        case .blocks(let type):
            // `depth` in k (whole blocks). No in-register kernel yet: each 256-k slice is decoded exactly into an
            // F32 panel and multiplied by the F32 kernel. ``GroupedPanelGEMM`` decodes once per item instead.
            withUnsafeTemporaryAllocation(byteCount: depthBlock * PanelMatrices.width * 4, alignment: 64) { raw in
                let slice = raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: Float.self)
                var k0 = 0
                repeat {
                    let kc = min(depthBlock, depth - k0)
                    GGMLBlocks.decodePanel(type, b + (k0 / type.blockSize) * PanelMatrices.rowBytes(element), blocks: kc / type.blockSize, into: slice, isa: isa)
                    multiply(isa: isa, element: .f32, rows: rows, depth: kc, a: x + k0 * TileKernel.rows, b: slice, scales: nil,
                             c: c, accumulate: accumulate || k0 > 0)
                    k0 += kc
                } while k0 < depth
            }
        case .int8Blocks(let type):
            // F32 activations over the int8 layout (not a path the forward takes: ``GroupedPanelGEMM`` runs ``Int8Dot``
            // on these panels): each panel row back to its stored blocks, then the `.blocks` case.
            let rowBytes = PanelMatrices.rowBytes(element)
            withUnsafeTemporaryAllocation(byteCount: rowBytes, alignment: 64) { raw in
                let stored = raw.baseAddress.unsafelyUnwrapped
                for u in 0..<(depth / type.blockSize) {
                    Int8Dot.storedLayout(type, row: b + u * rowBytes, into: stored)
                    multiply(isa: isa, element: .blocks(type), rows: rows, depth: type.blockSize, a: x + u * type.blockSize * TileKernel.rows,
                             b: UnsafeRawPointer(stored), scales: nil, c: c, accumulate: accumulate || u > 0)
                }
            }
        }
    }

    /// One row over two panels of the same depth and element (decode): `cA (+)= a · panelA` and
    /// `cB (+)= a · panelB`, bit for bit two ``multiply(isa:element:rows:depth:a:b:scales:c:accumulate:)``
    /// calls with `rows` 1. Where a kernel takes both panels in one loop (FP8 and MXFP4 on AVX-512: four FMA
    /// chains instead of two, so the FMA latency no longer bounds a core), it runs that; else the two calls.
    @inline(__always)
    static func multiplyOneRow(isa: ISA, element: PanelMatrices.Element, depth: Int, a: UnsafeRawPointer,
                               panelA: (b: UnsafeRawPointer, scales: UnsafeRawPointer?, c: UnsafeMutablePointer<Float>),
                               panelB: (b: UnsafeRawPointer, scales: UnsafeRawPointer?, c: UnsafeMutablePointer<Float>),
                               accumulate: Bool) {
        let x = a.assumingMemoryBound(to: Float.self)
        switch (element, isa) {
        case (.fp8(let group), .avx512):
            moe_panel_pair_fp8_avx512(Int32(depth), x, panelA.b.assumingMemoryBound(to: UInt8.self),
                                      panelA.scales.unsafelyUnwrapped.assumingMemoryBound(to: Float.self),
                                      panelB.b.assumingMemoryBound(to: UInt8.self),
                                      panelB.scales.unsafelyUnwrapped.assumingMemoryBound(to: Float.self),
                                      Int32(group), panelA.c, panelB.c, accumulate ? 1 : 0)
        case (.mxfp4, .avx512):
            moe_panel_pair_mxfp4_avx512(Int32(depth), x, panelA.b.assumingMemoryBound(to: UInt8.self),
                                        panelA.scales.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self),
                                        panelB.b.assumingMemoryBound(to: UInt8.self),
                                        panelB.scales.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self),
                                        panelA.c, panelB.c, accumulate ? 1 : 0)
        default:
            multiply(isa: isa, element: element, rows: 1, depth: depth, a: a, b: panelA.b, scales: panelA.scales, c: panelA.c, accumulate: accumulate)
            multiply(isa: isa, element: element, rows: 1, depth: depth, a: a, b: panelB.b, scales: panelB.scales, c: panelB.c, accumulate: accumulate)
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
        let width = PanelMatrices.width
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
    static let hasBF16Dot = ISA.level >= 3

    /// Portable Swift: one row at a time, four `SIMD8` accumulators (multiply then add: without FMA
    /// in the baseline ISA, `addProduct` becomes a libm call per lane).
    @inline(__always)
    static func portable(rows: Int, depth: Int, a: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                         accumulate: Bool, weight: (Int) -> Float) {
        let width = PanelMatrices.width
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
