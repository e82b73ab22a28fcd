import Foundation
import MoEKit

/// The keys of a `config.json` the parameter count needs beyond the feed-forward ones MoEKit reads.
struct ShapeKeys: Decodable {
    var format: String?
    var model_type: String?
    var text_config: Nested?
    var hidden_size: Int?
    var num_hidden_layers: Int?
    var vocab_size: Int?
    var tie_word_embeddings: Bool?
    var num_attention_heads: Int?
    var num_key_value_heads: Int?
    var head_dim: Int?
    var attention_bias: Bool?
    var qkv_bias: Bool?
    var q_lora_rank: Int?
    var kv_lora_rank: Int?
    var qk_nope_head_dim: Int?
    var qk_rope_head_dim: Int?
    var v_head_dim: Int?
    var quantization_config: Quantization?
    var torch_dtype: String?
    var dtype: String?

    struct Quantization: Decodable { var quant_method: String? }

    /// Llama-4's multimodal config nests the text model under `text_config`.
    final class Nested: Decodable, Sendable {
        let keys: ShapeKeys
        init(from decoder: any Decoder) throws { keys = try ShapeKeys(from: decoder) }
    }
}

/// Decodes JSON into `T`, turning any failure into a one-line ``CostError``.
func decodeCostJSON<T: Decodable>(_ type: T.Type, from data: Data, path: String) throws(CostError) -> T {
    do {
        return try JSONDecoder().decode(type, from: data)
    } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
        let key = context.codingPath.map(\.stringValue).joined(separator: ".")
        throw .unreadable(path: path, reason: "not a valid config: key '\(key)': \(context.debugDescription)")
    } catch {
        throw .unreadable(path: path, reason: "not a valid JSON object")
    }
}

/// Reads a whole file.
func readFile(_ path: String) throws(CostError) -> Data {
    do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
        throw .unreadable(path: path, reason: "cannot read the file")
    }
}

extension ModelShape {
    /// Reads a model config file: a MoEKit model JSON (`"format": "moekit"`; only its feed-forward
    /// layers are counted) or a Hugging Face `config.json` of a supported architecture.
    /// - Throws: ``CostError``.
    public init(contentsOf path: String) throws(CostError) {
        let data = try readFile(path)
        let probe = try decodeCostJSON(ShapeKeys.self, from: data, path: path)
        if probe.format == ModelConfig.moekitFormat {
            let config: ModelConfig
            do { config = try ModelConfig(moekitJSON: data, path: path) } catch { throw .config(error) }
            self.init(feedForward: config, modelType: "moekit", hasFinalNorm: false)
            normsPerLayer = 0
        } else {
            try self.init(huggingFaceJSON: data, path: path)
        }
    }

    /// Reads a Hugging Face `config.json` (mixtral, qwen2_moe, qwen3_moe, deepseek_v3, gpt_oss, olmoe,
    /// llama4 / llama4_text) with the defaults `transformers` 5.23 applies to absent keys.
    /// - Throws: ``CostError``.
    public init(huggingFaceJSON data: Data, path: String) throws(CostError) {
        let config: ModelConfig
        do { config = try ModelConfig(huggingFaceJSON: data, path: path) } catch { throw .config(error) }
        var keys = try decodeCostJSON(ShapeKeys.self, from: data, path: path)
        if keys.model_type == "llama4", let text = keys.text_config?.keys {
            let dtype = keys.torch_dtype ?? keys.dtype
            keys = text
            keys.torch_dtype = keys.torch_dtype ?? dtype
        }
        func need(_ value: Int?, _ key: String) throws(CostError) -> Int {
            guard let value else { throw .missingKey(path: path, key: key) }
            guard value > 0 else { throw .invalidValue(path: path, key: key, value: "\(value)", reason: "must be positive") }
            return value
        }
        let arch = config.architecture
        let hidden = config.moe.hiddenSize
        let vocab = try need(keys.vocab_size, "vocab_size")
        let heads = try need(keys.num_attention_heads, "num_attention_heads")
        let attention: AttentionShape
        if arch == .deepseekV3 {
            if let rank = keys.q_lora_rank, rank <= 0 {
                throw .invalidValue(path: path, key: "q_lora_rank", value: "\(rank)", reason: "must be positive or null")
            }
            attention = .latent(LatentAttention(
                hiddenSize: hidden, heads: heads, queryLoRARank: keys.q_lora_rank,
                keyValueLoRARank: try need(keys.kv_lora_rank, "kv_lora_rank"),
                qkNopeHeadDim: try need(keys.qk_nope_head_dim, "qk_nope_head_dim"),
                qkRopeHeadDim: try need(keys.qk_rope_head_dim, "qk_rope_head_dim"),
                valueHeadDim: try need(keys.v_head_dim, "v_head_dim"), bias: keys.attention_bias ?? false))
        } else {
            let kvHeads = try need(keys.num_key_value_heads ?? heads, "num_key_value_heads")
            // transformers' defaults: GPT-OSS head_dim 64, Llama-4 128, the others hidden / heads.
            let defaultHeadDim = arch == .gptOSS ? 64 : arch == .llama4 ? 128 : hidden / heads
            let headDim = try need(keys.head_dim ?? defaultHeadDim, "head_dim")
            var gqa = GroupedQueryAttention(hiddenSize: hidden, heads: heads, kvHeads: kvHeads, headDim: headDim)
            switch arch {
            case .mixtral:
                break  // MixtralAttention hard-codes bias=False.
            case .qwen2MoE:
                gqa.qkvBias = keys.qkv_bias ?? true
            case .qwen3MoE:
                gqa.qkvBias = keys.attention_bias ?? false
                gqa.outputBias = gqa.qkvBias
                gqa.queryNormWidth = headDim
                gqa.keyNormWidth = headDim
            case .olmoe:
                gqa.qkvBias = keys.attention_bias ?? false
                gqa.outputBias = gqa.qkvBias
                gqa.queryNormWidth = hidden
                gqa.keyNormWidth = (hidden / heads) * kvHeads
            case .gptOSS:
                gqa.qkvBias = keys.attention_bias ?? true
                gqa.outputBias = gqa.qkvBias
                gqa.hasSinks = true
            case .llama4:
                gqa.qkvBias = keys.attention_bias ?? false  // its qk_norm is an L2 norm without weights
                gqa.outputBias = gqa.qkvBias
            case .deepseekV3, .custom:
                break
            }
            attention = .grouped(gqa)
        }
        let declared = (keys.torch_dtype ?? keys.dtype).flatMap(WeightDType.init(torchName:)) ?? .bf16
        var expertDType = declared
        switch keys.quantization_config?.quant_method {
        case "mxfp4": expertDType = .mxfp4
        case "fp8": expertDType = .fp8
        default: break
        }
        self.init(feedForward: config, modelType: arch.rawValue, vocabSize: vocab,
                  tiesWordEmbeddings: keys.tie_word_embeddings ?? false, attention: attention,
                  expertDType: expertDType, weightDType: declared == .mxfp4 || declared == .fp8 ? .bf16 : declared)
    }
}
