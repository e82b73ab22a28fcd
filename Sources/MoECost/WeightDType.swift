import MoEKit

/// The storage format of a group of weights, for byte counts.
public enum WeightDType: String, Sendable, CaseIterable, Codable {
    /// IEEE single precision.
    case f32
    /// bfloat16.
    case bf16
    /// IEEE half precision.
    case f16
    /// 8-bit floating point (DeepSeek-V3's released checkpoint).
    case fp8
    /// OCP MXFP4: 4-bit E2M1 values with one 8-bit E8M0 scale per 32 values, i.e. 4.25 bits per weight
    /// (GPT-OSS's expert tensors).
    case mxfp4
    /// ggml's block quantizations (GGUF files), as MoEKit reads them (`GGMLBlockType`): the block's scales
    /// and minimums count towards the bits per weight (Q4_K: 144 bytes per 256 weights, 4.5 bits).
    case q8_0, q4_0, q4_1, q5_0, q5_1, q4_K, q5_K, q6_K

    /// Storage bits per weight, block scales included.
    public var bitsPerWeight: Double {
        switch self {
        case .f32: 32
        case .bf16, .f16: 16
        case .fp8: 8
        case .mxfp4: 4.25
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K:
            ggmlBlockType.map { Double($0.bytesPerBlock * 8) / Double($0.blockSize) } ?? 0
        }
    }

    /// The ggml block type of a ggml dtype, `nil` for the others.
    public var ggmlBlockType: GGMLBlockType? { GGMLBlockType(rawValue: rawValue) }

    /// The dtype of a MoEKit weight format: FP8 whatever its block, ggml's MXFP4 as MXFP4 (the same bytes).
    public init(_ format: WeightFormat) {
        switch format {
        case .f32: self = .f32
        case .bf16: self = .bf16
        case .f16: self = .f16
        case .fp8E4M3: self = .fp8
        case .mxfp4, .ggml(.mxfp4): self = .mxfp4
        case .ggml(let type): self = WeightDType(rawValue: type.rawValue) ?? .q8_0
        }
    }

    /// Storage bytes per weight.
    public var bytesPerWeight: Double { bitsPerWeight / 8 }

    /// The dtype the arithmetic runs in once the weights are loaded: quantized formats are
    /// dequantized to BF16 (MXFP4) or run natively (FP8) where the hardware has FP8 units; ggml blocks are
    /// decoded to F32 (MoEKit's GGUF path).
    public var computeDType: WeightDType {
        switch self {
        case .mxfp4: .bf16
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K: .f32
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
