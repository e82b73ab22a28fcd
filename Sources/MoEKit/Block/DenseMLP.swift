/// A dense SwiGLU MLP, `down · (silu(gate · x) ⊙ (up · x))`: the feed-forward of non-MoE layers and
/// the shared expert. It runs on the same kernels as the routed experts, as one expert that every
/// token is routed to with weight 1.
public struct DenseMLP: Sendable {
    /// One expert: gate/up `[1, F, H]`, down `[1, H, F]`.
    public let weights: ExpertWeights

    /// Wraps `[F, H]` gate and up and `[H, F]` down matrices, stored as `format` (`nil`: BF16 when every
    /// weight is a bfloat16, else F32), as for ``ExpertWeights``.
    /// - Throws: ``TensorError`` when the shapes disagree.
    public init(gate: Tensor<Float>, up: Tensor<Float>, down: Tensor<Float>, activation: Activation = .silu,
                format: WeightFormat? = nil, compute: ComputeMode = .f32) throws {
        guard gate.rank == 2, up.rank == 2, down.rank == 2 else {
            throw TensorError.shapeMismatch(expected: "2-D gate/up [F, H] and down [H, F]", actual: "\(gate.shape), \(up.shape), \(down.shape)")
        }
        weights = try ExpertWeights(kind: .gated(activation), gate: gate.reshaped([1] + gate.shape),
                                    up: up.reshaped([1] + up.shape), down: down.reshaped([1] + down.shape), format: format, compute: compute)
    }

    /// Wraps stored `[1, F, H]` gate and up and `[1, H, F]` down matrices (a checkpoint's, as stored), packed
    /// once or read in place (`residency`, as ``ExpertWeights``).
    /// - Throws: ``TensorError`` when the shapes disagree, ``WeightError``.
    public init(gate: StoredMatrices, up: StoredMatrices, down: StoredMatrices, activation: Activation = .silu,
                compute: ComputeMode = .f32, residency: WeightResidency = .packed) throws {
        weights = try ExpertWeights(kind: .gated(activation), gate: gate, up: up, down: down, compute: compute, residency: residency)
    }

    /// H.
    public var hiddenSize: Int { weights.hiddenSize }

    /// Applies the MLP to every row of `hidden` `[T, H]`.
    /// - Throws: ``TensorError/shapeMismatch(expected:actual:)`` unless `hidden` is `[T, H]`.
    public func forward(_ hidden: Tensor<Float>, variant: KernelVariant = .fast, threads: Int = 1) throws(TensorError) -> Tensor<Float> {
        guard hidden.rank == 2 else { throw .shapeMismatch(expected: "hidden_states [T, \(hiddenSize)]", actual: "\(hidden.shape)") }
        let plan = RoutingPlan.allTokens(hidden.shape[0])
        return try RoutedExperts.run(variant, input: hidden, plan: plan, experts: weights, threads: threads)
    }
}

/// The always-on expert beside the routed ones, with its optional per-token sigmoid gate.
public struct SharedExpert: Sendable {
    /// The expert's SwiGLU MLP.
    public let mlp: DenseMLP
    /// Qwen2-MoE's `shared_expert_gate.weight` (H values), or `nil` for an ungated shared expert.
    public let gateWeight: [Float]?

    /// Wraps `mlp`, with Qwen2-MoE's sigmoid gate when `gateWeight` is given.
    /// - Throws: ``TensorError/shapeMismatch(expected:actual:)`` unless `gateWeight` has H values.
    public init(mlp: DenseMLP, gateWeight: [Float]? = nil) throws(TensorError) {
        if let gateWeight, gateWeight.count != mlp.hiddenSize {
            throw .shapeMismatch(expected: "shared_expert_gate [1, \(mlp.hiddenSize)]", actual: "\(gateWeight.count) values")
        }
        self.mlp = mlp
        self.gateWeight = gateWeight
    }

    /// Adds this expert's output to `output` `[T, H]`: `y += s(x)` or `y += σ(w·x) · s(x)`.
    func add(to output: inout Tensor<Float>, input: Tensor<Float>, variant: KernelVariant, threads: Int) throws(TensorError) {
        let s = try mlp.forward(input, variant: variant, threads: threads)
        let h = mlp.hiddenSize
        for t in 0..<input.shape[0] {
            var scale: Float = 1
            if let gateWeight {
                var acc = 0.0
                for i in 0..<h { acc += Double(gateWeight[i]) * Double(input.storage[t * h + i]) }
                scale = 1 / (1 + expf(-Float(acc)))
            }
            for i in 0..<h { output.storage[t * h + i] += scale * s.storage[t * h + i] }
        }
    }
}
