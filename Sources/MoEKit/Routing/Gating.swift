/// The per-token gating functions: one row of router logits in, K (expert, weight) pairs out.
/// Each case follows `shared/spec/semantics.md`, in `Float`.
enum Gating {
    /// Selects the experts and weights of one token.
    /// - Parameters:
    ///   - logits: the token's E router logits (bias already added where the router has one).
    ///   - correctionBias: DeepSeek-V3's `e_score_correction_bias` (E values), used for selection only.
    ///   - scratch: 2·E floats of workspace.
    ///   - ids, weights: K outputs each, written in slot order.
    static func select(kind: RouterKind, logits: UnsafeBufferPointer<Float>, correctionBias: UnsafeBufferPointer<Float>?,
                       scratch: UnsafeMutableBufferPointer<Float>, ids: UnsafeMutableBufferPointer<Int>,
                       weights: UnsafeMutableBufferPointer<Float>) {
        let e = logits.count
        let k = ids.count
        switch kind {
        case .softmaxTopK(let normalizes):
            let p = UnsafeMutableBufferPointer(rebasing: scratch[0..<e])
            softmax(logits, into: p)
            topK(UnsafeBufferPointer(p), k, into: ids)
            for j in 0..<k { weights[j] = p[ids[j]] }
            if normalizes {
                var sum: Float = 0
                for j in 0..<k { sum += weights[j] }
                for j in 0..<k { weights[j] /= sum }
            }
        case .sigmoidGroupedTopK(let groupCount, let keptGroups, let normalizes, let scale):
            let s = UnsafeMutableBufferPointer(rebasing: scratch[0..<e])
            let c = UnsafeMutableBufferPointer(rebasing: scratch[e..<(2 * e)])
            for i in 0..<e {
                s[i] = sigmoid(logits[i])
                c[i] = s[i] + (correctionBias?[i] ?? 0)
            }
            maskGroups(c, groupCount: groupCount, keptGroups: keptGroups)
            topK(UnsafeBufferPointer(c), k, into: ids)
            var sum: Float = 0
            for j in 0..<k { weights[j] = s[ids[j]]; sum += weights[j] }
            if normalizes { for j in 0..<k { weights[j] /= (sum + 1e-20) } }
            for j in 0..<k { weights[j] *= scale }
        case .topKThenSoftmax:
            topK(logits, k, into: ids)
            let top = UnsafeMutableBufferPointer(rebasing: scratch[0..<k])
            for j in 0..<k { top[j] = logits[ids[j]] }
            softmax(UnsafeBufferPointer(top), into: weights)
        case .sigmoidTopKScalesInput:
            topK(logits, k, into: ids)
            for j in 0..<k { weights[j] = sigmoid(logits[ids[j]]) }
        }
    }

    /// DeepSeek-V3 group limiting: score each of `groupCount` consecutive groups by the sum of its two
    /// largest values, keep the best `keptGroups` groups (ties to the lower group), set the rest to −∞.
    static func maskGroups(_ c: UnsafeMutableBufferPointer<Float>, groupCount: Int, keptGroups: Int) {
        guard groupCount > 1 else { return }
        let size = c.count / groupCount
        var groupScores = [Float](repeating: 0, count: groupCount)
        for g in 0..<groupCount {
            var best = -Float.infinity, second = -Float.infinity
            for i in (g * size)..<((g + 1) * size) {
                let v = c[i]
                if v > best { second = best; best = v } else if v > second { second = v }
            }
            groupScores[g] = best + second
        }
        let kept = Set(topK(groupScores, keptGroups))
        for g in 0..<groupCount where !kept.contains(g) {
            for i in (g * size)..<((g + 1) * size) { c[i] = -.infinity }
        }
    }

    /// Numerically stable softmax: exp(x − max) / Σ.
    static func softmax(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>) {
        var maxValue = -Float.infinity
        for v in x { maxValue = max(maxValue, v) }
        var sum: Float = 0
        for i in 0..<x.count { out[i] = expf(x[i] - maxValue); sum += out[i] }
        for i in 0..<x.count { out[i] /= sum }
    }

    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }
}
