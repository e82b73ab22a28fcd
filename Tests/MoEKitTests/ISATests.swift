import Testing
@testable import MoEKit
import MoETestSupport

/// Every (weight format × instruction set) path of the fast kernels (AVX-512, AVX2, portable Swift)
/// against the reference, on fresh random weights stored in each format (FP8 with partial edge blocks
/// both ways, MXFP4): the CPU running the tests picks one path for `.fast`, so the others are forced here.
@Suite("Fast kernels on every instruction set")
struct ISATests {
    /// Every stored format, and BF16 compute.
    static let precisions: [(format: WeightFormat, compute: ComputeMode)] = [
        (.f32, .f32), (.bf16, .f32), (.f16, .f32), (.bf16, .bf16),
        (.fp8E4M3(blockRows: 128, blockColumns: 128), .f32), (.fp8E4M3(blockRows: 16, blockColumns: 64), .f32), (.mxfp4, .f32),
    ]

    struct Case: Sendable, CustomTestStringConvertible {
        var isa: TileKernel.ISA
        var format: WeightFormat
        var compute: ComputeMode
        var testDescription: String { "\(isa) \(format)\(compute == .bf16 ? " bf16-compute" : "")" }
        static let all = TileKernel.ISA.available.flatMap { isa in precisions.map { Case(isa: isa, format: $0.format, compute: $0.compute) } }
    }

