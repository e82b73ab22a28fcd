import CMoEKernels

/// The one copy of a weight stack MoEKit keeps: `[matrices, out, in]` in its stored format, repacked
/// once into the fast kernels' panels. Each matrix's output columns are cut into panels of ``width``;
/// a panel is stored `in`-major, `panel[k][n] = W[p·32 + n, k]` (zero past `out`), so a kernel streams
/// one contiguous panel and a K-block is a contiguous slice of it. The bytes of an element are the
/// stored bytes, permuted:
///
/// | element | panel row k (32 columns) | scales per panel |
/// | --- | --- | --- |
/// | `f32` | 32 × F32 | — |
/// | `bf16`, `f16` | 32 × 16-bit | — |
/// | `bf16Pairs` (BF16 compute) | 32 words per k-pair: bf16(W[n, 2kp]) \| bf16(W[n, 2kp+1]) << 16 | — |
/// | `fp8` | 32 × E4M3 byte | F32 `[k / group][32]`: column n's block scale |
/// | `mxfp4` | 16 bytes of codes: code(W[j, k]) \| code(W[j + 16, k]) << 4 for j < 16, at ``mxfp4Byte(k:column:depth:)`` | E8M0 `[k / 32][32]` |
/// | `blocks` (ggml) | one per k-block (32 or 256 k): the 32 columns' stored blocks, column 0 first | in the blocks |
///
/// FP8 scales are repeated per output column (4 bytes per 128 weights of a 128 × 128 block: +3 %), so a
/// row slice (tensor parallelism) and a partial edge block need no special case. Several stacks of one
/// shape can be interleaved panel by panel (gate and up: panel `p` of source `s` is stored as panel
/// `p·sources + s`), so one work item streams gate panel p and then up panel p from consecutive memory.
struct PanelMatrices: @unchecked Sendable {
    /// Output columns per panel: two 512-bit registers of floats.
    static let width = Int(MOE_PANEL_WIDTH)

    /// The byte of an MXFP4 panel (or K-block) of `depth` rows holding column `n`'s code at row `k`: the
    /// low nibble for n < 16, the high nibble of the same byte for n + 16. Each whole quad of rows
    /// `k & ~3 ..< (k & ~3) + 4` fills one 64-byte line, lane `n % 16`'s 32-bit word holding the quad's four
    /// bytes in order (so a kernel reaches a lane's next row by a shift, not a byte widening); the last
    /// `depth % 4` rows take 16 bytes each, byte `n % 16`. A K-block starting at a multiple of 4 is laid out
    /// the same way on its own.
    @inline(__always) static func mxfp4Byte(k: Int, column n: Int, depth: Int) -> Int {
        k < depth & ~3 ? (k & ~3) * 16 + (n % 16) * 4 + (k & 3) : k * 16 + n % 16
    }

    /// What one panel element is.
    enum Element: Equatable, Sendable {
        case f32, bf16, f16, bf16Pairs
        /// FP8 E4M3 with one F32 scale per column and `group` inputs.
        case fp8(group: Int)
        case mxfp4
        /// ggml blocks as stored: a panel "row" is one k-block, `panel[b][n]` = block b of column n
        /// (``GGMLBlockType/bytesPerBlock`` bytes; zero blocks past `out`).
        case blocks(GGMLBlockType)
        /// ggml blocks for ``ComputeMode/int8``: the bytes of each panel row (one k-block of the 32 columns)
        /// permuted into the int8 kernel's layout (``Int8Dot/layout(_:row:)``); same size as ``blocks(_:)``.
        case int8Blocks(GGMLBlockType)

        /// Whether this is a ggml block element, either layout (no one-row two-panel kernel).
        var isBlocks: Bool {
            switch self {
            case .blocks, .int8Blocks: true
            case .f32, .bf16, .f16, .bf16Pairs, .fp8, .mxfp4: false
            }
        }
    }

    let element: Element
    /// The stored format (``WeightFormat/bf16`` for BF16-compute pairs).
    let format: WeightFormat
    let matrixCount: Int
    /// Output columns of one source matrix.
    let outFeatures: Int
    let inFeatures: Int
    /// Interleaved source stacks (1, or 2 for gate and up).
    let sourceCount: Int
    /// Panels of one source matrix: `⌈outFeatures / width⌉`.
    let panelCount: Int
    /// The packed panels (no bytes when ``mapped``).
    let values: AlignedBytes
    let scales: AlignedBytes?
    /// The stored stacks (one per source) when the kernels read them in place (``WeightResidency/mapped``):
    /// each K-block of a panel is transposed from them into a per-thread buffer as it is used
    /// (``transposeBlock(_:matrix:panel:units:count:into:)``); `nil` for packed panels.
    let mapped: [StoredMatrices]?
    /// Bytes of one panel's values and of its scales.
    let panelBytes: Int, panelScaleBytes: Int

    var compute: ComputeMode {
        switch element {
        case .bf16Pairs: .bf16
        case .int8Blocks: .int8
        case .f32, .bf16, .f16, .fp8, .mxfp4, .blocks: .f32
        }
    }

    /// Bytes held: packed values and scales, or the stored bytes read in place.
    var residentBytes: Int { mapped.map { $0.reduce(0) { $0 + $1.storedBytes } } ?? values.count + (scales?.count ?? 0) }

    /// Depth units per panel: k, k-pairs for BF16 compute, k-blocks for ggml blocks.
    var depthUnits: Int { Self.depthUnits(element, inFeatures: inFeatures) }

