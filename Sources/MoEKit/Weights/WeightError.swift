/// A weight stack that cannot be stored or packed as asked.
public enum WeightError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The shapes of the stacks to pack together differ, or a view does not fit its matrices.
    case shapeMismatch(expected: String, actual: String)
    /// A format that cannot be used this way (e.g. BF16 compute over FP8 weights).
    case unsupported(String)
    /// The allocator refused `bytes`.
    case outOfMemory(bytes: Int)

    public var description: String {
        switch self {
        case .shapeMismatch(let expected, let actual): "expected \(expected), got \(actual)"
        case .unsupported(let what): what
        case .outOfMemory(let bytes): "cannot allocate \(bytes) bytes for packed weights"
        }
    }
}
