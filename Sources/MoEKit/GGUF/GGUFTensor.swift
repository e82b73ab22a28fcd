/// One tensor as a GGUF header describes it, after every claim was checked against the file.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// The tensor's name (`blk.0.ffn_gate_exps.weight`).
    public let name: String
    /// ggml dims, `ne[0]` first (the innermost, contiguous dimension); `n_dims` entries.
    public let dims: [Int]
    /// The ggml type of its elements.
    public let type: GGMLType
    /// Byte offset inside the file's data section (a multiple of the alignment).
    public let offset: Int
    /// Bytes the tensor occupies.
    public let byteCount: Int

    /// MoEKit's order, outermost first (`dims` reversed): ggml `[in, out, E]` is `[E, out, in]`.
    public var shape: [Int] { dims.reversed() }

    /// Elements (1 for a tensor with no dims).
    public var elementCount: Int { dims.reduce(1, *) }
}

/// A tensor's bytes where they lie in the mapped file, with the strides that address it as a
/// stack of matrices in MoEKit order: `matrixCount` matrices of `rows` × `columns`
/// (`columns` = ne[0], the input features; `rows` = ne[1], the output features; `matrixCount` =
/// ne[2]·ne[3], the experts). Row `r` of matrix `m` starts at `m · matrixStride + r · rowStride`;
/// for a block type a row is `columns / blockSize` blocks of `bytesPerBlock` bytes.
///
/// This is what a ``StoredMatrices`` is made from: one base pointer per matrix, `rowStride`, and
/// (plain types) an element stride of `type.bytesPerBlock`.
public struct GGUFTensorView: @unchecked Sendable {
    /// The tensor's header entry.
    public let info: GGUFTensorInfo
    /// The file (shard) that holds the tensor.
    public let path: String
    /// The tensor's bytes, `info.byteCount` of them, inside the mapping.
    public let bytes: UnsafeRawBufferPointer
    /// What keeps `bytes` mapped.
    let file: MappedFile
    /// `bytes` as a range of the mapped file.
    let fileRange: Range<Int>

    /// The tensor's name.
    public var name: String { info.name }
    /// The ggml type of its elements.
    public var type: GGMLType { info.type }
    /// ggml dims, `ne[0]` innermost.
    public var dims: [Int] { info.dims }
    /// MoEKit order, outermost first: `[E, out, in]` for an expert stack.
    public var shape: [Int] { info.shape }

    /// Input features: `ne[0]`.
    public var columns: Int { info.dims.first ?? 1 }
    /// Output features of one matrix: `ne[1]` (1 for a vector).
    public var rows: Int { info.dims.count > 1 ? info.dims[1] : 1 }
    /// Matrices stacked: `ne[2] · ne[3]` (the experts of an `_exps` tensor).
    public var matrixCount: Int { info.dims.dropFirst(2).reduce(1, *) }
    /// Bytes from one row to the next: `(columns / blockSize) · bytesPerBlock`.
    public var rowStride: Int { type.rowBytes(elements: columns) ?? 0 }
    /// Bytes from one matrix to the next.
    public var matrixStride: Int { rows * rowStride }

    /// The bytes of matrix `m` (expert `m` of an `_exps` tensor); `nil` when `m` is out of range.
    public func matrix(_ m: Int) -> UnsafeRawBufferPointer? {
        guard m >= 0, m < matrixCount else { return nil }
        return UnsafeRawBufferPointer(rebasing: bytes[(m * matrixStride)..<((m + 1) * matrixStride)])
    }

    /// Where each matrix's row 0 lies, for ``StoredMatrices`` (`init(ggml:rows:columns:bases:rowStride:pages:owners:)`).
    var matrixBases: [UnsafeRawPointer] {
        guard let base = bytes.baseAddress else { return [] }
        return (0..<matrixCount).map { base + $0 * matrixStride }
    }

    /// Each matrix's file pages, released once it is packed.
    var matrixPages: [MappedRange?] { (0..<matrixCount).map { pages(matrix: $0) } }

    /// What a ``StoredMatrices`` made from this view must keep alive.
    var owners: [AnyObject] { [file] }

    /// The file pages of the whole tensor, to give back once packed.
    var pages: MappedRange { MappedRange(file: file, range: fileRange) }

    /// The file pages of matrix `m` (in range).
    func pages(matrix m: Int) -> MappedRange {
        let start = fileRange.lowerBound + m * matrixStride
        return MappedRange(file: file, range: start..<(start + matrixStride))
    }

    /// The values of an F32, F16 or BF16 tensor (biases, router weights), widened exactly, in
    /// memory order; `nil` for the other types.
    public func floats() -> [Float]? {
        let n = info.elementCount
        switch type {
        case .f32:
            return (0..<n).map { bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        case .f16:
            return (0..<n).map { WeightDecoding.f16(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }
        case .bf16:
            return (0..<n).map { WeightDecoding.bf16(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }
        default:
            return nil
        }
    }
}
