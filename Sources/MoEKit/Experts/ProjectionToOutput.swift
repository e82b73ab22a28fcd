/// `projection_to_output` (seed 000): every row of the intermediate `[rows, F]` times its expert's
/// `W_down` (+ bias), then the weighted combine into `[T, H]`:
/// `y[t] = Σ_k w_{t,k} · o[row(t, k)]`, summed over the slots k **in slot order** (seed 000's T×K×H
/// collapse-sum), so the result never depends on scheduling. Dropped slots contribute nothing.
///
/// When `weightsOutputs` is false (Llama-4, whose weights already scaled the input) the sum is unweighted.
public enum ProjectionToOutput {
    /// Runs `variant`. The result is `[plan.tokenCount, H]`, every element written.
    /// - Throws: ``TensorError/shapeMismatch(expected:actual:)`` when `intermediate`, `plan` and `experts` disagree.
    public static func run(_ variant: KernelVariant, intermediate: Tensor<Float>, plan: RoutingPlan, experts: ExpertWeights,
                           weightsOutputs: Bool = true, threads: Int = 1) throws(TensorError) -> Tensor<Float> {
        guard intermediate.shape == [plan.rowCount, experts.intermediateSize] else {
            throw .shapeMismatch(expected: "intermediate [\(plan.rowCount), \(experts.intermediateSize)]", actual: "\(intermediate.shape)")
        }
        try plan.check(against: experts)
        var output = Tensor<Float>(shape: [plan.tokenCount, experts.hiddenSize], repeating: .nan)
        switch variant {
        case .reference: reference(intermediate: intermediate, plan: plan, experts: experts, weightsOutputs: weightsOutputs, into: &output)
        case .fast: fast(intermediate: intermediate, plan: plan, experts: experts, weightsOutputs: weightsOutputs, threads: threads, into: &output)
        }
        return output
    }

    /// Plain loops, `Double` accumulation, one rounding per output element: the specification. Weight
    /// rows are decoded exactly, one at a time, from the experts' one copy.
    static func reference(intermediate: Tensor<Float>, plan: RoutingPlan, experts: ExpertWeights, weightsOutputs: Bool,
                          into output: inout Tensor<Float>) {
        let (h, f, k) = (experts.hiddenSize, experts.intermediateSize, plan.expertsPerToken)
        // Each row's expert output in F64, then the slot-ordered sum per token.
        var rowOutput = [Double](repeating: 0, count: plan.rowCount * h)
        var downRow = [Float](repeating: 0, count: f)
        for e in 0..<plan.expertCount where plan.offsets[e + 1] > plan.offsets[e] {
            for o in 0..<h {
                downRow.withUnsafeMutableBufferPointer { experts.decodeRow(.down, expert: e, row: o, into: $0.baseAddress!) }
                for row in plan.offsets[e]..<plan.offsets[e + 1] {
                    var acc = Double(experts.downBias?.storage[e * h + o] ?? 0)
                    for j in 0..<f { acc += Double(intermediate.storage[row * f + j]) * Double(downRow[j]) }
                    rowOutput[row * h + o] = acc
                }
            }
        }
        for t in 0..<plan.tokenCount {
            for o in 0..<h {
                var y = 0.0
                for slot in 0..<k {
                    let row = Int(plan.slotRow[t * k + slot])
                    guard row >= 0 else { continue }
                    y += (weightsOutputs ? Double(plan.rowWeight[row]) : 1) * rowOutput[row * h + o]
                }
                output.storage[t * h + o] = Float(y)
            }
        }
    }

    /// The fast kernel on a row-major intermediate (``run(_:intermediate:plan:experts:weightsOutputs:threads:)``).
    static func fast(intermediate: Tensor<Float>, plan: RoutingPlan, experts: ExpertWeights, weightsOutputs: Bool,
                     threads: Int, isa: TileKernel.ISA = .detected, into output: inout Tensor<Float>) {
        let rows = PackedRows(rowMajor: intermediate.storage, plan: plan, depth: experts.intermediateSize,
                              format: .init(experts.down), threads: threads)
        fast(rows: rows, plan: plan, experts: experts, weightsOutputs: weightsOutputs, threads: threads, isa: isa, into: &output)
    }

    /// Compute stage per (expert, row block, run of panels) item over the intermediate's row tiles into a
    /// row-packed `[rows, H]` buffer (+ bias), then the writer combines per token in slot order. Both
    /// stages split work into disjoint outputs.
    static func fast(rows packedRows: PackedRows, plan: RoutingPlan, experts: ExpertWeights, weightsOutputs: Bool,
                     threads: Int, isa: TileKernel.ISA = .detected, into output: inout Tensor<Float>) {
        let (h, k) = (experts.hiddenSize, plan.expertsPerToken)
        let down = experts.down
        let width = PanelMatrices.width
        let items = GroupedPanelGEMM.items(plan, panelCount: down.panelCount, threads: threads)
        let downBias = experts.downBias?.storage ?? []
        var rowsOut = [Float](repeating: .nan, count: plan.rowCount * h)
        packedRows.withPanelRows(for: down, threads: threads) { a in
            rowsOut.withUnsafeMutableBufferPointer { out in
                do {
                    Parallel.forEach(items.count, threads: threads) { index in
                        let item = items[index]
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * GroupedPanelGEMM.rowBlock * width) { tile in
                            let first = tile.baseAddress.unsafelyUnwrapped, second = first + GroupedPanelGEMM.rowBlock * width
                            // Panels two at a time (one kernel loop for both at one row), then the last alone.
                            var panel = item.panels.lowerBound
                            down.withPointers { weights in while panel < item.panels.upperBound {
                                if panel + 1 < item.panels.upperBound {
                                    GroupedPanelGEMM.multiplyTwoPanels(item, isa: isa, a: a, panels: down, weights: weights,
                                                                    (panel, 0), into: first, (panel + 1, 0), into: second)
                                    write(item, panel: panel, first)
                                    write(item, panel: panel + 1, second)
                                    panel += 2
                                } else {
                                    GroupedPanelGEMM.multiply(item, panel: panel, isa: isa, a: a, panels: down, weights: weights, into: first)
                                    write(item, panel: panel, first)
                                    panel += 1
                                }
                            } }
                            /// One panel's `[rows, 32]` block (+ bias) into the row-packed buffer.
                            func write(_ item: GroupedPanelGEMM.Item, panel: Int, _ block: UnsafeMutablePointer<Float>) {
                                let columns = min(width, h - panel * width)
                                for r in 0..<item.rows {
                                    for c in 0..<columns {
                                        let o = panel * width + c
                                        out[(item.firstRow + r) * h + o] = block[r * width + c] + (downBias.isEmpty ? 0 : downBias[item.expert * h + o])
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        // Writer: per token, slots in order.
        rowsOut.withUnsafeBufferPointer { rows in
            output.storage.withUnsafeMutableBufferPointer { y in
                Parallel.forEach(plan.tokenCount, threads: threads) { t in
                    for o in 0..<h { y[t * h + o] = 0 }
                    for slot in 0..<k {
                        let row = Int(plan.slotRow[t * k + slot])
                        guard row >= 0 else { continue }
                        let w = weightsOutputs ? plan.rowWeight[row] : 1
                        for o in 0..<h { y[t * h + o] += w * rows[row * h + o] }
                    }
                }
            }
        }
    }
}
