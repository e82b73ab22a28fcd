import Foundation

/// How tokens spread over experts, for the expected number of distinct experts a batch touches.
public enum RoutingModel: Sendable, Equatable {
    /// Every expert equally likely: each token picks K of E distinct experts uniformly.
    case uniform
    /// Skewed: expert i (1-based) is chosen with a probability ∝ 1 / i^s, scaled so that a token's
    /// inclusion probabilities sum to K and capped at 1 (the excess spread over the uncapped experts).
    /// `s = 0` is ``uniform``.
    case zipf(exponent: Double)

    /// Per-token inclusion probability of each expert (they sum to `k`).
    public func inclusionProbabilities(experts: Int, k: Int) -> [Double] {
        guard experts > 0 else { return [] }
        let kk = Double(min(max(k, 0), experts))
        switch self {
        case .uniform:
            return Array(repeating: kk / Double(experts), count: experts)
        case .zipf(let s):
            let weights = (1...experts).map { 1 / pow(Double($0), s) }
            var p = [Double](repeating: 0, count: experts)
            var capped = Set<Int>()
            // Water-filling: at most E rounds, each caps at least one more expert or finishes.
            for _ in 0..<experts {
                let free = (0..<experts).filter { !capped.contains($0) }
                let mass = kk - Double(capped.count)
                let sum = free.reduce(0) { $0 + weights[$1] }
                guard sum > 0 else { break }
                var newlyCapped = false
                for i in free {
                    p[i] = mass * weights[i] / sum
                    if p[i] >= 1 { p[i] = 1; capped.insert(i); newlyCapped = true }
                }
                if !newlyCapped { break }
            }
            return p
        }
    }

    /// Expected number of distinct experts that at least one of `tokens` tokens is routed to:
    /// `Σ_e 1 − (1 − p_e)^T`, which for ``uniform`` is `E·(1 − (1 − K/E)^T)`.
    public func expectedExpertsTouched(experts: Int, k: Int, tokens: Int) -> Double {
        guard tokens > 0 else { return 0 }
        return inclusionProbabilities(experts: experts, k: k).reduce(0) { $0 + 1 - pow(1 - $1, Double(tokens)) }
    }
}