    /// Panel rows of `element` for `inFeatures` inputs (ggml blocks: whole blocks, as stored).
    static func depthUnits(_ element: Element, inFeatures: Int) -> Int {
        switch element {
        case .bf16Pairs: (inFeatures + 1) / 2
        case .blocks(let type), .int8Blocks(let type): inFeatures / type.blockSize
        case .f32, .bf16, .f16, .fp8, .mxfp4: inFeatures
        }
    }

    /// Inputs sharing one scale (FP8 block width, MXFP4 32), 0 for unscaled elements.
    var scaleGroup: Int { Self.scaleGroup(element) }

    /// Inputs sharing one scale of `element`: the FP8 block width, MXFP4's 32, 0 for unscaled elements.
    static func scaleGroup(_ element: Element) -> Int {
        switch element {
        case .fp8(let group): group
        case .mxfp4: WeightFormat.mxfp4Group
        case .f32, .bf16, .f16, .bf16Pairs, .blocks, .int8Blocks: 0
        }
    }

    /// Bytes of one panel of `element` over `inFeatures` inputs, and of its scales: what a panel of the
    /// packed stack holds (``init(element:format:matrices:out:in:sources:mapped:)`` allocates this, and
    /// `moe inspect` and the memory budget predict it from a file's shapes with it).
    static func panelBytes(_ element: Element, inFeatures: Int) -> (values: Int, scales: Int) {
        let group = scaleGroup(element)
        return (depthUnits(element, inFeatures: inFeatures) * rowBytes(element),
                group == 0 ? 0 : (inFeatures + group - 1) / group * scaleRowBytes(element))
    }

    /// Bytes of one panel row (one k, one k-pair, or one k-block).
    static func rowBytes(_ element: Element) -> Int {
        switch element {
        case .f32, .bf16Pairs: 4 * width
        case .bf16, .f16: 2 * width
        case .fp8: width
        case .mxfp4: width / 2
        case .blocks(let type), .int8Blocks(let type): width * type.bytesPerBlock
        }
    }

    /// Bytes of one scale group row (32 columns).
    static func scaleRowBytes(_ element: Element) -> Int {
        switch element {
        case .fp8: 4 * width
        case .mxfp4: width
        case .f32, .bf16, .f16, .bf16Pairs, .blocks, .int8Blocks: 0
        }
    }

    /// An empty layout for `matrices × sources × panels` of `element`, its bytes not yet written; with
    /// `mapped`, the layout of those stacks read in place, and no bytes.
    init(element: Element, format: WeightFormat, matrices: Int, out: Int, in inFeatures: Int, sources: Int,
         mapped: [StoredMatrices]? = nil) throws(WeightError) {
        self.element = element
        self.format = format
        matrixCount = matrices
        outFeatures = out
        self.inFeatures = inFeatures
        sourceCount = sources
        panelCount = (out + Self.width - 1) / Self.width
        (panelBytes, panelScaleBytes) = Self.panelBytes(element, inFeatures: inFeatures)
        let panels = matrices * sources * panelCount
        let (valueBytes, o1) = panels.multipliedReportingOverflow(by: panelBytes)
        let (scaleBytes, o2) = panels.multipliedReportingOverflow(by: panelScaleBytes)
        guard !o1, !o2 else { throw .outOfMemory(bytes: .max) }
        self.mapped = mapped
        values = try AlignedBytes(count: mapped == nil ? valueBytes : 0)
        scales = Self.scaleGroup(element) == 0 || mapped != nil ? nil : try AlignedBytes(count: scaleBytes)
    }

    /// Byte offset of panel `p` of source `s` of matrix `m` in ``values``.
    @inline(__always) func panelOffset(matrix m: Int, panel p: Int, source s: Int = 0) -> Int {
        ((m * panelCount + p) * sourceCount + s) * panelBytes
    }

    /// Byte offset of the same panel's scales in ``scales``.
    @inline(__always) func scaleOffset(matrix m: Int, panel p: Int, source s: Int = 0) -> Int {
        ((m * panelCount + p) * sourceCount + s) * panelScaleBytes
    }

    /// The panel element for `format` computed in `compute`.
    /// - Throws: ``WeightError/unsupported(_:)`` for BF16 compute over anything but BF16 weights.
    static func element(for format: WeightFormat, compute: ComputeMode) throws(WeightError) -> Element {
        switch (format, compute) {
        case (.ggml(let type), .int8) where Int8Dot.supports(type): return .int8Blocks(type)
        case (_, .int8): return try element(for: format, compute: .f32)  // no int8 kernel: exact F32
        case (.bf16, .bf16): return .bf16Pairs
        case (_, .bf16): throw .unsupported("BF16 compute needs BF16 weights, not \(format)")
        case (.f32, .f32): return .f32
        case (.bf16, .f32): return .bf16
        case (.f16, .f32): return .f16
        case (.fp8E4M3(_, let columns), .f32):
            // A K-block (256 inputs) must hold whole scale groups, or a group whole K-blocks.
            guard columns > 0, (256 % columns == 0 && columns % 2 == 0) || columns % 256 == 0 else {
                throw .unsupported("FP8 block width \(columns): MoEKit reads blocks whose width divides 256 or is a multiple of 256")
            }
            return .fp8(group: columns)
        case (.mxfp4, .f32): return .mxfp4
        case (.ggml(let type), .f32): return .blocks(type)
        }
    }
}
