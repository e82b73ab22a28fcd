import ArgumentParser
import MoEKit

/// `--compute` of `moe forward` and `moe run`: how the projections over GGUF block weights compute.
enum ForwardCompute: String, CaseIterable, ExpressibleByArgument {
    /// Exact: weights dequantized exactly, F32 activations (the default).
    case f32
    /// llama.cpp's arithmetic: activations quantized per block to 8 bits, integer dot products (``ComputeMode/int8``).
    case int8

    /// The library's compute mode.
    var mode: ComputeMode {
        switch self {
        case .f32: .f32
        case .int8: .int8
        }
    }

    static var allValueDescriptions: [String: String] {
        [ForwardCompute.f32.rawValue: "exact: weights dequantized exactly, F32 activations",
         ForwardCompute.int8.rawValue: "GGUF block weights: activations quantized per block to 8 bits, integer dot products (as llama.cpp)"]
    }
}
