/// Whether a decoder layer's feed-forward block is the MoE block or a dense MLP.
public enum LayerKind: String, Sendable, Codable {
    /// The MoE block.
    case moe
    /// A dense MLP.
    case dense
}

/// How active parameters per token are counted.
///
/// In every convention a token activates all non-expert parameters (attention, norms, router, dense
/// MLPs, shared experts) and K routed experts in each MoE layer. The conventions differ only in the
/// embeddings, because model cards differ:
/// - ``withEmbeddings``: the whole input embedding table and the output head are counted (Mistral's
///   12.9 B for Mixtral-8x7B, Qwen's 3.3 B / 22 B, DeepSeek's 37 B, OLMoE's 1.3 B count them).
/// - ``withoutInputEmbedding``: the input embedding table (a row lookup, not a matmul) is left out
///   and the output head is counted (OpenAI's 5.1 B / 3.6 B for GPT-OSS).
public enum ActiveParameterConvention: String, Sendable, Codable {
    /// The input embedding table and the output head both count.
    case withEmbeddings = "with_embeddings"
    /// The output head counts, the input embedding table does not.
    case withoutInputEmbedding = "without_input_embedding"

    /// The convention of the publisher's model card for an architecture: OpenAI's for GPT-OSS,
    /// ``withEmbeddings`` for all others.
    public static func modelCard(_ modelType: String) -> ActiveParameterConvention {
        modelType == "gpt_oss" ? .withoutInputEmbedding : .withEmbeddings
    }
}

/// The parameters of one decoder layer.
public struct LayerParameters: Sendable, Equatable {
    /// The decoder layer.
    public var index: Int
    /// MoE or dense.
    public var kind: LayerKind
    /// Attention (projections, biases, q/k norms, sinks).
    public var attention: Int
    /// The layer's RMSNorm weights.
    public var norms: Int
    /// Router (MoE layers).
    public var router: Int
    /// All routed experts (MoE layers).
    public var routedExperts: Int
    /// Shared expert and its gate (MoE layers), or the dense MLP (dense layers).
    public var sharedOrDense: Int
    /// K routed experts (MoE layers).
    public var activeRoutedExperts: Int

    /// Every parameter of the layer.
    public var total: Int { attention + norms + router + routedExperts + sharedOrDense }
    /// Parameters a token uses: all but the routed experts it is not sent to.
    public var active: Int { attention + norms + router + activeRoutedExperts + sharedOrDense }
}

/// Parameter counts of a whole model, as `transformers` instantiates it (`sum(p.numel())` over
/// `model.parameters()`): buffers such as DeepSeek-V3's `e_score_correction_bias` are not parameters,
/// and DeepSeek-V3's multi-token-prediction layer is not part of the model.
public struct ParameterCount: Sendable, Equatable {
    /// Each decoder layer, in order.
    public var layers: [LayerParameters]
    /// The input embedding table, `vocab_size · H`.
    public var embedding: Int
    /// The output head, `vocab_size · H`, or 0 when tied to the embedding.
    public var outputHead: Int
    /// The final norm.
    public var finalNorm: Int
    /// One routed expert (matrices and biases).
    public var parametersPerExpert: Int
    /// The convention of ``active`` (the model card's: see ``ActiveParameterConvention/modelCard(_:)``).
    public var convention: ActiveParameterConvention

    /// Counts `shape`'s parameters.
    public init(_ shape: ModelShape, convention: ActiveParameterConvention? = nil) {
        let moe = shape.moe
        let attention = shape.attention.parameterCount
        let norms = shape.normsPerLayer * shape.hiddenSize
        let dense = shape.denseMatrixCount * shape.hiddenSize * (shape.denseIntermediateSize ?? 0)
        layers = shape.sparseLayers.enumerated().map { index, sparse in
            sparse
                ? LayerParameters(index: index, kind: .moe, attention: attention, norms: norms, router: moe.routerParameters,
                                  routedExperts: moe.expertCount * moe.parametersPerExpert, sharedOrDense: moe.sharedParameters,
                                  activeRoutedExperts: moe.expertsPerToken * moe.parametersPerExpert)
                : LayerParameters(index: index, kind: .dense, attention: attention, norms: norms, router: 0,
                                  routedExperts: 0, sharedOrDense: dense, activeRoutedExperts: 0)
        }
        embedding = shape.vocabSize * shape.hiddenSize
        outputHead = shape.tiesWordEmbeddings ? 0 : shape.vocabSize * shape.hiddenSize
        finalNorm = shape.hasFinalNorm ? shape.hiddenSize : 0
        parametersPerExpert = moe.parametersPerExpert
        self.convention = convention ?? .modelCard(shape.modelType)
    }

    /// Every parameter: embeddings, output head (untied), layers, final norm.
    public var total: Int { embedding + outputHead + finalNorm + layers.reduce(0) { $0 + $1.total } }

    /// Parameters active per token in a given convention.
    public func active(_ convention: ActiveParameterConvention) -> Int {
        // A tied head is the embedding table itself: the matmul reads it, so it counts once either way.
        let head = outputHead > 0 ? outputHead : embedding
        let inputs = convention == .withEmbeddings && outputHead > 0 ? embedding : 0
        return inputs + head + finalNorm + layers.reduce(0) { $0 + $1.active }
    }

    /// Parameters active per token in ``convention``.
    public var active: Int { active(convention) }

    /// The routed experts' parameters summed over all layers.
    public var routedExpertTotal: Int { layers.reduce(0) { $0 + $1.routedExperts } }
}
