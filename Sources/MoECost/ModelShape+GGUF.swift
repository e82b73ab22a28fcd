import MoEKit

extension ModelShape {
    /// Reads a GGUF file (llama.cpp's format; one file or any shard of a split model): the feed-forward
    /// layers from the same metadata MoEKit's `GGUFModel` runs, the attention and vocabulary from llama.cpp's keys
    /// (`<arch>.attention.head_count`, `head_count_kv`, `key_length`, `value_length`, the LoRA ranks and
    /// `rope.dimension_count` of `deepseek2`) and the token embedding's shape, and the dtypes from the
    /// tensors themselves: the routed experts' ggml type (first MoE block's `ffn_gate_exps`) and, for the
    /// other linear weights, that of the first dense block's `ffn_gate`, else the shared expert's, else the
    /// first attention projection's (one dtype stands for all of them: files that mix types are approximated).
    /// - Throws: ``CostError`` naming the file and the key or tensor.
    public init(gguf model: GGUFModel) throws(CostError) {
        let config = model.config
        let m = model.shards.metadata
        let path = model.path
        let p = model.architecture.rawValue + "."
        func count(_ key: String) throws(CostError) -> Int? {
            do { return try m.count(p + key) } catch { throw .invalidValue(path: path, key: p + key, value: "?", reason: "\(error)") }
        }
        func positive(_ key: String, default value: Int? = nil) throws(CostError) -> Int {
            guard let v = try count(key) ?? value else { throw .missingKey(path: path, key: p + key) }
            guard v > 0 else { throw .invalidValue(path: path, key: p + key, value: "\(v)", reason: "must be positive") }
            return v
        }
        let hidden = config.moe.hiddenSize
        let heads = try positive("attention.head_count")
        guard let embedding = model.shards.view("token_embd.weight"), embedding.shape.count == 2, embedding.shape[1] == hidden else {
            throw .invalidValue(path: path, key: "token_embd.weight", value: "missing or not [vocab, \(hidden)]",
                                reason: "is needed for the vocabulary size")
        }
        let vocab = embedding.shape[0]
        let attention: AttentionShape
        if model.architecture == .deepseek2 {
            let rope = try positive("rope.dimension_count")
            let key = try positive("attention.key_length")
            guard key > rope else {
                throw .invalidValue(path: path, key: p + "attention.key_length", value: "\(key)",
                                    reason: "must exceed \(p)rope.dimension_count = \(rope)")
            }
            attention = .latent(LatentAttention(
                hiddenSize: hidden, heads: heads, queryLoRARank: try count("attention.q_lora_rank").flatMap { $0 > 0 ? $0 : nil },
                keyValueLoRARank: try positive("attention.kv_lora_rank"), qkNopeHeadDim: key - rope, qkRopeHeadDim: rope,
                valueHeadDim: try positive("attention.value_length"), bias: false))
        } else {
            let headDim = try positive("attention.key_length", default: hidden / heads)
            var gqa = GroupedQueryAttention(hiddenSize: hidden, heads: heads, kvHeads: try positive("attention.head_count_kv", default: heads),
                                            headDim: headDim)
            // Biases as the tensors say (llama.cpp loads them when present).
            gqa.qkvBias = model.shards.view("blk.0.attn_q.bias") != nil
            gqa.outputBias = model.shards.view("blk.0.attn_output.bias") != nil
            switch model.architecture {
            case .qwen3moe: (gqa.queryNormWidth, gqa.keyNormWidth) = (headDim, headDim)
            case .olmoe: (gqa.queryNormWidth, gqa.keyNormWidth) = (hidden, headDim * gqa.kvHeads)
            case .gptOSS: gqa.hasSinks = true
            case .llama, .qwen2moe, .llama4, .deepseek2: break
            }
            attention = .grouped(gqa)
        }
        func dtype(_ tensor: String, what: String) throws(CostError) -> WeightDType {
            guard let view = model.shards.view(tensor) else {
                throw .invalidValue(path: path, key: tensor, value: "missing", reason: "is needed for the dtype of the \(what)")
            }
            guard let format = GGUFModel.weightFormat(view.type) else {
                throw .invalidValue(path: path, key: tensor, value: "\(view.type)", reason: "is a ggml type MoEKit does not compute with")
            }
            return WeightDType(format)
        }
        guard let firstSparse = config.sparseLayers.firstIndex(of: true) else {
            throw .invalidValue(path: path, key: p + "block_count", value: "\(config.layerCount)", reason: "gives no MoE block")
        }
        let experts = try dtype(GGUFTensorName.experts(firstSparse, .gate), what: "experts")
        // The other linear weights: as the feed-forward ones a forward loads (a dense block's, else the shared
        // expert's), else as the attention's.
        let linearTensor: String
        if let dense = config.sparseLayers.firstIndex(of: false) {
            linearTensor = GGUFTensorName.dense(dense, .gate)
        } else if config.moe.sharedExpert != nil {
            linearTensor = GGUFTensorName.shared(firstSparse, .gate)
        } else {
            linearTensor = model.architecture == .deepseek2 ? "blk.0.attn_kv_a_mqa.weight" : "blk.0.attn_q.weight"
        }
        let linear = try dtype(linearTensor, what: "linear weights")
        self.init(feedForward: config, modelType: model.architecture.architecture.rawValue, vocabSize: vocab,
                  tiesWordEmbeddings: model.shards.view("output.weight") == nil, attention: attention,
                  expertDType: experts, weightDType: linear)
    }
}
