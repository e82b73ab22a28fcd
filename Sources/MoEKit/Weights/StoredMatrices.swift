/// A stack of `count` matrices `[rows, columns]` (nn.Linear orientation, `[out, in]`) in the format a
/// checkpoint stores them, viewed where they lie: in a memory-mapped file (zero copy) or in bytes
/// MoEKit made (random or quantized weights). Nothing is widened: ``ExpertWeights`` packs these bytes
/// once, in the same format, and ``element(matrix:row:column:)`` decodes one value for the reference.
///
/// Each matrix is described by where its row 0 starts and by strides, so every stored layout is a
/// view and no layout needs a conversion pass of its own: per-expert tensors (one base per expert),
/// fused `[E, 2F, H]` (gate and up as two views of one tensor), transposed `[E, H, 2F]` (row stride
/// one element), GPT-OSS's interleaved gate/up rows (row stride two rows).
public struct StoredMatrices: @unchecked Sendable {
    /// How one matrix lies in memory.
    struct Matrix {
        /// Element (0, 0).
        var values: UnsafeRawPointer
        /// Bytes from row r to row r + 1.
        var rowStride: Int
        /// Bytes from column c to c + 1 (unquantized formats; quantized ones are contiguous along a row).
        var columnStride: Int
        /// Scale (0, 0): FP8 the scale of block (0, 0); MXFP4 the E8M0 byte of row 0, group 0.
        var scales: UnsafeRawPointer?
        /// FP8: bytes from block row to block row; MXFP4: bytes from row to row.
        var scaleRowStride: Int
        /// FP8: the stored row of row 0 (a row slice keeps its block grid).
        var scaleRowOffset = 0
        /// The file bytes this matrix reads, to give back to the page cache once packed.
        var pages: MappedRange?
    }

    /// The element type of FP8 scales as stored (`weight_scale_inv` is F32, BF16 or F16).
    enum ScaleType: Sendable { case f32, bf16, f16, e8m0 }

    /// What the stored bytes are.
    public let format: WeightFormat
    /// Matrices in the stack (E for an expert stack).
    public let count: Int
    /// Output features (rows).
    public let rows: Int
    /// Input features (columns).
    public let columns: Int
    let matrices: [Matrix]
    let scaleType: ScaleType
    /// What keeps the bytes alive (mapped files, owned bytes).
    let owners: [AnyObject]

    init(format: WeightFormat, rows: Int, columns: Int, matrices: [Matrix], scaleType: ScaleType = .f32, owners: [AnyObject]) {
        self.format = format
        count = matrices.count
        self.rows = rows
        self.columns = columns
        self.matrices = matrices
        self.scaleType = scaleType
        self.owners = owners
    }

    /// Bytes the stored values and scales occupy.
    public var storedBytes: Int {
        let perMatrix: Int
        switch format {
        case .f32: perMatrix = rows * columns * 4
        case .bf16, .f16: perMatrix = rows * columns * 2
        case .fp8E4M3(let br, let bc):
            let scaleBytes = scaleType == .f32 ? 4 : 2
            perMatrix = rows * columns + ((rows + br - 1) / br) * ((columns + bc - 1) / bc) * scaleBytes
        case .mxfp4:
            let groups = (columns + WeightFormat.mxfp4Group - 1) / WeightFormat.mxfp4Group
            perMatrix = rows * groups * 17
        case .ggml(let type): perMatrix = rows * (columns / type.blockSize) * type.bytesPerBlock
        }
        return count * perMatrix
    }

    /// The value of element (`row`, `column`) of matrix `m`, decoded exactly (the specification).
    @inline(__always) public func element(matrix m: Int, row r: Int, column c: Int) -> Float {
        let x = matrices[m]
        switch format {
        case .f32: return x.values.loadUnaligned(fromByteOffset: r * x.rowStride + c * x.columnStride, as: Float.self)
        case .bf16: return WeightDecoding.bf16(x.values.loadUnaligned(fromByteOffset: r * x.rowStride + c * x.columnStride, as: UInt16.self))
        case .f16: return WeightDecoding.f16(x.values.loadUnaligned(fromByteOffset: r * x.rowStride + c * x.columnStride, as: UInt16.self))
        case .fp8E4M3:
            return WeightDecoding.e4m3(x.values.load(fromByteOffset: r * x.rowStride + c, as: UInt8.self)) * scale(matrix: m, row: r, column: c)
        case .mxfp4:
            let byte = x.values.load(fromByteOffset: r * x.rowStride + c / 2, as: UInt8.self)
            return WeightDecoding.mxfp4(code: c % 2 == 0 ? byte & 0xF : byte >> 4, scale: mxfp4Scale(matrix: m, row: r, column: c))
        case .ggml(let type): return ggmlElement(type, matrix: m, row: r, column: c)
        }
    }

    /// FP8: the F32 scale of the block holding (`row`, `column`) of matrix `m` (BF16/F16 scales widened exactly).
    @inline(__always) func scale(matrix m: Int, row r: Int, column c: Int) -> Float {
        guard case .fp8E4M3(let br, let bc) = format, let s = matrices[m].scales else { return 1 }
        let offset = ((r + matrices[m].scaleRowOffset) / br) * matrices[m].scaleRowStride
        switch scaleType {
        case .f32: return s.loadUnaligned(fromByteOffset: offset + (c / bc) * 4, as: Float.self)
        case .bf16: return WeightDecoding.bf16(s.loadUnaligned(fromByteOffset: offset + (c / bc) * 2, as: UInt16.self))
        case .f16: return WeightDecoding.f16(s.loadUnaligned(fromByteOffset: offset + (c / bc) * 2, as: UInt16.self))
        case .e8m0: return 1
        }
    }

    /// MXFP4: the E8M0 byte of (`row`, group of `column`) of matrix `m`.
    @inline(__always) func mxfp4Scale(matrix m: Int, row r: Int, column c: Int) -> UInt8 {
        matrices[m].scales.unsafelyUnwrapped.load(fromByteOffset: r * matrices[m].scaleRowStride + c / WeightFormat.mxfp4Group, as: UInt8.self)
    }

    /// Rows `range` of every matrix, as a view (tensor parallelism, fused gate/up halves).
    func rows(_ range: Range<Int>) -> StoredMatrices {
        let shifted = matrices.map { x -> Matrix in
            var y = x
            y.values = x.values + range.lowerBound * x.rowStride
            switch format {
            case .fp8E4M3: y.scaleRowOffset = x.scaleRowOffset + range.lowerBound
            case .mxfp4: y.scales = x.scales.map { $0 + range.lowerBound * x.scaleRowStride }
            case .f32, .bf16, .f16, .ggml: break
            }
            return y
        }
        return StoredMatrices(format: format, rows: range.count, columns: columns, matrices: shifted, scaleType: scaleType, owners: owners)
    }

    /// Gives the file pages of matrix `m` back (they were read into the packed copy).
    func releasePages(matrix m: Int) { matrices[m].pages?.release() }
}

/// A byte range of a mapped file, released page by page once its contents are no longer needed.
struct MappedRange: @unchecked Sendable {
    let file: MappedFile
    let range: Range<Int>

    func release() { file.release(range) }
}
