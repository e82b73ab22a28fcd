/// The model families whose MoE block MoEKit reproduces, named by their `config.json` `model_type`.
public enum Architecture: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    case mixtral
    case qwen2MoE = "qwen2_moe"
    case qwen3MoE = "qwen3_moe"
    case deepseekV3 = "deepseek_v3"
    case gptOSS = "gpt_oss"
    case olmoe
    case llama4 = "llama4_text"
    /// A block described by MoEKit's own JSON (any router, any expert kind), with no checkpoint naming.
    case custom

    public var description: String { rawValue }
}

/// The activation function of an expert FFN (`hidden_act`).
public enum Activation: String, Sendable, CaseIterable, Codable {
    case silu
    /// GELU with the exact erf formula (`gelu` in transformers).
    case gelu
    /// GELU with the tanh approximation (`gelu_pytorch_tanh`, `gelu_new`).
    case geluTanh = "gelu_tanh"
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
