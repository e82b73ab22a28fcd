import Foundation

/// How seed 004 (NeuPIMs) sizes each expert when a dense model's FFN is split into E experts.
public enum FFNScaling: String, Sendable, CaseIterable, Codable {
    /// `d_ff / E`: all experts together hold as many parameters as the dense FFN.
    case balanced
    /// `d_ff / √E`: √E times the dense FFN's parameters.
    case compute
    /// `d_ff`: every expert is as wide as the dense FFN (Switch Transformer style).
    case capacity

    /// The expert width for a dense width `denseWidth` and `experts` experts, at least 1
    /// (integer division, as the seed's `get_expert_ffn_dim()`; `compute` rounds √E to the nearest integer
    /// first when E is a perfect square and divides by the real √E otherwise).
    public func expertWidth(denseWidth: Int, experts: Int) -> Int {
        guard experts > 0 else { return denseWidth }
        switch self {
        case .balanced: return max(1, denseWidth / experts)
        case .compute:
            let root = Int(Double(experts).squareRoot().rounded())
            if root * root == experts { return max(1, denseWidth / root) }
            return max(1, Int(Double(denseWidth) / Double(experts).squareRoot()))
        case .capacity: return denseWidth
        }
    }
}

/// The keys of a dense GPT-style config that ``ModelShape/init(denseJSON:path:experts:topK:scaling:)`` reads.
struct DenseKeys: Decodable {
    var n_embd: Int?
    var d_model: Int?
    var hidden_size: Int?
    var n_layer: Int?
    var num_layers: Int?
    var num_hidden_layers: Int?
    var d_ff: Int?
    var n_inner: Int?
    var intermediate_size: Int?
    var ffn_dim: Int?
    var vocab_size: Int?
    var num_experts: Int?
    var num_experts_per_tok: Int?
    var top_k: Int?
    var torch_dtype: String?
    var dtype: String?
}

extension ModelShape {
    /// Turns a dense GPT-style config into an MoE one the way seed 004 does, counted the way the seed
    /// counts it: every layer MoE, attention `4·H²` (no biases), a plain two-matrix expert FFN
    /// (`2·H·d_ff_expert`), a router `H·E`, no norms, and a tied embedding when `vocab_size` is given.
    ///
    /// Keys: H from `n_embd` / `d_model` / `hidden_size`; layers from `n_layer` / `num_layers` /
    /// `num_hidden_layers`; `d_ff` / `n_inner` / `intermediate_size` / `ffn_dim` (default 4·H);
    /// `num_experts` and `num_experts_per_tok` / `top_k` (default 2) unless given as arguments.
    /// - Throws: ``CostError``.
    public init(denseJSON data: Data, path: String, experts: Int?, topK: Int?, scaling: FFNScaling) throws(CostError) {
        let keys = try decodeCostJSON(DenseKeys.self, from: data, path: path)
        guard let hidden = keys.n_embd ?? keys.d_model ?? keys.hidden_size else { throw .missingKey(path: path, key: "n_embd") }
        guard let layers = keys.n_layer ?? keys.num_layers ?? keys.num_hidden_layers else {
            throw .missingKey(path: path, key: "n_layer")
        }
        let dff = keys.d_ff ?? keys.n_inner ?? keys.intermediate_size ?? keys.ffn_dim ?? 4 * hidden
        guard let expertCount = experts ?? keys.num_experts else { throw .missingKey(path: path, key: "num_experts (or --experts)") }
        let k = topK ?? keys.num_experts_per_tok ?? keys.top_k ?? 2
        for (name, value) in [("n_embd", hidden), ("n_layer", layers), ("d_ff", dff), ("num_experts", expertCount), ("top_k", k)] where value <= 0 {
            throw .invalidValue(path: path, key: name, value: "\(value)", reason: "must be positive")
        }
        guard k <= expertCount else {
            throw .invalidValue(path: path, key: "top_k", value: "\(k)", reason: "must be at most the \(expertCount) experts")
        }
        let dtype = (keys.torch_dtype ?? keys.dtype).flatMap(WeightDType.init(torchName:)) ?? .bf16
        let moe = MoEBlockShape(hiddenSize: hidden, expertCount: expertCount, expertsPerToken: k,
                                expertIntermediateSize: scaling.expertWidth(denseWidth: dff, experts: expertCount),
                                expertMatrixCount: 2)
        self.init(modelType: "dense-derived", hiddenSize: hidden, layerCount: layers, vocabSize: keys.vocab_size ?? 0,
                  tiesWordEmbeddings: true,
                  // q, k, v, o of H×H each: 4·H² whatever the head count.
                  attention: .grouped(GroupedQueryAttention(hiddenSize: hidden, heads: 1, kvHeads: 1, headDim: hidden)),
                  normsPerLayer: 0, hasFinalNorm: false, sparseLayers: Array(repeating: true, count: layers), moe: moe,
                  denseIntermediateSize: dff, denseMatrixCount: 2, expertDType: dtype, weightDType: dtype)
    }

    /// Reads a dense GPT-style config file; see ``init(denseJSON:path:experts:topK:scaling:)``.
    /// - Throws: ``CostError``.
    public init(denseContentsOf path: String, experts: Int?, topK: Int?, scaling: FFNScaling) throws(CostError) {
        try self.init(denseJSON: try readFile(path), path: path, experts: experts, topK: topK, scaling: scaling)
    }
}
