import CMoEKernels

/// Activations repacked into the row tiles the micro-kernels read: each expert's rows (in ``RoutingPlan``
/// order) are cut into tiles of 8, and a tile is stored k-major, `tile[k][r]`, so a kernel loads one
/// contiguous 8-value group per k (no strided row reads, no cache-set conflicts between rows).
/// Every expert's rows start on a tile boundary; padding rows are zero.
///
/// Two formats: F32 (`tile[k][r]`) for F32 and BF16-weight projections, and BF16 k-pairs
/// (`tile[kp][r]` = two bf16 in one word, low half k = 2kp) for BF16-compute projections, rounded once
/// (to nearest, ties to even) when the tile is written.
struct PackedRows {
    /// What one tile element holds.
    enum Format: Sendable {
        case f32, bf16Pairs

        /// The format a projection over `panels` reads.
        init(_ panels: PanelMatrices) { self = panels.element == .bf16Pairs ? .bf16Pairs : .f32 }
    }

    let format: Format
    /// Columns (H for the first projection, F for the second).
    let depth: Int
    /// For each plan row, its padded row.
    let paddedRow: [Int]
    /// For each tile, its first plan row and how many plan rows it holds (1…8).
    let tileFirstRow: [Int], tileRowCount: [Int]
    /// F32 tiles (format `.f32`; empty otherwise).
    var storage: [Float]
    /// BF16 k-pair tiles (format `.bf16Pairs`; empty otherwise).
    var pairs: [UInt32]

    /// k-pairs per row: `(depth + 1) / 2` (an odd depth pads the last pair's high half with zero).
    var pairCount: Int { (depth + 1) / 2 }
    /// Elements (floats or words) per tile.
    var tileElements: Int { TileKernel.rows * (format == .f32 ? depth : pairCount) }

    /// The layout for `plan`, its elements not yet written: NaN-poisoned in debug builds (tests), left
    /// uninitialised in release builds. Every writer writes whole tiles, padding rows included.
    init(plan: RoutingPlan, depth: Int, format: Format) {
        let tile = TileKernel.rows
        var paddedRow = [Int](repeating: 0, count: plan.rowCount)
        var firstRows: [Int] = [], counts: [Int] = []
        var expertStart = 0  // the expert's first padded row: every expert starts a tile
        for e in 0..<plan.expertCount {
            let count = plan.tokensPerExpert[e]
            for i in 0..<count { paddedRow[plan.offsets[e] + i] = expertStart + i }
            expertStart += (count + tile - 1) / tile * tile
            for first in stride(from: 0, to: count, by: tile) {
                firstRows.append(plan.offsets[e] + first)
                counts.append(min(tile, count - first))
            }
        }
        self.format = format
        self.depth = depth
        self.paddedRow = paddedRow
        tileFirstRow = firstRows
        tileRowCount = counts
        let elements = firstRows.count * tile * (format == .f32 ? depth : (depth + 1) / 2)
        storage = format == .f32 ? Self.unwritten(elements, poison: Float.nan) : []
        pairs = format == .bf16Pairs ? Self.unwritten(elements, poison: UInt32.max) : []  // bf16 NaN pairs
    }

