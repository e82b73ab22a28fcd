/// Where one layer's feed-forward tensors live in a checkpoint, resolved from names alone (no bytes
/// read). Per-architecture differences are data here: the block and projection names of
/// ``ArchitectureNames`` plus the stored layout (per-expert or fused, orientation, gate/up split).
struct LayerTensorNames: Sendable {
    enum Experts: Sendable {
        /// One `[out, in]` matrix per expert and projection.
        case perExpert(gate: [String], up: [String], down: [String])
        /// Fused 3-D tensors.
        case fused(gateUp: String, down: String, gateUpBias: String?, downBias: String?, layout: FusedLayout)
        /// GPT-OSS MXFP4: `<gateUp>_blocks`/`_scales` (rows interleaved gate, up) and `<down>_blocks`/`_scales`.
        case fusedMXFP4(gateUp: String, down: String, gateUpBias: String?, downBias: String?)
    }
    /// How a fused `gate_up_proj` stores its 2F outputs.
    enum FusedLayout: Sendable {
        /// `[E, 2F, H]` (nn.Linear orientation), gate = first F rows (transformers v5 in-memory layout).
        case linearChunked
        /// `[E, H, 2F]` used as `x @ W`, gate = first F columns (Llama-4).
        case transposedChunked
        /// `[E, H, 2F]` used as `x @ W`, gate = even columns, up = odd (GPT-OSS).
        case transposedInterleaved
    }
    struct MLP: Sendable {
        var gate: String
        var up: String
        var down: String
    }

    var router: String
    var routerBias: String?
    var correctionBias: String?
    var experts: Experts
    var shared: MLP?
    var sharedGate: String?

    /// Every name this layer's MoE block reads.
    var allNames: [String] {
        var names = [router] + [routerBias, correctionBias, sharedGate].compactMap { $0 }
        switch experts {
        case .perExpert(let g, let u, let d): names += g + u + d
        case .fused(let gu, let d, let gub, let db, _): names += [gu, d] + [gub, db].compactMap { $0 }
        case .fusedMXFP4(let gu, let d, let gub, let db):
            names += [gu + "_blocks", gu + "_scales", d + "_blocks", d + "_scales"] + [gub, db].compactMap { $0 }
        }
        if let shared { names += [shared.gate, shared.up, shared.down] }
        return names
    }
}

/// The tensor-name vocabulary of each architecture, as `save_pretrained` writes it.
struct ArchitectureNames: Sendable {
    /// Candidate names of the feed-forward module inside a decoder layer, tried in order.
    var blocks: [String]
    var router: String
    var routerBias: String?
    var correctionBias: String?
    /// Per-expert projection names (gate, up, down).
    var expertProjections: (gate: String, up: String, down: String)
    /// The fused layout this architecture uses when its experts are fused.
    var fusedLayout: LayerTensorNames.FusedLayout
    var shared: String?
    var sharedGate: String?
    /// Layer-prefix candidates (text-only and multimodal checkpoints).
    static let layerPrefixes = ["model.layers.", "language_model.model.layers.", "model.language_model.layers."]

    init(_ architecture: Architecture) {
        blocks = ["mlp"]
        router = "gate.weight"
        expertProjections = ("gate_proj", "up_proj", "down_proj")
        fusedLayout = .linearChunked
        switch architecture {
        case .mixtral:
            blocks = ["block_sparse_moe", "mlp"]
            expertProjections = ("w1", "w3", "w2")
        case .qwen2MoE:
            shared = "shared_expert"
            sharedGate = "shared_expert_gate.weight"
        case .qwen3MoE, .olmoe, .custom:
            break
        case .deepseekV3:
            correctionBias = "gate.e_score_correction_bias"
            shared = "shared_experts"
        case .gptOSS:
            router = "router.weight"
            routerBias = "router.bias"
            fusedLayout = .transposedInterleaved
        case .llama4:
            blocks = ["feed_forward"]
            router = "router.weight"
            fusedLayout = .transposedChunked
            shared = "shared_expert"
        }
    }
}
