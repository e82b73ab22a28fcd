/// The MoE architectures llama.cpp writes, by their `general.architecture` name, and how each
/// maps onto MoEKit's ``ModelConfig``. Key names are gguf-py's (`gguf/constants.py`, `Keys.LLM`);
/// where a file carries no key, MoEKit does what llama.cpp does for that architecture
/// (`src/llama-model.cpp`, `src/models/*.cpp`). `docs/GGUF.md` has one table per architecture.
public enum GGUFArchitecture: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Mixtral: `llama` with `llama.expert_count` > 0.
    case llama
    /// Qwen2-MoE: a shared expert behind a sigmoid gate.
    case qwen2moe
    /// Qwen3-MoE.
    case qwen3moe
    /// DeepSeek-V2/V3 (and their kin): leading dense blocks, shared experts, sigmoid grouped routing.
    case deepseek2
    /// GPT-OSS: biased router, clamped SwiGLU experts with biases.
    case gptOSS = "gpt-oss"
    /// OLMoE.
    case olmoe
    /// Llama-4: sigmoid weights scale the expert input, a shared expert, interleaved dense blocks.
    case llama4

    /// The `general.architecture` name.
    public var description: String { rawValue }

    /// The MoEKit architecture whose block this is.
    public var architecture: Architecture {
        switch self {
        case .llama: .mixtral
        case .qwen2moe: .qwen2MoE
        case .qwen3moe: .qwen3MoE
        case .deepseek2: .deepseekV3
        case .gptOSS: .gptOSS
        case .olmoe: .olmoe
        case .llama4: .llama4
        }
    }

    /// The architecture named by `general.architecture`.
    /// - Throws: ``GGUFError/missingKey(path:key:)``, ``GGUFError/unsupportedArchitecture(path:architecture:)``.
    public init(metadata: GGUFMetadata) throws(GGUFError) {
        guard let name = try metadata.string("general.architecture") else {
            throw .missingKey(path: metadata.path, key: "general.architecture")
        }
        guard let arch = GGUFArchitecture(rawValue: name) else {
            throw .unsupportedArchitecture(path: metadata.path, architecture: name)
        }
        self = arch
    }

    /// The feed-forward layers of the model `metadata` describes.
    /// - Throws: ``GGUFError`` naming the key that is missing, mistyped or out of range.
    public static func modelConfig(metadata: GGUFMetadata) throws(GGUFError) -> ModelConfig {
        try GGUFHyperparameters(metadata: metadata).config
    }
}

/// The sizes one architecture's keys give, each with the words that say where it came from
/// (for tensor-shape errors), and the ``ModelConfig`` they make.
struct GGUFHyperparameters {
    /// A size and the key (or rule) it came from, e.g. `qwen3moe.expert_feed_forward_length = 768`.
    struct Size {
        var value: Int
        var source: String
    }

    var arch: GGUFArchitecture
    var path: String
    var layerCount: Int
    var hidden: Size
    var experts: Size
    var expertWidth: Size
    var sharedWidth: Size?
    var denseWidth: Size?
    var sparse: [Bool]
    var config: ModelConfig

    /// More blocks than this is not a model (llama.cpp stops at 512).
    static let maxBlocks = 4096
    /// More experts than this is not a model (llama.cpp stops at 512).
    static let maxExperts = 1 << 16

