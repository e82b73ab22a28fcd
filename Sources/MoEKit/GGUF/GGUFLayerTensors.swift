/// The tensor names llama.cpp gives the feed-forward part of block `N` (gguf-py `TENSOR_NAMES`).
public enum GGUFTensorName {
    /// Router: ggml `[H, E]`.
    public static func router(_ n: Int) -> String { "blk.\(n).ffn_gate_inp.weight" }
    /// Router bias (gpt-oss): `[E]`.
    public static func routerBias(_ n: Int) -> String { "blk.\(n).ffn_gate_inp.bias" }
    /// Routed experts: gate and up ggml `[H, F, E]`, down `[F, H, E]`.
    public static func experts(_ n: Int, _ projection: Projection) -> String { "blk.\(n).ffn_\(projection.rawValue)_exps.weight" }
    /// Expert biases (gpt-oss): gate and up `[F, E]`, down `[H, E]`.
    public static func expertBias(_ n: Int, _ projection: Projection) -> String { "blk.\(n).ffn_\(projection.rawValue)_exps.bias" }
    /// Shared expert: gate and up `[H, Fs]`, down `[Fs, H]`.
    public static func shared(_ n: Int, _ projection: Projection) -> String { "blk.\(n).ffn_\(projection.rawValue)_shexp.weight" }
    /// Shared-expert gate (qwen2moe): `[H]`.
    public static func sharedGate(_ n: Int) -> String { "blk.\(n).ffn_gate_inp_shexp.weight" }
    /// Selection bias added to the router scores (deepseek2 `exp_probs_b`): `[E]`.
    public static func scoreCorrectionBias(_ n: Int) -> String { "blk.\(n).exp_probs_b.bias" }
    /// Dense MLP of a non-MoE block: gate and up `[H, F]`, down `[F, H]`.
    public static func dense(_ n: Int, _ projection: Projection) -> String { "blk.\(n).ffn_\(projection.rawValue).weight" }

    /// One projection of an MLP, by its name in llama.cpp's tensor names (`ffn_gate`, `ffn_up`, `ffn_down`).
    public enum Projection: String, Sendable, CaseIterable {
        /// `ffn_gate`.
        case gate
        /// `ffn_up`.
        case up
        /// `ffn_down`.
        case down
    }
}

/// A SwiGLU MLP's three projections (MoEKit order: gate and up `[F, H]`, down `[H, F]`).
public struct GGUFMLPTensors: Sendable {
    /// gate `[F, H]`.
    public let gate: GGUFTensorView
    /// up `[F, H]`.
    public let up: GGUFTensorView
    /// down `[H, F]`.
    public let down: GGUFTensorView
}

/// The tensors of one MoE block, in MoEKit order (outermost first), every shape checked against
/// the metadata: router `[E, H]`, gate/up `[E, F, H]`, down `[E, H, F]`.
public struct GGUFMoETensors: Sendable {
    /// The router `[E, H]` (`ffn_gate_inp`).
    public let router: GGUFTensorView
    /// gpt-oss: `[E]`.
    public let routerBias: GGUFTensorView?
    /// The routed experts' gate `[E, F, H]` (`ffn_gate_exps`).
    public let gate: GGUFTensorView
    /// The routed experts' up `[E, F, H]` (`ffn_up_exps`).
    public let up: GGUFTensorView
    /// The routed experts' down `[E, H, F]` (`ffn_down_exps`).
    public let down: GGUFTensorView
    /// gpt-oss: gate and up `[E, F]`, down `[E, H]`.
    public let gateBias: GGUFTensorView?
    /// gpt-oss: up's bias `[E, F]`.
    public let upBias: GGUFTensorView?
    /// gpt-oss: down's bias `[E, H]`.
    public let downBias: GGUFTensorView?
    /// deepseek2 `exp_probs_b` `[E]`, when the file has it (llama.cpp treats it as optional).
    public let scoreCorrectionBias: GGUFTensorView?
    /// qwen2moe, deepseek2 (with `expert_shared_count` > 0), llama4.
    public let shared: GGUFMLPTensors?
    /// qwen2moe: the shared expert's sigmoid gate `[H]`.
    public let sharedGate: GGUFTensorView?
}

