/// `projection_to_intermediate` (seed 000): for every row of the ``RoutingPlan`` (row = offsets[e] + i,
/// the i-th token of expert e), `a[row] = act(gate_e · x_t + b_g, up_e · x_t + b_u)`: `[rows, F]`, rows
/// packed by expert.
///
/// When `scalesInput` (Llama-4) the expert sees `rowWeight · x_t` instead of `x_t`.
public enum ProjectionToIntermediate {
    /// Runs `variant`. `input` is `[T, H]`; the result is `[plan.rowCount, F]`, every element written.
    /// - Throws: ``TensorError/shapeMismatch(expected:actual:)`` when `input`, `plan` and `experts` disagree.
    public static func run(_ variant: KernelVariant, input: Tensor<Float>, plan: RoutingPlan, experts: ExpertWeights,
                           scalesInput: Bool = false, threads: Int = 1) throws(TensorError) -> Tensor<Float> {
        try check(input: input, plan: plan, experts: experts)
        var output = Tensor<Float>(shape: [plan.rowCount, experts.intermediateSize], repeating: .nan)
        switch variant {
        case .reference: reference(input: input, plan: plan, experts: experts, scalesInput: scalesInput, into: &output)
        case .fast: fast(input: input, plan: plan, experts: experts, scalesInput: scalesInput, threads: threads, into: &output)
        }
        return output
    }

    /// Checks that `input`, `plan` and `experts` agree.
    static func check(input: Tensor<Float>, plan: RoutingPlan, experts: ExpertWeights) throws(TensorError) {
        guard input.shape == [plan.tokenCount, experts.hiddenSize] else {
            throw .shapeMismatch(expected: "input [\(plan.tokenCount), \(experts.hiddenSize)]", actual: "\(input.shape)")
        }
        try plan.check(against: experts)
    }

    /// Plain loops, `Double` accumulation: the specification. Weight rows are decoded exactly, one at a
    /// time, from the experts' one copy.
    static func reference(input: Tensor<Float>, plan: RoutingPlan, experts: ExpertWeights, scalesInput: Bool,
                          into output: inout Tensor<Float>) {
        let (h, f) = (experts.hiddenSize, experts.intermediateSize)
        var gateRow = [Float](repeating: 0, count: h), upRow = [Float](repeating: 0, count: h)
        for e in 0..<plan.expertCount where plan.offsets[e + 1] > plan.offsets[e] {
            for j in 0..<f {
                gateRow.withUnsafeMutableBufferPointer { experts.decodeRow(.gate, expert: e, row: j, into: $0.baseAddress!) }
                if experts.kind.isGated { upRow.withUnsafeMutableBufferPointer { experts.decodeRow(.up, expert: e, row: j, into: $0.baseAddress!) } }
                for row in plan.offsets[e]..<plan.offsets[e + 1] {
                    let t = Int(plan.rowToken[row])
                    let scale = scalesInput ? Double(plan.rowWeight[row]) : 1
                    var g = Double(experts.gateBias?.storage[e * f + j] ?? 0)
                    var u = Double(experts.upBias?.storage[e * f + j] ?? 0)
                    for i in 0..<h {
                        // Llama-4 rounds the scaled input to the activation dtype before the matmul.
                        let x = scalesInput ? Double(Float(scale * Double(input.storage[t * h + i]))) : Double(input.storage[t * h + i])
                        g += x * Double(gateRow[i])
                        if experts.kind.isGated { u += x * Double(upRow[i]) }
                    }
                    output.storage[row * f + j] = Float(ExpertActivation.apply(experts.kind, gate: g, up: u))
                }
            }
        }
    }
}
