extension ProjectionToIntermediate {
    /// Reader → compute → writer over ``PackedPanels``:
    /// - reader: gathers (and for Llama-4 scales) the tile's token rows into a contiguous block;
    /// - compute: ``PanelKernel`` accumulates gate and up for up to 4 rows × 8 columns at a time;
    /// - writer: bias, activation, store into the row-packed output.
    /// Work items are (expert, row tile); each writes disjoint rows, and the reduction over H runs in
    /// the same order for any split, so results do not depend on `threads`.
    static func fast(input: Tensor<Float>, plan: RoutingPlan, experts: ExpertWeights, scalesInput: Bool,
                     threads: Int, into output: inout Tensor<Float>) {
        let (h, f) = (experts.hiddenSize, experts.intermediateSize)
        let tiles = RowTile.tiles(plan)
        let packed = experts.packed
        let kind = experts.kind
        input.storage.withUnsafeBufferPointer { x in
            output.storage.withUnsafeMutableBufferPointer { out in
                Parallel.forEach(tiles.count, threads: threads) { index in
                    let tile = tiles[index]
                    var block = [Float](repeating: 0, count: RowTile.height * h)
                    // Reader.
                    for r in 0..<tile.rows {
                        let row = tile.firstRow + r
                        let t = Int(plan.rowToken[row])
                        let scale = scalesInput ? plan.rowWeight[row] : 1
                        for i in 0..<h { block[r * h + i] = x[t * h + i] * scale }
                    }
                    var gateTile = [Float](repeating: 0, count: RowTile.height * PackedPanels.width)
                    var upTile = gateTile
                    block.withUnsafeBufferPointer { a in
                        for p in 0..<packed.gate.panelCount {
                            // Compute.
                            packed.gate.storage.withUnsafeBufferPointer { w in
                                gateTile.withUnsafeMutableBufferPointer { c in
                                    PanelKernel.multiply(a, rows: tile.rows, depth: h,
                                                         panel: w.baseAddress! + packed.gate.panelOffset(matrix: tile.expert, panel: p), into: c)
                                }
                            }
                            if let up = packed.up {
                                up.storage.withUnsafeBufferPointer { w in
                                    upTile.withUnsafeMutableBufferPointer { c in
                                        PanelKernel.multiply(a, rows: tile.rows, depth: h,
                                                             panel: w.baseAddress! + up.panelOffset(matrix: tile.expert, panel: p), into: c)
                                    }
                                }
                            }
                            // Writer.
                            let columns = min(PackedPanels.width, f - p * PackedPanels.width)
                            for r in 0..<tile.rows {
                                for c in 0..<columns {
                                    let j = p * PackedPanels.width + c
                                    let g = gateTile[r * PackedPanels.width + c] + (experts.gateBias?.storage[tile.expert * f + j] ?? 0)
                                    let u = upTile[r * PackedPanels.width + c] + (experts.upBias?.storage[tile.expert * f + j] ?? 0)
                                    out[(tile.firstRow + r) * f + j] = ExpertActivation.apply(kind, gate: g, up: u)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A unit of fast-kernel work: up to ``height`` consecutive rows of one expert.
struct RowTile: Sendable {
    /// Rows per tile: 4 rows × one 8-wide panel keep the accumulators in registers.
    static let height = 4
    let expert: Int
    let firstRow: Int
    let rows: Int

    /// All tiles of a plan, expert by expert.
    static func tiles(_ plan: RoutingPlan) -> [RowTile] {
        var tiles: [RowTile] = []
        for e in 0..<plan.expertCount {
            var row = plan.offsets[e]
            while row < plan.offsets[e + 1] {
                let rows = min(height, plan.offsets[e + 1] - row)
                tiles.append(RowTile(expert: e, firstRow: row, rows: rows))
                row += rows
            }
        }
        return tiles
    }
}

/// The compute stage: `C[r, 0..<8] = Σ_i A[r, i] · panel[i, 0..<8]` for r < rows ≤ 4, accumulating in
/// `Float` in ascending i (the same order for every tile split).
enum PanelKernel {
    @inline(__always)
    static func multiply(_ a: UnsafeBufferPointer<Float>, rows: Int, depth: Int, panel: UnsafePointer<Float>,
                         into c: UnsafeMutableBufferPointer<Float>) {
        let width = PackedPanels.width
        let raw = UnsafeRawPointer(panel)
        let base = a.baseAddress!
        // Rows past `rows` read row 0 again and are discarded: the loop stays branch-free.
        let r1 = rows > 1 ? depth : 0, r2 = rows > 2 ? 2 * depth : 0, r3 = rows > 3 ? 3 * depth : 0
        // Multiply then add, not `addProduct`: without FMA in the target's baseline ISA, `addProduct`
        // lowers to a libm `fmaf` call per lane (measured: 1.5 GFLOP/s). ISA-specific FMA kernels come
        // with runtime dispatch.
        var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
        for i in 0..<depth {
            let b = raw.loadUnaligned(fromByteOffset: i * width * 4, as: SIMD8<Float>.self)
            c0 += SIMD8(repeating: base[i]) * b
            c1 += SIMD8(repeating: base[r1 + i]) * b
            c2 += SIMD8(repeating: base[r2 + i]) * b
            c3 += SIMD8(repeating: base[r3 + i]) * b
        }
        let out = UnsafeMutableRawPointer(c.baseAddress!)
        out.storeBytes(of: c0, toByteOffset: 0, as: SIMD8<Float>.self)
        if rows > 1 { out.storeBytes(of: c1, toByteOffset: width * 4, as: SIMD8<Float>.self) }
        if rows > 2 { out.storeBytes(of: c2, toByteOffset: 2 * width * 4, as: SIMD8<Float>.self) }
        if rows > 3 { out.storeBytes(of: c3, toByteOffset: 3 * width * 4, as: SIMD8<Float>.self) }
    }
}
