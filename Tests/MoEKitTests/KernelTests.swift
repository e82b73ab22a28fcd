import Foundation
import Testing
import MoEKit
import MoETestSupport

/// Expert kinds under test, with a readable name.
struct KindCase: Sendable, CustomTestStringConvertible {
    var kind: ExpertKind
    var name: String
    var testDescription: String { name }
    static let all: [KindCase] = [
        .init(kind: .gated(.silu), name: "gated silu"),
        .init(kind: .gated(.gelu), name: "gated gelu"),
        .init(kind: .mlp(.gelu), name: "mlp gelu"),
        .init(kind: .mlp(.relu), name: "mlp relu"),
        .init(kind: .mlp(.geluTanh), name: "mlp gelu-tanh"),
        .init(kind: .clampedGated(alpha: 1.702, limit: 7), name: "clamped gated (GPT-OSS)"),
    ]
}

/// One shape of the kernel grid.
struct ShapeCase: Sendable, CustomTestStringConvertible {
    enum Routing: String, Sendable { case random, emptyExpert = "expert 1 empty", allOnOne = "all on expert 2", kEqualsE = "K == E" }
    var tokens: Int
    var hidden: Int
    var intermediate: Int
    var routing: Routing
    var testDescription: String { "T=\(tokens) H=\(hidden) F=\(intermediate) \(routing.rawValue)" }

    var experts: Int { routing == .kEqualsE ? 3 : 4 }
    var topK: Int {
        switch routing {
        case .random, .emptyExpert: 2
        case .allOnOne: 1
        case .kEqualsE: 3
        }
    }
    var pool: [Int]? {
        switch routing {
        case .random, .kEqualsE: nil
        case .emptyExpert: [0, 2, 3]
        case .allOnOne: [2]
        }
    }

    static let all: [ShapeCase] = {
        var cases: [ShapeCase] = []
        for t in [1, 5, 17, 129] {
            for (h, f) in [(20, 13), (32, 64)] {
                for routing in [Routing.random, .emptyExpert, .allOnOne, .kEqualsE] {
                    cases.append(.init(tokens: t, hidden: h, intermediate: f, routing: routing))
                }
            }
        }
        return cases
    }()
}

/// Reference (F64 accumulation) vs fast (F32 SIMD accumulation) expert kernels.
///
/// Tolerance: the fast kernels accumulate n = H (first projection) or n = F (second) products in
/// F32 in a fixed order; the rounding error of such a sum is bounded by n·ε·Σ|terms| and is typically
/// about √n·ε·Σ|terms| (ε = 2^-24 ≈ 6e-8). With n ≤ 64 and inputs whose Σ|terms| is within a small
/// factor (≲ 10) of the largest |result| in the tensor, that is ≲ 8·6e-8·10 ≈ 5e-6 of max|ref|; the
/// activation's derivative is O(1) for every kind (SiLU/GELU/ReLU ≤ 1.1, clamped GLU ≤ (limit+1)·1.1
/// relative to its output scale), and the F32 `expf`/`erff`/`tanhf` add ~1 ulp. So 1e-5 of max|ref|
/// is tight enough to catch any indexing or layout error (which gives O(1) differences) and loose
/// enough never to flake on rounding.
@Suite("Expert kernels: reference vs fast")
struct KernelTests {
    static let tolerance = 1e-5

    func noNaN(_ t: Tensor<Float>) -> Bool { !t.storage.contains { $0.isNaN } }