/// What block `N` of the file computes after attention.
public enum GGUFFeedForward: Sendable {
    /// An MoE block.
    case moe(GGUFMoETensors)
    /// A dense SwiGLU MLP (deepseek2's leading blocks, llama4's interleaved ones).
    case dense(GGUFMLPTensors)
}

/// The feed-forward tensors of one block (`blk.N`).
public struct GGUFLayerTensors: Sendable {
    /// The block index N of `blk.N`.
    public let layer: Int
    /// The block's feed-forward tensors.
    public let feedForward: GGUFFeedForward

    /// Every tensor of the block's feed-forward part.
    public var tensors: [GGUFTensorView] {
        switch feedForward {
        case .dense(let mlp): [mlp.gate, mlp.up, mlp.down]
        case .moe(let m):
            [m.router, m.routerBias, m.gate, m.up, m.down, m.gateBias, m.upBias, m.downBias, m.scoreCorrectionBias,
             m.shared?.gate, m.shared?.up, m.shared?.down, m.sharedGate].compactMap { $0 }
        }
    }
}

/// Finds a block's tensors and checks each against the metadata.
struct GGUFLayerReader {
    let shards: GGUFShards
    let sizes: GGUFHyperparameters

    func layer(_ n: Int) throws(GGUFError) -> GGUFLayerTensors {
        let h = sizes.hidden
        if !sizes.sparse[n] {
            guard let f = sizes.denseWidth else {
                throw .invalidConfig(path: sizes.path, reason: "block \(n) is dense but no dense width is known")
            }
            return GGUFLayerTensors(layer: n, feedForward: .dense(try mlp(n, hidden: h, width: f, name: GGUFTensorName.dense)))
        }
        let e = sizes.experts, f = sizes.expertWidth
        let expertsFrom = "\(h.source), \(f.source), \(e.source)"
        try refuseUnsupportedLayouts(n)
        let router = try matrix(GGUFTensorName.router(n), [h.value, e.value], from: "\(h.source), \(e.source)", expertAxis: 1)
        let gate = try matrix(GGUFTensorName.experts(n, .gate), [h.value, f.value, e.value], from: expertsFrom, expertAxis: 2)
        let up = try matrix(GGUFTensorName.experts(n, .up), [h.value, f.value, e.value], from: expertsFrom, expertAxis: 2)
        let down = try matrix(GGUFTensorName.experts(n, .down), [f.value, h.value, e.value], from: expertsFrom, expertAxis: 2)

        var routerBias: GGUFTensorView?, gateBias: GGUFTensorView?, upBias: GGUFTensorView?, downBias: GGUFTensorView?
        if sizes.config.moe.routerHasBias {
            routerBias = try vector(GGUFTensorName.routerBias(n), [e.value], from: e.source, expertAxis: 0)
        }
        if sizes.config.moe.expert.hasBiases {
            gateBias = try vector(GGUFTensorName.expertBias(n, .gate), [f.value, e.value], from: "\(f.source), \(e.source)", expertAxis: 1)
            upBias = try vector(GGUFTensorName.expertBias(n, .up), [f.value, e.value], from: "\(f.source), \(e.source)", expertAxis: 1)
            downBias = try vector(GGUFTensorName.expertBias(n, .down), [h.value, e.value], from: "\(h.source), \(e.source)", expertAxis: 1)
        }
        var scoreBias: GGUFTensorView?
        if sizes.arch == .deepseek2, shards.view(GGUFTensorName.scoreCorrectionBias(n)) != nil {
            scoreBias = try vector(GGUFTensorName.scoreCorrectionBias(n), [e.value], from: e.source, expertAxis: 0)
        }
        var shared: GGUFMLPTensors?, sharedGate: GGUFTensorView?
        if let fs = sizes.sharedWidth {
            shared = try mlp(n, hidden: h, width: fs, name: GGUFTensorName.shared)
            if sizes.config.moe.sharedExpert?.gate == .sigmoid {
                sharedGate = try vector(GGUFTensorName.sharedGate(n), [h.value], from: h.source, expertAxis: nil)
            }
        }
        return GGUFLayerTensors(layer: n, feedForward: .moe(GGUFMoETensors(
            router: router, routerBias: routerBias, gate: gate, up: up, down: down, gateBias: gateBias, upBias: upBias,
            downBias: downBias, scoreCorrectionBias: scoreBias, shared: shared, sharedGate: sharedGate)))
    }

