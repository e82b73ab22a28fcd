import Testing
@testable import MoEKit
import MoETestSupport

/// The places where the fast kernels change how they cut the work, each against the reference: an expert
/// with more rows than one row block (192), depths past one K-block (256 k, or 256 k-pairs in BF16
/// compute) in either projection.
@Suite("Fast kernels across their block boundaries")
struct KernelBoundaryTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var tokens: Int, hidden: Int, intermediate: Int
        var compute: ComputeMode = .f32
        var format: WeightFormat? = nil
        /// Every token's first choice is expert 0 (one hot expert), else choices are spread.
        var hotExpert = false
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "expert 0 with 400 rows: three row blocks (136 + 136 + 128)", tokens: 400, hidden: 48, intermediate: 40, hotExpert: true),
        Case(name: "gate/up depth 600: three K-blocks", tokens: 9, hidden: 600, intermediate: 40),
        Case(name: "down depth 300: two K-blocks", tokens: 9, hidden: 40, intermediate: 300),
        Case(name: "BF16 compute, depth 1100 (550 pairs: three K-blocks)", tokens: 9, hidden: 1100, intermediate: 40, compute: .bf16),
        Case(name: "BF16 compute, down depth 600 (300 pairs: two K-blocks)", tokens: 9, hidden: 40, intermediate: 600, compute: .bf16),
        // MXFP4 (depths in groups of 32): the per-group sums across K-blocks and 8-row tiles.
        Case(name: "MXFP4, expert 0 with 400 rows", tokens: 400, hidden: 96, intermediate: 64, format: .mxfp4, hotExpert: true),
        Case(name: "MXFP4, gate/up depth 608 and down depth 320: K-blocks of 256 and a short last one", tokens: 9, hidden: 608,
             intermediate: 320, format: .mxfp4),
    ]

    @Test("fast = reference, the same bits on 1 and 3 threads, a token alone = in the batch", arguments: cases)
    func boundary(_ c: Case) throws {
        var g = SeededGenerator(seed: 51)
        let e = 3
        // BF16-exact weights for BF16 compute, so only the activations' rounding separates it from the reference.
        func weights(_ shape: [Int], std: Float) throws -> Tensor<Float> {
            let w = randomTensor(shape, std: std, generator: &g)
            return c.compute == .bf16 ? try Tensor(shape: shape, storage: w.storage.map { BFloat16($0).float }) : w
        }
        let (h, f) = (c.hidden, c.intermediate)
        let experts = try ExpertWeights(kind: .gated(.silu), gate: weights([e, f, h], std: 1 / Float(h).squareRoot()),
                                        up: weights([e, f, h], std: 1 / Float(h).squareRoot()),
                                        down: weights([e, h, f], std: 1 / Float(f).squareRoot()), format: c.format, compute: c.compute)
        let ids = (0..<c.tokens).map { t in c.hotExpert ? [0, 1 + t % 2] : [t % e, (t + 1) % e] }
        let routeWeights = (0..<c.tokens).map { _ in [Float(0.6), 0.4] }
        let x = randomTensor([c.tokens, h], generator: &g)
        let plan = RoutingPlan(try routes(ids, routeWeights, experts: e))
        if c.hotExpert { #expect(plan.tokensPerExpert[0] == c.tokens && c.tokens > 2 * GroupedPanelGEMM.rowBlock) }

        let fast = try RoutedExperts.run(.fast, input: x, plan: plan, experts: experts, threads: 3)
        let reference = try RoutedExperts.run(.reference, input: x, plan: plan, experts: experts, threads: 1)
        #expect(fast.storage.allSatisfy { $0.isFinite })
        // F32: sums of up to 1100 F32 products, typically √n·ε·Σ|terms| ≈ 33 · 6e-8 · 10 = 2e-5 of max|ref| (the
        // shape-grid argument of KernelTests, n larger); 5e-5 still catches any indexing error (O(1)). BF16 compute
        // rounds every activation to 8 bits: 1e-2 as in ISATests.
        #expect(relativeError(fast, reference) <= (c.compute == .bf16 ? 1e-2 : 5e-5))
        let oneThread = try RoutedExperts.run(.fast, input: x, plan: plan, experts: experts, threads: 1)
        #expect(oneThread.storage.map(\.bitPattern) == fast.storage.map(\.bitPattern))

        for token in [0, c.tokens / 2, c.tokens - 1] {
            let alone = RoutingPlan(try routes([ids[token]], [routeWeights[token]], experts: e))
            let y = try RoutedExperts.run(.fast, input: try x.rows(token..<(token + 1)), plan: alone, experts: experts, threads: 2)
            let inBatch = fast.storage[(token * h)..<((token + 1) * h)]
            #expect(zip(y.storage, inBatch).allSatisfy { $0.bitPattern == $1.bitPattern }, "token \(token)")
        }
    }
}
