/// Built-in configurations of every supported architecture, scaled so one block runs on a laptop
/// in about a second: hidden size 1024, expert widths and counts shrunk from the flagship models
/// while keeping each architecture's router, expert kind, shared expert and top-k structure.
extension ModelConfig {
    /// The preset `moe run` uses when none is named.
    public static let defaultPresetName = "mixtral"

    /// Preset names in a stable order.
    public static let presetNames = ["mixtral", "qwen2-moe", "qwen3-moe", "deepseek-v3", "gpt-oss", "olmoe", "llama4"]

    /// The preset called `name`.
    /// - Throws: ``ConfigError/unknownPreset(name:known:)``.
    public static func preset(named name: String) throws(ConfigError) -> ModelConfig {
        let h = 1024
        switch name {
        case "mixtral":  // Mixtral-8x7B: 8 experts, top-2, F/H = 3.5, always renormalised.
            return ModelConfig(architecture: .mixtral, moe: MoEConfig(
                hiddenSize: h, expertCount: 8, expertsPerToken: 2, expertIntermediateSize: 3584,
                router: .softmaxTopK(normalizesTopKWeights: true)), layerCount: 1)
        case "qwen2-moe":  // Qwen1.5-MoE-A2.7B: 60 → 16 experts, top-4, sigmoid-gated shared expert.
            return ModelConfig(architecture: .qwen2MoE, moe: MoEConfig(
                hiddenSize: h, expertCount: 16, expertsPerToken: 4, expertIntermediateSize: 704,
                router: .softmaxTopK(normalizesTopKWeights: false),
                sharedExpert: SharedExpertConfig(intermediateSize: 2816, gate: .sigmoid)), layerCount: 1)
        case "qwen3-moe":  // Qwen3-30B-A3B: 128 → 32 experts, top-8, renormalised.
            return ModelConfig(architecture: .qwen3MoE, moe: MoEConfig(
                hiddenSize: h, expertCount: 32, expertsPerToken: 8, expertIntermediateSize: 384,
                router: .softmaxTopK(normalizesTopKWeights: true)), layerCount: 1)
        case "deepseek-v3":  // 256 → 32 experts in 8 groups (keep 4), top-8, ×2.5, one shared expert.
            return ModelConfig(architecture: .deepseekV3, moe: MoEConfig(
                hiddenSize: h, expertCount: 32, expertsPerToken: 8, expertIntermediateSize: 256,
                router: .sigmoidGroupedTopK(groupCount: 8, keptGroupCount: 4, normalizesTopKWeights: true, scalingFactor: 2.5),
                sharedExpert: SharedExpertConfig(intermediateSize: 256, gate: .none)), layerCount: 1)
        case "gpt-oss":  // gpt-oss-20b: 32 → 16 experts, top-4, biased router and clamped experts.
            return ModelConfig(architecture: .gptOSS, moe: MoEConfig(
                hiddenSize: h, expertCount: 16, expertsPerToken: 4, expertIntermediateSize: 1024,
                router: .topKThenSoftmax, routerHasBias: true, expert: .clampedGated(alpha: 1.702, limit: 7)), layerCount: 1)
        case "olmoe":  // OLMoE-1B-7B: 64 → 32 experts, top-8, not renormalised.
            return ModelConfig(architecture: .olmoe, moe: MoEConfig(
                hiddenSize: h, expertCount: 32, expertsPerToken: 8, expertIntermediateSize: 512,
                router: .softmaxTopK(normalizesTopKWeights: false)), layerCount: 1)
        case "llama4":  // Llama-4-Scout: 16 experts, top-1 scaling the input, shared expert added.
            return ModelConfig(architecture: .llama4, moe: MoEConfig(
                hiddenSize: h, expertCount: 16, expertsPerToken: 1, expertIntermediateSize: 2048,
                router: .sigmoidTopKScalesInput,
                sharedExpert: SharedExpertConfig(intermediateSize: 2048, gate: .none)), layerCount: 1)
        default:
            throw .unknownPreset(name: name, known: presetNames)
        }
    }
}
