/// A weight stack that cannot be stored or packed as asked.
public enum WeightError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The shapes of the stacks to pack together differ, or a view does not fit its matrices.
    case shapeMismatch(expected: String, actual: String)
    /// A format that cannot be used this way (e.g. BF16 compute over FP8 weights).
    case unsupported(String)
    /// The allocator refused `bytes`.
    case outOfMemory(bytes: Int)
    /// Matrix `matrix` of stack `source` (gate 0, up 1; down 2 from ``ExpertWeights``) holds a NaN or infinity.
    case nonFinite(matrix: Int, source: Int)
    /// Packing needs `needed` bytes but the machine has `available`.
    case insufficientMemory(needed: Int, available: Int)

    /// One line naming the stack, matrix or size at fault.
    public var description: String {
        switch self {
        case .shapeMismatch(let expected, let actual): "expected \(expected), got \(actual)"
        case .unsupported(let what): what
        case .outOfMemory(let bytes): "cannot allocate \(bytes) bytes for packed weights"
        case .nonFinite(let matrix, let source): "matrix \(matrix) of stack \(source) holds a NaN or infinite weight"
        case .insufficientMemory(let needed, let available): "packing needs \(needed) bytes but \(available) are available"
        }
    }
}
