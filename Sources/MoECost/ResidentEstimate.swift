import MoEKit

/// The bytes a loaded feed-forward block keeps resident in MoEKit: every weight is kept once, in its
/// stored format, packed into panels of 32 output columns, and nothing else is kept (no widened copy).
/// The packed size follows MoEKit's layout exactly (`PanelMatrices.bytesNeeded`):
///
/// - a stack of `count` matrices `[rows, columns]` (nn.Linear `[out, in]`), `sources` interleaved stacks
///   (gate and up: 2) holds `sources · count · ⌈rows/32⌉` panels, each `units · rowBytes + scaleBytes`:
///   `units` = columns (BF16 compute: ⌈columns/2⌉ pairs); `rowBytes` = 32 columns of the element
///   (F32 128, BF16/F16 64, BF16 pairs 128, FP8 32, MXFP4 16); `scaleBytes` = ⌈columns/group⌉ scale rows of
///   32 columns (FP8: F32, one per `blockColumns` inputs per output column, 128 bytes; MXFP4: E8M0, 32 bytes);
/// - the routed experts: gate and up `[F, H]` (2 sources; 1 for an ungated MLP) and down `[H, F]`, E each;
///   biases F32 `[E, F]` (gate, up) and `[E, H]` (down) where the experts have them;
/// - the shared expert: the same for one `[S, H]`/`[H, S]` expert, plus its sigmoid gate `[H]` F32;
/// - the router: its F32 weight `[E, H]` and the same weight packed (F32 panels, ⌈E/32⌉ · 32 columns),
///   plus its bias and DeepSeek-V3's correction bias `[E]` F32.
///
/// Not included: activations of a forward (see ``forwardActivationBytes(_:tokens:)``), the process itself
/// (runtime, libraries, thread stacks), and allocator rounding (below a page per buffer).
public struct ResidentEstimate: Sendable, Equatable {
    /// Output columns per panel (MoEKit's `PanelMatrices.width`).
    public static let panelWidth = 32

    /// The routed experts' packed weights (values and scales).
    public var routedExperts: Int
    /// The routed experts' F32 biases.
    public var expertBiases: Int
    /// The shared expert's packed weights and its gate (0 without one).
    public var sharedExpert: Int
    /// The router: F32 weight, its packed copy, biases.
    public var router: Int

    /// Every byte above.
    public var total: Int { routedExperts + expertBiases + sharedExpert + router }

    /// The block `block` with routed experts stored as `expertFormat` and the shared expert as `sharedFormat`
    /// (default: `expertFormat`), packed for `compute` (BF16 compute: BF16 weights only, else F32 is assumed).
    public init(_ block: MoEBlockShape, expertFormat: WeightFormat, sharedFormat: WeightFormat? = nil,
                compute: ComputeMode = .f32, routerCorrectionBias: Bool = false) {
        let (h, f, e) = (block.hiddenSize, block.expertIntermediateSize, block.expertCount)
        let gated = block.expertMatrixCount == 3
        routedExperts = Self.packedBytes(count: e, sources: gated ? 2 : 1, rows: f, columns: h, format: expertFormat, compute: compute)
            + Self.packedBytes(count: e, sources: 1, rows: h, columns: f, format: expertFormat, compute: compute)
        expertBiases = block.expertHasBiases ? 4 * e * ((gated ? 2 : 1) * f + h) : 0
        if let s = block.sharedIntermediateSize {
            sharedExpert = Self.denseMLP(hidden: h, intermediate: s, format: sharedFormat ?? expertFormat, compute: compute)
                + (block.sharedExpertHasGate ? 4 * h : 0)
        } else {
            sharedExpert = 0
        }
        router = 4 * e * h + Self.packedBytes(count: 1, sources: 1, rows: e, columns: h, format: .f32, compute: .f32)
            + (block.routerHasBias ? 4 * e : 0) + (routerCorrectionBias ? 4 * e : 0)
    }

    /// The block MoEKit builds for `config` with every expert weight (routed and shared) stored as `format`,
    /// as `MoEBlock.random` and `MoEBlock.randomStored` build it.
    public init(_ config: MoEConfig, format: WeightFormat, compute: ComputeMode = .f32) {
        var correction = false
        if case .sigmoidGroupedTopK = config.router { correction = true }
        self.init(MoEBlockShape(config), expertFormat: format, compute: compute, routerCorrectionBias: correction)
    }

    /// The MoE block of a model, its experts in the checkpoint's stored format (``ModelShape/expertFormat``).
    public init(_ shape: ModelShape) {
        self.init(shape.moe, expertFormat: shape.expertFormat, sharedFormat: shape.linearFormat,
                  routerCorrectionBias: shape.modelType == "deepseek_v3")
    }