    @Test("projections agree on the shape grid", arguments: KindCase.all, ShapeCase.all)
    func projections(_ kindCase: KindCase, _ s: ShapeCase) throws {
        let kind = kindCase.kind
        var g = SeededGenerator(seed: UInt64(s.tokens * 1000 + s.hidden * 10 + s.intermediate))
        let isClamped: Bool = { if case .clampedGated = kind { true } else { false } }()
        // Clamped experts get large inputs so that gate > limit and |up| > limit occur.
        let inputStd: Float = isClamped ? 4 : 1
        let experts = try randomExperts(kind, experts: s.experts, hidden: s.hidden, intermediate: s.intermediate,
                                        weightStd: isClamped ? 0.6 : nil, generator: &g)
        let x = randomTensor([s.tokens, s.hidden], std: inputStd, generator: &g)
        let routes = try randomRoutes(tokens: s.tokens, topK: s.topK, experts: s.experts, pool: s.pool, generator: &g)
        let plan = RoutingPlan(routes)
        #expect(plan.rowCount == s.tokens * s.topK)
        if s.routing == .emptyExpert { #expect(plan.tokensPerExpert[1] == 0) }
        if s.routing == .allOnOne { #expect(plan.tokensPerExpert[2] == s.tokens) }

        if isClamped {
            // Make sure the clamp is exercised: some gate pre-activation above the limit.
            var above = 0
            let gate = try #require(experts.dequantized(.gate))
            for row in 0..<plan.rowCount {
                let t = Int(plan.rowToken[row])
                let e = (0..<s.experts).first { plan.offsets[$0] <= row && row < plan.offsets[$0 + 1] }!
                for j in 0..<s.intermediate {
                    var acc = Double(experts.gateBias!.storage[e * s.intermediate + j])
                    for i in 0..<s.hidden { acc += Double(x.storage[t * s.hidden + i]) * Double(gate.storage[(e * s.intermediate + j) * s.hidden + i]) }
                    if acc > 7 { above += 1 }
                }
            }
            #expect(above > 0, "inputs too small to reach the clamp")
        }

        for scalesInput in [false, true] {
            let aRef = try ProjectionToIntermediate.run(.reference, input: x, plan: plan, experts: experts, scalesInput: scalesInput)
            let aFast = try ProjectionToIntermediate.run(.fast, input: x, plan: plan, experts: experts, scalesInput: scalesInput, threads: 2)
            #expect(aRef.shape == [plan.rowCount, s.intermediate])
            #expect(aFast.shape == aRef.shape)
            #expect(noNaN(aRef) && noNaN(aFast), "an intermediate element was not written")
            let e1 = relativeError(aFast, aRef)
            #expect(e1 <= Self.tolerance, "intermediate scalesInput=\(scalesInput): \(e1)")
            for weightsOutputs in [true, false] {
                // Same intermediate into both variants: this isolates projection_to_output.
                let yRef = try ProjectionToOutput.run(.reference, intermediate: aRef, plan: plan, experts: experts, weightsOutputs: weightsOutputs)
                let yFast = try ProjectionToOutput.run(.fast, intermediate: aRef, plan: plan, experts: experts,
                                                   weightsOutputs: weightsOutputs, threads: 2)
                #expect(yRef.shape == [s.tokens, s.hidden] && yFast.shape == yRef.shape)
                #expect(noNaN(yRef) && noNaN(yFast), "an output element was not written")
                let e2 = relativeError(yFast, yRef)
                #expect(e2 <= Self.tolerance, "output scalesInput=\(scalesInput) weightsOutputs=\(weightsOutputs): \(e2)")
            }
        }
    }

    @Test("the reference kernels match a manual per-token expert sum", arguments: KindCase.all)
    func referenceMatchesManual(_ kindCase: KindCase) throws {
        var g = SeededGenerator(seed: 77)
        let (t, h, f, e, k) = (7, 12, 9, 4, 2)
        let isClamped: Bool = { if case .clampedGated = kindCase.kind { true } else { false } }()
        let experts = try randomExperts(kindCase.kind, experts: e, hidden: h, intermediate: f,
                                        weightStd: isClamped ? 0.6 : nil, generator: &g)
        let x = randomTensor([t, h], std: isClamped ? 4 : 1, generator: &g)
        let routes = try randomRoutes(tokens: t, topK: k, experts: e, generator: &g)
        let plan = RoutingPlan(routes)
        for variant in KernelVariant.allCases {
            for scalesInput in [false, true] {
                let a = try ProjectionToIntermediate.run(variant, input: x, plan: plan, experts: experts, scalesInput: scalesInput)
                let y = try ProjectionToOutput.run(variant, intermediate: a, plan: plan, experts: experts, weightsOutputs: !scalesInput)
                var expected = [Double](repeating: 0, count: t * h)
                for token in 0..<t {
                    for slot in 0..<k {
                        let w = Double(routes.weights[token * k + slot])
                        // Llama-4 scales the input (rounded to F32 as the activation dtype) and sums unweighted.
                        let xs = (0..<h).map { i -> Double in
                            let v = x.storage[token * h + i]
                            return scalesInput ? Double(Float(w * Double(v))) : Double(v)
                        }
                        let out = manualExpert(experts, expert: Int(routes.expertIDs[token * k + slot]), input: xs)
                        for o in 0..<h { expected[token * h + o] += (scalesInput ? 1 : w) * out[o] }
                    }
                }
                let err = relativeError(y.storage, expected)
                #expect(err <= Self.tolerance, "\(variant) scalesInput=\(scalesInput): \(err)")
            }
        }
    }

    @Test("kernels refuse an input, intermediate or plan that disagrees with the experts")
    func shapeRefusals() throws {
        var g = SeededGenerator(seed: 6)
        let experts = try randomExperts(.gated(.silu), experts: 4, hidden: 8, intermediate: 6, generator: &g)
        let plan = RoutingPlan(try randomRoutes(tokens: 3, topK: 2, experts: 4, generator: &g))
        for variant in KernelVariant.allCases {
            #expect(throws: TensorError.self) {
                try ProjectionToIntermediate.run(variant, input: randomTensor([3, 7], generator: &g), plan: plan, experts: experts)
            }
            #expect(throws: TensorError.self) {
                try ProjectionToIntermediate.run(variant, input: randomTensor([4, 8], generator: &g), plan: plan, experts: experts)
            }
            #expect(throws: TensorError.self) {
                try ProjectionToOutput.run(variant, intermediate: randomTensor([6, 5], generator: &g), plan: plan, experts: experts)
            }
            let otherPlan = RoutingPlan(try randomRoutes(tokens: 3, topK: 2, experts: 5, generator: &g))
            #expect(throws: TensorError.self) {
                try ProjectionToIntermediate.run(variant, input: randomTensor([3, 8], generator: &g), plan: otherPlan, experts: experts)
            }
        }
    }

    @Test("a dense MLP equals one expert with every token", arguments: KernelVariant.allCases)
    func denseMLP(_ variant: KernelVariant) throws {
        var g = SeededGenerator(seed: 5)
        let (t, h, f) = (9, 20, 13)
        let mlp = try DenseMLP(gate: randomTensor([f, h], std: 0.3, generator: &g), up: randomTensor([f, h], std: 0.3, generator: &g),
                               down: randomTensor([h, f], std: 0.3, generator: &g))
        let x = randomTensor([t, h], generator: &g)
        let y = try mlp.forward(x, variant: variant, threads: 2)
        var expected: [Double] = []
        for token in 0..<t { expected += manualExpert(mlp.weights, expert: 0, input: (0..<h).map { Double(x.storage[token * h + $0]) }) }
        #expect(relativeError(y.storage, expected) <= Self.tolerance)
    }
}

