/// Everything that shapes one MoE block: sizes, router, expert FFN, shared expert and capacity.
///
/// Built from a model's `config.json` (``ModelConfig/init(huggingFaceJSON:path:)``), from MoEKit's own
/// JSON (``ModelConfig/init(moekitJSON:path:)``) or from a preset (``ModelConfig/preset(named:)``), and
/// checked once by ``validate()`` so that kernels can trust it.
public struct MoEConfig: Sendable, Equatable {
    /// H: the width of a token's hidden state.
    public var hiddenSize: Int
    /// E: the number of routed experts.
    public var expertCount: Int
    /// K: the experts each token is routed to (top-k).
    public var expertsPerToken: Int
    /// F: the intermediate width of one routed expert.
    public var expertIntermediateSize: Int
    /// How the router turns logits into (expert, weight) pairs.
    public var router: RouterKind
    /// Whether the router's linear layer has a bias (GPT-OSS).
    public var routerHasBias: Bool
    /// The feed-forward network of every routed expert.
    public var expert: ExpertKind
    /// The always-on shared expert, or `nil` when the block has none.
    public var sharedExpert: SharedExpertConfig?
    /// Capacity factor; `nil` means dropless (the default). See ``ExpertCapacity``.
    public var capacityFactor: Double?

    /// A block of these sizes and kinds; call ``validate()`` before running it (``MoEBlock`` does).
    public init(hiddenSize: Int, expertCount: Int, expertsPerToken: Int, expertIntermediateSize: Int,
                router: RouterKind, routerHasBias: Bool = false, expert: ExpertKind = .gated(.silu),
                sharedExpert: SharedExpertConfig? = nil, capacityFactor: Double? = nil) {
        self.hiddenSize = hiddenSize
        self.expertCount = expertCount
        self.expertsPerToken = expertsPerToken
        self.expertIntermediateSize = expertIntermediateSize
        self.router = router
        self.routerHasBias = routerHasBias
        self.expert = expert
        self.sharedExpert = sharedExpert
        self.capacityFactor = capacityFactor
    }

    /// Checks every field; the error names the first bad one with its value.
    public func validate() throws(ConfigError) {
        try ConfigError.require(hiddenSize > 0, field: "hidden_size", value: hiddenSize, "must be positive")
        try ConfigError.require(expertCount > 0, field: "num_experts", value: expertCount, "must be positive")
        try ConfigError.require(expertIntermediateSize > 0, field: "expert_intermediate_size",
                                value: expertIntermediateSize, "must be positive")
        try ConfigError.require(expertsPerToken >= 1 && expertsPerToken <= expertCount, field: "num_experts_per_tok",
                                value: expertsPerToken, "must be in 1...\(expertCount) (the number of experts)")
        if case .sigmoidGroupedTopK(let groups, let kept, _, let scale) = router {
            try ConfigError.require(groups >= 1 && expertCount % groups == 0, field: "n_group", value: groups,
                                    "must be positive and divide the \(expertCount) experts")
            try ConfigError.require(kept >= 1 && kept <= groups, field: "topk_group", value: kept,
                                    "must be in 1...\(groups) (n_group)")
            try ConfigError.require(kept * (expertCount / max(groups, 1)) >= expertsPerToken, field: "topk_group",
                                    value: kept, "keeps \(kept * (expertCount / max(groups, 1))) experts, fewer than top-k \(expertsPerToken)")
            try ConfigError.require(expertCount / groups >= 2, field: "n_group", value: groups,
                                    "leaves fewer than 2 experts per group (group score is the sum of the top 2)")
            try ConfigError.require(scale.isFinite, field: "routed_scaling_factor", value: scale, "must be finite")
        }
        if case .clampedGated(let alpha, let limit) = expert {
            try ConfigError.require(alpha.isFinite, field: "swiglu_alpha", value: alpha, "must be finite")
            try ConfigError.require(limit.isFinite && limit > 0, field: "swiglu_limit", value: limit, "must be finite and positive")
        }
        if let shared = sharedExpert {
            try ConfigError.require(shared.intermediateSize > 0, field: "shared_expert_intermediate_size",
                                    value: shared.intermediateSize, "must be positive")
        }
        if let factor = capacityFactor {
            try ConfigError.require(factor.isFinite && factor > 0, field: "capacity_factor", value: factor,
                                    "must be finite and positive (omit it for dropless routing)")
        }
    }
}
