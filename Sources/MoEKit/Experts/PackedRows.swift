/// Activations repacked into the row tiles the micro-kernels read: each expert's rows (in ``RoutingPlan``
/// order) are cut into tiles of 8, and a tile is stored k-major, `tile[k][r]`, so a kernel loads one
/// contiguous 8-float group per k (no strided row reads, no cache-set conflicts between rows).
/// Every expert's rows start on a tile boundary; padding rows are zero.
struct PackedRows {
    /// Columns (H for the first projection, F for the second).
    let depth: Int
    /// For each expert, its first padded row (E + 1 values, multiples of 8).
    let paddedOffsets: [Int]
    /// For each plan row, its padded row.
    let paddedRow: [Int]
    var storage: [Float]
    /// The same tiles as bf16 k-pairs (`tile[kp][r]`), for BF16-compute weights; empty otherwise.
    var pairs: [UInt32] = []

    /// Calls `body` with the storage and the pair-tile pointers (the latter `nil` when there are none).
    /// Empty tiles (no rows) are never read; a one-element stand-in keeps the pointer non-nil.
    func withPointers<R>(_ body: (UnsafePointer<Float>, UnsafePointer<UInt32>?) -> R) -> R {
        let values = storage.isEmpty ? [0] : storage
        return values.withUnsafeBufferPointer { s in
            pairs.withUnsafeBufferPointer { p in
                // Non-empty arrays always have a base address.
                body(s.baseAddress.unsafelyUnwrapped, pairs.isEmpty ? nil : p.baseAddress)
            }
        }
    }

    /// Rounds every tile to bf16 k-pairs (activations of a BF16-compute projection).
    mutating func makePairs(threads: Int) {
        let tile = TileKernel.rows
        let pairCount = (depth + 1) / 2
        let tiles = (paddedOffsets.last ?? 0) / tile
        var words = [UInt32](repeating: 0, count: tiles * tile * pairCount)
        storage.withUnsafeBufferPointer { x in
            words.withUnsafeMutableBufferPointer { out in
                Parallel.forEach(tiles, threads: threads) { t in
                    for k in 0..<depth {
                        for r in 0..<tile {
                            let bits = UInt32(BFloat16(x[t * tile * depth + k * tile + r]).bitPattern)
                            out[t * tile * pairCount + (k / 2) * tile + r] |= k % 2 == 0 ? bits : bits << 16
                        }
                    }
                }
            }
        }
        pairs = words
    }

    /// Packs rows produced by `source(row, into:)`, which writes a row's `depth` values (plan row order).
    init(plan: RoutingPlan, depth: Int, threads: Int,
         source: (_ row: Int, _ values: UnsafeMutablePointer<Float>) -> Void) {
        let tile = TileKernel.rows
        var padded = [Int](repeating: 0, count: plan.expertCount + 1)
        var paddedRow = [Int](repeating: 0, count: plan.rowCount)
        for e in 0..<plan.expertCount {
            let count = plan.tokensPerExpert[e]
            for i in 0..<count { paddedRow[plan.offsets[e] + i] = padded[e] + i }
            padded[e + 1] = padded[e] + (count + tile - 1) / tile * tile
        }
        var storage = [Float](repeating: 0, count: padded[plan.expertCount] * depth)
        storage.withUnsafeMutableBufferPointer { out in
            paddedRow.withUnsafeBufferPointer { paddedRow in
                Parallel.forEach(plan.rowCount, threads: threads) { row in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: depth) { values in
                        source(row, values.baseAddress!)
                        let p = paddedRow[row]
                        let base = (p / tile) * tile * depth + p % tile
                        for k in 0..<depth { out[base + k * tile] = values[k] }
                    }
                }
            }
        }
        self.depth = depth
        paddedOffsets = padded
        self.paddedRow = paddedRow
        self.storage = storage
    }

    /// Element offset of the tile holding plan row `row`, which must start a tile of its expert.
    @inline(__always) func tileOffset(row: Int) -> Int { paddedRow[row] * depth }
}