/// A router kind × shared-expert gate for the full block comparison.
struct BlockCase: Sendable, CustomTestStringConvertible {
    var router: RouterKind
    var routerName: String
    var gate: SharedExpertGate
    var expert: ExpertKind = .gated(.silu)
    var testDescription: String { "\(routerName), shared gate \(gate.rawValue)" }

    static let all: [BlockCase] = {
        let routers: [(RouterKind, String)] = [
            (.softmaxTopK(normalizesTopKWeights: true), "softmax top-k renormalised"),
            (.softmaxTopK(normalizesTopKWeights: false), "softmax top-k"),
            (.sigmoidGroupedTopK(groupCount: 4, keptGroupCount: 2, normalizesTopKWeights: true, scalingFactor: 2.5), "sigmoid grouped"),
            (.topKThenSoftmax, "top-k then softmax"),
            (.sigmoidTopKScalesInput, "sigmoid top-k scales input"),
        ]
        return routers.flatMap { r in [SharedExpertGate.none, .sigmoid].map { BlockCase(router: r.0, routerName: r.1, gate: $0) } }
            + [BlockCase(router: .topKThenSoftmax, routerName: "GPT-OSS clamped experts", gate: .none,
                         expert: .clampedGated(alpha: 1.702, limit: 7))]
    }()

