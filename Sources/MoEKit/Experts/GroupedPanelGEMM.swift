/// The grouped GEMM both projections share: for each expert e, its rows (consecutive 8-row tiles of
/// ``PackedRows``, in ``RoutingPlan`` order) times the transposed weights of e, one 32-column panel
/// at a time. Work is cut into (expert, row block, panel) items so a hot expert spreads over all
/// threads; each item is computed by one thread, K-block by K-block, tile by tile, in a fixed order.
enum GroupedPanelGEMM {
    /// Rows per work item at most: 192 rows × 256 depth of A (192 KiB) stay in L2 while a panel streams past.
    static let rowBlock = 192

    struct Item: Sendable {
        var expert: Int
        var firstRow: Int
        var rows: Int
        var panel: Int
    }

    /// All items of a plan for weights with `panelCount` panels, expert-major then row block then panel,
    /// so consecutive items share their A block. An expert's rows are cut into ⌈rows / ``rowBlock``⌉
    /// blocks of (nearly) equal size, each a whole number of 8-row tiles: every block streams the expert's
    /// weights once, so 200 rows are 104 + 96 and not 192 + 8 (the 8 would stream the whole matrix for
    /// almost no work). A row's result does not depend on its block (tiles start at the same rows and
    /// every row accumulates alone), so blocks may follow the batch.
    static func items(_ plan: RoutingPlan, panelCount: Int) -> [Item] {
        let tile = TileKernel.rows
        var items: [Item] = []
        for e in 0..<plan.expertCount {
            let count = plan.offsets[e + 1] - plan.offsets[e]
            guard count > 0 else { continue }
            let blocks = (count + rowBlock - 1) / rowBlock
            let size = ((count + blocks - 1) / blocks + tile - 1) / tile * tile
            var row = plan.offsets[e]
            while row < plan.offsets[e + 1] {
                let rows = min(size, plan.offsets[e + 1] - row)
                for p in 0..<panelCount { items.append(Item(expert: e, firstRow: row, rows: rows, panel: p)) }
                row += rows
            }
        }
        return items
    }

    /// `c[r][0..<32] = Σ_k A[item.firstRow + r, k] · W_e[panel column, k]` for the item's rows, A given as
    /// ``PackedRows`` (`tiles` its storage), W as panels (`weights` their bytes). `source` picks one of
    /// interleaved stacks (gate 0, up 1). K-blocks of ``TileKernel/depthBlock`` k (or pairs), each a whole
    /// number of scale groups (or a group a whole number of K-blocks), so a block's scales start with it.
    @inline(__always)
    static func multiply(_ item: Item, isa: TileKernel.ISA, a: PackedRows, tiles: UnsafeRawPointer, panels: PanelMatrices,
                         weights: PanelPointers, source: Int = 0, into c: UnsafeMutablePointer<Float>) {
        if case .blocks(let type) = panels.element {
            multiplyBlocks(item, type: type, isa: isa, a: a, tiles: tiles, panels: panels, weights: weights, source: source, into: c)
            return
        }
        let units = panels.depthUnits
        let rowBytes = PanelMatrices.rowBytes(panels.element)
        let scaleRowBytes = PanelMatrices.scaleRowBytes(panels.element)
        let group = panels.scaleGroup
        let block = max(TileKernel.depthBlock, group)
        let b = weights.values + panels.panelOffset(matrix: item.expert, panel: item.panel, source: source)
        let scales = weights.scales.map { $0 + panels.scaleOffset(matrix: item.expert, panel: item.panel, source: source) }
        // Row tiles of one expert are consecutive in PackedRows: tile r/8 is 8·units elements further on.
        let firstTile = tiles + 4 * a.paddedRow[item.firstRow] * units
        var k0 = 0
        repeat {
            let kc = min(block, units - k0)
            let blockScales = scales.map { $0 + (k0 / group) * scaleRowBytes }
            var r = 0
            while r < item.rows {
                TileKernel.multiply(isa: isa, element: panels.element, rows: min(TileKernel.rows, item.rows - r), depth: kc,
                                    a: firstTile + 4 * (r * units + k0 * TileKernel.rows), b: b + k0 * rowBytes, scales: blockScales,
                                    c: c + r * PanelMatrices.width, accumulate: k0 > 0)
                r += TileKernel.rows
            }
            k0 += kc
        } while k0 < units
    }
}

/// Raw pointers to a ``PanelMatrices``' bytes.
struct PanelPointers {
    var values: UnsafeRawPointer
    var scales: UnsafeRawPointer?
}

extension PanelMatrices {
    /// The bytes' base pointers (alive as long as `self`).
    var pointers: PanelPointers { PanelPointers(values: UnsafeRawPointer(values.pointer), scales: scales.map { UnsafeRawPointer($0.pointer) }) }
}
