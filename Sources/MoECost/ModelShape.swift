import MoEKit

/// Everything the cost model needs to know about a model: sizes, attention, which layers are MoE,
/// the expert and dense FFN shapes, and the stored dtypes.
///
/// Built from a model's own `config.json` by ``init(huggingFaceJSON:path:)`` (the feed-forward part
/// comes from MoEKit's `ModelConfig(huggingFaceJSON:path:)`), from a GGUF file (``init(gguf:)``), from a
/// MoEKit model JSON, or from a
/// dense config through ``FFNScaling`` (``init(denseJSON:path:experts:topK:scaling:)``).
public struct ModelShape: Sendable, Equatable {
    /// `model_type`, or `moekit` / `dense-derived` for the other sources.
    public var modelType: String
    /// H.
    public var hiddenSize: Int
    /// Decoder layers.
    public var layerCount: Int
    /// Rows of the input embedding (0 when the source does not say).
    public var vocabSize: Int
    /// Whether the output head shares the input embedding's weight (then it is counted once).
    public var tiesWordEmbeddings: Bool
    /// Every layer's attention block (attention is counted, not timed).
    public var attention: AttentionShape
    /// Weight vectors of width H per decoder layer (input and post-attention RMSNorm: 2).
    public var normsPerLayer: Int
    /// Whether the model ends with a final norm of width H.
    public var hasFinalNorm: Bool
    /// For each layer, whether it holds the MoE block.
    public var sparseLayers: [Bool]
    /// The MoE block of the sparse layers.
    public var moe: MoEBlockShape
    /// Intermediate width of the dense MLP of the other layers.
    public var denseIntermediateSize: Int?
    /// Weight matrices of a dense MLP: 3 (gate, up, down) or 2 (up, down).
    public var denseMatrixCount: Int
    /// How the routed experts' weights are stored (MXFP4 for GPT-OSS, FP8 for DeepSeek-V3's release).
    public var expertDType: WeightDType
    /// How every other weight is stored, and the activations' dtype.
    public var weightDType: WeightDType
    /// The checkpoint's `quantization_config` (FP8 with its block size, MXFP4), `nil` when unquantized:
    /// what ``expertFormat`` and ``linearFormat`` (resident bytes) are read from.
    public var quantization: ModelConfig.Quantization?

    /// A model shape field by field; `quantization` is `nil`.
    public init(modelType: String, hiddenSize: Int, layerCount: Int, vocabSize: Int, tiesWordEmbeddings: Bool,
                attention: AttentionShape, normsPerLayer: Int = 2, hasFinalNorm: Bool = true, sparseLayers: [Bool],
                moe: MoEBlockShape, denseIntermediateSize: Int?, denseMatrixCount: Int = 3,
                expertDType: WeightDType = .bf16, weightDType: WeightDType = .bf16) {
        self.modelType = modelType
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.vocabSize = vocabSize
        self.tiesWordEmbeddings = tiesWordEmbeddings
        self.attention = attention
        self.normsPerLayer = normsPerLayer
        self.hasFinalNorm = hasFinalNorm
        self.sparseLayers = sparseLayers
        self.moe = moe
        self.denseIntermediateSize = denseIntermediateSize
        self.denseMatrixCount = denseMatrixCount
        self.expertDType = expertDType
        self.weightDType = weightDType
    }

    /// The feed-forward layers of a MoEKit `ModelConfig`, with every field the count needs; the dtypes default
    /// to the config's declared dtype (BF16 when it declares none).
    /// - Parameters:
    ///   - config: a validated MoEKit config.
    ///   - modelType: the `model_type` to report (it also picks the model card's active-parameter convention).
    ///   - vocabSize: rows of the input embedding (0: not counted).
    ///   - tiesWordEmbeddings: whether the output head shares the embedding.
    ///   - attention: each layer's attention block.
    ///   - normsPerLayer: RMSNorm weights of width H per layer.
    ///   - hasFinalNorm: whether the model ends with a norm of width H.
    ///   - expertDType: how the routed experts are stored.
    ///   - weightDType: how every other weight is stored.
    public init(feedForward config: ModelConfig, modelType: String, vocabSize: Int = 0, tiesWordEmbeddings: Bool = false,
                attention: AttentionShape = .none, normsPerLayer: Int = 2, hasFinalNorm: Bool = true,
                expertDType: WeightDType? = nil, weightDType: WeightDType? = nil) {
        let declared = config.declaredDType.flatMap(WeightDType.init(torchName:)) ?? .bf16
        self.init(modelType: modelType, hiddenSize: config.moe.hiddenSize, layerCount: config.layerCount,
                  vocabSize: vocabSize, tiesWordEmbeddings: tiesWordEmbeddings, attention: attention,
                  normsPerLayer: normsPerLayer, hasFinalNorm: hasFinalNorm, sparseLayers: config.sparseLayers,
                  moe: MoEBlockShape(config.moe), denseIntermediateSize: config.denseIntermediateSize,
                  denseMatrixCount: config.moe.expert.isGated ? 3 : 2,
                  expertDType: expertDType ?? declared, weightDType: weightDType ?? declared)
        quantization = config.quantization
    }
}