    @Test("projections match the reference", arguments: Case.all)
    func projections(_ c: Case) throws {
        var g = SeededGenerator(seed: 7)
        // 300 > one K-block (256) and FP8 blocks of 128 cut partially both ways; 45 not a multiple of the
        // 32-wide panels; 19 rows not a multiple of 8. MXFP4 needs inputs in groups of 32: 288 and 96.
        let (e, h, f, t, k) = c.format == .mxfp4 ? (5, 288, 96, 19, 2) : (5, 300, 45, 19, 2)
        let experts = try ExpertWeights(kind: .gated(.silu), gate: randomTensor([e, f, h], std: 0.1, generator: &g),
                                        up: randomTensor([e, f, h], std: 0.1, generator: &g),
                                        down: randomTensor([e, h, f], std: 0.1, generator: &g), format: c.format, compute: c.compute)
        #expect(experts.format == c.format && experts.compute == c.compute)
        var ids: [Int64] = []
        for token in 0..<t { ids += [Int64(token % 3), Int64(3 + token % 2)] }  // expert 0..2 and 3..4; none empty
        let routes = try RouteAssignments(selectedExperts: try Tensor(shape: [t, k], storage: ids),
                                          routingWeights: randomTensor([t, k], generator: &g), expertCount: e)
        let plan = RoutingPlan(routes)
        let x = randomTensor([t, h], generator: &g)
        var fast = Tensor<Float>(shape: [plan.rowCount, f], repeating: .nan)
        ProjectionToIntermediate.fast(input: x, plan: plan, experts: experts, scalesInput: false, threads: 2, isa: c.isa, into: &fast)
        let reference = try ProjectionToIntermediate.run(.reference, input: x, plan: plan, experts: experts)
        // F32 paths: F32 accumulation over ≤ 300 terms vs the F64 reference, far below 1e-5 of max|ref|.
        // BF16 compute rounds every activation to 8 mantissa bits (relative 2⁻⁹ each); over a dot product the
        // error stays below about 2⁻⁸ of Σ|terms|, which for these random inputs is under 1e-2 of max|ref|.
        // Quantized formats: both sides multiply the same exactly decoded weights, so F32 accumulation again.
        let tolerance = c.compute == .bf16 ? 1e-2 : 1e-5
        #expect(relativeError(fast, reference) <= tolerance)
        if c.compute == .bf16 { #expect(relativeError(fast, reference) > 0, "BF16 compute should round") }
        var y = Tensor<Float>(shape: [t, h], repeating: .nan)
        ProjectionToOutput.fast(intermediate: reference, plan: plan, experts: experts, weightsOutputs: true, threads: 2, isa: c.isa, into: &y)
        let yRef = try ProjectionToOutput.run(.reference, intermediate: reference, plan: plan, experts: experts)
        #expect(relativeError(y, yRef) <= tolerance)
    }

    @Test("BF16 panels of BF16 weights give the same bits as F32 panels")
    func bf16PanelsAreExact() throws {
        var g = SeededGenerator(seed: 8)
        let (e, h, f, t) = (2, 64, 40, 9)
        func weights(_ shape: [Int]) -> Tensor<Float> {
            let w = randomTensor(shape, std: 0.2, generator: &g)
            return (try? Tensor(shape: shape, storage: w.storage.map { BFloat16($0).float })) ?? w
        }
        let (gate, up, down) = (weights([e, f, h]), weights([e, f, h]), weights([e, h, f]))
        let automatic = try ExpertWeights(kind: .gated(.silu), gate: gate, up: up, down: down)
        let f32 = try ExpertWeights(kind: .gated(.silu), gate: gate, up: up, down: down, format: .f32)
        #expect(automatic.format == .bf16, "BF16-exact weights should pack as BF16")
        let routes = try RouteAssignments(selectedExperts: try Tensor(shape: [t, 1], storage: (0..<t).map { Int64($0 % e) }),
                                          routingWeights: Tensor(shape: [t, 1], repeating: 1), expertCount: e)
        let plan = RoutingPlan(routes)
        let x = randomTensor([t, h], generator: &g)
        let a = try ProjectionToIntermediate.run(.fast, input: x, plan: plan, experts: automatic, threads: 2)
        let b = try ProjectionToIntermediate.run(.fast, input: x, plan: plan, experts: f32, threads: 2)
        #expect(a.storage == b.storage)
    }

    @Test("the fused routed-experts path gives the same bits as the two projections", arguments: [ComputeMode.f32, .bf16])
    func fusedMatchesProjections(_ compute: ComputeMode) throws {
        var g = SeededGenerator(seed: 9)
        // F = 45: odd (the last bf16 pair is half padding) and not a multiple of the 32-wide panels;
        // expert 1 gets one row, expert 4 none, expert 0 more than one tile.
        let (e, h, f, t) = (5, 70, 45, 13)
        // BF16-exact weights, so BF16 panels lose nothing against the reference.
        func weights(_ shape: [Int]) throws -> Tensor<Float> {
            try Tensor(shape: shape, storage: randomTensor(shape, std: 0.1, generator: &g).storage.map { BFloat16($0).float })
        }
        let experts = try ExpertWeights(kind: .gated(.silu), gate: weights([e, f, h]), up: weights([e, f, h]),
                                        down: weights([e, h, f]), compute: compute)
        var ids: [[Int]] = []
        for token in 0..<t { ids.append(token == 0 ? [1, 0] : [0, 2 + token % 2]) }
        let plan = RoutingPlan(try routes(ids, ids.map { _ in [0.7, 0.3] }, experts: e))
        #expect(plan.tokensPerExpert == [13, 1, 6, 6, 0])
        let x = randomTensor([t, h], generator: &g)
        let a = try ProjectionToIntermediate.run(.fast, input: x, plan: plan, experts: experts, threads: 2)
        let twoSteps = try ProjectionToOutput.run(.fast, intermediate: a, plan: plan, experts: experts, threads: 2)
        let fused = try RoutedExperts.run(.fast, input: x, plan: plan, experts: experts, threads: 2)
        #expect(fused.storage == twoSteps.storage)
        #expect(fused.storage.allSatisfy { $0.isFinite })
        let reference = try RoutedExperts.run(.reference, input: x, plan: plan, experts: experts, threads: 1)
        #expect(relativeError(fused, reference) <= (compute == .bf16 ? 1e-2 : 1e-5))
    }

    @Test("the AVX-512 tile writers give the bits of the Swift writer", arguments: [(11, 32), (8, 13), (3, 17), (16, 1)])
    func tileWriters(_ shape: (rows: Int, columns: Int)) throws {
        guard TileKernel.ISA.detected == .avx512 else { return }  // nothing to compare on this CPU
        var g = SeededGenerator(seed: 10)
        var block = randomTensor([GroupedPanelGEMM.rowBlock, PanelMatrices.width], generator: &g).storage
        // Rounding edge cases: a tie, NaN, infinities, a subnormal, negative zero.
        block[0] = Float(bitPattern: 0x3F80_8000); block[1] = .nan; block[2] = .infinity
        block[3] = -.infinity; block[33] = Float.leastNonzeroMagnitude; block[34] = -0.0
        let depth = 45, tiles = (shape.rows + 7) / 8
        for format in [PackedRows.Format.f32, .bf16Pairs] {
            func write(_ isa: TileKernel.ISA) -> ([UInt32], [UInt32]) {
                var floats = [Float](repeating: .nan, count: tiles * 8 * depth)
                var words = [UInt32](repeating: .max, count: tiles * 8 * ((depth + 1) / 2))
                block.withUnsafeBufferPointer { b in
                    floats.withUnsafeMutableBufferPointer { f in
                        words.withUnsafeMutableBufferPointer { w in
                            PackedRows.writeBlock(b.baseAddress!, rows: shape.rows, columns: shape.columns, firstPaddedRow: 0,
                                                  firstColumn: 0, depth: depth, format: format, isa: isa,
                                                  floats: f.baseAddress!, words: w.baseAddress!)
                        }
                    }
                }
                return (floats.map(\.bitPattern), words)
            }
            let (swift, avx) = (write(.portable), write(.avx512))
            #expect(swift.0 == avx.0, "F32 tiles differ (\(format))")
            #expect(swift.1 == avx.1, "pair tiles differ (\(format))")
        }
    }

    @Test("the AVX2 tile gather gives the bits of the Swift gather", arguments: [45, 64])
    func tileGather(_ depth: Int) throws {
        guard TileKernel.ISA.detected >= .avx2 else { return }  // nothing to compare on this CPU
        var g = SeededGenerator(seed: 11)
        let t = 12
        var x = randomTensor([t, depth], generator: &g).storage
        x[0] = Float(bitPattern: 0x3F80_8000); x[1] = .nan; x[2] = .infinity; x[3] = Float.leastNonzeroMagnitude; x[4] = -0.0
        // Experts with 11, 1, 0 and 12 rows (tiles of 8 + 3, a lone row, none, 8 + 4); scales differ per slot.
        var ids: [[Int]] = []
        for token in 0..<t { ids.append(token < 9 ? [0, 3] : token == 9 ? [1, 3] : [3, 0]) }
        let plan = RoutingPlan(try routes(ids, ids.map { _ in [0.6, 0.4] }, experts: 4))
        #expect(plan.tokensPerExpert == [11, 1, 0, 12])
        for format in [PackedRows.Format.f32, .bf16Pairs] {
            func gather(_ isa: TileKernel.ISA) -> ([UInt32], [UInt32]) {
                let rows = x.withUnsafeBufferPointer { base in
                    PackedRows(plan: plan, depth: depth, format: format, threads: 2, isa: isa) { row in
                        (base.baseAddress! + Int(plan.rowToken[row]) * depth, plan.rowWeight[row])
                    }
                }
                return (rows.storage.map(\.bitPattern), rows.pairs)
            }
            let (swift, avx) = (gather(.portable), gather(.avx2))
            #expect(swift.0 == avx.0 && swift.1 == avx.1, "gathered tiles differ (\(format), depth \(depth))")
        }
    }
}
