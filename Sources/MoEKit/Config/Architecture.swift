/// The model families whose MoE block MoEKit reproduces, named by their `config.json` `model_type`.
public enum Architecture: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    /// Mixtral (`mixtral`): softmax top-k, always renormalised; SwiGLU experts.
    case mixtral
    /// Qwen2-MoE / Qwen1.5-MoE (`qwen2_moe`): softmax top-k, and a shared expert behind a sigmoid gate.
    case qwen2MoE = "qwen2_moe"
    /// Qwen3-MoE (`qwen3_moe`): softmax top-k, renormalised when `norm_topk_prob`.
    case qwen3MoE = "qwen3_moe"
    /// DeepSeek-V3 (`deepseek_v3`): sigmoid scores, group-limited top-k with a correction bias, shared
    /// experts, leading dense layers.
    case deepseekV3 = "deepseek_v3"
    /// GPT-OSS (`gpt_oss`): biased router, softmax over the top k, clamped SwiGLU experts with biases.
    case gptOSS = "gpt_oss"
    /// OLMoE (`olmoe`): softmax top-k, not renormalised by default.
    case olmoe
    /// Llama-4 (`llama4_text`; a `llama4` config is read through its `text_config`): top-k whose sigmoid
    /// weight scales the expert input, a shared expert, interleaved dense layers.
    case llama4 = "llama4_text"
    /// A block described by MoEKit's own JSON (any router, any expert kind), with no checkpoint naming.
    case custom

    /// The `model_type` name.
    public var description: String { rawValue }
}

/// The activation function of an expert FFN (`hidden_act`).
public enum Activation: String, Sendable, CaseIterable, Codable {
    /// SiLU (`silu`, `swish`): x · σ(x).
    case silu
    /// GELU with the exact erf formula (`gelu` in transformers).
    case gelu
    /// GELU with the tanh approximation (`gelu_pytorch_tanh`, `gelu_new`).
    case geluTanh = "gelu_tanh"
    /// ReLU: max(x, 0).
    case relu

    /// Parses a transformers `hidden_act` string.
    init?(huggingFace name: String) {
        switch name {
        case "silu", "swish": self = .silu
        case "gelu": self = .gelu
        case "gelu_pytorch_tanh", "gelu_new", "gelu_fast", "gelu_tanh": self = .geluTanh
        case "relu": self = .relu
        default: return nil
        }
    }
}
