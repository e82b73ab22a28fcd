/// The keys of a Hugging Face `config.json` that shape the feed-forward layers. Every alias table
/// (`num_experts` / `num_local_experts` / `n_routed_experts`, …) lives here and nowhere else.
struct HuggingFaceConfigKeys: Decodable {
    var model_type: String?
    var text_config: TextConfig?
    var hidden_size: Int?
    var num_hidden_layers: Int?
    var intermediate_size: Int?
    var moe_intermediate_size: Int?
    var intermediate_size_mlp: Int?
    var shared_expert_intermediate_size: Int?
    var num_local_experts: Int?
    var num_experts: Int?
    var n_routed_experts: Int?
    var n_shared_experts: Int?
    var num_experts_per_tok: Int?
    var experts_per_token: Int?
    var norm_topk_prob: Bool?
    var decoder_sparse_step: Int?
    var mlp_only_layers: [Int]?
    var first_k_dense_replace: Int?
    var n_group: Int?
    var topk_group: Int?
    var routed_scaling_factor: Float?
    var swiglu_limit: Float?
    var swiglu_alpha: Float?
    var interleave_moe_layer_step: Int?
    var moe_layers: [Int]?
    var hidden_act: String?
    var torch_dtype: String?
    var dtype: String?
    var capacity_factor: Double?
    var quantization_config: QuantizationKeys?

    /// `quantization_config`: the method and, for FP8, the block of one scale.
    struct QuantizationKeys: Decodable {
        var quant_method: String?
        var weight_block_size: [Int]?
        var fmt: String?
    }

    /// Llama-4's multimodal config nests the text model's keys under `text_config`.
    final class TextConfig: Decodable, Sendable {
        let keys: HuggingFaceConfigKeys
        init(from decoder: any Decoder) throws { keys = try HuggingFaceConfigKeys(from: decoder) }
    }
}

extension ModelConfig {
    /// Reads a Hugging Face `config.json` of a supported architecture, with the defaults
    /// `transformers` applies to optional keys. Size keys (hidden size, layer count, expert count,
    /// top-k, intermediate sizes) are required: a config without them is refused, not guessed.
    /// - Parameters:
    ///   - data: the file's bytes.
    ///   - path: the file's path, for error messages.
    /// - Throws: ``ConfigError``.
    public init(huggingFaceJSON data: Data, path: String) throws(ConfigError) {
        var keys = try decodeJSON(HuggingFaceConfigKeys.self, from: data, path: path)
        if keys.model_type == "llama4", let text = keys.text_config?.keys {
            let dtype = keys.torch_dtype ?? keys.dtype
            keys = text
            keys.torch_dtype = keys.torch_dtype ?? dtype
        }
        guard let modelType = keys.model_type else { throw .missingKey(path: path, key: "model_type") }
        guard let architecture = Architecture(rawValue: modelType == "llama4" ? "llama4_text" : modelType),
              architecture != .custom else {
            throw .unsupportedArchitecture(path: path, modelType: modelType)
        }
        let reader = KeyReader(keys: keys, path: path)
        self = try reader.modelConfig(architecture)
        quantization = try reader.quantization()
        try validate()
    }
}

/// Turns decoded keys into a ``ModelConfig`` for one architecture.
private struct KeyReader {
    var keys: HuggingFaceConfigKeys
    var path: String

    func need<V>(_ value: V?, _ key: String) throws(ConfigError) -> V {
        guard let value else { throw .missingKey(path: path, key: key) }
        return value
    }

