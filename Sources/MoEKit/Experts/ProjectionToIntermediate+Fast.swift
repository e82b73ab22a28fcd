import CMoEKernels

extension ProjectionToIntermediate {
    /// The fast kernel with a row-major `[rows, F]` result (``run(_:input:plan:experts:scalesInput:threads:)``).
    static func fast(input: Tensor<Float>, plan: RoutingPlan, experts: ExpertWeights, scalesInput: Bool,
                     threads: Int, isa: TileKernel.ISA = .detected, into output: inout Tensor<Float>) {
        let rows = packed(input: input, plan: plan, experts: experts, scalesInput: scalesInput, threads: threads, isa: isa, format: .f32)
        output.storage = rows.rowMajor(rowCount: plan.rowCount)
    }

    /// Reader → compute → writer over ``PanelMatrices``, the result left in the row tiles
    /// `projection_to_output` reads (in `format`, so a BF16-compute block rounds each activation once,
    /// here, and never materialises a row-major intermediate):
    /// - reader: gathers (and for Llama-4 scales) every row's token into row tiles (token slicing: each
    ///   expert sees only its rows);
    /// - compute: ``GroupedPanelGEMM`` produces gate and up for each panel of an (expert, row block, run of panels) item, the
    ///   two panels over the same A tiles while they are in cache;
    /// - writer: bias, activation, then the item's `[rows, 32]` block into the output tiles.
    /// Each item writes disjoint outputs and every reduction runs in a fixed order, so results do not
    /// depend on `threads` or on which other tokens share the batch.
    static func packed(input: Tensor<Float>, plan: RoutingPlan, experts: ExpertWeights, scalesInput: Bool,
                       threads: Int, isa: TileKernel.ISA = .detected, format: PackedRows.Format) -> PackedRows {
        let (h, f) = (experts.hiddenSize, experts.intermediateSize)
        let gateUp = experts.gateUp
        let isGated = gateUp.sourceCount == 2
        let kind = experts.kind
        let width = PanelMatrices.width
        let gathered = input.storage.withUnsafeBufferPointer { x in
            guard let base = x.baseAddress else { return PackedRows(plan: plan, depth: h, format: .init(gateUp)) }
            return PackedRows(plan: plan, depth: h, format: .init(gateUp), threads: threads, isa: isa) { row in
                (base + Int(plan.rowToken[row]) * h, scalesInput ? plan.rowWeight[row] : 1)
            }
        }
        var output = PackedRows(plan: plan, depth: f, format: format)
        let items = GroupedPanelGEMM.items(plan, panelCount: gateUp.panelCount, threads: threads)
        let gateBias = experts.gateBias?.storage ?? [], upBias = experts.upBias?.storage ?? []
        let outputPaddedRow = output.paddedRow
        output.withMutableTiles { floats, words in
            gathered.withPanelRows(for: gateUp, threads: threads) { a in
                do {
                    Parallel.forEach(items.count, threads: threads) { index in
                        let item = items[index]
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * GroupedPanelGEMM.rowBlock * width) { tile in
                            let gateTile = tile.baseAddress.unsafelyUnwrapped, upTile = gateTile + GroupedPanelGEMM.rowBlock * width
                            gateUp.withPointers { weights in for panel in item.panels {
                                if isGated {
                                    // Gate and up of one panel over the same A tiles while they are in cache (one
                                    // kernel loop for both at one row).
                                    GroupedPanelGEMM.multiplyTwoPanels(item, isa: isa, a: a, panels: gateUp, weights: weights,
                                                                    (panel, 0), into: gateTile, (panel, 1), into: upTile)
                                } else {
                                    GroupedPanelGEMM.multiply(item, panel: panel, isa: isa, a: a, panels: gateUp,
                                                              weights: weights, source: 0, into: gateTile)
                                }
                                activate(item, panel: panel, gate: gateTile, up: upTile)
                                PackedRows.writeBlock(gateTile, rows: item.rows, columns: min(width, f - panel * width),
                                                      firstPaddedRow: outputPaddedRow[item.firstRow], firstColumn: panel * width,
                                                      depth: f, format: format, isa: isa, floats: floats, words: words)
                            } }
                        }
                    }
                }
            }
        }
        /// Bias and activation of one item's panel, in place over the gate block.
        func activate(_ item: GroupedPanelGEMM.Item, panel: Int, gate gateTile: UnsafeMutablePointer<Float>, up upTile: UnsafeMutablePointer<Float>) {
            let columns = min(width, f - panel * width)
            let firstColumn = panel * width
            if kind == .gated(.silu) && isa == .avx512 && gateBias.isEmpty && upBias.isEmpty {
                // Vectorised SwiGLU (AVX-512 polynomial exp).
                for r in 0..<item.rows {
                    let g = gateTile + r * width
                    moe_swiglu_avx512(Int32(columns), g, nil, upTile + r * width, nil, g)
                }
                return
            }
            for r in 0..<item.rows {
                for c in 0..<columns {
                    let j = firstColumn + c
                    // Ungated kinds have no up block (never written): their activation ignores `up`.
                    var g = gateTile[r * width + c], u = isGated ? upTile[r * width + c] : 0
                    if !gateBias.isEmpty { g += gateBias[item.expert * f + j] }
                    if !upBias.isEmpty { u += upBias[item.expert * f + j] }
                    gateTile[r * width + c] = ExpertActivation.apply(kind, gate: g, up: u)
                }
            }
        }
        return output
    }
}
