/// What a router decided for a batch of T tokens.
public struct RouterOutput: Sendable {
    /// Raw router logits (bias included where the router has one), `[T, E]`.
    public var logits: Tensor<Float>
    /// Selected experts, `[T, K]`, slot order = descending selection score.
    public var expertIDs: Tensor<Int32>
    /// The weight of each (token, slot), `[T, K]`: multiplies the expert output, or the expert input when
    /// ``scalesExpertInput`` (Llama-4).
    public var weights: Tensor<Float>
    /// Whether ``weights`` scale the expert input (Llama-4) rather than its output.
    public var scalesExpertInput: Bool
    /// Load statistics and auxiliary losses.
    public var statistics: RoutingStatistics
}

/// Per-expert load and the training-time auxiliary losses of one routing decision.
public struct RoutingStatistics: Sendable, Equatable {
    /// Assignments (token, slot) per expert, E values summing to T·K.
    public var tokensPerExpert: [Int]
    /// Switch/Mixtral load-balancing loss: E · Σ_e f_e · P_e with f_e = count_e / T and P_e the mean
    /// softmax probability of e over tokens. Equals K when perfectly balanced.
    public var loadBalancingLoss: Double
    /// ST-MoE router z-loss: mean over tokens of logsumexp(logits)².
    public var routerZLoss: Double

    /// max / mean of ``tokensPerExpert`` (1 = perfectly balanced).
    public var loadImbalance: Double {
        let total = tokensPerExpert.reduce(0, +)
        guard total > 0, !tokensPerExpert.isEmpty else { return 1 }
        return Double(tokensPerExpert.max() ?? 0) / (Double(total) / Double(tokensPerExpert.count))
    }

    /// Computes the statistics from logits `[T, E]` and selected ids `[T, K]` (F64 accumulation, token order).
    public init(logits: Tensor<Float>, expertIDs: Tensor<Int32>) {
        let t = logits.shape.first ?? 0
        let e = logits.shape.count > 1 ? logits.shape[1] : 0
        var counts = [Int](repeating: 0, count: e)
        for id in expertIDs.storage where id >= 0 && Int(id) < e { counts[Int(id)] += 1 }
        var meanProbability = [Double](repeating: 0, count: e)
        var zLoss = 0.0
        for row in 0..<t {
            var maxValue = -Double.infinity
            for i in 0..<e { maxValue = max(maxValue, Double(logits.storage[row * e + i])) }
            var sum = 0.0
            for i in 0..<e { sum += exp(Double(logits.storage[row * e + i]) - maxValue) }
            for i in 0..<e { meanProbability[i] += exp(Double(logits.storage[row * e + i]) - maxValue) / sum }
            let lse = maxValue + log(sum)
            zLoss += lse * lse
        }
        var loss = 0.0
        if t > 0 {
            for i in 0..<e { loss += (Double(counts[i]) / Double(t)) * (meanProbability[i] / Double(t)) }
        }
        tokensPerExpert = counts
        loadBalancingLoss = Double(e) * loss
        routerZLoss = t > 0 ? zLoss / Double(t) : 0
    }
}
