import Testing
@testable import MoEKit
import MoETestSupport

/// Decode runs one row per expert, where the kernels take two panels at once (FP8 and MXFP4 on AVX-512):
/// a token's result must still be the bits it gets inside any batch (where 8-row tiles compute it), and the
/// two-panel call the bits of two one-panel calls, fallbacks included.
@Suite("One-row kernels")
struct OneRowKernelTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var isa: TileKernel.ISA
        var format: WeightFormat
        var testDescription: String { "\(isa) \(format)" }
        static let all = TileKernel.ISA.available.flatMap { isa in ISATests.precisions.filter { $0.compute == .f32 }.map { Case(isa: isa, format: $0.format) } }
    }

    @Test("a token alone gives the bits it gets in a batch", arguments: Case.all)
    func tokenAloneMatchesBatch(_ c: Case) throws {
        var g = SeededGenerator(seed: 31)
        // F 96 and H 288: several panels (pairs and a lone last panel), MXFP4 groups of 32; FP8 blocks cut partially.
        let (e, h, f, t) = (3, 288, 96, 11)
        let experts = try ExpertWeights(kind: .gated(.silu), gate: randomTensor([e, f, h], std: 0.1, generator: &g),
                                        up: randomTensor([e, f, h], std: 0.1, generator: &g),
                                        down: randomTensor([e, h, f], std: 0.1, generator: &g), format: c.format)
        let ids = (0..<t).map { [$0 % e, ($0 + 1) % e] }
        let weights = (0..<t).map { _ in [Float(0.7), 0.3] }
        let x = randomTensor([t, h], generator: &g)
        func run(_ tokens: [Int]) throws -> [Float] {
            let plan = RoutingPlan(try routes(tokens.map { ids[$0] }, tokens.map { weights[$0] }, experts: e))
            let input = try Tensor(shape: [tokens.count, h], storage: tokens.flatMap { x.storage[($0 * h)..<(($0 + 1) * h)] })
            var a = Tensor<Float>(shape: [plan.rowCount, f], repeating: .nan)
            ProjectionToIntermediate.fast(input: input, plan: plan, experts: experts, scalesInput: false, threads: 2, isa: c.isa, into: &a)
            var y = Tensor<Float>(shape: [tokens.count, h], repeating: .nan)
            ProjectionToOutput.fast(intermediate: a, plan: plan, experts: experts, weightsOutputs: true, threads: 2, isa: c.isa, into: &y)
            return y.storage
        }
        let batch = try run(Array(0..<t))
        #expect(batch.allSatisfy { $0.isFinite })
        for token in [0, 5, 10] {
            let alone = try run([token])
            let differing = zip(alone, batch[(token * h)..<((token + 1) * h)]).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differing == 0, "token \(token): \(differing) of \(h) outputs differ from the batch's")
        }
    }

    /// Weights scaled by `weightScale` (FP8 block scales ≥ 2⁸ leave the fast one-row path; MXFP4 scales
    /// above 2⁶³ leave the per-group sums) and activations with or without a zero.
    static let pairCases: [(format: WeightFormat, weightScale: Float, zeroActivation: Bool)] = [
        (.fp8E4M3(blockRows: 128, blockColumns: 128), 1, false), (.fp8E4M3(blockRows: 16, blockColumns: 64), 1, false),
        (.fp8E4M3(blockRows: 128, blockColumns: 128), 1e6, false), (.mxfp4, 1, false), (.mxfp4, 1, true), (.mxfp4, 1e20, false),
    ]

    @Test("two panels in one call give the bits of two calls", arguments: TileKernel.ISA.available, pairCases)
    func pairMatchesTwoCalls(_ isa: TileKernel.ISA, _ c: (format: WeightFormat, weightScale: Float, zeroActivation: Bool)) throws {
        var g = SeededGenerator(seed: 32)
        // Two 32-column panels of gate and up each (panel 0 of gate and panel 1 of up are paired); 320 inputs:
        // a K-block of 256 and a partial one.
        let (h, f) = (320, 64)
        let w = randomTensor([1, f, h], std: 0.1, generator: &g).storage.map { $0 * c.weightScale }
        let experts = try ExpertWeights(kind: .gated(.silu), gate: Tensor(shape: [1, f, h], storage: w),
                                        up: Tensor(shape: [1, f, h], storage: w.reversed()),
                                        down: randomTensor([1, h, f], std: 0.1, generator: &g), format: c.format)
        let panels = experts.gateUp
        var tile = [Float](repeating: 0, count: h * TileKernel.rows)
        for k in 0..<h { tile[k * TileKernel.rows] = c.zeroActivation && k == 37 ? 0 : Float.random(in: 0.5...1.5, using: &g) * (k % 2 == 0 ? 1 : -1) }
        let start = (0..<(2 * PanelMatrices.width)).map { _ in Float.random(in: -1...1, using: &g) }
        for accumulate in [false, true] {
            var pair = start, single = start
            let p = panels.pointers
            let depth = panels.depthUnits
            tile.withUnsafeBytes { a in
                pair.withUnsafeMutableBufferPointer { pc in
                    TileKernel.multiplyOneRow(isa: isa, element: panels.element, depth: depth, a: a.baseAddress!,
                                              panelA: (p.values + panels.panelOffset(matrix: 0, panel: 0), p.scales.map { $0 + panels.scaleOffset(matrix: 0, panel: 0) }, pc.baseAddress!),
                                              panelB: (p.values + panels.panelOffset(matrix: 0, panel: 1, source: 1), p.scales.map { $0 + panels.scaleOffset(matrix: 0, panel: 1, source: 1) }, pc.baseAddress! + 32),
                                              accumulate: accumulate)
                }
                single.withUnsafeMutableBufferPointer { sc in
                    for panel in 0..<2 {
                        TileKernel.multiply(isa: isa, element: panels.element, rows: 1, depth: depth, a: a.baseAddress!,
                                            b: p.values + panels.panelOffset(matrix: 0, panel: panel, source: panel),
                                            scales: p.scales.map { $0 + panels.scaleOffset(matrix: 0, panel: panel, source: panel) },
                                            c: sc.baseAddress! + 32 * panel, accumulate: accumulate)
                    }
                }
            }
            #expect(pair.allSatisfy { $0.isFinite })
            let differing = zip(pair, single).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differing == 0, "accumulate \(accumulate): \(differing) of 64 outputs differ")
        }
    }
}
