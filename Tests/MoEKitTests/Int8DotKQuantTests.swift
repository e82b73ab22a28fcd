import Testing
@testable import MoEKit
import MoETestSupport

/// The K-quant int8 kernels (``Int8Dot``, `Int8Dot+KQuants.swift`): the panel layout only permutes bytes, every
/// ISA's kernel equals the reference bit for bit (whole, split, one row alone), and the reference is the F32
/// dot product of the dequantized weights and activations up to rounding.
@Suite("int8 K-quant kernels")
struct Int8DotKQuantTests {
    static let types: [GGMLBlockType] = [.q4_K, .q5_K, .q6_K].filter(Int8Dot.kQuantSupports)
    static let width = PanelMatrices.width

    /// Equal bit patterns everywhere.
    static func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
    }

    /// Where `a` and `b` first differ, for a failure message (not the whole arrays).
    static func firstDifference(_ a: [Float], _ b: [Float]) -> String {
        guard a.count == b.count, let i = a.indices.first(where: { a[$0].bitPattern != b[$0].bitPattern }) else { return "counts \(a.count), \(b.count)" }
        return "first difference at \(i): \(a[i]) vs \(b[i])"
    }

    /// A random F16 scale: mostly normal in ±[2^-10, 2], sometimes subnormal or zero; never NaN or infinite.
    static func randomScale(_ g: inout SeededGenerator) -> UInt16 {
        switch g.next() % 8 {
        case 0: return UInt16(truncatingIfNeeded: g.next() % 0x400) | (g.next() % 2 == 0 ? 0 : 0x8000)  // subnormal (or 0)
        case 1: return 0
        default: return Float16(Float.random(in: -2...2, using: &g) * (g.next() % 2 == 0 ? 1 : 1.0 / 512)).bitPattern
        }
    }

    /// A random stored block; `saturated` sets every 6-bit scale and min to 63 (Q6_K: scales ±127/−128).
    static func randomBlock(_ type: GGMLBlockType, saturated: Bool, _ g: inout SeededGenerator) -> [UInt8] {
        var block = (0..<type.bytesPerBlock).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        func put(_ half: UInt16, at offset: Int) { block[offset] = UInt8(half & 0xFF); block[offset + 1] = UInt8(half >> 8) }
        switch type {
        case .q6_K:
            put(randomScale(&g), at: 208)
            if saturated { for j in 0..<16 { block[192 + j] = j % 2 == 0 ? 0x80 : 0x7F } }
        default:
            put(randomScale(&g), at: 0)
            put(randomScale(&g), at: 2)
            if saturated { for j in 4..<16 { block[j] = 0xFF } }
        }
        return block
    }

    /// Quantized activations for `rows` rows of `blocks` super-blocks: row 0's block 0 is zero, row 1's block 0
    /// has one huge value among small ones (when there are such rows).
    struct Activations {
        var quants: [Int8], scales: [Float], sums: [Int16], floats: [Float]
        let depth: Int

        init(rows: Int, blocks: Int, _ g: inout SeededGenerator) {
            depth = 256 * blocks
            floats = (0..<(rows * depth)).map { _ in Float.random(in: -1...1, using: &g) * Float(1 + g.next() % 4) }
            for i in 0..<256 { floats[i] = 0 }
            if rows > 1 { floats[depth + 37] = 3.0e5 }
            quants = [Int8](repeating: 0, count: rows * depth)
            scales = [Float](repeating: 0, count: rows * blocks)
            sums = [Int16](repeating: 0, count: rows * depth / 16)
            for r in 0..<rows {
                let depth = depth
                floats.withUnsafeBufferPointer { x in
                    quants.withUnsafeMutableBufferPointer { q in
                        scales.withUnsafeMutableBufferPointer { d in
                            sums.withUnsafeMutableBufferPointer { s in
                                QuantizedActivations.quantize(.q8_K, x.baseAddress.unsafelyUnwrapped + r * depth, stride: 1, depth: depth,
                                                              quants: q.baseAddress.unsafelyUnwrapped + r * depth,
                                                              scales: d.baseAddress.unsafelyUnwrapped + r * blocks,
                                                              sums: s.baseAddress.unsafelyUnwrapped + r * depth / 16)
                            }
                        }
                    }
                }
            }
        }

        /// Calls `body` with row `first`'s activations from super-block `block` on.
        func with<R>(row first: Int = 0, block: Int = 0, _ body: (Int8Dot.Rows) -> R) -> R {
            quants.withUnsafeBufferPointer { q in
                scales.withUnsafeBufferPointer { d in
                    sums.withUnsafeBufferPointer { s in
                        body(Int8Dot.Rows(quants: q.baseAddress.unsafelyUnwrapped + first * depth + 256 * block,
                                          scales: d.baseAddress.unsafelyUnwrapped + first * depth / 256 + block,
                                          sums: s.baseAddress.unsafelyUnwrapped + first * depth / 16 + 16 * block, stride: depth))
                    }
                }
            }
        }
    }

    /// `blocks` stored panel rows (32 random blocks each; one column all saturated) and their permuted copy.
    static func panels(_ type: GGMLBlockType, blocks: Int, _ g: inout SeededGenerator) -> (stored: [UInt8], permuted: [UInt8]) {
        var stored: [UInt8] = []
        for _ in 0..<blocks { for n in 0..<width { stored += randomBlock(type, saturated: n == 5 || g.next() % 16 == 0, &g) } }
        var permuted = stored
        let rowBytes = width * type.bytesPerBlock
        permuted.withUnsafeMutableBytes { p in
            for b in 0..<blocks { Int8Dot.layout(type, row: p.baseAddress.unsafelyUnwrapped + b * rowBytes) }
        }
        return (stored, permuted)
    }

    /// `Int8Dot.multiply` (or the reference, `isa == nil`) into a NaN-poisoned (or given) output.
    static func run(_ type: GGMLBlockType, isa: Int8Dot.ISA?, rows: Int, blocks: Int, firstBlock: Int = 0, firstRow: Int = 0,
                    _ a: Activations, panel: [UInt8], c: [Float]? = nil) -> [Float] {
        var out = c ?? [Float](repeating: .nan, count: rows * width)
        let rowBytes = width * type.bytesPerBlock, accumulate = c != nil
        a.with(row: firstRow, block: firstBlock) { acts in
            panel.withUnsafeBytes { p in
                out.withUnsafeMutableBufferPointer { o in
                    let (panel, c) = (p.baseAddress.unsafelyUnwrapped + firstBlock * rowBytes, o.baseAddress.unsafelyUnwrapped)
                    if let isa {
                        Int8Dot.multiply(type, isa: isa, rows: rows, blocks: blocks, activations: acts, panel: panel, c: c, accumulate: accumulate)
                    } else {
                        Int8Dot.reference(type, rows: rows, blocks: blocks, activations: acts, panel: panel, c: c, accumulate: accumulate)
                    }
                }
            }
        }
        return out
    }

    @Test("the panel layout only permutes bytes: layout then storedLayout is the identity", arguments: types)
    func layoutRoundTrip(_ type: GGMLBlockType) {
        var g = SeededGenerator(seed: 0x4B51)
        let rowBytes = Self.width * type.bytesPerBlock
        let stored = (0..<rowBytes).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        var permuted = stored
        permuted.withUnsafeMutableBytes { Int8Dot.layout(type, row: $0.baseAddress.unsafelyUnwrapped) }
        #expect(permuted != stored)
        #expect(permuted.sorted() == stored.sorted())
        var back = [UInt8](repeating: 0, count: rowBytes)
        permuted.withUnsafeBytes { p in
            back.withUnsafeMutableBytes { Int8Dot.storedLayout(type, row: p.baseAddress.unsafelyUnwrapped, into: $0.baseAddress.unsafelyUnwrapped) }
        }
        #expect(back == stored)
    }

    @Test("every ISA's kernel is the reference bit for bit: whole, split, and a row alone",
          arguments: types, Int8Dot.ISA.available)
    func kernelsMatchReference(_ type: GGMLBlockType, _ isa: Int8Dot.ISA) {
        var g = SeededGenerator(seed: 0x1D07 &+ UInt64(type.ggmlTypeID) &* 977 &+ UInt64(isa.rawValue))
        for blocks in [1, 2, 5] {
            let (stored, permuted) = Self.panels(type, blocks: blocks, &g)
            let eight = Activations(rows: 8, blocks: blocks, &g)
            for rows in [1, 3, 8] {
                let expected = Self.run(type, isa: nil, rows: rows, blocks: blocks, eight, panel: stored)
                let fast = Self.run(type, isa: isa, rows: rows, blocks: blocks, eight, panel: permuted)
                let same = Self.sameBits(fast, expected)
                #expect(same, "\(type) \(isa.name) rows \(rows) blocks \(blocks): \(Self.firstDifference(fast, expected))")
                let finite = expected.allSatisfy { $0.isFinite }
                #expect(finite)
                // Accumulating: blocks 0..<k, then k..<blocks onto it.
                let k = blocks / 2
                if k > 0 {
                    let first = Self.run(type, isa: isa, rows: rows, blocks: k, eight, panel: permuted)
                    let split = Self.run(type, isa: isa, rows: rows, blocks: blocks - k, firstBlock: k, eight, panel: permuted, c: first)
                    let same = Self.sameBits(split, expected)
                    #expect(same, "\(type) \(isa.name) rows \(rows) split at \(k) of \(blocks): \(Self.firstDifference(split, expected))")
                }
            }
            // One row alone is that row of the 8-row call.
            let all = Self.run(type, isa: isa, rows: 8, blocks: blocks, eight, panel: permuted)
            for r in [0, 1, 6] {
                let alone = Self.run(type, isa: isa, rows: 1, blocks: blocks, firstRow: r, eight, panel: permuted)
                let inside = Array(all[(r * Self.width)..<((r + 1) * Self.width)])
                let same = Self.sameBits(alone, inside)
                #expect(same, "\(type) \(isa.name) row \(r): \(Self.firstDifference(alone, inside))")
            }
        }
    }

    /// The reference against `Σ_i w_i · x_i` in Double, `w` the dequantized weights (GGMLBlocks) and
    /// `x_i = da · a_i` the dequantized activations. Each F32 step of either side rounds once (relative 2^-24):
    /// the reference's `dw·da`, `dmin·da`, two fmas per super-block and the running sum; the dequantized
    /// `w_i` (one rounding of `(d·sc)·q − dmin·m`, its products exact) and `x_i`. Every error is relative to a
    /// term whose magnitude is at most `Σ_i (|d·sc_j·q_i| + |dmin·m_j|)·|x_i|` (the sums S and M may cancel,
    /// so the bound is on the terms, not on |w_i|), so `|error| ≤ (4 + 2·blocks)·2^-24·mag`; the test allows
    /// twice that. `|d·sc_j·q_i| ≤ |w_i| + |dmin·m_j|`, and `−dmin·m_j` is the dequantized block with zero codes.
    @Test("the reference is the dot product of the dequantized weights and activations", arguments: types)
    func referenceMatchesDequantized(_ type: GGMLBlockType) {
        var g = SeededGenerator(seed: 0xD07 &+ UInt64(type.ggmlTypeID))
        let blocks = 5, rows = 3
        let (stored, _) = Self.panels(type, blocks: blocks, &g)
        let a = Activations(rows: rows, blocks: blocks, &g)
        let result = Self.run(type, isa: nil, rows: rows, blocks: blocks, a, panel: stored)
        var worst = 0.0
        for n in 0..<Self.width {
            var w = [Float](repeating: 0, count: 256), mins = [Float](repeating: 0, count: 256)
            var weights: [Float] = [], minus: [Float] = []
            for b in 0..<blocks {
                var block = Array(stored[((b * Self.width + n) * type.bytesPerBlock)..<((b * Self.width + n + 1) * type.bytesPerBlock)])
                block.withUnsafeBytes { GGMLBlocks.dequantize(type, block: $0.baseAddress.unsafelyUnwrapped, into: &w) }
                weights += w
                if type != .q6_K {
                    for i in 16..<type.bytesPerBlock { block[i] = 0 }  // qh (Q5_K) and qs: zero codes
                    block.withUnsafeBytes { GGMLBlocks.dequantize(type, block: $0.baseAddress.unsafelyUnwrapped, into: &mins) }
                    minus += mins
                } else {
                    minus += [Float](repeating: 0, count: 256)
                }
            }
            for r in 0..<rows {
                var exact = 0.0, mag = 0.0
                for i in 0..<(256 * blocks) {
                    let x = Double(a.scales[r * blocks + i / 256] * Float(a.quants[r * a.depth + i]))
                    exact += Double(weights[i]) * x
                    mag += (Double(abs(weights[i])) + 2 * Double(abs(minus[i]))) * abs(x)
                }
                let bound = 2 * Double(4 + 2 * blocks) * 0x1p-24 * mag
                let error = abs(Double(result[r * Self.width + n]) - exact)
                #expect(error <= bound, "\(type) row \(r) column \(n): \(result[r * Self.width + n]) vs \(exact), bound \(bound)")
                if mag > 0 { worst = max(worst, error / mag) }
            }
        }
        #expect(worst > 0)  // the comparison is not vacuous: some rounding happened somewhere
    }
}
