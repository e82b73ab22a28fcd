/// A dense, row-major, contiguous tensor: a shape and its elements, last dimension fastest.
///
/// MoEKit needs only the shapes of one MoE layer (`[T, H]`, `[E, F, H]`, `[T, K]`, …), so this is
/// storage plus shape, not an N-d framework: kernels read ``storage`` through unsafe buffers.
public struct Tensor<Element: TensorElement>: Sendable, Equatable {
    /// The extent of each dimension, outermost first.
    public private(set) var shape: [Int]
    /// The elements in row-major order; `storage.count == shape.product`.
    public var storage: [Element]

    /// Wraps `storage` with `shape`, checking that the element count matches.
    /// - Throws: ``TensorError/shapeMismatch(expected:actual:)`` when it does not.
    public init(shape: [Int], storage: [Element]) throws(TensorError) {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw .negativeDimension(shape: shape) }
        let count = Tensor.elementCount(of: shape)
        guard count == storage.count else {
            throw .shapeMismatch(expected: "\(count) elements for shape \(shape)", actual: "\(storage.count) elements")
        }
        self.shape = shape
        self.storage = storage
    }

    /// A tensor of `shape` with every element equal to `value`.
    public init(shape: [Int], repeating value: Element = .zero) {
        self.shape = shape
        self.storage = Array(repeating: value, count: Tensor.elementCount(of: shape))
    }

    /// The number of elements.
    public var count: Int { storage.count }
    /// The number of dimensions.
    public var rank: Int { shape.count }
    /// The element type tag.
    public var dtype: DType { Element.dtype }

    /// The same elements under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) throws(TensorError) -> Tensor {
        try Tensor(shape: newShape, storage: storage)
    }

    /// The rows `range` of the outermost dimension (a token shard of `[T, H]`), copied.
    /// - Throws: ``TensorError/shapeMismatch(expected:actual:)`` when `range` is outside `0..<shape[0]`.
    public func rows(_ range: Range<Int>) throws(TensorError) -> Tensor {
        guard let outer = shape.first, range.lowerBound >= 0, range.upperBound <= outer else {
            throw .shapeMismatch(expected: "rows within 0..<\(shape.first ?? 0)", actual: "\(range)")
        }
        let rowSize = outer == 0 ? 0 : count / outer
        return try Tensor(shape: [range.count] + shape.dropFirst(),
                          storage: Array(storage[(range.lowerBound * rowSize)..<(range.upperBound * rowSize)]))
    }

    /// The element at a multi-dimensional index (for tests and small tools; kernels use buffers).
    public subscript(_ index: Int...) -> Element {
        get { storage[flatIndex(index)] }
        set { storage[flatIndex(index)] = newValue }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        var flat = 0
        for (i, extent) in zip(index, shape) { flat = flat * extent + i }
        return flat
    }

    static func elementCount(of shape: [Int]) -> Int { shape.reduce(1, *) }
}

/// Errors about tensor shapes and element types.
public enum TensorError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A shape or element count differs from what the operation needs.
    case shapeMismatch(expected: String, actual: String)
    /// A shape with a dimension below zero.
    case negativeDimension(shape: [Int])
    /// Tensor `name` holds `actual` elements where `expected` ones are needed.
    case dtypeMismatch(name: String, expected: String, actual: DType)

    /// One line naming what differs, with both values.
    public var description: String {
        switch self {
        case .shapeMismatch(let expected, let actual): "shape mismatch: expected \(expected), got \(actual)"
        case .negativeDimension(let shape): "shape \(shape) has a negative dimension"
        case .dtypeMismatch(let name, let expected, let actual): "tensor '\(name)' has dtype \(actual), expected \(expected)"
        }
    }
}
