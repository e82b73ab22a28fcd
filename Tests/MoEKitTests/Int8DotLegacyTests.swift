import Testing
@testable import MoEKit
import MoETestSupport

/// The int8 kernels of the 32-input block types (`Int8Dot+Legacy.swift`): the panel layout only moves bytes,
/// every ISA's kernel is the reference bit for bit (one call, split calls, one row of a batch), and the
/// reference is the dot product of the dequantized weights and activations up to F32 rounding.
@Suite("int8 dot products: 32-input block types")
struct Int8DotLegacyTests {
    static let types: [GGMLBlockType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .mxfp4]
    static let width = PanelMatrices.width

    /// Equal bits, or both NaN (the payload of `∞ · 0` is the hardware's or libm's choice).
    static func same(_ a: Float, _ b: Float) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }
    static func same(_ a: [Float], _ b: [Float]) -> Bool { a.count == b.count && zip(a, b).allSatisfy { same($0, $1) } }

    /// A random F16 scale: any finite value, subnormals included (exponent field 0…30), or with `tame` a normal
    /// one of moderate size.
    static func randomHalf(tame: Bool, _ g: inout SeededGenerator) -> UInt16 {
        let exponent = tame ? UInt16.random(in: 8...20, using: &g) : UInt16.random(in: 0...30, using: &g)
        return UInt16.random(in: 0...1, using: &g) << 15 | exponent << 10 | UInt16.random(in: 0...0x3FF, using: &g)
    }

    /// `count` random stored blocks of `type`: random codes (Q8_0's −128 among them), random finite scales;
    /// MXFP4 exponents often the edge cases 0x00, 0x01, 0x7F, 0xFE unless `tame`.
    static func randomBlocks(_ type: GGMLBlockType, count: Int, tame: Bool, _ g: inout SeededGenerator) -> [UInt8] {
        let size = type.bytesPerBlock
        var bytes = (0..<(count * size)).map { _ in UInt8.random(in: 0...255, using: &g) }
        for i in 0..<count {
            let base = i * size
            func setHalf(_ offset: Int) {
                let h = randomHalf(tame: tame, &g)
                bytes[base + offset] = UInt8(h & 0xFF)
                bytes[base + offset + 1] = UInt8(h >> 8)
            }
            switch type {
            case .q8_0:
                setHalf(0)
                if i % 3 == 0 { bytes[base + 2 + Int.random(in: 0..<32, using: &g)] = 0x80 }  // −128
            case .q4_0, .q5_0: setHalf(0)
            case .q4_1, .q5_1: setHalf(0); setHalf(2)
            case .mxfp4:
                let edges: [UInt8] = [0x00, 0x01, 0x7F, 0xFE]
                bytes[base] = !tame && i % 4 == 0 ? edges[(i / 4) % edges.count] : UInt8.random(in: 112...140, using: &g)
            case .q4_K, .q5_K, .q6_K: break
            }
        }
        return bytes
    }

    /// Quantized activations of `rows` random rows of `blocks` Q8_0 blocks; row 0's block 0 is all zeros and
    /// row 1's block 0 holds one huge value among small ones.
    struct Activations {
        var quants: [Int8], scales: [Float], sums: [Int16]
        let depth: Int

        init(rows: Int, blocks: Int, _ g: inout SeededGenerator) {
            depth = 32 * blocks
            var x = (0..<(rows * depth)).map { _ in Float.random(in: -2...2, using: &g) }
            for k in 0..<32 { x[k] = 0 }
            if rows > 1 { x[depth + 5] = 3e4 }
            quants = [Int8](repeating: 0, count: rows * depth)
            scales = [Float](repeating: 0, count: rows * blocks)
            sums = [Int16](repeating: 0, count: rows * depth / 16)
            for r in 0..<rows {
                x.withUnsafeBufferPointer { xs in
                    quants.withUnsafeMutableBufferPointer { q in
                        scales.withUnsafeMutableBufferPointer { d in
                            sums.withUnsafeMutableBufferPointer { s in
                                QuantizedActivations.quantize(.q8_0, xs.baseAddress! + r * depth, stride: 1, depth: depth,
                                                              quants: q.baseAddress! + r * depth, scales: d.baseAddress! + r * blocks,
                                                              sums: s.baseAddress! + r * depth / 16)
                            }
                        }
                    }
                }
            }
        }

        /// Calls `body` with the rows starting at `row`, block `block`.
        func with<R>(row: Int = 0, block: Int = 0, _ body: (Int8Dot.Rows) -> R) -> R {
            quants.withUnsafeBufferPointer { q in
                scales.withUnsafeBufferPointer { d in
                    sums.withUnsafeBufferPointer { s in
                        body(Int8Dot.Rows(quants: q.baseAddress! + row * depth + 32 * block, scales: d.baseAddress! + row * depth / 32 + block,
                                          sums: s.baseAddress! + row * depth / 16 + 2 * block, stride: depth))
                    }
                }
            }
        }
    }

    /// The stored panel rows permuted row by row into the kernels' layout.
    static func permuted(_ type: GGMLBlockType, _ stored: [UInt8]) -> [UInt8] {
        var out = stored
        let rowBytes = width * type.bytesPerBlock
        out.withUnsafeMutableBytes { raw in
            for b in 0..<(stored.count / rowBytes) { Int8Dot.layout(type, row: raw.baseAddress! + b * rowBytes) }
        }
        return out
    }

    /// `rows × 32` outputs of the reference (stored rows) or the kernel on `isa` (permuted rows), from NaN or `start`.
    static func run(_ type: GGMLBlockType, isa: Int8Dot.ISA?, rows: Int, blocks: Int, firstBlock: Int = 0, firstRow: Int = 0,
                    activations: Activations, panel: [UInt8], start: [Float]? = nil) -> [Float] {
        var c = start ?? [Float](repeating: .nan, count: rows * width)
        let rowBytes = width * type.bytesPerBlock
        activations.with(row: firstRow, block: firstBlock) { a in
            panel.withUnsafeBytes { p in
                c.withUnsafeMutableBufferPointer { out in
                    let base = p.baseAddress! + firstBlock * rowBytes
                    if let isa {
                        Int8Dot.multiply(type, isa: isa, rows: rows, blocks: blocks, activations: a, panel: base, c: out.baseAddress!, accumulate: start != nil)
                    } else {
                        Int8Dot.reference(type, rows: rows, blocks: blocks, activations: a, panel: base, c: out.baseAddress!, accumulate: start != nil)
                    }
                }
            }
        }
        return c
    }

    /// |d · q| + |m| of input `j` of a stored Q4_1 or Q5_1 block (q ≤ 31: 31 · |d| bounds |d · q|).
    static func minMagnitude(_ type: GGMLBlockType, _ block: [UInt8], _ j: Int) -> Double {
        func half(_ i: Int) -> Double { Double(Float(Float16(bitPattern: UInt16(block[i]) | UInt16(block[i + 1]) << 8))) }
        return abs(half(0)) * (type == .q4_1 ? 15 : 31) + abs(half(2))
    }

    @Test("the layout only moves bytes: stored → layout → stored is the identity", arguments: types)
    func layoutRoundTrip(_ type: GGMLBlockType) {
        #expect(Int8Dot.supports(type))
        var g = SeededGenerator(seed: 11)
        let rowBytes = Self.width * type.bytesPerBlock
        let row = (0..<rowBytes).map { _ in UInt8.random(in: 0...255, using: &g) }
        let permuted = Self.permuted(type, row)
        #expect(permuted.sorted() == row.sorted())
        var back = [UInt8](repeating: 0, count: rowBytes)
        permuted.withUnsafeBytes { p in back.withUnsafeMutableBytes { Int8Dot.storedLayout(type, row: p.baseAddress!, into: $0.baseAddress!) } }
        #expect(back == row)
    }

    @Test("every ISA's kernel is the reference bit for bit: whole, split and one-row calls", arguments: types)
    func kernelsMatchReference(_ type: GGMLBlockType) {
        var g = SeededGenerator(seed: 1_000 + UInt64(type.ggmlTypeID))
        for blocks in [1, 2, 5, 32] {
            let stored = Self.randomBlocks(type, count: blocks * Self.width, tame: false, &g)
            let panel = Self.permuted(type, stored)
            let activations = Activations(rows: 8, blocks: blocks, &g)
            for rows in [1, 3, 8] {
                let expected = Self.run(type, isa: nil, rows: rows, blocks: blocks, activations: activations, panel: stored)
                for isa in Int8Dot.ISA.available {
                    let got = Self.run(type, isa: isa, rows: rows, blocks: blocks, activations: activations, panel: panel)
                    #expect(Self.same(got, expected), "\(type) \(isa.name) rows \(rows) blocks \(blocks)")
                    if blocks > 1 {
                        let half = blocks / 2
                        let first = Self.run(type, isa: isa, rows: rows, blocks: half, activations: activations, panel: panel)
                        let split = Self.run(type, isa: isa, rows: rows, blocks: blocks - half, firstBlock: half, activations: activations,
                                             panel: panel, start: first)
                        #expect(Self.same(split, expected), "\(type) \(isa.name) rows \(rows) blocks \(half) + \(blocks - half)")
                    }
                    if rows == 8 {
                        for r in [0, 1, 7] {
                            let one = Self.run(type, isa: isa, rows: 1, blocks: blocks, firstRow: r, activations: activations, panel: panel)
                            #expect(Self.same(one, Array(got[(r * Self.width)..<((r + 1) * Self.width)])), "\(type) \(isa.name) row \(r) alone")
                        }
                    }
                }
            }
        }
    }

    /// Against the dot product in Double of the dequantized weights (GGMLBlocks) and activations (code · scale):
    /// each block adds at most two F32 roundings to its term (dw · da, then the fused multiply-add; Q4_1 and Q5_1 two more
    /// for its minimum, and one in ggml's `d · q + m`), each at most 2⁻²⁴ of the sum of magnitudes so far, so the
    /// error is below (2·blocks + 4) · 2⁻²⁴ · Σ|terms| plus an ulp of the subnormal range per operation.
    @Test("the reference is the dot product of the dequantized weights and activations", arguments: types)
    func referenceIsTheDotProduct(_ type: GGMLBlockType) {
        var g = SeededGenerator(seed: 77 + UInt64(type.ggmlTypeID))
        let blocks = 9, rows = 2
        let stored = Self.randomBlocks(type, count: blocks * Self.width, tame: true, &g)
        let activations = Activations(rows: rows, blocks: blocks, &g)
        let got = Self.run(type, isa: nil, rows: rows, blocks: blocks, activations: activations, panel: stored)
        var weights = [Float](repeating: 0, count: 32)
        var worst = 0.0
        for r in 0..<rows {
            for n in 0..<Self.width {
                var exact = 0.0, magnitude = 0.0
                for b in 0..<blocks {
                    stored.withUnsafeBytes { raw in
                        weights.withUnsafeMutableBufferPointer {
                            GGMLBlocks.dequantize(type, block: raw.baseAddress! + (b * Self.width + n) * type.bytesPerBlock, into: $0.baseAddress!)
                        }
                    }
                    let da = Double(activations.scales[r * blocks + b])
                    let block = Array(stored[((b * Self.width + n) * type.bytesPerBlock)...].prefix(type.bytesPerBlock))
                    for j in 0..<32 {
                        let a = Double(activations.quants[r * blocks * 32 + 32 * b + j]) * da
                        exact += Double(weights[j]) * a
                        // Q4_1 and Q5_1 sum d·q and m separately: their magnitudes, not that of d·q + m.
                        magnitude += type == .q4_1 || type == .q5_1 ? Self.minMagnitude(type, block, j) * abs(a) : abs(Double(weights[j]) * a)
                    }
                }
                let bound = Double(2 * blocks + 4) * 0x1p-24 * magnitude + Double(4 * blocks) * 0x1p-149
                let error = abs(Double(got[r * Self.width + n]) - exact)
                worst = max(worst, error / max(bound, .leastNormalMagnitude))
                #expect(error <= bound, "\(type) row \(r) column \(n): \(got[r * Self.width + n]) vs \(exact)")
            }
        }
        #expect(worst < 1)
    }
}
