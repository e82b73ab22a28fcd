/// The grouped GEMM both projections share: for each expert e, its rows (consecutive 8-row tiles of
/// ``PackedRows``, in ``RoutingPlan`` order) times the transposed weights of e, one 32-column panel
/// at a time. Work is cut into (expert, row block, run of adjacent panels) items so a hot expert spreads
/// over all threads; each item is computed by one thread, panel by panel, K-block by K-block, tile by
/// tile, in a fixed order. A panel's result depends only on its rows and weights, never on how panels
/// were cut into items, so results do not depend on the thread count.
enum GroupedPanelGEMM {
    /// Rows per work item at most: 192 rows × 256 depth of A (192 KiB) stay in L2 while a panel streams past.
    static let rowBlock = 192
    /// Work items per thread a region aims for: enough for the dynamic schedule to even out, few enough
    /// that each item streams a long run of adjacent panels (contiguous weights: the prefetch ahead crosses
    /// from one panel into the next). One panel per item made the two threads of a decode take alternate
    /// panels, and FP8 lost 10–15 % of its bandwidth to the broken streams.
    static let itemsPerThread = 8

    struct Item: Sendable {
        var expert: Int
        var firstRow: Int
        var rows: Int
        /// Adjacent panels, computed in ascending order.
        var panels: Range<Int>
    }

    /// All items of a plan for weights with `panelCount` panels, expert-major then row block then panel
    /// run, so consecutive items share their A block. An expert's rows are cut into ⌈rows / ``rowBlock``⌉
    /// blocks of (nearly) equal size, each a whole number of 8-row tiles: every block streams the expert's
    /// weights once, so 200 rows are 104 + 96 and not 192 + 8 (the 8 would stream the whole matrix for
    /// almost no work). A row's result does not depend on its block (tiles start at the same rows and
    /// every row accumulates alone), so blocks may follow the batch. Each block's panels are cut into
    /// runs of equal length (the last one shorter) so that the plan has about ``itemsPerThread`` items
    /// per thread.
    static func items(_ plan: RoutingPlan, panelCount: Int, threads: Int) -> [Item] {
        let tile = TileKernel.rows
        var blocks: [(expert: Int, firstRow: Int, rows: Int)] = []
        for e in 0..<plan.expertCount {
            let count = plan.offsets[e + 1] - plan.offsets[e]
            guard count > 0 else { continue }
            let cuts = (count + rowBlock - 1) / rowBlock
            let size = ((count + cuts - 1) / cuts + tile - 1) / tile * tile
            var row = plan.offsets[e]
            while row < plan.offsets[e + 1] {
                let rows = min(size, plan.offsets[e + 1] - row)
                blocks.append((e, row, rows))
                row += rows
            }
        }
        let target = max(1, threads) * itemsPerThread
        let run = max(1, min(panelCount, blocks.count * panelCount / target))
        var items: [Item] = []
        items.reserveCapacity(blocks.count * ((panelCount + run - 1) / run))
        for block in blocks {
            var p = 0
            while p < panelCount {
                let end = min(panelCount, p + run)
                items.append(Item(expert: block.expert, firstRow: block.firstRow, rows: block.rows, panels: p..<end))
                p = end
            }
        }
        return items
    }

