import CMoEKernels
import Testing
@testable import MoEKit
import MoETestSupport

/// The activation quantizers of `--compute int8`: the AVX-512 C quantizers (`moe_quantize_rows.h`) against the
/// Swift reference (ggml's `quantize_row_q8_0_ref` / `quantize_row_q8_K_ref`), bit for bit.
@Suite("int8 activation quantizers")
struct QuantizedActivationsTests {
    /// An 8-row k-major tile (`tile[k·8 + r]`) of random values with the hard cases planted: a zero block, exact
    /// rounding ties (a block whose largest magnitude is 127, so d = 1 and x.5 stays a tie), the largest magnitude
    /// twice with both signs, subnormal and huge values.
    static func tile(depth: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        var t = randomTensor([depth * 8], std: 2, generator: &rng).storage
        func set(_ r: Int, _ k: Int, _ v: Float) { t[k * 8 + r] = v }
        for k in 0..<32 { set(0, k, 0) }  // row 0, block 0: zeros
        for k in 32..<64 { set(1, k, Float(k % 7) - 3.5) }  // ties after scaling by 127 / 127
        set(1, 40, 127)
        for k in 0..<256 { set(2, k, Float(k % 5) * 0.25) }  // the largest magnitude twice, with both signs (Q8_K)
        set(2, 17, -9); set(2, 200, 9)
        set(3, 5, 0x1p-133); set(3, 6, 3e38); set(3, 7, -3e38)
        for k in 0..<256 { set(4, k, Float(k % 9 - 4) * 0x1p-136) }  // scales underflow: an inverse of infinity
        return t
    }

    @Test("the AVX-512 quantizers are the Swift reference bit for bit", arguments: [QuantizedActivations.Kind.q8_0, .q8_K])
    func vectorMatchesReference(_ kind: QuantizedActivations.Kind) throws {
        guard Int8Dot.ISA.detected == .avx512vnni else { print("skipped: no AVX-512 VNNI here"); return }
        for (depth, seed) in [(256, 1 as UInt64), (512, 2), (768, 3)] {
            let tile = Self.tile(depth: depth, seed: seed)
            for rows in [1, 3, 8] {
                let (blocks, groups) = (depth / kind.blockSize, depth / 16)
                var q = [Int8](repeating: 0x55, count: rows * depth), d = [Float](repeating: .nan, count: rows * blocks)
                var s = [Int16](repeating: 0x5555, count: rows * groups)
                var rq = q, rd = d, rs = s
                tile.withUnsafeBufferPointer { x in
                    let base = x.baseAddress.unsafelyUnwrapped
                    let quantize = kind == .q8_0 ? moe_quantize_tile_q8_0_avx512 : moe_quantize_tile_q8_K_avx512
                    quantize(Int32(rows), Int32(depth), base, &q, &d, &s)
                    for r in 0..<rows {
                        rq.withUnsafeMutableBufferPointer { qp in rd.withUnsafeMutableBufferPointer { dp in rs.withUnsafeMutableBufferPointer { sp in
                            QuantizedActivations.quantize(kind, base + r, stride: 8, depth: depth, quants: qp.baseAddress.unsafelyUnwrapped + r * depth,
                                                          scales: dp.baseAddress.unsafelyUnwrapped + r * blocks, sums: sp.baseAddress.unsafelyUnwrapped + r * groups)
                        } } }
                    }
                }
                #expect(q == rq, "\(kind) codes, depth \(depth), rows \(rows)")
                #expect(d.map(\.bitPattern) == rd.map(\.bitPattern), "\(kind) scales, depth \(depth), rows \(rows)")
                #expect(s == rs, "\(kind) sums, depth \(depth), rows \(rows)")
            }
        }
    }

    @Test("infinite and NaN inputs give defined codes, never a trap", arguments: [QuantizedActivations.Kind.q8_0, .q8_K])
    func nonFiniteInputs(_ kind: QuantizedActivations.Kind) {
        var x = (0..<256).map { Float($0 % 11) - 5 }
        x[3] = .infinity; x[40] = -.infinity; x[77] = .nan
        var q = [Int8](repeating: 9, count: 256), d = [Float](repeating: 9, count: 8), s = [Int16](repeating: 9, count: 16)
        QuantizedActivations.quantize(kind, x, stride: 1, depth: 256, quants: &q, scales: &d, sums: &s)
        #expect(q.allSatisfy { abs(Int($0)) <= 127 })
        #expect(!d[0].isFinite || d[0] == 0 || kind == .q8_K, "a block with an infinity has no finite Q8_0 scale: \(d[0])")
    }

    @Test("the reference: ties away from zero (Q8_0), to even (Q8_K), zero blocks, the signed maximum")
    func referenceCases() {
        var x = [Float](repeating: 0, count: 256)
        x[0] = 127; x[1] = 2.5; x[2] = -2.5; x[3] = 0.5
        var q = [Int8](repeating: 9, count: 256), d = [Float](repeating: 9, count: 8), s = [Int16](repeating: 9, count: 16)
        QuantizedActivations.quantize(.q8_0, x, stride: 1, depth: 256, quants: &q, scales: &d, sums: &s)
        #expect(Array(q[0..<4]) == [127, 3, -3, 1] && d[0] == 1 && d[1] == 0 && q[32..<256].allSatisfy { $0 == 0 })
        #expect(s[0] == 128 && s[1] == 0)
        x[0] = -127; x[5] = 127  // the first of the largest magnitudes decides the sign: iscale = 1
        QuantizedActivations.quantize(.q8_K, x, stride: 1, depth: 256, quants: &q, scales: &d, sums: &s)
        #expect(Array(q[0..<6]) == [-127, 2, -2, 0, 0, 127] && d[0] == 1)  // from x[5] it would be the negation, d = −1
    }
}