    private func mlp(_ n: Int, hidden h: GGUFHyperparameters.Size, width f: GGUFHyperparameters.Size,
                     name: (Int, GGUFTensorName.Projection) -> String) throws(GGUFError) -> GGUFMLPTensors {
        let from = "\(h.source), \(f.source)"
        return GGUFMLPTensors(gate: try matrix(name(n, .gate), [h.value, f.value], from: from, expertAxis: nil),
                              up: try matrix(name(n, .up), [h.value, f.value], from: from, expertAxis: nil),
                              down: try matrix(name(n, .down), [f.value, h.value], from: from, expertAxis: nil))
    }

    /// Layouts llama.cpp has written that MoEKit does not read yet, refused by name rather than
    /// reported as a missing tensor.
    private func refuseUnsupportedLayouts(_ n: Int) throws(GGUFError) {
        guard shards.view(GGUFTensorName.experts(n, .gate)) == nil else { return }
        if let fused = shards.view("blk.\(n).ffn_gate_up_exps.weight") {
            throw .wrongTensorType(path: fused.path, tensor: fused.name, type: fused.type,
                                   reason: "fused gate/up experts are not supported yet (MoEKit reads ffn_gate_exps and ffn_up_exps)")
        }
        if let perExpert = shards.view("blk.\(n).ffn_gate.0.weight") {
            throw .wrongTensorType(path: perExpert.path, tensor: perExpert.name, type: perExpert.type,
                                   reason: "one tensor per expert (an early Mixtral GGUF) is not supported: convert the model again")
        }
    }

    /// A weight matrix (or stack of them): any float or block type.
    private func matrix(_ name: String, _ expected: [Int], from: String, expertAxis: Int?) throws(GGUFError) -> GGUFTensorView {
        let view = try checked(name, expected, from: from, expertAxis: expertAxis)
        switch view.type {
        case .i8, .i16, .i32, .i64:
            throw .wrongTensorType(path: view.path, tensor: name, type: view.type, reason: "an integer type cannot hold weights")
        default:
            return view
        }
    }

    /// A bias or gate vector (or a table of them): F32, F16 or BF16, as llama.cpp keeps them.
    private func vector(_ name: String, _ expected: [Int], from: String, expertAxis: Int?) throws(GGUFError) -> GGUFTensorView {
        let view = try checked(name, expected, from: from, expertAxis: expertAxis)
        guard view.type == .f32 || view.type == .f16 || view.type == .bf16 else {
            throw .wrongTensorType(path: view.path, tensor: name, type: view.type, reason: "biases and gates must be F32, F16 or BF16")
        }
        return view
    }

    /// Tensor `name`, its ggml dims equal to `expected` (trailing 1s ignored, as ggml does); a
    /// difference in the expert axis alone is reported as an expert-count mismatch.
    private func checked(_ name: String, _ expected: [Int], from: String, expertAxis: Int?) throws(GGUFError) -> GGUFTensorView {
        guard let view = shards.view(name) else { throw .tensorNotFound(path: shards.path, tensor: name) }
        let padded = { (d: [Int]) in d + Array(repeating: 1, count: max(0, 4 - d.count)) }
        let have = padded(view.dims), want = padded(expected)
        guard have != want else { return view }
        if let axis = expertAxis {
            var fixed = have
            fixed[axis] = want[axis]
            if fixed == want {
                throw .expertCountMismatch(path: view.path, tensor: name, dims: view.dims, experts: have[axis],
                                           key: "\(sizes.arch).expert_count", value: sizes.experts.value)
            }
        }
        throw .tensorShape(path: view.path, tensor: name, dims: view.dims, expected: expected, from: from)
    }
}