    /// A required size key, checked against a sane range before anything is sized by it (a file from the
    /// internet may claim 2⁴⁰ layers or −1 experts).
    func need(_ value: Int?, _ key: String) throws(ConfigError) -> Int {
        guard let value else { throw .missingKey(path: path, key: key) }
        guard let range = Self.sizeRanges[key] else { return value }
        guard range.contains(value) else {
            throw .malformedJSON(path: path, reason: "\(key) = \(value) must be in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// Sane ranges of the size keys (far beyond every released model, far below what could exhaust memory
    /// before the tensors are checked against them).
    static let sizeRanges: [String: ClosedRange<Int>] = [
        "hidden_size": 1...1 << 18, "num_hidden_layers": 1...4096, "num_local_experts": 1...1 << 16, "num_experts": 1...1 << 16,
        "n_routed_experts": 1...1 << 16, "num_experts_per_tok": 1...1 << 16, "intermediate_size": 1...1 << 20,
        "moe_intermediate_size": 1...1 << 20, "shared_expert_intermediate_size": 1...1 << 20, "intermediate_size_mlp": 1...1 << 20,
    ]

    /// The checkpoint's quantization: `fp8` (E4M3, `weight_block_size` [rows, columns]) or `mxfp4`.
    func quantization() throws(ConfigError) -> ModelConfig.Quantization? {
        guard let q = keys.quantization_config else { return nil }
        guard let method = q.quant_method else { throw .missingKey(path: path, key: "quantization_config.quant_method") }
        switch method {
        case "fp8":
            if let fmt = q.fmt, fmt != "e4m3" {
                throw .invalidField(field: "quantization_config.fmt", value: fmt, reason: "is not supported (MoEKit reads e4m3)")
            }
            guard let block = q.weight_block_size else {
                throw .invalidField(field: "quantization_config.weight_block_size", value: "missing",
                                    reason: "is needed: MoEKit reads block-scaled FP8 (e.g. [128, 128])")
            }
            guard block.count == 2, block[0] > 0, block[1] > 0 else {
                throw .invalidField(field: "quantization_config.weight_block_size", value: "\(block)", reason: "must be two positive sizes [rows, columns]")
            }
            return .fp8(blockRows: block[0], blockColumns: block[1])
        case "mxfp4":
            return .mxfp4
        default:
            throw .invalidField(field: "quantization_config.quant_method", value: method,
                                reason: "is not supported (MoEKit reads fp8 and mxfp4 checkpoints)")
        }
    }

    func activation() throws(ConfigError) -> Activation {
        let name = keys.hidden_act ?? "silu"
        guard let act = Activation(huggingFace: name) else {
            throw .invalidField(field: "hidden_act", value: name, reason: "is not a supported activation (silu, gelu, gelu_pytorch_tanh, relu)")
        }
        return act
    }

    func modelConfig(_ architecture: Architecture) throws(ConfigError) -> ModelConfig {
        let hidden = try need(keys.hidden_size, "hidden_size")
        let layers = try need(keys.num_hidden_layers, "num_hidden_layers")
        let topK = try need(keys.num_experts_per_tok ?? (architecture == .gptOSS ? keys.experts_per_token : nil),
                            "num_experts_per_tok")
        let act = try activation()
        let dtype = keys.torch_dtype ?? keys.dtype
        switch architecture {
        case .mixtral, .olmoe:
            let experts = try need(architecture == .mixtral ? keys.num_local_experts ?? keys.num_experts : keys.num_experts ?? keys.num_local_experts,
                                   architecture == .mixtral ? "num_local_experts" : "num_experts")
            let moe = MoEConfig(hiddenSize: hidden, expertCount: experts, expertsPerToken: topK,
                                expertIntermediateSize: try need(keys.intermediate_size, "intermediate_size"),
                                router: .softmaxTopK(normalizesTopKWeights: architecture == .mixtral ? true : (keys.norm_topk_prob ?? false)),
                                expert: .gated(act), capacityFactor: keys.capacity_factor)
            return ModelConfig(architecture: architecture, moe: moe, layerCount: layers, declaredDType: dtype)
        case .qwen2MoE, .qwen3MoE:
            // transformers maps `num_local_experts` to `num_experts` (Qwen3-MoE's save_pretrained writes it).
            let experts = try need(keys.num_experts ?? keys.num_local_experts, "num_experts")
            let step = keys.decoder_sparse_step ?? 1
            try ConfigError.require(step >= 1, field: "decoder_sparse_step", value: step, "must be positive")
            let denseOnly = Set(keys.mlp_only_layers ?? [])
            let sparse = (0..<max(layers, 0)).map { !denseOnly.contains($0) && experts > 0 && ($0 + 1) % step == 0 }
            var shared: SharedExpertConfig?
            if architecture == .qwen2MoE {
                shared = SharedExpertConfig(intermediateSize: try need(keys.shared_expert_intermediate_size,
                                                                       "shared_expert_intermediate_size"), gate: .sigmoid)
            }
            let moe = MoEConfig(hiddenSize: hidden, expertCount: experts, expertsPerToken: topK,
                                expertIntermediateSize: try need(keys.moe_intermediate_size, "moe_intermediate_size"),
                                router: .softmaxTopK(normalizesTopKWeights: keys.norm_topk_prob ?? false),
                                expert: .gated(act), sharedExpert: shared, capacityFactor: keys.capacity_factor)
            return ModelConfig(architecture: architecture, moe: moe, layerCount: layers, sparseLayers: sparse,
                               denseIntermediateSize: sparse.contains(false) ? try need(keys.intermediate_size, "intermediate_size") : keys.intermediate_size,
                               declaredDType: dtype)
        case .deepseekV3:
            let experts = try need(keys.n_routed_experts, "n_routed_experts")
            let firstDense = keys.first_k_dense_replace ?? 0
            try ConfigError.require((0...layers).contains(firstDense), field: "first_k_dense_replace", value: firstDense,
                                    "must be in 0...num_hidden_layers")
            try ConfigError.require((0...1 << 10).contains(keys.n_shared_experts ?? 0), field: "n_shared_experts",
                                    value: keys.n_shared_experts ?? 0, "must be in 0...1024")
            let moeWidth = try need(keys.moe_intermediate_size, "moe_intermediate_size")
            let sharedCount = keys.n_shared_experts ?? 0
            try ConfigError.require(sharedCount >= 0, field: "n_shared_experts", value: sharedCount, "must not be negative")
            let router = RouterKind.sigmoidGroupedTopK(groupCount: keys.n_group ?? 1, keptGroupCount: keys.topk_group ?? 1,
                                                       normalizesTopKWeights: keys.norm_topk_prob ?? true,
                                                       scalingFactor: keys.routed_scaling_factor ?? 1)
            let moe = MoEConfig(hiddenSize: hidden, expertCount: experts, expertsPerToken: topK,
                                expertIntermediateSize: moeWidth, router: router, expert: .gated(act),
                                sharedExpert: sharedCount > 0 ? SharedExpertConfig(intermediateSize: moeWidth * sharedCount, gate: .none) : nil,
                                capacityFactor: keys.capacity_factor)
            let sparse = (0..<max(layers, 0)).map { $0 >= firstDense }
            return ModelConfig(architecture: architecture, moe: moe, layerCount: layers, sparseLayers: sparse,
                               denseIntermediateSize: sparse.contains(false) ? try need(keys.intermediate_size, "intermediate_size") : keys.intermediate_size,
                               declaredDType: dtype)
        case .gptOSS:
            let moe = MoEConfig(hiddenSize: hidden, expertCount: try need(keys.num_local_experts, "num_local_experts"),
                                expertsPerToken: topK,
                                expertIntermediateSize: try need(keys.intermediate_size, "intermediate_size"),
                                router: .topKThenSoftmax, routerHasBias: true,
                                expert: .clampedGated(alpha: keys.swiglu_alpha ?? 1.702, limit: keys.swiglu_limit ?? 7.0),
                                capacityFactor: keys.capacity_factor)
            return ModelConfig(architecture: architecture, moe: moe, layerCount: layers, declaredDType: dtype)
        case .llama4:
            let width = try need(keys.intermediate_size, "intermediate_size")
            let step = keys.interleave_moe_layer_step ?? 1
            try ConfigError.require(step >= 1, field: "interleave_moe_layer_step", value: step, "must be positive")
            let moeLayers = Set(keys.moe_layers ?? Array(stride(from: step - 1, to: max(layers, 0), by: step)))
            let sparse = (0..<max(layers, 0)).map { moeLayers.contains($0) }
            let moe = MoEConfig(hiddenSize: hidden, expertCount: try need(keys.num_local_experts, "num_local_experts"),
                                expertsPerToken: topK, expertIntermediateSize: width, router: .sigmoidTopKScalesInput,
                                expert: .gated(act), sharedExpert: SharedExpertConfig(intermediateSize: width, gate: .none),
                                capacityFactor: keys.capacity_factor)
            return ModelConfig(architecture: architecture, moe: moe, layerCount: layers, sparseLayers: sparse,
                               denseIntermediateSize: sparse.contains(false) ? try need(keys.intermediate_size_mlp, "intermediate_size_mlp") : keys.intermediate_size_mlp,
                               declaredDType: dtype)
        case .custom:
            throw .unsupportedArchitecture(path: path, modelType: "custom")
        }
    }
}

/// Decodes JSON, turning decoding failures into one-line ``ConfigError``s that name the key path.
func decodeJSON<T: Decodable>(_ type: T.Type, from data: Data, path: String) throws(ConfigError) -> T {
    do {
        return try JSONDecoder().decode(type, from: data)
    } catch let error as DecodingError {
        switch error {
        case .keyNotFound(let key, let context):
            let prefix = context.codingPath.map(\.stringValue) + [key.stringValue]
            throw .missingKey(path: path, key: prefix.joined(separator: "."))
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            let at = c.codingPath.map(\.stringValue).joined(separator: ".")
            throw .malformedJSON(path: path, reason: at.isEmpty ? "not JSON or not an object (\(c.debugDescription))" : "key '\(at)': \(c.debugDescription)")
        @unknown default:
            throw .malformedJSON(path: path, reason: "\(error)")
        }
    } catch {
        throw .malformedJSON(path: path, reason: "\(error)")
    }
}
