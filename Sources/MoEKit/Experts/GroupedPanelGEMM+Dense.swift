extension PackedRows {
    /// Packs a row-major matrix whose rows are `plan`'s rows in order (`[plan.rowCount, depth]`).
    init(rowMajor values: [Float], plan: RoutingPlan, depth: Int, format: Format = .f32, threads: Int) {
        self = values.withUnsafeBufferPointer { x in
            // No values: no rows to gather.
            guard let base = x.baseAddress else { return PackedRows(plan: plan, depth: depth, format: format) }
            return PackedRows(plan: plan, depth: depth, format: format, threads: threads) { row in (base + row * depth, 1) }
        }
    }
}

extension GroupedPanelGEMM {
    /// A plain GEMM on the expert kernels: `out[r, o] = Σ_k A[r, k] · W[o, k]` for the one matrix of `panels`
    /// (`[1, O, K]`) and every row of `rows` (packed over `RoutingPlan.allTokens`); `out` is `[rows, O]`
    /// row-major. The router's logits and the GEMM-peak probe of ``MachineRoofs`` run on it.
    static func dense(_ rows: PackedRows, plan: RoutingPlan, panels: PanelMatrices, threads: Int,
                      into out: UnsafeMutableBufferPointer<Float>) {
        let items = items(plan, panelCount: panels.panelCount, threads: threads)
        let (width, columns) = (PanelMatrices.width, panels.outFeatures)
        rows.withTiles { tiles in
            let a = PanelRows(rows: rows, tiles: tiles)
            do {
                Parallel.forEach(items.count, threads: threads) { index in
                    let item = items[index]
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: rowBlock * width) { tile in
                        panels.withPointers { w in for panel in item.panels {
                            multiply(item, panel: panel, isa: .detected, a: a, panels: panels, weights: w, into: tile.baseAddress!)
                            for r in 0..<item.rows {
                                for c in 0..<min(width, columns - panel * width) {
                                    out[(item.firstRow + r) * columns + panel * width + c] = tile[r * width + c]
                                }
                            }
                        } }
                    }
                }
            }
        }
    }
}
