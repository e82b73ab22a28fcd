/// An element type a ``Tensor`` can store: the six ``DType``s, each with its little-endian
/// byte encoding (all supported platforms are little-endian, so the encoding is the memory layout).
public protocol TensorElement: Sendable, Equatable {
    /// The dtype tag of this element type.
    static var dtype: DType { get }
    /// The additive identity, used to fill new tensors.
    static var zero: Self { get }
}

/// `F32` elements.
extension Float: TensorElement {
    public static var dtype: DType { .f32 }
}
/// `BF16` elements.
extension BFloat16: TensorElement {
    public static var dtype: DType { .bf16 }
    public static var zero: BFloat16 { BFloat16(bitPattern: 0) }
}
/// `F16` elements.
extension Float16: TensorElement {
    public static var dtype: DType { .f16 }
}
/// `I32` elements.
extension Int32: TensorElement {
    public static var dtype: DType { .i32 }
}
/// `U32` elements.
extension UInt32: TensorElement {
    public static var dtype: DType { .u32 }
}
/// `I64` elements.
extension Int64: TensorElement {
    public static var dtype: DType { .i64 }
}
