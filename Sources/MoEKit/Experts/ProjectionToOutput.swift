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

    /// Plain loops, `Double` accumulation, one rounding per output element: the specification.
    static func reference(intermediate: Tensor<Float>, plan: RoutingPlan, experts: ExpertWeights, weightsOutputs: Bool,
                          into output: inout Tensor<Float>) {
        let (h, f, k) = (experts.hiddenSize, experts.intermediateSize, plan.expertsPerToken)
        var expertOfRow = [Int](repeating: 0, count: plan.rowCount)
        for e in 0..<plan.expertCount { for row in plan.offsets[e]..<plan.offsets[e + 1] { expertOfRow[row] = e } }
        for t in 0..<plan.tokenCount {
            for o in 0..<h {
                var y = 0.0
                for slot in 0..<k {
                    let row = Int(plan.slotRow[t * k + slot])
                    guard row >= 0 else { continue }
                    let e = expertOfRow[row]
                    var acc = Double(experts.downBias?.storage[e * h + o] ?? 0)
                    for j in 0..<f {
                        acc += Double(intermediate.storage[row * f + j]) * Double(experts.down.storage[(e * h + o) * f + j])
                    }
                    y += (weightsOutputs ? Double(plan.rowWeight[row]) : 1) * acc
                }
                output.storage[t * h + o] = Float(y)
            }
        }
    }

    /// Compute stage per (expert, row tile) into a `[rows, H]` buffer, then the writer combines per token
    /// in slot order. Both stages split work into disjoint outputs.
    static func fast(intermediate: Tensor<Float>, plan: RoutingPlan, experts: ExpertWeights, weightsOutputs: Bool,
                     threads: Int, into output: inout Tensor<Float>) {
        let (h, f, k) = (experts.hiddenSize, experts.intermediateSize, plan.expertsPerToken)
        let tiles = RowTile.tiles(plan)
        let down = experts.packed.down
        var rowsOut = [Float](repeating: .nan, count: plan.rowCount * h)
        intermediate.storage.withUnsafeBufferPointer { a in
            down.storage.withUnsafeBufferPointer { w in
                rowsOut.withUnsafeMutableBufferPointer { out in
                    Parallel.forEach(tiles.count, threads: threads) { index in
                        let tile = tiles[index]
                        var cTile = [Float](repeating: 0, count: RowTile.height * PackedPanels.width)
                        let block = UnsafeBufferPointer(rebasing: a[(tile.firstRow * f)..<((tile.firstRow + tile.rows) * f)])
                        for p in 0..<down.panelCount {
                            cTile.withUnsafeMutableBufferPointer { c in
                                PanelKernel.multiply(block, rows: tile.rows, depth: f,
                                                     panel: w.baseAddress! + down.panelOffset(matrix: tile.expert, panel: p), into: c)
                            }
                            let columns = min(PackedPanels.width, h - p * PackedPanels.width)
                            for r in 0..<tile.rows {
                                for c in 0..<columns {
                                    let o = p * PackedPanels.width + c
                                    out[(tile.firstRow + r) * h + o] = cTile[r * PackedPanels.width + c]
                                        + (experts.downBias?.storage[tile.expert * h + o] ?? 0)
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
