/// The storage format of a group of weights, for byte counts.
public enum WeightDType: String, Sendable, CaseIterable, Codable {
    case f32
    case bf16
    case f16
    /// 8-bit floating point (DeepSeek-V3's released checkpoint).
    case fp8
    /// OCP MXFP4: 4-bit E2M1 values with one 8-bit E8M0 scale per 32 values, i.e. 4.25 bits per weight
    /// (GPT-OSS's expert tensors).
    case mxfp4

    /// Storage bits per weight, block scales included.
    public var bitsPerWeight: Double {
        switch self {
        case .f32: 32
        case .bf16, .f16: 16
        case .fp8: 8
        case .mxfp4: 4.25
        }
    }

    /// Storage bytes per weight.
    public var bytesPerWeight: Double { bitsPerWeight / 8 }

    /// The dtype the arithmetic runs in once the weights are loaded: quantized formats are
    /// dequantized to BF16 (MXFP4) or run natively (FP8) where the hardware has FP8 units.
    public var computeDType: WeightDType {
        switch self {
        case .mxfp4: .bf16
        default: self
        }
    }

    /// Parses a `torch_dtype` / `dtype` string (`bfloat16`, `float32`, …) or a short name.
    public init?(torchName name: String) {
        switch name.lowercased() {
        case "float32", "f32", "fp32", "float": self = .f32
        case "bfloat16", "bf16": self = .bf16
        case "float16", "f16", "fp16", "half": self = .f16
        case "float8_e4m3fn", "fp8", "f8", "e4m3": self = .fp8
        case "mxfp4": self = .mxfp4
        default: return nil
        }
    }
}
