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