    /// `c[r][0..<32] = Σ_k A[item.firstRow + r, k] · W_e[panel column, k]` for the item's rows and one of
    /// its panels, A given as ``PackedRows`` (`tiles` its storage), W as panels (`weights` their bytes).
    /// `source` picks one of interleaved stacks (gate 0, up 1). K-blocks of ``TileKernel/depthBlock`` k
    /// (or pairs), each a whole number of scale groups (or a group a whole number of K-blocks), so a
    /// block's scales start with it.
    @inline(__always)
    static func multiply(_ item: Item, panel: Int, isa: TileKernel.ISA, a: PanelRows, panels: PanelMatrices,
                         weights: PanelPointers, source: Int = 0, into c: UnsafeMutablePointer<Float>) {
        switch panels.element {
        case .blocks(let type):
            multiplyBlocks(item, panel: panel, type: type, isa: isa, a: a, panels: panels, weights: weights, source: source, into: c)
            return
        case .int8Blocks(let type):
            multiplyInt8(item, panel: panel, type: type, isa: isa, a: a, panels: panels, weights: weights, source: source, into: c)
            return
        case .f32, .bf16, .f16, .bf16Pairs, .fp8, .mxfp4:
            break
        }
        let units = panels.depthUnits
        let scales = weights.scales.map { $0 + panels.scaleOffset(matrix: item.expert, panel: panel, source: source) }
        let firstTile = a.firstTile(item, units: units)
        withDepthBlockBuffers(panels, weights, count: 1) { buffer in
            forEachDepthBlock(panels) { k0, kc, scaleShift in
                let b = depthBlock(panels, weights: weights, matrix: item.expert, panel: panel, source: source, units: k0, count: kc, buffer: buffer)
                var r = 0
                while r < item.rows {
                    TileKernel.multiply(isa: isa, element: panels.element, rows: min(TileKernel.rows, item.rows - r), depth: kc,
                                        a: firstTile + 4 * (r * units + k0 * TileKernel.rows), b: b,
                                        scales: scales.map { $0 + scaleShift }, c: c + r * PanelMatrices.width, accumulate: k0 > 0)
                    r += TileKernel.rows
                }
            }
        }
    }

    /// K-block `k0 ..< k0 + kc` of a panel: a slice of the packed panel, or, for stacks read in place
    /// (``PanelMatrices/mapped``), that block transposed from the stored bytes into `buffer`.
    @inline(__always)
    static func depthBlock(_ panels: PanelMatrices, weights: PanelPointers, matrix m: Int, panel p: Int, source s: Int,
                           units k0: Int, count kc: Int, buffer: UnsafeMutableRawPointer?) -> UnsafeRawPointer {
        guard let mapped = panels.mapped, let buffer else {
            return weights.values + panels.panelOffset(matrix: m, panel: p, source: s) + k0 * PanelMatrices.rowBytes(panels.element)
        }
        _ = panels.transposeBlock(mapped[s], matrix: m, panel: p, units: k0, count: kc, into: buffer)  // checked finite on load
        return UnsafeRawPointer(buffer)
    }

    /// `body` with `count` (1 or 2) K-block buffers (``TileKernel/depthBlock`` panel rows each, 64-byte aligned,
    /// one after another) for stacks read in place: the work item's own (``PanelMatrices/withPointers(_:)``), or
    /// made for this call; with `nil` for packed panels, which need none.
    @inline(__always)
    static func withDepthBlockBuffers(_ panels: PanelMatrices, _ weights: PanelPointers, count: Int, _ body: (UnsafeMutableRawPointer?) -> Void) {
        guard panels.mapped != nil else { return body(nil) }
        if let buffers = weights.blockBuffers { return body(buffers) }
        withUnsafeTemporaryAllocation(byteCount: count * depthBlockBytes(panels), alignment: 64) { body($0.baseAddress) }
    }

    /// Bytes of one K-block buffer of ``withDepthBlockBuffers(_:count:_:)``.
    @inline(__always) static func depthBlockBytes(_ panels: PanelMatrices) -> Int {
        TileKernel.depthBlock * PanelMatrices.rowBytes(panels.element)
    }

