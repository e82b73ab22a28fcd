/// A ggml tensor type as a GGUF file stores it: the id, and the block every row is cut into
/// (`blockSize` elements in `bytesPerBlock` bytes; 1 element for the plain types).
///
/// Ids and sizes are those of ggml (`ggml.h`, `ggml-common.h`) and of gguf-py's
/// `GGMLQuantizationType` / `GGML_QUANT_SIZES` (gguf 0.19.0), with one correction: gguf-py still
/// lists Q8_1 as 40 bytes (two F32 scales), while ggml's `block_q8_1` holds two halves and a
/// `static_assert` pins it at 36. Ids ggml removed (4, 5, 31–33, 36–38) are refused by name.
public enum GGMLType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// F32: one 4-byte float per element.
    case f32 = 0
    /// F16: one IEEE half per element.
    case f16 = 1
    /// Q4_0: 32 elements in 18 bytes (an F16 scale, 4-bit codes).
    case q4_0 = 2
    /// Q4_1: 32 elements in 20 bytes (F16 scale and minimum, 4-bit codes).
    case q4_1 = 3
    /// Q5_0: 32 elements in 22 bytes (an F16 scale, 5-bit codes).
    case q5_0 = 6
    /// Q5_1: 32 elements in 24 bytes (F16 scale and minimum, 5-bit codes).
    case q5_1 = 7
    /// Q8_0: 32 elements in 34 bytes (an F16 scale, int8 codes).
    case q8_0 = 8
    /// Q8_1: 32 elements in 36 bytes (ggml's activation type; MoEKit does not compute with it).
    case q8_1 = 9
    /// Q2_K: 256 elements in 84 bytes (MoEKit does not compute with it).
    case q2_K = 10
    /// Q3_K: 256 elements in 110 bytes (MoEKit does not compute with it).
    case q3_K = 11
    /// Q4_K: 256 elements in 144 bytes (eight 32-element groups with 6-bit scales and minimums).
    case q4_K = 12
    /// Q5_K: 256 elements in 176 bytes (as Q4_K with a fifth bit).
    case q5_K = 13
    /// Q6_K: 256 elements in 210 bytes (sixteen 16-element groups with int8 scales).
    case q6_K = 14
    /// Q8_K: 256 elements in 292 bytes (ggml's activation type; MoEKit does not compute with it).
    case q8_K = 15
    /// IQ2_XXS: 256 elements in 66 bytes (MoEKit does not compute with it).
    case iq2_XXS = 16
    /// IQ2_XS: 256 elements in 74 bytes (MoEKit does not compute with it).
    case iq2_XS = 17
    /// IQ3_XXS: 256 elements in 98 bytes (MoEKit does not compute with it).
    case iq3_XXS = 18
    /// IQ1_S: 256 elements in 50 bytes (MoEKit does not compute with it).
    case iq1_S = 19
    /// IQ4_NL: 32 elements in 18 bytes (MoEKit does not compute with it).
    case iq4_NL = 20
    /// IQ3_S: 256 elements in 110 bytes (MoEKit does not compute with it).
    case iq3_S = 21
    /// IQ2_S: 256 elements in 82 bytes (MoEKit does not compute with it).
    case iq2_S = 22
    /// IQ4_XS: 256 elements in 136 bytes (MoEKit does not compute with it).
    case iq4_XS = 23
    /// I8: one signed byte per element.
    case i8 = 24
    /// I16: one 2-byte signed integer per element.
    case i16 = 25
    /// I32: one 4-byte signed integer per element.
    case i32 = 26
    /// I64: one 8-byte signed integer per element.
    case i64 = 27
    /// F64: one 8-byte float per element (MoEKit does not compute with it).
    case f64 = 28
    /// IQ1_M: 256 elements in 56 bytes (MoEKit does not compute with it).
    case iq1_M = 29
    /// BF16: one bfloat16 per element.
    case bf16 = 30
    /// TQ1_0: 256 ternary elements in 54 bytes (MoEKit does not compute with it).
    case tq1_0 = 34
    /// TQ2_0: 256 ternary elements in 66 bytes (MoEKit does not compute with it).
    case tq2_0 = 35
    /// MXFP4: 32 elements in 17 bytes (an E8M0 scale, E2M1 codes; ggml's nibble order).
    case mxfp4 = 39
    /// NVFP4: 64 elements in 36 bytes (MoEKit does not compute with it).
    case nvfp4 = 40
    /// Q1_0: 128 elements in 18 bytes (MoEKit does not compute with it).
    case q1_0 = 41

    /// Elements per block (1 for the plain types).
    public var blockSize: Int { layout.elements }

    /// Bytes per block.
    public var bytesPerBlock: Int { layout.bytes }

    /// Whether one element is one fixed-size value (F32, F16, BF16, F64, I8…I64), not a block.
    public var isPlain: Bool { blockSize == 1 }

    /// ggml's name: `F32`, `Q4_K`, `IQ4_XS`, `MXFP4`, …
    public var description: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q5_0: "Q5_0"
        case .q5_1: "Q5_1"
        case .q8_0: "Q8_0"
        case .q8_1: "Q8_1"
        case .q2_K: "Q2_K"
        case .q3_K: "Q3_K"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        case .q8_K: "Q8_K"
        case .iq2_XXS: "IQ2_XXS"
        case .iq2_XS: "IQ2_XS"
        case .iq3_XXS: "IQ3_XXS"
        case .iq1_S: "IQ1_S"
        case .iq4_NL: "IQ4_NL"
        case .iq3_S: "IQ3_S"
        case .iq2_S: "IQ2_S"
        case .iq4_XS: "IQ4_XS"
        case .i8: "I8"
        case .i16: "I16"
        case .i32: "I32"
        case .i64: "I64"
        case .f64: "F64"
        case .iq1_M: "IQ1_M"
        case .bf16: "BF16"
        case .tq1_0: "TQ1_0"
        case .tq2_0: "TQ2_0"
        case .mxfp4: "MXFP4"
        case .nvfp4: "NVFP4"
        case .q1_0: "Q1_0"
        }
    }

    /// Bytes of one row of `elements` elements; `nil` when `elements` is not a whole number of
    /// blocks or the size overflows.
    public func rowBytes(elements: Int) -> Int? {
        guard elements >= 0, elements % blockSize == 0 else { return nil }
        let (bytes, overflow) = (elements / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
        return overflow ? nil : bytes
    }

    private var layout: (elements: Int, bytes: Int) {
        switch self {
        case .f32: (1, 4)
        case .f16: (1, 2)
        case .q4_0: (32, 18)
        case .q4_1: (32, 20)
        case .q5_0: (32, 22)
        case .q5_1: (32, 24)
        case .q8_0: (32, 34)
        case .q8_1: (32, 36)
        case .q2_K: (256, 84)
        case .q3_K: (256, 110)
        case .q4_K: (256, 144)
        case .q5_K: (256, 176)
        case .q6_K: (256, 210)
        case .q8_K: (256, 292)
        case .iq2_XXS: (256, 66)
        case .iq2_XS: (256, 74)
        case .iq3_XXS: (256, 98)
        case .iq1_S: (256, 50)
        case .iq4_NL: (32, 18)
        case .iq3_S: (256, 110)
        case .iq2_S: (256, 82)
        case .iq4_XS: (256, 136)
        case .i8: (1, 1)
        case .i16: (1, 2)
        case .i32: (1, 4)
        case .i64: (1, 8)
        case .f64: (1, 8)
        case .iq1_M: (256, 56)
        case .bf16: (1, 2)
        case .tq1_0: (256, 54)
        case .tq2_0: (256, 66)
        case .mxfp4: (32, 17)
        case .nvfp4: (64, 36)
        case .q1_0: (128, 18)
        }
    }

    /// The names of the ids ggml once used and has removed from GGUF files.
    static func removedName(id: UInt32) -> String? {
        switch id {
        case 4: "Q4_2"
        case 5: "Q4_3"
        case 31: "Q4_0_4_4"
        case 32: "Q4_0_4_8"
        case 33: "Q4_0_8_8"
        case 36: "IQ4_NL_4_4"
        case 37: "IQ4_NL_4_8"
        case 38: "IQ4_NL_8_8"
        default: nil
        }
    }
}
