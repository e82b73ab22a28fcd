/// The bfloat16 format: the upper 16 bits of an IEEE-754 `Float`.
///
/// Widening to `Float` is exact. Narrowing rounds to nearest, ties to even, as PyTorch's
/// `tensor.to(torch.bfloat16)` does; NaN stays NaN (quiet) and infinities stay infinite.
public struct BFloat16: Sendable, Hashable, CustomStringConvertible {
    /// The raw 16-bit pattern.
    public var bitPattern: UInt16

    /// Wraps a raw bit pattern.
    @inlinable public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

    /// Rounds a `Float` to the nearest bfloat16, ties to even.
    @inlinable public init(_ value: Float) {
        let bits = value.bitPattern
        if value.isNaN {
            // Keep the sign and force a quiet-NaN payload so truncation cannot produce an infinity.
            bitPattern = UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
            return
        }
        let lsb = (bits >> 16) & 1
        let rounded = bits &+ 0x7FFF &+ lsb
        bitPattern = UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// The exact `Float` value.
    @inlinable public var float: Float { Float(bitPattern: UInt32(bitPattern) << 16) }

    /// The value as `Float` prints it.
    public var description: String { "\(float)" }
}