    /// A dense SwiGLU MLP (gate and up `[F, H]`, down `[H, F]`), packed.
    public static func denseMLP(hidden: Int, intermediate: Int, format: WeightFormat, compute: ComputeMode = .f32) -> Int {
        packedBytes(count: 1, sources: 2, rows: intermediate, columns: hidden, format: format, compute: compute)
            + packedBytes(count: 1, sources: 1, rows: hidden, columns: intermediate, format: format, compute: compute)
    }

    /// Packed bytes of `sources` interleaved stacks of `count` matrices `[rows, columns]` stored as `format`.
    public static func packedBytes(count: Int, sources: Int, rows: Int, columns: Int, format: WeightFormat,
                                   compute: ComputeMode = .f32) -> Int {
        let w = panelWidth
        let panels = sources * count * ((rows + w - 1) / w)
        let pairs = compute == .bf16 && format == .bf16
        let units = pairs ? (columns + 1) / 2 : columns
        let rowBytes: Int, scaleBytes: Int
        switch format {
        case .f32: (rowBytes, scaleBytes) = (4 * w, 0)
        case .bf16, .f16: (rowBytes, scaleBytes) = (pairs ? 4 * w : 2 * w, 0)
        case .fp8E4M3(_, let bc): (rowBytes, scaleBytes) = (w, (columns + max(bc, 1) - 1) / max(bc, 1) * 4 * w)
        case .mxfp4:
            let group = WeightFormat.mxfp4Group
            (rowBytes, scaleBytes) = (w / 2, (columns + group - 1) / group * w)
        case .ggml(let type):
            // Blocks as stored, 32 columns' blocks per k-block; no separate scales.
            return panels * (columns / type.blockSize) * w * type.bytesPerBlock
        }
        return panels * (units * rowBytes + scaleBytes)
    }

    /// The F32 working buffers of one fast forward of `tokens` tokens, approximately (rows padded to tiles are
    /// not counted): input, output and shared-expert output `[T, H]`; router logits and scores `[T, E]`;
    /// the routed rows' gathered input `[T·K, H]`, intermediate `[T·K, F]` and output `[T·K, H]`; the
    /// shared expert's intermediate `[T, S]`.
    public static func forwardActivationBytes(_ block: MoEBlockShape, tokens: Int) -> Int {
        let (t, h, f, e, k) = (tokens, block.hiddenSize, block.expertIntermediateSize, block.expertCount, block.expertsPerToken)
        let s = block.sharedIntermediateSize ?? 0
        return 4 * (3 * t * h + 2 * t * e + t * k * (2 * h + f) + t * s)
    }
}

extension ModelShape {
    /// How the routed experts' weights are stored: the checkpoint's quantization (FP8 with its block,
    /// MXFP4), else ``expertDType`` (FP8 without a block size: 128 × 128).
    public var expertFormat: WeightFormat {
        switch quantization {
        case .fp8(let r, let c)?: return .fp8E4M3(blockRows: r, blockColumns: c)
        case .mxfp4?: return .mxfp4
        case nil: return expertDType.weightFormat
        }
    }

    /// How the other linear weights (shared expert, dense MLPs) are stored: FP8 checkpoints quantize every
    /// linear layer; MXFP4 ones only the experts (the rest is ``weightDType``).
    public var linearFormat: WeightFormat {
        if case .fp8(let r, let c)? = quantization { return .fp8E4M3(blockRows: r, blockColumns: c) }
        return weightDType.weightFormat
    }

    /// Resident bytes of layer `index`'s loaded feed-forward block (``ResidentEstimate``): the MoE block, or
    /// the dense MLP.
    public func residentBytes(layer index: Int) -> Int {
        if sparseLayers.indices.contains(index), sparseLayers[index] { return ResidentEstimate(self).total }
        return ResidentEstimate.denseMLP(hidden: hiddenSize, intermediate: denseIntermediateSize ?? 0, format: linearFormat)
    }
}

extension WeightDType {
    /// The MoEKit stored format of this dtype (FP8: 128 × 128 blocks).
    public var weightFormat: WeightFormat {
        switch self {
        case .f32: .f32
        case .bf16: .bf16
        case .f16: .f16
        case .fp8: .fp8E4M3(blockRows: 128, blockColumns: 128)
        case .mxfp4: .mxfp4
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K: ggmlBlockType.map { .ggml($0) } ?? .f32
        }
    }
}
