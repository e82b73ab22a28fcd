/// A tensor of any supported ``DType``: what a `.safetensors` file holds before the caller
/// decides how to read it. Conversions to `Float` are exact for every floating-point dtype.
public enum AnyTensor: Sendable, Equatable {
    /// An F32 tensor.
    case f32(Tensor<Float>)
    /// A BF16 tensor.
    case bf16(Tensor<BFloat16>)
    /// An F16 tensor.
    case f16(Tensor<Float16>)
    /// An I32 tensor (indices).
    case i32(Tensor<Int32>)
    /// A U32 tensor (indices).
    case u32(Tensor<UInt32>)
    /// An I64 tensor (indices).
    case i64(Tensor<Int64>)

    /// Wraps a typed tensor.
    public init<Element: TensorElement>(_ tensor: Tensor<Element>) {
        switch tensor {
        case let t as Tensor<Float>: self = .f32(t)
        case let t as Tensor<BFloat16>: self = .bf16(t)
        case let t as Tensor<Float16>: self = .f16(t)
        case let t as Tensor<Int32>: self = .i32(t)
        case let t as Tensor<UInt32>: self = .u32(t)
        case let t as Tensor<Int64>: self = .i64(t)
        default: preconditionFailure("unsupported element type \(Element.self)")  // closed set: our bug
        }
    }

    /// The element type.
    public var dtype: DType {
        switch self {
        case .f32: .f32
        case .bf16: .bf16
        case .f16: .f16
        case .i32: .i32
        case .u32: .u32
        case .i64: .i64
        }
    }

    /// The shape.
    public var shape: [Int] {
        switch self {
        case .f32(let t): t.shape
        case .bf16(let t): t.shape
        case .f16(let t): t.shape
        case .i32(let t): t.shape
        case .u32(let t): t.shape
        case .i64(let t): t.shape
        }
    }

    /// The values widened exactly to `Float`, or `nil` for index dtypes.
    public var floats: Tensor<Float>? {
        switch self {
        case .f32(let t): t
        case .bf16(let t): try? Tensor(shape: t.shape, storage: t.storage.map(\.float))
        case .f16(let t): try? Tensor(shape: t.shape, storage: t.storage.map(Float.init))
        case .i32, .u32, .i64: nil
        }
    }

    /// The values as `Int64` indices, or `nil` for floating-point dtypes.
    public var indices: Tensor<Int64>? {
        switch self {
        case .i32(let t): try? Tensor(shape: t.shape, storage: t.storage.map(Int64.init))
        case .u32(let t): try? Tensor(shape: t.shape, storage: t.storage.map(Int64.init))
        case .i64(let t): t
        case .f32, .bf16, .f16: nil
        }
    }

    /// The values as `Float`, throwing a dtype error naming `name` for index dtypes.
    public func floats(named name: String) throws(TensorError) -> Tensor<Float> {
        guard let t = floats else { throw .dtypeMismatch(name: name, expected: "F32, BF16 or F16", actual: dtype) }
        return t
    }

    /// The values as `Int64`, throwing a dtype error naming `name` for floating-point dtypes.
    public func indices(named name: String) throws(TensorError) -> Tensor<Int64> {
        guard let t = indices else { throw .dtypeMismatch(name: name, expected: "I32, U32 or I64", actual: dtype) }
        return t
    }
}
