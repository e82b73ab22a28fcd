/// A router: the linear layer `logits = W · x (+ b)` and the gating function of ``RouterKind``.
public struct Router: Sendable {
    /// The gating function applied to each token's logits.
    public let kind: RouterKind
    /// E: the number of experts.
    public let expertCount: Int
    /// K: experts per token.
    public let expertsPerToken: Int
    /// `[E, H]`, as stored in checkpoints.
    public let weight: Tensor<Float>
    /// `[E]` (GPT-OSS), or `nil`.
    public let bias: [Float]?
    /// DeepSeek-V3's `e_score_correction_bias` `[E]`, or `nil` (treated as zeros).
    public let correctionBias: [Float]?
    /// The router matrix packed for the fast kernels (one "expert" with E outputs).
    let packed: PanelMatrices

    /// Builds a router, checking every shape against `config`.
    /// - Throws: ``TensorError/shapeMismatch(expected:actual:)`` naming the tensor.
    public init(config: MoEConfig, weight: Tensor<Float>, bias: [Float]? = nil, correctionBias: [Float]? = nil) throws {
        let (e, h) = (config.expertCount, config.hiddenSize)
        guard weight.shape == [e, h] else { throw TensorError.shapeMismatch(expected: "router weight [\(e), \(h)]", actual: "\(weight.shape)") }
        if let bias, bias.count != e { throw TensorError.shapeMismatch(expected: "router bias [\(e)]", actual: "[\(bias.count)]") }
        if let correctionBias, correctionBias.count != e {
            throw TensorError.shapeMismatch(expected: "e_score_correction_bias [\(e)]", actual: "[\(correctionBias.count)]")
        }
        kind = config.router
        expertCount = e
        expertsPerToken = config.expertsPerToken
        self.weight = weight
        self.bias = bias
        self.correctionBias = correctionBias
        // The router stays F32 (E × H floats: small); a stack of one matrix `[1, E, H]`.
        packed = try PanelMatrices(packing: [try StoredMatrices(quantizing: weight.reshaped([1, e, h]), as: .f32)], threads: 1)
    }

    /// Bytes held: the F32 weight, its packed copy (the fast kernels'), the biases.
    public var residentBytes: Int {
        4 * (weight.count + (bias?.count ?? 0) + (correctionBias?.count ?? 0)) + packed.residentBytes
    }

    /// Routes `hidden` `[T, H]`: logits, selection and statistics. The `.fast` variant computes the logits
    /// with the expert kernels (F32 accumulation, as PyTorch's F32 linear does); `.reference` with F64 dot
    /// products rounded to F32.
    /// - Throws: ``TensorError/shapeMismatch(expected:actual:)`` unless `hidden` is `[T, H]`.
    public func route(_ hidden: Tensor<Float>, variant: KernelVariant = .fast, threads: Int = 1) throws(TensorError) -> RouterOutput {
        guard hidden.rank == 2, hidden.shape[1] == weight.shape[1] else {
            throw .shapeMismatch(expected: "hidden_states [T, \(weight.shape[1])]", actual: "\(hidden.shape)")
        }
        let t = hidden.shape[0]
        let (e, k) = (expertCount, expertsPerToken)
        let logits = variant == .fast ? fastLogits(hidden, threads: threads) : referenceLogits(hidden, threads: threads)
        var ids = Tensor<Int32>(shape: [t, k], repeating: -1)
        var weights = Tensor<Float>(shape: [t, k], repeating: .nan)
        logits.storage.withUnsafeBufferPointer { l in
            (correctionBias ?? []).withUnsafeBufferPointer { cb in
                var scratch = [Float](repeating: 0, count: 2 * e)
                var slotIDs = [Int](repeating: 0, count: k)
                var slotWeights = [Float](repeating: 0, count: k)
                for row in 0..<t {
                    scratch.withUnsafeMutableBufferPointer { s in
                        slotIDs.withUnsafeMutableBufferPointer { ids in
                            slotWeights.withUnsafeMutableBufferPointer { ws in
                                Gating.select(kind: kind, logits: UnsafeBufferPointer(rebasing: l[(row * e)..<((row + 1) * e)]),
                                              correctionBias: correctionBias == nil ? nil : cb, scratch: s, ids: ids, weights: ws)
                            }
                        }
                    }
                    for j in 0..<k {
                        ids.storage[row * k + j] = Int32(slotIDs[j])
                        weights.storage[row * k + j] = slotWeights[j]
                    }
                }
            }
        }
        return RouterOutput(logits: logits, expertIDs: ids, weights: weights, scalesExpertInput: kind.scalesExpertInput,
                            statistics: RoutingStatistics(logits: logits, expertIDs: ids))
    }

    /// F64 dot products rounded to F32: the reference.
    private func referenceLogits(_ hidden: Tensor<Float>, threads: Int) -> Tensor<Float> {
        let (t, h, e) = (hidden.shape[0], weight.shape[1], expertCount)
        var logits = Tensor<Float>(shape: [t, e], repeating: .nan)
        hidden.storage.withUnsafeBufferPointer { x in
            weight.storage.withUnsafeBufferPointer { w in
                logits.storage.withUnsafeMutableBufferPointer { out in
                    Parallel.forEach(t, threads: threads) { row in
                        for expert in 0..<e {
                            var acc = 0.0
                            for i in 0..<h { acc += Double(x[row * h + i]) * Double(w[expert * h + i]) }
                            out[row * e + expert] = Float(acc) + (bias?[expert] ?? 0)
                        }
                    }
                }
            }
        }
        return logits
    }

    /// The expert kernels' grouped GEMM with one "expert" whose E outputs are the logits, plus the bias.
    private func fastLogits(_ hidden: Tensor<Float>, threads: Int) -> Tensor<Float> {
        let (t, h, e) = (hidden.shape[0], weight.shape[1], expertCount)
        var logits = Tensor<Float>(shape: [t, e], repeating: .nan)
        let plan = RoutingPlan.allTokens(t)
        let rows = PackedRows(rowMajor: hidden.storage, plan: plan, depth: h, threads: threads)
        logits.storage.withUnsafeMutableBufferPointer { out in
            GroupedPanelGEMM.dense(rows, plan: plan, panels: packed, threads: threads, into: out)
        }
        for row in 0..<t {
            for expert in 0..<e { logits.storage[row * e + expert] += bias?[expert] ?? 0 }
        }
        return logits
    }
}