/// The parameters of one MoE block: router, routed experts, shared expert.
public struct MoEBlockShape: Sendable, Equatable {
    /// H.
    public var hiddenSize: Int
    /// E: routed experts.
    public var expertCount: Int
    /// K: experts per token.
    public var expertsPerToken: Int
    /// F: one routed expert's intermediate width.
    public var expertIntermediateSize: Int
    /// Weight matrices per expert: 3 for gated (SwiGLU) experts, 2 for a plain MLP.
    public var expertMatrixCount: Int
    /// Whether each expert has biases on its projections (GPT-OSS: gate/up `2F`, down `H`; a plain MLP: `F` and `H`).
    public var expertHasBiases: Bool
    /// Whether the router's linear layer has a bias (GPT-OSS).
    public var routerHasBias: Bool
    /// The shared expert's width (DeepSeek-V3: `moe_intermediate_size · n_shared_experts`), if any.
    public var sharedIntermediateSize: Int?
    /// Whether the shared expert's output passes through a learned sigmoid gate of shape [1, H] (Qwen2-MoE).
    public var sharedExpertHasGate: Bool

    /// A block of these sizes; the defaults are a SwiGLU block without biases or shared expert.
    public init(hiddenSize: Int, expertCount: Int, expertsPerToken: Int, expertIntermediateSize: Int,
                expertMatrixCount: Int = 3, expertHasBiases: Bool = false, routerHasBias: Bool = false,
                sharedIntermediateSize: Int? = nil, sharedExpertHasGate: Bool = false) {
        self.hiddenSize = hiddenSize
        self.expertCount = expertCount
        self.expertsPerToken = expertsPerToken
        self.expertIntermediateSize = expertIntermediateSize
        self.expertMatrixCount = expertMatrixCount
        self.expertHasBiases = expertHasBiases
        self.routerHasBias = routerHasBias
        self.sharedIntermediateSize = sharedIntermediateSize
        self.sharedExpertHasGate = sharedExpertHasGate
    }

    /// The block MoEKit runs, as a shape.
    public init(_ config: MoEConfig) {
        let biased: Bool
        switch config.expert {
        case .gated: biased = false
        case .mlp, .clampedGated: biased = true
        }
        self.init(hiddenSize: config.hiddenSize, expertCount: config.expertCount, expertsPerToken: config.expertsPerToken,
                  expertIntermediateSize: config.expertIntermediateSize, expertMatrixCount: config.expert.isGated ? 3 : 2,
                  expertHasBiases: biased, routerHasBias: config.routerHasBias,
                  sharedIntermediateSize: config.sharedExpert?.intermediateSize,
                  sharedExpertHasGate: config.sharedExpert?.gate == .sigmoid)
    }

    /// Parameters of one routed expert: its matrices and biases.
    public var parametersPerExpert: Int {
        let h = hiddenSize, f = expertIntermediateSize
        var count = expertMatrixCount * h * f
        if expertHasBiases { count += (expertMatrixCount == 3 ? 2 * f : f) + h }
        return count
    }

    /// Parameters of the router: `E·H`, plus `E` for a biased router.
    public var routerParameters: Int { expertCount * hiddenSize + (routerHasBias ? expertCount : 0) }

    /// Parameters of the shared expert (a SwiGLU MLP) and its gate.
    public var sharedParameters: Int {
        guard let s = sharedIntermediateSize else { return 0 }
        return 3 * hiddenSize * s + (sharedExpertHasGate ? hiddenSize : 0)
    }
}
