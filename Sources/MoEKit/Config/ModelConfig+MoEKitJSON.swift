/// MoEKit's own model JSON (seed 002's "one block, many architectures"): every router and expert
/// kind is written out explicitly, so any block can be described without a model's `config.json`.
///
/// ```json
/// {"architecture": "custom", "hidden_size": 64, "num_experts": 8, "num_experts_per_tok": 2,
///  "expert_intermediate_size": 128, "num_layers": 2,
///  "router": {"kind": "softmax_topk", "norm_topk_prob": true},
///  "expert": {"kind": "mlp", "activation": "gelu"},
///  "shared_expert": {"intermediate_size": 128, "gate": "sigmoid"},
///  "capacity_factor": 1.25, "dense_layers": [0], "dense_intermediate_size": 256}
/// ```
/// Router kinds: `softmax_topk` (`norm_topk_prob`), `sigmoid_grouped_topk` (`n_group`, `topk_group`,
/// `norm_topk_prob`, `routed_scaling_factor`), `topk_softmax`, `sigmoid_topk_scales_input`.
/// Expert kinds: `gated` and `mlp` (`activation`), `clamped_gated` (`alpha`, `limit`).
struct MoEKitModelJSON: Codable {
    struct Router: Codable {
        var kind: String
        var norm_topk_prob: Bool?
        var n_group: Int?
        var topk_group: Int?
        var routed_scaling_factor: Float?
    }
    struct Expert: Codable {
        var kind: String
        var activation: Activation?
        var alpha: Float?
        var limit: Float?
    }
    struct Shared: Codable {
        var intermediate_size: Int
        var gate: SharedExpertGate?
    }
    var format: String?
    var architecture: Architecture?
    var hidden_size: Int
    var num_experts: Int
    var num_experts_per_tok: Int
    var expert_intermediate_size: Int
    var num_layers: Int?
    var router: Router
    var router_bias: Bool?
    var expert: Expert?
    var shared_expert: Shared?
    var capacity_factor: Double?
    var dense_layers: [Int]?
    var dense_intermediate_size: Int?
}

extension ModelConfig {
    /// The `format` marker that tells MoEKit's JSON from a Hugging Face `config.json`.
    public static let moekitFormat = "moekit"

    /// Reads MoEKit's own model JSON and validates it. Every router and expert kind is written out, so any
    /// block can be described without a model's `config.json`:
    ///
    /// ```json
    /// {"format": "moekit", "architecture": "custom", "hidden_size": 64, "num_experts": 8,
    ///  "num_experts_per_tok": 2, "expert_intermediate_size": 128, "num_layers": 2,
    ///  "router": {"kind": "softmax_topk", "norm_topk_prob": true},
    ///  "expert": {"kind": "mlp", "activation": "gelu"},
    ///  "shared_expert": {"intermediate_size": 128, "gate": "sigmoid"},
    ///  "capacity_factor": 1.25, "dense_layers": [0], "dense_intermediate_size": 256}
    /// ```
    ///
    /// Router kinds: `softmax_topk` (`norm_topk_prob`), `sigmoid_grouped_topk` (`n_group`, `topk_group`,
    /// `norm_topk_prob`, `routed_scaling_factor`), `topk_softmax`, `sigmoid_topk_scales_input`.
    /// Expert kinds: `gated` and `mlp` (`activation`), `clamped_gated` (`alpha`, `limit`).
    /// - Parameters:
    ///   - data: the file's bytes.
    ///   - path: the file's path, for error messages.
    /// - Throws: ``ConfigError`` naming the bad key or field.
    public init(moekitJSON data: Data, path: String) throws(ConfigError) {
        let json = try decodeJSON(MoEKitModelJSON.self, from: data, path: path)
        let router: RouterKind
        switch json.router.kind {
        case "softmax_topk": router = .softmaxTopK(normalizesTopKWeights: json.router.norm_topk_prob ?? true)
        case "sigmoid_grouped_topk":
            router = .sigmoidGroupedTopK(groupCount: json.router.n_group ?? 1, keptGroupCount: json.router.topk_group ?? 1,
                                         normalizesTopKWeights: json.router.norm_topk_prob ?? true,
                                         scalingFactor: json.router.routed_scaling_factor ?? 1)
        case "topk_softmax": router = .topKThenSoftmax
        case "sigmoid_topk_scales_input": router = .sigmoidTopKScalesInput
        default:
            throw .invalidField(field: "router.kind", value: json.router.kind,
                                reason: "is not one of softmax_topk, sigmoid_grouped_topk, topk_softmax, sigmoid_topk_scales_input")
        }
        let expert: ExpertKind
        let spec = json.expert ?? .init(kind: "gated")
        switch spec.kind {
        case "gated": expert = .gated(spec.activation ?? .silu)
        case "mlp": expert = .mlp(spec.activation ?? .gelu)
        case "clamped_gated": expert = .clampedGated(alpha: spec.alpha ?? 1.702, limit: spec.limit ?? 7.0)
        default: throw .invalidField(field: "expert.kind", value: spec.kind, reason: "is not one of gated, mlp, clamped_gated")
        }
        let moe = MoEConfig(hiddenSize: json.hidden_size, expertCount: json.num_experts,
                            expertsPerToken: json.num_experts_per_tok, expertIntermediateSize: json.expert_intermediate_size,
                            router: router, routerHasBias: json.router_bias ?? false, expert: expert,
                            sharedExpert: json.shared_expert.map { SharedExpertConfig(intermediateSize: $0.intermediate_size, gate: $0.gate ?? .none) },
                            capacityFactor: json.capacity_factor)
        let layers = json.num_layers ?? 1
        let dense = Set(json.dense_layers ?? [])
        for layer in dense where layer < 0 || layer >= layers {
            throw .invalidField(field: "dense_layers", value: "\(layer)", reason: "is outside 0..<\(layers) (num_layers)")
        }
        self.init(architecture: json.architecture ?? .custom, moe: moe, layerCount: layers,
                  sparseLayers: (0..<max(layers, 0)).map { !dense.contains($0) },
                  denseIntermediateSize: json.dense_intermediate_size)
        try validate()
    }

