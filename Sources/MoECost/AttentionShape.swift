/// The attention block of one decoder layer, as far as its parameter count and weight bytes go.
public enum AttentionShape: Sendable, Equatable {
    /// Multi-head or grouped-query attention (every architecture but DeepSeek-V3).
    case grouped(GroupedQueryAttention)
    /// DeepSeek-V3's multi-head latent attention.
    case latent(LatentAttention)
    /// No attention is counted (a MoEKit model JSON describes only the feed-forward layers).
    case none

    /// Parameters of one layer's attention block.
    public var parameterCount: Int {
        switch self {
        case .grouped(let a): a.parameterCount
        case .latent(let a): a.parameterCount
        case .none: 0
        }
    }
}

/// q/k/v/o projections with `kvHeads ≤ heads`, optional biases, query/key norms and attention sinks.
public struct GroupedQueryAttention: Sendable, Equatable {
    /// H.
    public var hiddenSize: Int
    /// Query heads n_h.
    public var heads: Int
    /// Key/value heads n_kv (n_h for multi-head attention).
    public var kvHeads: Int
    /// Width d of one head.
    public var headDim: Int
    /// Biases on the q, k and v projections (`attention_bias`, Qwen2-MoE's `qkv_bias`).
    public var qkvBias: Bool
    /// A bias on the output projection (`attention_bias`; Qwen2-MoE has none).
    public var outputBias: Bool
    /// Width of the query RMSNorm weight (Qwen3-MoE: `head_dim`; OLMoE: `hidden_size`; else 0).
    public var queryNormWidth: Int
    /// Width of the key RMSNorm weight (Qwen3-MoE: `head_dim`; OLMoE: `head_dim · kv_heads`; else 0).
    public var keyNormWidth: Int
    /// GPT-OSS's learned attention sinks, one per head.
    public var hasSinks: Bool

    /// Grouped-query attention of these sizes, without biases, norms or sinks unless given.
    public init(hiddenSize: Int, heads: Int, kvHeads: Int, headDim: Int, qkvBias: Bool = false, outputBias: Bool = false,
                queryNormWidth: Int = 0, keyNormWidth: Int = 0, hasSinks: Bool = false) {
        self.hiddenSize = hiddenSize
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.qkvBias = qkvBias
        self.outputBias = outputBias
        self.queryNormWidth = queryNormWidth
        self.keyNormWidth = keyNormWidth
        self.hasSinks = hasSinks
    }

    /// `H·(n_h + 2·n_kv)·d + n_h·d·H`, plus biases, norms and sinks.
    public var parameterCount: Int {
        let q = heads * headDim, kv = kvHeads * headDim
        var count = hiddenSize * (q + 2 * kv) + q * hiddenSize
        if qkvBias { count += q + 2 * kv }
        if outputBias { count += hiddenSize }
        count += queryNormWidth + keyNormWidth
        if hasSinks { count += heads }
        return count
    }
}

/// DeepSeek-V3 multi-head latent attention: low-rank query and key/value projections with their RMSNorms.
public struct LatentAttention: Sendable, Equatable {
    /// H.
    public var hiddenSize: Int
    /// Attention heads.
    public var heads: Int
    /// `q_lora_rank`; `nil` means a full-rank `q_proj`.
    public var queryLoRARank: Int?
    /// `kv_lora_rank`: the compressed key/value width.
    public var keyValueLoRARank: Int
    /// `qk_nope_head_dim`: the per-head query/key width without rotary embedding.
    public var qkNopeHeadDim: Int
    /// `qk_rope_head_dim`: the per-head query/key width with rotary embedding.
    public var qkRopeHeadDim: Int
    /// `v_head_dim`: the per-head value width.
    public var valueHeadDim: Int
    /// `attention_bias`: biases on `q_a_proj`, `kv_a_proj_with_mqa` and `o_proj` (as transformers builds them).
    public var bias: Bool

    /// Latent attention of DeepSeek-V3's config keys.
    public init(hiddenSize: Int, heads: Int, queryLoRARank: Int?, keyValueLoRARank: Int, qkNopeHeadDim: Int,
                qkRopeHeadDim: Int, valueHeadDim: Int, bias: Bool = false) {
        self.hiddenSize = hiddenSize
        self.heads = heads
        self.queryLoRARank = queryLoRARank
        self.keyValueLoRARank = keyValueLoRARank
        self.qkNopeHeadDim = qkNopeHeadDim
        self.qkRopeHeadDim = qkRopeHeadDim
        self.valueHeadDim = valueHeadDim
        self.bias = bias
    }

    /// q_a (+ norm) + q_b (or q_proj), kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj.
    public var parameterCount: Int {
        let qkHead = qkNopeHeadDim + qkRopeHeadDim
        var count = 0
        if let rank = queryLoRARank {
            count += hiddenSize * rank + (bias ? rank : 0) + rank + rank * heads * qkHead
        } else {
            count += hiddenSize * heads * qkHead
        }
        count += hiddenSize * (keyValueLoRARank + qkRopeHeadDim) + (bias ? keyValueLoRARank + qkRopeHeadDim : 0)
        count += keyValueLoRARank
        count += keyValueLoRARank * heads * (qkNopeHeadDim + valueHeadDim)
        count += heads * valueHeadDim * hiddenSize + (bias ? hiddenSize : 0)
        return count
    }
}
