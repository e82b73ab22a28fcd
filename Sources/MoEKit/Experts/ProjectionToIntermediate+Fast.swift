import CMoEKernels

extension ProjectionToIntermediate {
    /// Reader → compute → writer over ``PackedPanels``:
    /// - reader: gathers (and for Llama-4 scales) every row's token into a row-packed `[rows, H]` block
    ///   (token slicing: each expert sees only its rows);
    /// - compute: ``GroupedPanelGEMM`` produces gate and up for one (expert, row block, panel) item;
    /// - writer: bias, activation, store into the row-packed `[rows, F]` output.
    /// Each item writes disjoint outputs and every reduction runs in a fixed order, so results do not
    /// depend on `threads` or on which other tokens share the batch.
    static func fast(input: Tensor<Float>, plan: RoutingPlan, experts: ExpertWeights, scalesInput: Bool,
                     threads: Int, isa: TileKernel.ISA = .detected, into output: inout Tensor<Float>) {
        let (h, f) = (experts.hiddenSize, experts.intermediateSize)
        let packed = experts.packed
        let kind = experts.kind
        let width = PackedPanels.width
        var gathered = input.storage.withUnsafeBufferPointer { x in
            PackedRows(plan: plan, depth: h, threads: threads) { row, values in
                let t = Int(plan.rowToken[row])
                let scale = scalesInput ? plan.rowWeight[row] : 1
                for i in 0..<h { values[i] = x[t * h + i] * scale }
            }
        }
        if packed.gate.precision == .bf16Compute { gathered.makePairs(threads: threads) }
        let items = GroupedPanelGEMM.items(plan, panelCount: packed.gate.panelCount)
        let gateBias = experts.gateBias?.storage ?? [], upBias = experts.upBias?.storage ?? []
        gathered.withPointers { a, aPairs in
            output.storage.withUnsafeMutableBufferPointer { out in
                packed.gate.withPointers { gateWeights in
                    (packed.up ?? packed.gate).withPointers { upWeights in
                        Parallel.forEach(items.count, threads: threads) { index in
                            let item = items[index]
                            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * GroupedPanelGEMM.rowBlock * width) { tile in
                                let gateTile = tile.baseAddress!, upTile = gateTile + GroupedPanelGEMM.rowBlock * width
                                GroupedPanelGEMM.multiply(item, isa: isa, a: gathered, pointer: a, pairs: aPairs, panels: packed.gate, weights: gateWeights, into: gateTile)
                                if let up = packed.up {
                                    GroupedPanelGEMM.multiply(item, isa: isa, a: gathered, pointer: a, pairs: aPairs, panels: up, weights: upWeights, into: upTile)
                                }
                                let columns = min(width, f - item.panel * width)
                                let firstColumn = item.panel * width
                                if kind == .gated(.silu) && isa == .avx512 {
                                    // Vectorised SwiGLU (AVX-512 polynomial exp) straight into the output rows.
                                    for r in 0..<item.rows {
                                        moe_swiglu_avx512(Int32(columns), gateTile + r * width, nil, upTile + r * width, nil,
                                                          out.baseAddress! + (item.firstRow + r) * f + firstColumn)
                                    }
                                } else {
                                    for r in 0..<item.rows {
                                        for c in 0..<columns {
                                            let j = firstColumn + c
                                            var g = gateTile[r * width + c], u = upTile[r * width + c]
                                            if !gateBias.isEmpty { g += gateBias[item.expert * f + j] }
                                            if !upBias.isEmpty { u += upBias[item.expert * f + j] }
                                            out[(item.firstRow + r) * f + j] = ExpertActivation.apply(kind, gate: g, up: u)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