    /// This configuration as MoEKit's own JSON.
    public func moekitJSON() -> Data {
        var router = MoEKitModelJSON.Router(kind: "")
        switch moe.router {
        case .softmaxTopK(let normalizes): router.kind = "softmax_topk"; router.norm_topk_prob = normalizes
        case .sigmoidGroupedTopK(let groups, let kept, let normalizes, let scale):
            router = .init(kind: "sigmoid_grouped_topk", norm_topk_prob: normalizes, n_group: groups, topk_group: kept,
                           routed_scaling_factor: scale)
        case .topKThenSoftmax: router.kind = "topk_softmax"
        case .sigmoidTopKScalesInput: router.kind = "sigmoid_topk_scales_input"
        }
        let expert: MoEKitModelJSON.Expert
        switch moe.expert {
        case .gated(let act): expert = .init(kind: "gated", activation: act)
        case .mlp(let act): expert = .init(kind: "mlp", activation: act)
        case .clampedGated(let alpha, let limit): expert = .init(kind: "clamped_gated", alpha: alpha, limit: limit)
        }
        let json = MoEKitModelJSON(
            format: Self.moekitFormat, architecture: architecture, hidden_size: moe.hiddenSize, num_experts: moe.expertCount,
            num_experts_per_tok: moe.expertsPerToken, expert_intermediate_size: moe.expertIntermediateSize,
            num_layers: layerCount, router: router, router_bias: moe.routerHasBias, expert: expert,
            shared_expert: moe.sharedExpert.map { .init(intermediate_size: $0.intermediateSize, gate: $0.gate) },
            capacity_factor: moe.capacityFactor,
            dense_layers: sparseLayers.indices.filter { !sparseLayers[$0] }, dense_intermediate_size: denseIntermediateSize)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? encoder.encode(json)) ?? Data()
    }

    /// Reads either kind of config file: MoEKit's JSON when it has `"format": "moekit"`, otherwise a
    /// Hugging Face `config.json`.
    public init(contentsOf path: String) throws(ConfigError) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .malformedJSON(path: path, reason: "cannot read the file")
        }
        struct Probe: Decodable { var format: String? }
        let probe = try decodeJSON(Probe.self, from: data, path: path)
        if probe.format == Self.moekitFormat {
            try self.init(moekitJSON: data, path: path)
        } else {
            try self.init(huggingFaceJSON: data, path: path)
        }
    }
}
