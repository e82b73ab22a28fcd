/// The weights of E experts in MoEKit's one canonical layout (nn.Linear orientation, `[out, in]`),
/// whatever the checkpoint stored: per-expert tensors, fused `gate_up_proj`, transposed, interleaved.
/// The loader converts once; kernels never branch on checkpoint format.
///
/// - `gate`: `[E, F, H]` — the gate projection of gated experts, W1 of ``ExpertKind/mlp(_:)``.
/// - `up`: `[E, F, H]` — gated kinds only.
/// - `down`: `[E, H, F]`.
/// - biases: `gateBias`/`upBias` `[E, F]`, `downBias` `[E, H]`, present when ``ExpertKind/hasBiases``.
///
/// ``packed`` holds the same numbers in the fast kernels' panel layout, built once here.
public struct ExpertWeights: Sendable {
    public let kind: ExpertKind
    /// E.
    public let expertCount: Int
    /// H.
    public let hiddenSize: Int
    /// F.
    public let intermediateSize: Int
    public let gate: Tensor<Float>
    public let up: Tensor<Float>?
    public let down: Tensor<Float>
    public let gateBias: Tensor<Float>?
    public let upBias: Tensor<Float>?
    public let downBias: Tensor<Float>?
    /// The fast kernels' layout.
    let packed: PackedExpertWeights

    /// Checks every shape against `kind`, E, H and F, then packs.
    /// - Throws: ``TensorError/shapeMismatch(expected:actual:)`` naming the tensor.
    /// - Parameter precision: how the fast kernels store the weights; `nil` chooses BF16 when every
    ///   weight is exactly a bfloat16 (a BF16 checkpoint: half the bytes, identical results), else F32.
    public init(kind: ExpertKind, gate: Tensor<Float>, up: Tensor<Float>?, down: Tensor<Float>,
                gateBias: Tensor<Float>? = nil, upBias: Tensor<Float>? = nil, downBias: Tensor<Float>? = nil,
                precision: WeightPrecision? = nil) throws(TensorError) {
        guard gate.rank == 3 else { throw .shapeMismatch(expected: "gate [E, F, H]", actual: "\(gate.shape)") }
        let (e, f, h) = (gate.shape[0], gate.shape[1], gate.shape[2])
        func check(_ t: Tensor<Float>?, _ name: String, _ shape: [Int], required: Bool) throws(TensorError) {
            if let t {
                guard required else { throw .shapeMismatch(expected: "no \(name) for \(kind)", actual: "\(t.shape)") }
                guard t.shape == shape else { throw .shapeMismatch(expected: "\(name) \(shape)", actual: "\(t.shape)") }
            } else if required {
                throw .shapeMismatch(expected: "\(name) \(shape)", actual: "missing")
            }
        }
        try check(up, "up", [e, f, h], required: kind.isGated)
        try check(down, "down", [e, h, f], required: true)
        try check(gateBias, "gate bias", [e, f], required: kind.hasBiases)
        try check(upBias, "up bias", [e, f], required: kind.hasBiases && kind.isGated)
        try check(downBias, "down bias", [e, h], required: kind.hasBiases)
        self.kind = kind
        expertCount = e
        hiddenSize = h
        intermediateSize = f
        self.gate = gate
        self.up = up
        self.down = down
        self.gateBias = gateBias
        self.upBias = upBias
        self.downBias = downBias
        let exact = PackedPanels.isExactlyBFloat16(gate) && PackedPanels.isExactlyBFloat16(down)
            && (up.map(PackedPanels.isExactlyBFloat16) ?? true)
        packed = PackedExpertWeights(gate: gate, up: up, down: down, precision: precision ?? (exact ? .bf16 : .f32))
    }

    /// The instruction set the fast kernels use on this CPU.
    public static var kernelISA: String { TileKernel.isaName }

    /// How the fast kernels store these weights.
    public var precision: WeightPrecision { packed.gateUp.precision }
}
