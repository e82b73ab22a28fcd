/// FLOPs and bytes moved by one part of a feed-forward block.
public struct WorkComponent: Sendable, Equatable {
    /// Floating-point operations (a multiply-add is 2).
    public var flops: Double
    /// Weight bytes read, at the stored dtype.
    public var weightBytes: Double
    /// Activation bytes read and written.
    public var activationBytes: Double
    /// The dtype the FLOPs run in (selects the hardware's peak).
    public var computeDType: WeightDType

    /// A component; empty by default.
    public init(flops: Double = 0, weightBytes: Double = 0, activationBytes: Double = 0, computeDType: WeightDType = .bf16) {
        self.flops = flops
        self.weightBytes = weightBytes
        self.activationBytes = activationBytes
        self.computeDType = computeDType
    }

    /// Weight and activation bytes.
    public var bytes: Double { weightBytes + activationBytes }
}

/// The work of one decoder layer's feed-forward block for T tokens (attention is not modelled).
public struct LayerWork: Sendable, Equatable {
    /// The decoder layer.
    public var index: Int
    /// MoE or dense.
    public var kind: LayerKind
    /// Router logits `2·T·H·E` (MoE layers).
    public var router: WorkComponent
    /// Routed experts: `2·M·H·F` per (token, expert) pair for `M` matrices, weights of the experts touched.
    public var routedExperts: WorkComponent
    /// The shared expert (MoE layers) or the dense MLP (dense layers).
    public var sharedOrDense: WorkComponent
    /// Weighting and summing the K expert outputs: `2·T·K·H`.
    public var combine: WorkComponent
    /// Expected distinct experts the T tokens touch (0 for dense layers).
    public var expertsTouched: Double

    /// The parts of the block, in execution order, leaving out empty ones.
    public var components: [WorkComponent] {
        [router, routedExperts, sharedOrDense, combine].filter { $0.flops > 0 || $0.bytes > 0 }
    }
    /// FLOPs of the block.
    public var flops: Double { components.reduce(0) { $0 + $1.flops } }
    /// Bytes the block moves.
    public var bytes: Double { components.reduce(0) { $0 + $1.bytes } }
    /// Weight bytes the block reads.
    public var weightBytes: Double { components.reduce(0) { $0 + $1.weightBytes } }
}

/// FLOPs, bytes and memory of a model's feed-forward blocks for a batch of T tokens.
///
/// Assumptions: dropless routing; the expected number of distinct experts touched follows a
/// ``RoutingModel`` (uniform: `E·(1 − (1 − K/E)^T)`); each touched expert's weights are read once;
/// activations are in the model's non-expert dtype; elementwise work (activation functions, biases)
/// is not counted in FLOPs; attention is not modelled.
public struct WorkEstimate: Sendable, Equatable {
    /// T.
    public var tokens: Int
    /// D, the expert-parallel devices (for the all-to-all bytes).
    public var devices: Int
    /// Each decoder layer's feed-forward work, in order.
    public var layers: [LayerWork]
    /// Weight bytes of one routed expert at the stored expert dtype.
    public var expertWeightBytes: Double
    /// Weight bytes of one whole MoE block (router, all experts, shared expert).
    public var moeLayerWeightBytes: Double
    /// Seed 004's activation memory of one MoE layer without token slicing: every expert that runs
    /// holds the whole batch, `touched · T · (H + 2F)` elements (input, up projection, activation).
    public var activationBytesUnsliced: Double
    /// The same with token slicing: each expert holds only its tokens, `T · K · (H + 2F)` elements.
    public var activationBytesSliced: Double
    /// A dense FFN of width F_dense on the same batch, `T · (H + 2·F_dense)` elements (0 without one).
    public var activationBytesDense: Double
    /// Bytes one MoE layer exchanges between D expert-parallel devices (dispatch and combine):
    /// `2 · T · K · H · (D − 1)/D` elements.
    public var allToAllBytes: Double

    /// Estimates the feed-forward work of `shape` for `tokens` tokens on `devices` devices.
    public init(_ shape: ModelShape, tokens: Int, devices: Int = 1, routing: RoutingModel = .uniform) {
        let moe = shape.moe
        let h = Double(shape.hiddenSize), t = Double(max(tokens, 0)), k = Double(moe.expertsPerToken)
        let e = Double(moe.expertCount), f = Double(moe.expertIntermediateSize), m = Double(moe.expertMatrixCount)
        let act = shape.weightDType.computeDType.bytesPerWeight
        let wb = shape.weightDType.bytesPerWeight
        let expertBytes = Double(moe.parametersPerExpert) * shape.expertDType.bytesPerWeight
        let touched = routing.expectedExpertsTouched(experts: moe.expertCount, k: moe.expertsPerToken, tokens: tokens)
        let compute = shape.weightDType.computeDType
        let router = WorkComponent(flops: 2 * t * h * e, weightBytes: Double(moe.routerParameters) * wb,
                                   activationBytes: t * h * act + t * e * 4, computeDType: compute)
        let routed = WorkComponent(flops: 2 * m * h * f * t * k, weightBytes: touched * expertBytes,
                                   activationBytes: t * k * (2 * h + 2 * f) * act, computeDType: shape.expertDType.computeDType)
        var shared = WorkComponent(computeDType: compute)
        if let s = moe.sharedIntermediateSize.map(Double.init) {
            shared = WorkComponent(flops: 2 * 3 * t * h * s + (moe.sharedExpertHasGate ? 2 * t * h : 0),
                                   weightBytes: Double(moe.sharedParameters) * wb,
                                   activationBytes: t * (2 * h + 2 * s) * act, computeDType: compute)
        }
        let combine = WorkComponent(flops: 2 * t * k * h, activationBytes: (t * k * h + t * h) * act, computeDType: compute)
        let denseWidth = Double(shape.denseIntermediateSize ?? 0), dm = Double(shape.denseMatrixCount)
        let dense = WorkComponent(flops: 2 * dm * t * h * denseWidth, weightBytes: dm * h * denseWidth * wb,
                                  activationBytes: t * (2 * h + 2 * denseWidth) * act, computeDType: compute)
        layers = shape.sparseLayers.enumerated().map { index, sparse in
            sparse
                ? LayerWork(index: index, kind: .moe, router: router, routedExperts: routed, sharedOrDense: shared,
                            combine: combine, expertsTouched: touched)
                : LayerWork(index: index, kind: .dense, router: WorkComponent(), routedExperts: WorkComponent(),
                            sharedOrDense: dense, combine: WorkComponent(), expertsTouched: 0)
        }
        self.tokens = tokens
        self.devices = devices
        expertWeightBytes = expertBytes
        moeLayerWeightBytes = e * expertBytes + Double(moe.routerParameters + moe.sharedParameters) * wb
        activationBytesUnsliced = touched * t * (h + 2 * f) * act
        activationBytesSliced = t * k * (h + 2 * f) * act
        activationBytesDense = denseWidth > 0 ? t * (h + 2 * denseWidth) * act : 0
        let d = Double(max(devices, 1))
        allToAllBytes = 2 * t * k * h * act * (d - 1) / d
    }

    /// FLOPs of all feed-forward blocks.
    public var flops: Double { layers.reduce(0) { $0 + $1.flops } }
    /// Bytes moved by all feed-forward blocks.
    public var bytes: Double { layers.reduce(0) { $0 + $1.bytes } }
    /// The first MoE layer's work (every MoE layer of a model has the same shape).
    public var moeLayer: LayerWork? { layers.first { $0.kind == .moe } }
}
