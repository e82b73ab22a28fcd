/// The element types a MoEKit tensor can hold, named as `.safetensors` headers name them.
public enum DType: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    /// IEEE single precision (`F32`).
    case f32 = "F32"
    /// bfloat16 (`BF16`), stored as ``BFloat16``.
    case bf16 = "BF16"
    /// IEEE half precision (`F16`).
    case f16 = "F16"
    /// Signed 32-bit integers (`I32`).
    case i32 = "I32"
    /// Unsigned 32-bit integers (`U32`).
    case u32 = "U32"
    /// Signed 64-bit integers (`I64`).
    case i64 = "I64"

    /// Bytes per element.
    public var byteCount: Int {
        switch self {
        case .f32, .i32, .u32: 4
        case .bf16, .f16: 2
        case .i64: 8
        }
    }

    /// Whether the type holds real numbers (as opposed to indices).
    public var isFloatingPoint: Bool {
        switch self {
        case .f32, .bf16, .f16: true
        case .i32, .u32, .i64: false
        }
    }

    /// The header name: `F32`, `BF16`, ….
    public var description: String { rawValue }
}