    var config: MoEConfig {
        MoEConfig(hiddenSize: 24, expertCount: 8, expertsPerToken: router == .sigmoidTopKScalesInput ? 1 : 2,
                  expertIntermediateSize: 20, router: router, routerHasBias: router == .topKThenSoftmax, expert: expert,
                  sharedExpert: SharedExpertConfig(intermediateSize: 28, gate: gate))
    }
}

@Suite("MoEBlock: reference vs fast")
struct BlockKernelTests {
    @Test("full forward agrees", arguments: BlockCase.all)
    func forward(_ c: BlockCase) throws {
        let block = try randomBlock(c.config, seed: 31)
        var g = SeededGenerator(seed: 32)
        let x = randomTensor([45, 24], generator: &g)
        let ref = try block.forward(x, variant: .reference, threads: 1)
        let fast = try block.forward(x, variant: .fast, threads: 2)
        #expect(ref.routing.expertIDs == fast.routing.expertIDs)
        // The fast router computes logits in F32 with the expert kernels, the reference in F64: the same
        // selections (no near-ties in these inputs) with weights equal to F32 rounding.
        #expect(ref.plan.offsets == fast.plan.offsets && ref.plan.rowToken == fast.plan.rowToken && ref.plan.slotRow == fast.plan.slotRow)
        #expect(zip(ref.plan.rowWeight, fast.plan.rowWeight).allSatisfy { abs($0 - $1) <= 1e-6 })
        #expect(relativeError(fast.routing.logits, ref.routing.logits) <= 1e-6)
        #expect(!fast.hiddenStates.storage.contains { !$0.isFinite })
        let err = relativeError(fast.hiddenStates, ref.hiddenStates)
        #expect(err <= KernelTests.tolerance, "max rel diff \(err)")

        // The reference block equals an independent per-token computation (routing from the router,
        // experts and shared expert in F64).
        let h = 24, k = c.config.expertsPerToken
        var expected = [Double](repeating: 0, count: 45 * h)
        let shared = try #require(block.sharedExpert)
        for t in 0..<45 {
            let xs = (0..<h).map { Double(x.storage[t * h + $0]) }
            for slot in 0..<k {
                let e = Int(ref.routing.expertIDs.storage[t * k + slot])
                let w = Double(ref.routing.weights.storage[t * k + slot])
                if c.router.scalesExpertInput {
                    let y = manualExpert(block.experts, expert: e, input: xs.map { Double(Float(w * $0)) })
                    for o in 0..<h { expected[t * h + o] += y[o] }
                } else {
                    let y = manualExpert(block.experts, expert: e, input: xs)
                    for o in 0..<h { expected[t * h + o] += w * y[o] }
                }
            }
            var scale = 1.0
            if let gw = shared.gateWeight {
                var acc = 0.0
                for i in 0..<h { acc += Double(gw[i]) * xs[i] }
                scale = 1 / (1 + exp(-acc))
            }
            let s = manualExpert(shared.mlp.weights, expert: 0, input: xs)
            for o in 0..<h { expected[t * h + o] += scale * s[o] }
        }
        #expect(relativeError(ref.hiddenStates.storage, expected) <= KernelTests.tolerance)
    }

    @Test("forward refuses a wrong width and non-finite input")
    func refusals() throws {
        let block = try randomBlock(BlockCase.all[0].config, seed: 1)
        #expect(throws: TensorError.self) { try block.forward(Tensor<Float>(shape: [3, 23])) }
        #expect(throws: TensorError.self) { try block.forward(Tensor<Float>(shape: [24])) }
        var x = Tensor<Float>(shape: [2, 24], repeating: 0.5)
        x.storage[30] = .nan
        let error = #expect(throws: RoutingError.self) { try block.forward(x) }
        guard case .nonFiniteInput(let name, let index, let value)? = error else {
            Issue.record("expected nonFiniteInput, got \(String(describing: error))")
            return
        }
        #expect(name == "hidden_states" && index == 30 && value.isNaN)
        x.storage[30] = -.infinity
        #expect(throws: RoutingError.nonFiniteInput(tensor: "hidden_states", index: 30, value: -.infinity)) { try block.forward(x) }
    }
}
