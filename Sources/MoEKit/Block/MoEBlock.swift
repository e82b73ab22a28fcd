/// One MoE feed-forward block: router → routing plan → `projection_to_intermediate` →
/// `projection_to_output` and combine → plus the shared expert.
public struct MoEBlock: Sendable {
    /// The validated shape of the block.
    public let config: MoEConfig
    /// The router (F32 weights).
    public let router: Router
    /// The routed experts, in their stored format.
    public let experts: ExpertWeights
    /// The always-on shared expert, or `nil`.
    public let sharedExpert: SharedExpert?

    /// Assembles a block, checking that the parts agree with `config`.
    /// - Throws: ``TensorError`` or ``ConfigError`` naming the part that disagrees.
    public init(config: MoEConfig, router: Router, experts: ExpertWeights, sharedExpert: SharedExpert? = nil) throws {
        try config.validate()
        guard experts.kind == config.expert, experts.expertCount == config.expertCount,
              experts.hiddenSize == config.hiddenSize, experts.intermediateSize == config.expertIntermediateSize else {
            throw TensorError.shapeMismatch(
                expected: "experts \(config.expert) E=\(config.expertCount) H=\(config.hiddenSize) F=\(config.expertIntermediateSize)",
                actual: "\(experts.kind) E=\(experts.expertCount) H=\(experts.hiddenSize) F=\(experts.intermediateSize)")
        }
        guard (sharedExpert == nil) == (config.sharedExpert == nil) else {
            throw TensorError.shapeMismatch(expected: config.sharedExpert == nil ? "no shared expert" : "a shared expert",
                                            actual: sharedExpert == nil ? "none" : "one")
        }
        if let shared = sharedExpert, let spec = config.sharedExpert {
            guard shared.mlp.weights.intermediateSize == spec.intermediateSize, shared.mlp.hiddenSize == config.hiddenSize,
                  (shared.gateWeight != nil) == (spec.gate == .sigmoid) else {
                throw TensorError.shapeMismatch(expected: "shared expert H=\(config.hiddenSize) F=\(spec.intermediateSize) gate=\(spec.gate)",
                                                actual: "H=\(shared.mlp.hiddenSize) F=\(shared.mlp.weights.intermediateSize) gated=\(shared.gateWeight != nil)")
            }
        }
        self.config = config
        self.router = router
        self.experts = experts
        self.sharedExpert = sharedExpert
    }

    /// Bytes the block's weights hold: router (weight, packed copy, biases), routed experts (packed, biases),
    /// shared expert (packed, gate). What `moe estimate` predicts as a layer's resident bytes.
    public var residentBytes: Int {
        router.residentBytes + experts.residentBytes
            + (sharedExpert.map { $0.mlp.weights.residentBytes + 4 * ($0.gateWeight?.count ?? 0) } ?? 0)
    }

    /// Runs the block on `hidden` `[T, H]`.
    /// - Throws: ``TensorError`` for a wrong shape, ``RoutingError/nonFiniteInput(tensor:index:value:)`` for NaN/Inf.
    public func forward(_ hidden: Tensor<Float>, variant: KernelVariant = .fast, threads: Int = 1) throws -> MoEBlockOutput {
        try FeedForward.checkInput(hidden, hiddenSize: config.hiddenSize)
        let routing = try router.route(hidden, variant: variant, threads: threads)
        let plan = RoutingPlan(RouteAssignments(routing, expertCount: config.expertCount), capacityFactor: config.capacityFactor)
        let scalesInput = routing.scalesExpertInput
        var output = try RoutedExperts.run(variant, input: hidden, plan: plan, experts: experts, scalesInput: scalesInput,
                                           weightsOutputs: !scalesInput, threads: threads)
        try sharedExpert?.add(to: &output, input: hidden, variant: variant, threads: threads)
        return MoEBlockOutput(hiddenStates: output, routing: routing, plan: plan)
    }
}

/// The result of ``MoEBlock/forward(_:variant:threads:)``.
public struct MoEBlockOutput: Sendable {
    /// `[T, H]`.
    public var hiddenStates: Tensor<Float>
    /// The router's decision: logits, expert ids and weights `[T, K]`, statistics.
    public var routing: RouterOutput
    /// The rows each expert processed, after capacity (if any).
    public var plan: RoutingPlan
}

/// The feed-forward block of one decoder layer: sparse (MoE) or dense.
public enum FeedForward: Sendable {
    /// A sparse layer: router, routed experts and shared expert.
    case moe(MoEBlock)
    /// A dense layer: one SwiGLU MLP over every token.
    case dense(DenseMLP)

    /// H.
    public var hiddenSize: Int {
        switch self {
        case .moe(let block): block.config.hiddenSize
        case .dense(let mlp): mlp.hiddenSize
        }
    }

    /// Bytes the loaded block holds: ``MoEBlock/residentBytes``, or the dense MLP's packed weights.
    public var residentBytes: Int {
        switch self {
        case .moe(let block): block.residentBytes
        case .dense(let mlp): mlp.weights.residentBytes
        }
    }

    /// Runs the block on `[T, H]`; the routing is returned for MoE layers.
    public func forward(_ hidden: Tensor<Float>, variant: KernelVariant = .fast, threads: Int = 1) throws -> (hiddenStates: Tensor<Float>, moe: MoEBlockOutput?) {
        switch self {
        case .moe(let block):
            let out = try block.forward(hidden, variant: variant, threads: threads)
            return (out.hiddenStates, out)
        case .dense(let mlp):
            try Self.checkInput(hidden, hiddenSize: mlp.hiddenSize)
            return (try mlp.forward(hidden, variant: variant, threads: threads), nil)
        }
    }

    /// `hidden` must be `[T, H]` and finite.
    static func checkInput(_ hidden: Tensor<Float>, hiddenSize: Int) throws {
        guard hidden.rank == 2, hidden.shape[1] == hiddenSize else {
            throw TensorError.shapeMismatch(expected: "hidden_states [T, \(hiddenSize)]", actual: "\(hidden.shape)")
        }
        if let bad = hidden.storage.firstIndex(where: { !$0.isFinite }) {
            throw RoutingError.nonFiniteInput(tensor: "hidden_states", index: bad, value: hidden.storage[bad])
        }
    }
}
