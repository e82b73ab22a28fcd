/// How a router turns logits into (expert, weight) pairs. The formulas are those of
/// `shared/spec/semantics.md`; all router math is done in `Float`.
public enum RouterKind: Sendable, Equatable {
    /// p = softmax(logits); top-k of p; renormalise the k weights if `normalizesTopKWeights`
    /// (Mixtral: always; Qwen2/3-MoE, OLMoE: `norm_topk_prob`).
    case softmaxTopK(normalizesTopKWeights: Bool)
    /// DeepSeek-V3 `noaux_tc`: s = σ(logits), c = s + correction bias (selection only), group-limited
    /// top-k over `groupCount` groups keeping `keptGroupCount`, weights from s, optional renormalisation
    /// (+1e-20), then × `scalingFactor`.
    case sigmoidGroupedTopK(groupCount: Int, keptGroupCount: Int, normalizesTopKWeights: Bool, scalingFactor: Float)
    /// GPT-OSS: top-k of the (biased) logits, then softmax over the k selected values.
    case topKThenSoftmax
    /// Llama-4: top-k of the logits; σ(value) scales the expert's **input**; outputs are summed unweighted.
    case sigmoidTopKScalesInput

    /// Whether the router weights multiply the expert input (Llama-4) instead of its output.
    public var scalesExpertInput: Bool { self == .sigmoidTopKScalesInput }
}

/// The expert feed-forward network of every routed (and shared) expert.
public enum ExpertKind: Sendable, Equatable {
    /// down · (act(gate · x) ⊙ (up · x)), no biases: SwiGLU when `act` is SiLU.
    case gated(Activation)
    /// W2 · act(W1 · x + b1) + b2 (seed 003's biased MLP).
    case mlp(Activation)
    /// GPT-OSS: h = W_gu · x + b (gate/up interleaved), gate ← min(gate, limit), up ← clamp(up, ±limit),
    /// (up + 1) · gate · σ(alpha · gate), then W_d · a + b_d.
    case clampedGated(alpha: Float, limit: Float)

    /// Whether the expert has a separate up projection (the gated kinds).
    public var isGated: Bool {
        switch self {
        case .gated, .clampedGated: true
        case .mlp: false
        }
    }

    /// Whether the expert's projections carry biases.
    public var hasBiases: Bool {
        switch self {
        case .gated: false
        case .mlp, .clampedGated: true
        }
    }
}

/// How the shared expert's output joins the routed output.
public enum SharedExpertGate: String, Sendable, Codable {
    /// Added unweighted (DeepSeek-V3, Llama-4).
    case none
    /// Multiplied by σ(w · x) per token (Qwen2-MoE `shared_expert_gate`).
    case sigmoid
}

/// An always-on SwiGLU expert applied to every token beside the routed ones.
public struct SharedExpertConfig: Sendable, Equatable {
    /// Intermediate width of the shared MLP (DeepSeek-V3: `moe_intermediate_size × n_shared_experts`).
    public var intermediateSize: Int
    /// How the shared expert's output joins the routed output.
    public var gate: SharedExpertGate

    /// A shared expert of width `intermediateSize`.
    public init(intermediateSize: Int, gate: SharedExpertGate) {
        self.intermediateSize = intermediateSize
        self.gate = gate
    }
}
