import Foundation
import Testing
@testable import MoEKit
import MoETestSupport

/// The MXFP4 micro-tile on every instruction set, called directly on random panel bytes: the panel layout
/// (whole quads of k in one 64-byte line, then a tail of 16-byte rows) spelled out independently here, odd
/// depths that reach the tail, scales inside and outside the window where the AVX-512 kernels sum per
/// 32-k group, and every row count of a tile giving the bits of the same row alone.
@Suite("MXFP4 panel kernels")
struct MXFP4PanelKernelTests {
    static let e2m1: [Double] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]

    /// Column n's code at row k of a `depth`-row panel, read as the layout is documented.
    static func code(_ bytes: [UInt8], k: Int, column n: Int, depth: Int) -> Int {
        let quads = depth - depth % 4
        let byte = k < quads ? bytes[(k / 4) * 64 + (n % 16) * 4 + k % 4] : bytes[k * 16 + n % 16]
        return Int(n < 16 ? byte & 0xF : byte >> 4)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var isa: TileKernel.ISA
        var depth: Int
        /// Scales from this range (the grouped sum takes 64 ... 190 only).
        var scales: ClosedRange<UInt8>
        var testDescription: String { "\(isa) depth \(depth) scales \(scales)" }
        static let all = TileKernel.ISA.available.flatMap { isa in
            [(4, 100...140), (37, 100...140), (64, 118...126), (99, 100...140), (288, 64...190), (70, 40...140), (64, 120...200)].map {
                Case(isa: isa, depth: $0.0, scales: UInt8($0.1.lowerBound)...UInt8($0.1.upperBound))
            }
        }
    }

    @Test("every ISA matches the layout's dequantized sum; a row alone gives its bits in a full tile", arguments: Case.all)
    func matchesDequantizedSum(_ c: Case) {
        var g = SeededGenerator(seed: UInt64(40 + c.depth))
        let (depth, rows, width) = (c.depth, TileKernel.rows, PanelMatrices.width)
        let groups = (depth + WeightFormat.mxfp4Group - 1) / WeightFormat.mxfp4Group
        let panel = (0..<(depth * 16)).map { _ in UInt8.random(in: 0...255, using: &g) }
        let scales = (0..<(groups * width)).map { _ in UInt8.random(in: c.scales, using: &g) }
        let tile = (0..<(depth * rows)).map { _ in Float.random(in: -2...2, using: &g) }
        // The exact sum in Double and the sum of magnitudes (the tolerance's scale) per (row, column).
        var exact = [Double](repeating: 0, count: rows * width), magnitude = exact
        for r in 0..<rows {
            for n in 0..<width {
                for k in 0..<depth {
                    let w = Self.e2m1[Self.code(panel, k: k, column: n, depth: depth)] * pow(2, Double(Int(scales[(k / 32) * width + n]) - 127))
                    exact[r * width + n] += Double(tile[k * rows + r]) * w
                    magnitude[r * width + n] += abs(Double(tile[k * rows + r]) * w)
                }
            }
        }
        func run(rows count: Int, tile a: [Float], start: [Float]?) -> [Float] {
            var out = start ?? [Float](repeating: .nan, count: rows * width)
            a.withUnsafeBytes { a in
                panel.withUnsafeBytes { b in
                    scales.withUnsafeBytes { s in
                        out.withUnsafeMutableBufferPointer { o in
                            TileKernel.multiply(isa: c.isa, element: .mxfp4, rows: count, depth: depth, a: a.baseAddress!, b: b.baseAddress!,
                                                scales: s.baseAddress!, c: o.baseAddress!, accumulate: start != nil)
                        }
                    }
                }
            }
            return out
        }
        let full = run(rows: rows, tile: tile, start: nil)
        // F32 sums of at most `depth` products (plus one rounding per group): each within depth · 2⁻²⁴ of the
        // magnitudes' sum; 1e-5 leaves room at depth 288 (1.7e-5 is the worst-case bound, never approached).
        let far = (0..<(rows * width)).filter { abs(Double(full[$0]) - exact[$0]) > 1e-5 * magnitude[$0] + 1e-30 }
        #expect(far.isEmpty, "\(far.count) of \(rows * width) outputs differ from the exact sum, first \(far.first.map { "\(full[$0]) vs \(exact[$0])" } ?? "")")
        // Row 0 alone (the other rows' activations zero, their outputs untouched): the same bits, and a
        // later K-block accumulating onto it continues from them.
        var alone = [Float](repeating: 0, count: depth * rows)
        for k in 0..<depth { alone[k * rows] = tile[k * rows] }
        for count in [1, 2, 4] {
            let one = run(rows: count, tile: alone, start: nil)
            let differing = (0..<width).filter { one[$0].bitPattern != full[$0].bitPattern }.count
            #expect(differing == 0, "\(count) rows: \(differing) of \(width) outputs of row 0 differ from the 8-row tile's")
        }
        let base = (0..<(rows * width)).map { _ in Float.random(in: -1...1, using: &g) }
        let continued = run(rows: rows, tile: tile, start: base)
        let singleContinued = run(rows: 1, tile: alone, start: base)
        let differing = (0..<width).filter { continued[$0].bitPattern != singleContinued[$0].bitPattern }.count
        #expect(differing == 0, "accumulating: \(differing) of \(width) outputs of row 0 differ")
        #expect(continued.allSatisfy { $0.isFinite })
    }
}