    /// Two panels of an item — `(panel, source)` pairs `first` into `c` and `second` into `c2` — bit for bit two
    /// ``multiply(_:panel:isa:a:panels:weights:source:into:)`` calls; for a one-row item (decode) in one kernel
    /// loop where ``TileKernel/multiplyOneRow(isa:element:depth:a:panelA:panelB:accumulate:)`` has one.
    @inline(__always)
    static func multiplyTwoPanels(_ item: Item, isa: TileKernel.ISA, a: PanelRows, panels: PanelMatrices, weights: PanelPointers,
                               _ first: (panel: Int, source: Int), into c: UnsafeMutablePointer<Float>,
                               _ second: (panel: Int, source: Int), into c2: UnsafeMutablePointer<Float>) {
        guard item.rows == 1, !panels.element.isBlocks else {
            multiply(item, panel: first.panel, isa: isa, a: a, panels: panels, weights: weights, source: first.source, into: c)
            multiply(item, panel: second.panel, isa: isa, a: a, panels: panels, weights: weights, source: second.source, into: c2)
            return
        }
        let units = panels.depthUnits
        let sA = weights.scales.map { $0 + panels.scaleOffset(matrix: item.expert, panel: first.panel, source: first.source) }
        let sB = weights.scales.map { $0 + panels.scaleOffset(matrix: item.expert, panel: second.panel, source: second.source) }
        let firstTile = a.firstTile(item, units: units)
        withDepthBlockBuffers(panels, weights, count: 2) { buffers in
            let bufferB = buffers.map { $0 + depthBlockBytes(panels) }
            forEachDepthBlock(panels) { k0, kc, scaleShift in
                let bA = depthBlock(panels, weights: weights, matrix: item.expert, panel: first.panel, source: first.source,
                                    units: k0, count: kc, buffer: buffers)
                let bB = depthBlock(panels, weights: weights, matrix: item.expert, panel: second.panel, source: second.source,
                                    units: k0, count: kc, buffer: bufferB)
                TileKernel.multiplyOneRow(isa: isa, element: panels.element, depth: kc, a: firstTile + 4 * k0 * TileKernel.rows,
                                          panelA: (bA, sA.map { $0 + scaleShift }, c),
                                          panelB: (bB, sB.map { $0 + scaleShift }, c2), accumulate: k0 > 0)
            }
        }
    }

    /// The K-blocks of a panel in ascending order: `body(k0, kc, scaleShift)` with `scaleShift` the byte offset
    /// of the block's first scale row. A block is ``TileKernel/depthBlock`` units or one scale group, whichever
    /// is larger, so a block's scales start with it.
    @inline(__always)
    static func forEachDepthBlock(_ panels: PanelMatrices, _ body: (_ k0: Int, _ kc: Int, _ scaleShift: Int) -> Void) {
        let units = panels.depthUnits
        let group = panels.scaleGroup
        let block = max(TileKernel.depthBlock, group)
        let scaleRowBytes = PanelMatrices.scaleRowBytes(panels.element)
        var k0 = 0
        repeat {
            let kc = min(block, units - k0)
            body(k0, kc, group > 0 ? (k0 / group) * scaleRowBytes : 0)
            k0 += kc
        } while k0 < units
    }
}

/// The A side of a ``GroupedPanelGEMM`` region: the packed rows and their storage's base pointer.
struct PanelRows {
    var rows: PackedRows
    var tiles: UnsafeRawPointer
    /// The rows quantized for int8 panels (padded row 0, input 0), `nil` for every other element
    /// (``PackedRows/withPanelRows(for:threads:_:)``).
    var quantized: Int8Dot.Rows? = nil

    /// The first row tile of an item: row tiles of one expert are consecutive in ``PackedRows``, tile r/8
    /// is 8·units elements further on.
    @inline(__always) func firstTile(_ item: GroupedPanelGEMM.Item, units: Int) -> UnsafeRawPointer {
        tiles + 4 * rows.paddedRow[item.firstRow] * units
    }
}

/// Raw pointers to a ``PanelMatrices``' bytes, and for stacks read in place a work item's K-block buffers.
struct PanelPointers {
    var values: UnsafeRawPointer
    var scales: UnsafeRawPointer?
    /// Stacks read in place (``PanelMatrices/mapped``): two K-block buffers for one thread's work item, made
    /// once per item rather than per panel; `nil` for packed panels, or when each call makes its own.
    var blockBuffers: UnsafeMutableRawPointer? = nil
}

extension PanelMatrices {
    /// The bytes' base pointers (alive as long as `self`).
    var pointers: PanelPointers { PanelPointers(values: UnsafeRawPointer(values.pointer), scales: scales.map { UnsafeRawPointer($0.pointer) }) }

    /// `body` with ``pointers`` for one thread's work item, with its two K-block buffers when the stacks are
    /// read in place (one allocation per item, not one per panel).
    @inline(__always)
    func withPointers(_ body: (PanelPointers) -> Void) {
        guard mapped != nil else { return body(pointers) }
        withUnsafeTemporaryAllocation(byteCount: 2 * GroupedPanelGEMM.depthBlockBytes(self), alignment: 64) { buffers in
            var p = pointers
            p.blockBuffers = buffers.baseAddress
            body(p)
        }
    }
}
