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
    /// ``PackedRows``.
    /// `source` picks one of interleaved stacks (gate 0, up 1).
    @inline(__always)
    static func multiply(_ item: Item, isa: TileKernel.ISA, a: PackedRows, pointer: UnsafePointer<Float>,
                         pairs aPairs: UnsafePointer<UInt32>? = nil, panels: PackedPanels, source: Int = 0, weights: PanelPointers,
                         into c: UnsafeMutablePointer<Float>) {
        let offset = panels.panelOffset(matrix: item.expert, panel: item.panel, source: source)
        if let pairs = weights.bf16Pairs, let aPairs {
            multiplyPairs(item, a: a, aPairs: aPairs, panelOffset: offset, weights: pairs, into: c)
            return
        }
        let depth = a.depth
        let firstTile = pointer + a.tileOffset(row: item.firstRow)
        var k0 = 0
        repeat {
            let kc = min(TileKernel.depthBlock, depth - k0)
            var r = 0
            while r < item.rows {
                // Row tiles of one expert are consecutive in PackedRows: tile r/8 is 8·depth further on.
                TileKernel.multiply(isa: isa, rows: min(TileKernel.rows, item.rows - r), depth: kc, a: firstTile + r * depth + k0 * TileKernel.rows,
                                    f32: weights.f32, bf16: weights.bf16, panelStart: offset + k0 * PackedPanels.width,
                                    c: c + r * PackedPanels.width, accumulate: k0 > 0)
                r += TileKernel.rows
            }
            k0 += kc
        } while k0 < depth
    }
}

extension GroupedPanelGEMM {
    /// The BF16-compute variant: activations and weights as bf16 k-pairs.
    @inline(__always)
    static func multiplyPairs(_ item: Item, a: PackedRows, aPairs: UnsafePointer<UInt32>, panelOffset offset: Int,
                              weights: UnsafePointer<UInt32>, into c: UnsafeMutablePointer<Float>) {
        let pairs = a.pairCount
        let firstTile = aPairs + a.paddedRow[item.firstRow] * pairs
        let block = TileKernel.pairBlock
        var k0 = 0
        repeat {
            let kc = min(block, pairs - k0)
            var r = 0
            while r < item.rows {
                TileKernel.multiplyPairs(rows: min(TileKernel.rows, item.rows - r), pairs: kc,
                                         a: firstTile + r * pairs + k0 * TileKernel.rows,
                                         b: weights + offset + k0 * PackedPanels.width, c: c + r * PackedPanels.width, accumulate: k0 > 0)
                r += TileKernel.rows
            }
            k0 += kc
        } while k0 < pairs
    }
}

/// Raw pointers to a ``PackedPanels`` storage, valid inside ``PackedPanels/withPointers(_:)``.
struct PanelPointers {
    var f32: UnsafePointer<Float>?
    var bf16: UnsafePointer<UInt16>?
    var bf16Pairs: UnsafePointer<UInt32>?
}

extension PackedPanels {
    func withPointers<R>(_ body: (PanelPointers) throws -> R) rethrows -> R {
        switch storage {
        case .f32(let values): try values.withUnsafeBufferPointer { try body(PanelPointers(f32: $0.baseAddress)) }
        case .bf16(let values): try values.withUnsafeBufferPointer { try body(PanelPointers(bf16: $0.baseAddress)) }
        case .bf16Pairs(let values): try values.withUnsafeBufferPointer { try body(PanelPointers(bf16Pairs: $0.baseAddress)) }
        }
    }
}
