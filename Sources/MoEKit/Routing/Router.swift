/// A router: the linear layer `logits = W · x (+ b)` and the gating function of ``RouterKind``.
public struct Router: Sendable {
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

    /// Builds a router, checking every shape against `config`.
    /// - Throws: ``TensorError/shapeMismatch(expected:actual:)`` naming the tensor.
    public init(config: MoEConfig, weight: Tensor<Float>, bias: [Float]? = nil, correctionBias: [Float]? = nil) throws(TensorError) {
        let (e, h) = (config.expertCount, config.hiddenSize)
        guard weight.shape == [e, h] else { throw .shapeMismatch(expected: "router weight [\(e), \(h)]", actual: "\(weight.shape)") }
        if let bias, bias.count != e { throw .shapeMismatch(expected: "router bias [\(e)]", actual: "[\(bias.count)]") }
        if let correctionBias, correctionBias.count != e {
            throw .shapeMismatch(expected: "e_score_correction_bias [\(e)]", actual: "[\(correctionBias.count)]")
        }
        kind = config.router
        expertCount = e
        expertsPerToken = config.expertsPerToken
        self.weight = weight
        self.bias = bias
        self.correctionBias = correctionBias
    }

    /// Routes `hidden` `[T, H]`: logits (F64 dot products rounded to F32), selection and statistics.
    /// - Throws: ``TensorError/shapeMismatch(expected:actual:)`` unless `hidden` is `[T, H]`.
    public func route(_ hidden: Tensor<Float>, threads: Int = 1) throws(TensorError) -> RouterOutput {
        guard hidden.rank == 2, hidden.shape[1] == weight.shape[1] else {
            throw .shapeMismatch(expected: "hidden_states [T, \(weight.shape[1])]", actual: "\(hidden.shape)")
        }
        let t = hidden.shape[0]
        let h = weight.shape[1]
        let (e, k) = (expertCount, expertsPerToken)
        var logits = Tensor<Float>(shape: [t, e], repeating: .nan)
        var ids = Tensor<Int32>(shape: [t, k], repeating: -1)
        var weights = Tensor<Float>(shape: [t, k], repeating: .nan)
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
}