    init(metadata m: GGUFMetadata) throws(GGUFError) {
        let arch = try GGUFArchitecture(metadata: m)
        let path = m.path
        let p = arch.rawValue + "."
        self.arch = arch
        self.path = path

        func need(_ key: String) throws(GGUFError) -> Int {
            guard let v = try m.count(p + key) else { throw .missingKey(path: path, key: p + key) }
            return v
        }
        func positive(_ key: String, _ value: Int) throws(GGUFError) {
            guard value > 0 else { throw .invalidKey(path: path, key: p + key, value: "\(value)", reason: "must be positive") }
        }

        // Sizes every MoE architecture has, checked before anything is sized by them.
        let blocks = try need("block_count")
        guard blocks >= 1, blocks <= Self.maxBlocks else {
            throw .invalidKey(path: path, key: p + "block_count", value: "\(blocks)", reason: "must be in 1...\(Self.maxBlocks)")
        }
        layerCount = blocks
        let h = try need("embedding_length")
        try positive("embedding_length", h)
        hidden = Size(value: h, source: "\(p)embedding_length = \(h)")
        guard let e = try m.count(p + "expert_count") else {
            throw .missingKey(path: path, key: p + "expert_count")
        }
        guard e >= 1, e <= Self.maxExperts else {
            throw .invalidKey(path: path, key: p + "expert_count", value: "\(e)",
                              reason: e == 0 ? "declares a dense model: MoEKit reads the MoE layers of MoE files" : "must be in 1...\(Self.maxExperts)")
        }
        experts = Size(value: e, source: "\(p)expert_count = \(e)")
        let k = try need("expert_used_count")
        guard k >= 1, k <= e else {
            throw .invalidKey(path: path, key: p + "expert_used_count", value: "\(k)", reason: "must be in 1...\(e) (\(p)expert_count)")
        }

        // Optional keys, each refused when present with a value MoEKit cannot honour.
        let groups = try m.count(p + "expert_group_count") ?? 0
        let groupsUsed = try m.count(p + "expert_group_used_count") ?? 0
        if groups > 1 {
            guard e % groups == 0 else {
                throw .invalidKey(path: path, key: p + "expert_group_count", value: "\(groups)", reason: "must divide the \(e) experts")
            }
            guard groupsUsed >= 1, groupsUsed <= groups else {
                throw .invalidKey(path: path, key: p + "expert_group_used_count", value: "\(groupsUsed)", reason: "must be in 1...\(groups) (\(p)expert_group_count)")
            }
        }
        let scale = try m.float(p + "expert_weights_scale") ?? 0
        guard scale.isFinite, scale >= 0 else {
            throw .invalidKey(path: path, key: p + "expert_weights_scale", value: "\(scale)", reason: "must be finite and not negative")
        }
        // llama.cpp scales the top-k weights only when the value is neither 0 (absent) nor 1.
        let scales = scale != 0 && scale != 1
        if arch != .deepseek2 {
            if scales {
                throw .invalidKey(path: path, key: p + "expert_weights_scale", value: "\(scale)",
                                  reason: "is not supported for \(arch): MoEKit's \(arch) router has no weight scale")
            }
            if groups > 1 {
                throw .invalidKey(path: path, key: p + "expert_group_count", value: "\(groups)",
                                  reason: "is not supported for \(arch): MoEKit groups experts only for deepseek2's sigmoid router")
            }
        }

        /// `<arch>.feed_forward_length`: a number, or a per-layer array whose values are all equal.
        func feedForward() throws(GGUFError) -> Int? {
            let key = p + "feed_forward_length"
            guard let value = m[key] else { return nil }
            guard case .array(let array) = value else { return try m.count(key) }
            guard let all = array.integers, let first = all.first else {
                throw .wrongKeyType(path: path, key: key, expected: "an integer or an array of integers", found: "\(value.type) \(value)")
            }
            guard all.allSatisfy({ $0 == first }), first >= 0, let width = Int(exactly: first) else {
                throw .invalidKey(path: path, key: key, value: "\(all.prefix(8))", reason: "varies per layer, which MoEKit does not support")
            }
            return width
        }
        func width(_ key: String) throws(GGUFError) -> Size {
            let v = try need(key)
            try positive(key, v)
            return Size(value: v, source: "\(p)\(key) = \(v)")
        }
        /// `expert_feed_forward_length`, else `feed_forward_length / expert_used_count` (llama.cpp's
        /// fallback for qwen2moe and qwen3moe).
        func expertWidthWithFallback() throws(GGUFError) -> Size {
            if try m.count(p + "expert_feed_forward_length") != nil { return try width("expert_feed_forward_length") }
            guard let ff = try feedForward() else { throw .missingKey(path: path, key: p + "expert_feed_forward_length") }
            let v = ff / k
            guard v > 0 else {
                throw .invalidKey(path: path, key: p + "feed_forward_length", value: "\(ff)",
                                  reason: "gives an expert width of \(v) (\(p)feed_forward_length / expert_used_count, used when \(p)expert_feed_forward_length is absent)")
            }
            return Size(value: v, source: "\(p)feed_forward_length / expert_used_count = \(ff) / \(k)")
        }
        func feedForwardWidth() throws(GGUFError) -> Size {
            guard let v = try feedForward() else { throw .missingKey(path: path, key: p + "feed_forward_length") }
            try positive("feed_forward_length", v)
            return Size(value: v, source: "\(p)feed_forward_length = \(v)")
        }

        let router: RouterKind
        var expert = ExpertKind.gated(.silu)
        var routerHasBias = false
        var sparse = Array(repeating: true, count: blocks)
        sharedWidth = nil
        denseWidth = nil
        var sharedGate = SharedExpertGate.none
        switch arch {
        case .llama:
            // Mixtral: every block is MoE; experts as wide as feed_forward_length; renormalised.
            expertWidth = try feedForwardWidth()
            router = .softmaxTopK(normalizesTopKWeights: true)
        case .olmoe:
            expertWidth = try feedForwardWidth()
            router = .softmaxTopK(normalizesTopKWeights: false)
        case .qwen3moe:
            expertWidth = try expertWidthWithFallback()
            router = .softmaxTopK(normalizesTopKWeights: true)
        case .qwen2moe:
            expertWidth = try expertWidthWithFallback()
            router = .softmaxTopK(normalizesTopKWeights: false)
            if try m.count(p + "expert_shared_feed_forward_length") != nil {
                sharedWidth = try width("expert_shared_feed_forward_length")
            } else if let ff = try feedForward(), ff > 0 {
                sharedWidth = Size(value: ff, source: "\(p)feed_forward_length = \(ff) (\(p)expert_shared_feed_forward_length absent)")
            } else {
                throw .missingKey(path: path, key: p + "expert_shared_feed_forward_length")
            }
            sharedGate = .sigmoid
        case .deepseek2:
            expertWidth = try width("expert_feed_forward_length")
            let leading = try m.count(p + "leading_dense_block_count") ?? 0
            guard leading < blocks else {
                throw .invalidKey(path: path, key: p + "leading_dense_block_count", value: "\(leading)",
                                  reason: "leaves no MoE block (\(p)block_count = \(blocks))")
            }
            sparse = (0..<blocks).map { $0 >= leading }
            if leading > 0 { denseWidth = try feedForwardWidth() }
            let sharedCount = try need("expert_shared_count")
            if sharedCount > 0 {
                let (fs, overflow) = expertWidth.value.multipliedReportingOverflow(by: sharedCount)
                guard !overflow else {
                    throw .invalidKey(path: path, key: p + "expert_shared_count", value: "\(sharedCount)", reason: "is too large")
                }
                sharedWidth = Size(value: fs, source: "\(p)expert_feed_forward_length × expert_shared_count = \(expertWidth.value) × \(sharedCount)")
            }
            let normalizes = try m.bool(p + "expert_weights_norm") ?? false
            let gating = try m.count(p + "expert_gating_func") ?? 0
            switch gating {
            case 0, 1:  // absent (DeepSeek-V2 files) or softmax
                if scales {
                    throw .invalidKey(path: path, key: p + "expert_weights_scale", value: "\(scale)",
                                      reason: "is not supported with softmax gating (\(p)expert_gating_func = \(gating)): MoEKit's softmax router has no weight scale")
                }
                if groups > 1 {
                    throw .invalidKey(path: path, key: p + "expert_group_count", value: "\(groups)",
                                      reason: "is not supported with softmax gating (\(p)expert_gating_func = \(gating))")
                }
                router = .softmaxTopK(normalizesTopKWeights: normalizes)
            case 2:
                router = .sigmoidGroupedTopK(groupCount: max(groups, 1), keptGroupCount: groups > 1 ? groupsUsed : 1,
                                             normalizesTopKWeights: normalizes, scalingFactor: Float(scales ? scale : 1))
            default:
                throw .invalidKey(path: path, key: p + "expert_gating_func", value: "\(gating)", reason: "must be 1 (softmax) or 2 (sigmoid)")
            }
        case .gptOSS:
            expertWidth = try width("expert_feed_forward_length")
            router = .topKThenSoftmax
            routerHasBias = true
            // llama.cpp's LLM_FFN_SWIGLU_OAI_MOE: alpha 1.702, limit 7.0, fixed (no key).
            expert = .clampedGated(alpha: 1.702, limit: 7.0)
        case .llama4:
            expertWidth = try width("expert_feed_forward_length")
            let step = try need("interleave_moe_layer_step")
            try positive("interleave_moe_layer_step", step)
            sparse = (0..<blocks).map { ($0 + 1) % step == 0 }
            guard sparse.contains(true) else {
                throw .invalidKey(path: path, key: p + "interleave_moe_layer_step", value: "\(step)",
                                  reason: "leaves no MoE block (\(p)block_count = \(blocks))")
            }
            if sparse.contains(false) { denseWidth = try feedForwardWidth() }
            sharedWidth = Size(value: expertWidth.value, source: expertWidth.source + " (the shared expert is as wide as a routed one)")
            router = .sigmoidTopKScalesInput
        }
        self.sparse = sparse

        let moe = MoEConfig(hiddenSize: h, expertCount: e, expertsPerToken: k, expertIntermediateSize: expertWidth.value,
                            router: router, routerHasBias: routerHasBias, expert: expert,
                            sharedExpert: sharedWidth.map { SharedExpertConfig(intermediateSize: $0.value, gate: sharedGate) })
        let config = ModelConfig(architecture: arch.architecture, moe: moe, layerCount: blocks, sparseLayers: sparse,
                                 denseIntermediateSize: denseWidth?.value)
        do {
            try config.validate()
        } catch {
            throw .invalidConfig(path: path, reason: "the \(arch) metadata makes an invalid MoE block: \(error.description)")
        }
        self.config = config
    }
}