    private static func unwritten<T>(_ count: Int, poison: T) -> [T] {
        #if DEBUG
        return [T](repeating: poison, count: count)
        #else
        // Never empty through `unsafeUninitializedCapacity` (see `Array.init(wireBytes:)`).
        return count == 0 ? [] : [T](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        #endif
    }

    /// Gathers rows: plan row `row` is `depth` values at `source(row).values`, times `source(row).scale`.
    /// With AVX2 (and up) a tile is gathered 8 k at a time through register transposes (C); elsewhere by
    /// plain Swift loops. Both write the same bits.
    init(plan: RoutingPlan, depth: Int, format: Format, threads: Int, isa: TileKernel.ISA = .detected,
         source: (_ row: Int) -> (values: UnsafePointer<Float>, scale: Float)) {
        self.init(plan: plan, depth: depth, format: format)
        let (tile, pairCount, format) = (TileKernel.rows, pairCount, format)
        let (firstRows, counts) = (tileFirstRow, tileRowCount)
        let tileElements = tileElements
        if isa >= .avx2 {
            withMutableTiles { floats, words in
                Parallel.forEach(firstRows.count, threads: threads) { t in
                    withUnsafeTemporaryAllocation(of: UnsafePointer<Float>?.self, capacity: tile) { rows in
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: tile) { scales in
                            for r in 0..<tile {
                                let row = r < counts[t] ? source(firstRows[t] + r) : (values: nil, scale: 0)
                                rows[r] = row.values
                                scales[r] = row.scale
                            }
                            let (live, k) = (Int32(counts[t]), Int32(depth))
                            switch format {
                            case .f32: moe_gather_tile_f32_avx2(live, k, rows.baseAddress, scales.baseAddress, floats + t * tileElements)
                            case .bf16Pairs: moe_gather_tile_pairs_avx2(live, k, rows.baseAddress, scales.baseAddress, words + t * tileElements)
                            }
                        }
                    }
                }
            }
            return
        }
        withMutableTiles { floats, words in
            Parallel.forEach(firstRows.count, threads: threads) { t in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * tile) { column in
                    // One k at a time: the tile's 8 rows (zero for padding), then one store of the group.
                    let values = column.baseAddress.unsafelyUnwrapped
                    let rows = (0..<counts[t]).map { source(firstRows[t] + $0) }
                    for r in 0..<(2 * tile) { values[r] = 0 }
                    switch format {
                    case .f32:
                        let out = floats + t * tileElements
                        for k in 0..<depth {
                            for (r, row) in rows.enumerated() { values[r] = row.values[k] * row.scale }
                            for r in 0..<tile { out[k * tile + r] = values[r] }
                        }
                    case .bf16Pairs:
                        let out = words + t * tileElements
                        for kp in 0..<pairCount {
                            let (k, hasHigh) = (2 * kp, 2 * kp + 1 < depth)
                            for (r, row) in rows.enumerated() {
                                values[r] = row.values[k] * row.scale
                                values[tile + r] = hasHigh ? row.values[k + 1] * row.scale : 0
                            }
                            for r in 0..<tile { out[kp * tile + r] = Self.pair(values[r], values[tile + r]) }
                        }
                    }
                }
            }
        }
    }

    /// One bf16 k-pair word: `low` in bits 0–15, `high` in bits 16–31, each rounded to nearest even.
    @inline(__always) static func pair(_ low: Float, _ high: Float) -> UInt32 {
        UInt32(BFloat16(low).bitPattern) | UInt32(BFloat16(high).bitPattern) << 16
    }

    /// Calls `body` with mutable base pointers of the F32 and pair storage (a stand-in for the empty one).
    mutating func withMutableTiles<R>(_ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<UInt32>) -> R) -> R {
        var floatStandIn: Float = 0, wordStandIn: UInt32 = 0
        return storage.withUnsafeMutableBufferPointer { s in
            pairs.withUnsafeMutableBufferPointer { p in
                withUnsafeMutablePointer(to: &floatStandIn) { f in
                    withUnsafeMutablePointer(to: &wordStandIn) { w in
                        body(s.baseAddress ?? f, p.baseAddress ?? w)
                    }
                }
            }
        }
    }

    /// Calls `body` with the F32 storage and the pair-tile pointers (the latter `nil` in F32 format).
    /// Empty tiles (no rows) are never read; a one-element stand-in keeps the F32 pointer non-nil.
    func withPointers<R>(_ body: (UnsafePointer<Float>, UnsafePointer<UInt32>?) -> R) -> R {
        let values = storage.isEmpty ? [0] : storage
        return values.withUnsafeBufferPointer { s in
            pairs.withUnsafeBufferPointer { p in
                // Non-empty arrays always have a base address.
                body(s.baseAddress.unsafelyUnwrapped, format == .bf16Pairs ? p.baseAddress : nil)
            }
        }
    }

    /// Calls `body` with the tiles' storage (F32 or pair words, 4 bytes each); never called on empty tiles' contents.
    func withTiles<R>(_ body: (UnsafeRawPointer) -> R) -> R {
        withPointers { f, p in body(p.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(f)) }
    }

    /// Element offset of the tile holding plan row `row`, which must start a tile of its expert.
    @inline(__always) func tileOffset(row: Int) -> Int { paddedRow[row] * depth }

    /// The rows back in plan order, row-major `[rows, depth]` (F32 format).
    func rowMajor(rowCount: Int) -> [Float] {
        let tile = TileKernel.rows
        var out = [Float](repeating: .nan, count: rowCount * depth)
        for row in 0..<rowCount {
            let p = paddedRow[row]
            let base = (p / tile) * tile * depth + p % tile
            for k in 0..<depth { out[row * depth + k] = storage[base + k * tile] }
        }
        return out
    }
}

extension PackedRows {
    /// Writes a computed `[rows, 32]` block (row stride 32) into the tiles: plan rows `firstRow…` (the
    /// first of a tile), columns `firstColumn ..< firstColumn + columns` (`firstColumn` a multiple of 32).
    /// Padding rows up to the next tile boundary are written as zero.
    /// AVX-512 scatters the block (one C call), else plain Swift; both write the same bits.
    @inline(__always)
    static func writeBlock(_ block: UnsafePointer<Float>, rows: Int, columns: Int, firstPaddedRow: Int, firstColumn: Int,
                           depth: Int, format: Format, isa: TileKernel.ISA,
                           floats: UnsafeMutablePointer<Float>, words: UnsafeMutablePointer<UInt32>) {
        let tile = TileKernel.rows
        let width = PanelMatrices.width
        let tiles = (rows + tile - 1) / tile
        if isa == .avx512 {
            let firstTile = firstPaddedRow / tile
            switch format {
            case .f32:
                moe_write_tiles_f32_avx512(Int32(rows), Int32(columns), block, floats + firstTile * tile * depth + firstColumn * tile, tile * depth)
            case .bf16Pairs:
                let pairCount = (depth + 1) / 2
                moe_write_tiles_pairs_avx512(Int32(rows), Int32(columns), block,
                                             words + firstTile * tile * pairCount + firstColumn / 2 * tile, tile * pairCount)
            }
            return
        }
        for t in 0..<tiles {
            let tileIndex = firstPaddedRow / tile + t
            let live = min(tile, rows - t * tile)
            switch format {
            case .f32:
                let out = floats + tileIndex * tile * depth + firstColumn * tile
                for c in 0..<columns {
                    for r in 0..<tile { out[c * tile + r] = r < live ? block[(t * tile + r) * width + c] : 0 }
                }
            case .bf16Pairs:
                let pairCount = (depth + 1) / 2
                let out = words + tileIndex * tile * pairCount + firstColumn / 2 * tile
                for cp in 0..<((columns + 1) / 2) {
                    let (c, hasHigh) = (2 * cp, 2 * cp + 1 < columns)
                    for r in 0..<tile {
                        guard r < live else { out[cp * tile + r] = 0; continue }
                        let row = block + (t * tile + r) * width
                        out[cp * tile + r] = pair(row[c], hasHigh ? row[c + 1] : 0)
                    }
                }
            }
        }
    }
}
