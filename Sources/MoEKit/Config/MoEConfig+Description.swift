extension RouterKind: CustomStringConvertible {
    /// A one-line human description, e.g. `softmax → top-k, renormalised`.
    public var description: String {
        switch self {
        case .softmaxTopK(let normalizes): "softmax → top-k\(normalizes ? ", renormalised" : "")"
        case .sigmoidGroupedTopK(let groups, let kept, let normalizes, let scale):
            "sigmoid + correction bias, top-\(kept) of \(groups) groups → top-k\(normalizes ? ", renormalised" : ""), ×\(scale)"
        case .topKThenSoftmax: "top-k of logits → softmax over k"
        case .sigmoidTopKScalesInput: "top-k of logits, sigmoid scales the expert input"
        }
    }
}

extension ExpertKind: CustomStringConvertible {
    /// A one-line human description, e.g. `gated silu (SwiGLU)`.
    public var description: String {
        switch self {
        case .gated(let act): act == .silu ? "SwiGLU" : "gated \(act.rawValue)"
        case .mlp(let act): "MLP \(act.rawValue) with biases"
        case .clampedGated(let alpha, let limit): "clamped SwiGLU (alpha \(alpha), limit \(limit)) with biases"
        }
    }
}

extension MoEConfig {
    /// Floating-point operations of one forward over `tokenCount` tokens with `routedRows` admitted
    /// (token, expert) rows: router GEMV, routed experts, shared expert (multiply-add = 2 FLOPs).
    public func forwardFLOPs(tokenCount: Int, routedRows: Int) -> Double {
        let (h, f) = (Double(hiddenSize), Double(expertIntermediateSize))
        let projections: Double = expert.isGated ? 3 : 2
        var flops = 2 * h * Double(expertCount) * Double(tokenCount)
        flops += 2 * projections * h * f * Double(routedRows)
        if let shared = sharedExpert { flops += 6 * h * Double(shared.intermediateSize) * Double(tokenCount) }
        return flops
    }
}
