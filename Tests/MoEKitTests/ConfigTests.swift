import Foundation
import Testing
import MoEKit
import MoETestSupport

@Suite("ModelConfig from config.json")
struct ConfigTests {
    func hf(_ json: String, path: String = "config.json") throws(ConfigError) -> ModelConfig {
        try ModelConfig(huggingFaceJSON: Data(json.utf8), path: path)
    }

    @Test("mixtral")
    func mixtral() throws {
        let c = try hf("""
        {"model_type": "mixtral", "hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 16,
         "num_local_experts": 8, "num_experts_per_tok": 2, "hidden_act": "silu", "dtype": "bfloat16"}
        """)
        #expect(c.architecture == .mixtral)
        #expect(c.moe == MoEConfig(hiddenSize: 32, expertCount: 8, expertsPerToken: 2, expertIntermediateSize: 16,
                                   router: .softmaxTopK(normalizesTopKWeights: true)))
        #expect(c.layerCount == 2)
        #expect(c.sparseLayers == [true, true])
        #expect(c.declaredDType == "bfloat16")
        // Mixtral always renormalises, whatever norm_topk_prob says.
        let d = try hf("""
        {"model_type": "mixtral", "hidden_size": 32, "num_hidden_layers": 1, "intermediate_size": 16,
         "num_local_experts": 8, "num_experts_per_tok": 2, "norm_topk_prob": false}
        """)
        #expect(d.moe.router == .softmaxTopK(normalizesTopKWeights: true))
    }

    @Test("qwen2_moe: mlp_only_layers, decoder_sparse_step, gated shared expert")
    func qwen2() throws {
        let c = try hf("""
        {"model_type": "qwen2_moe", "hidden_size": 64, "num_hidden_layers": 6, "intermediate_size": 128,
         "moe_intermediate_size": 32, "shared_expert_intermediate_size": 96, "num_experts": 8,
         "num_experts_per_tok": 2, "norm_topk_prob": false, "decoder_sparse_step": 2, "mlp_only_layers": [3]}
        """)
        #expect(c.architecture == .qwen2MoE)
        // (layer + 1) % 2 == 0 → 1, 3, 5; layer 3 is in mlp_only_layers.
        #expect(c.sparseLayers == [false, true, false, false, false, true])
        #expect(c.denseIntermediateSize == 128)
        #expect(c.moe.expertIntermediateSize == 32)
        #expect(c.moe.expertCount == 8)
        #expect(c.moe.router == .softmaxTopK(normalizesTopKWeights: false))
        #expect(c.moe.sharedExpert == SharedExpertConfig(intermediateSize: 96, gate: .sigmoid))
        #expect(try c.isSparse(layer: 5))
        #expect(try !c.isSparse(layer: 3))
    }

    @Test("qwen3_moe with num_local_experts")
    func qwen3() throws {
        let c = try hf("""
        {"model_type": "qwen3_moe", "hidden_size": 48, "num_hidden_layers": 3, "intermediate_size": 96,
         "moe_intermediate_size": 24, "num_local_experts": 16, "num_experts_per_tok": 4, "norm_topk_prob": true}
        """)
        #expect(c.architecture == .qwen3MoE)
        #expect(c.moe.expertCount == 16)
        #expect(c.moe.expertsPerToken == 4)
        #expect(c.moe.expertIntermediateSize == 24)
        #expect(c.moe.router == .softmaxTopK(normalizesTopKWeights: true))
        #expect(c.moe.sharedExpert == nil)
        #expect(c.sparseLayers == [true, true, true])
    }

    @Test("deepseek_v3: first_k_dense_replace, groups, scaling, shared experts")
    func deepseek() throws {
        let c = try hf("""
        {"model_type": "deepseek_v3", "hidden_size": 64, "num_hidden_layers": 5, "intermediate_size": 160,
         "moe_intermediate_size": 32, "n_routed_experts": 16, "n_shared_experts": 2, "num_experts_per_tok": 4,
         "n_group": 4, "topk_group": 2, "norm_topk_prob": true, "routed_scaling_factor": 2.5,
         "first_k_dense_replace": 2, "scoring_func": "sigmoid", "topk_method": "noaux_tc"}
        """)
        #expect(c.architecture == .deepseekV3)
        #expect(c.sparseLayers == [false, false, true, true, true])
        #expect(c.denseIntermediateSize == 160)
        #expect(c.moe.router == .sigmoidGroupedTopK(groupCount: 4, keptGroupCount: 2, normalizesTopKWeights: true, scalingFactor: 2.5))
        #expect(c.moe.sharedExpert == SharedExpertConfig(intermediateSize: 64, gate: .none))
        #expect(c.moe.expertCount == 16 && c.moe.expertsPerToken == 4 && c.moe.expertIntermediateSize == 32)
    }

    @Test("gpt_oss: experts_per_token alias, biased router, clamped experts")
    func gptOSS() throws {
        let c = try hf("""
        {"model_type": "gpt_oss", "hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 16,
         "num_local_experts": 8, "experts_per_token": 2, "swiglu_limit": 7.0}
        """)
        #expect(c.architecture == .gptOSS)
        #expect(c.moe.expertsPerToken == 2)
        #expect(c.moe.router == .topKThenSoftmax)
        #expect(c.moe.routerHasBias)
        #expect(c.moe.expert == .clampedGated(alpha: 1.702, limit: 7))
        #expect(c.sparseLayers == [true, true])
    }

    @Test("olmoe: not renormalised by default")
    func olmoe() throws {
        let c = try hf("""
        {"model_type": "olmoe", "hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 16,
         "num_experts": 8, "num_experts_per_tok": 2}
        """)
        #expect(c.architecture == .olmoe)
        #expect(c.moe.router == .softmaxTopK(normalizesTopKWeights: false))
        #expect(c.moe.expertIntermediateSize == 16)
        #expect(c.moe.expertCount == 8)
    }

    static let llama4Text = """
    {"model_type": "llama4_text", "hidden_size": 32, "num_hidden_layers": 4, "intermediate_size": 16,
     "intermediate_size_mlp": 64, "num_local_experts": 4, "num_experts_per_tok": 1, "interleave_moe_layer_step": 2}
    """

    @Test("llama4_text: interleave step and explicit moe_layers")
    func llama4() throws {
        let c = try hf(Self.llama4Text)
        #expect(c.architecture == .llama4)
        // range(step − 1, layers, step) = [1, 3]
        #expect(c.sparseLayers == [false, true, false, true])
        #expect(c.denseIntermediateSize == 64)
        #expect(c.moe.router == .sigmoidTopKScalesInput)
        #expect(c.moe.sharedExpert == SharedExpertConfig(intermediateSize: 16, gate: .none))
        let explicit = try hf("""
        {"model_type": "llama4_text", "hidden_size": 32, "num_hidden_layers": 4, "intermediate_size": 16,
         "intermediate_size_mlp": 64, "num_local_experts": 4, "num_experts_per_tok": 1,
         "interleave_moe_layer_step": 2, "moe_layers": [0, 2]}
        """)
        #expect(explicit.sparseLayers == [true, false, true, false])
        let everyLayer = try hf("""
        {"model_type": "llama4_text", "hidden_size": 32, "num_hidden_layers": 3, "intermediate_size": 16,
         "num_local_experts": 4, "num_experts_per_tok": 1}
        """)
        #expect(everyLayer.sparseLayers == [true, true, true])
    }

    @Test("model_type llama4 with a nested text_config")
    func llama4Nested() throws {
        let c = try hf("""
        {"model_type": "llama4", "torch_dtype": "bfloat16", "vision_config": {"hidden_size": 7},
         "text_config": \(Self.llama4Text)}
        """)
        #expect(c.architecture == .llama4)
        #expect(c.moe.hiddenSize == 32)
        #expect(c.sparseLayers == [false, true, false, true])
        #expect(c.declaredDType == "bfloat16")
        var flat = try hf(Self.llama4Text)
        flat.declaredDType = "bfloat16"
        #expect(c == flat)
    }

    // MARK: Refusals

    @Test("a missing size key is named", arguments: [
        ("mixtral", "num_local_experts"), ("mixtral", "hidden_size"), ("mixtral", "num_hidden_layers"),
        ("mixtral", "num_experts_per_tok"), ("mixtral", "intermediate_size"),
        ("deepseek", "n_routed_experts"), ("deepseek", "moe_intermediate_size"), ("deepseek", "intermediate_size"),
        ("qwen2", "shared_expert_intermediate_size"), ("qwen2", "moe_intermediate_size"), ("qwen2", "num_experts"),
        ("llama4", "intermediate_size_mlp"), ("mixtral", "model_type"),
    ])
    func missingKey(_ arch: String, _ key: String) throws {
        let base: [String: Any]
        switch arch {
        case "mixtral":
            base = ["model_type": "mixtral", "hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 16,
                    "num_local_experts": 8, "num_experts_per_tok": 2]
        case "deepseek":
            base = ["model_type": "deepseek_v3", "hidden_size": 64, "num_hidden_layers": 3, "intermediate_size": 160,
                    "moe_intermediate_size": 32, "n_routed_experts": 16, "num_experts_per_tok": 4, "n_group": 4,
                    "topk_group": 2, "first_k_dense_replace": 1]
        case "qwen2":
            base = ["model_type": "qwen2_moe", "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128,
                    "moe_intermediate_size": 32, "shared_expert_intermediate_size": 96, "num_experts": 8,
                    "num_experts_per_tok": 2]
        default:
            base = ["model_type": "llama4_text", "hidden_size": 32, "num_hidden_layers": 4, "intermediate_size": 16,
                    "intermediate_size_mlp": 64, "num_local_experts": 4, "num_experts_per_tok": 1, "interleave_moe_layer_step": 2]
        }
        var dict = base
        dict.removeValue(forKey: key)
        let data = try JSONSerialization.data(withJSONObject: dict)
        #expect(throws: ConfigError.missingKey(path: "some/config.json", key: key)) {
            try ModelConfig(huggingFaceJSON: data, path: "some/config.json")
        }
        #expect(throws: Never.self) { try ModelConfig(huggingFaceJSON: JSONSerialization.data(withJSONObject: base), path: "x") }
    }

    @Test("a size key out of range is refused before anything is sized by it", arguments: [
        ("mixtral", "num_hidden_layers"), ("mixtral", "num_local_experts"), ("mixtral", "hidden_size"),
        ("olmoe", "num_hidden_layers"), ("gpt_oss", "num_local_experts"), ("deepseek_v3", "n_routed_experts"),
        ("llama4_text", "num_hidden_layers"), ("qwen3_moe", "moe_intermediate_size"),
    ], [-1, 0, 1 << 40])
    func outOfRange(_ archKey: (String, String), _ value: Int) throws {
        let (arch, key) = archKey
        var dict: [String: Any] = ["model_type": arch, "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 64,
                                   "moe_intermediate_size": 32, "num_local_experts": 8, "num_experts": 8, "n_routed_experts": 8,
                                   "num_experts_per_tok": 2, "n_group": 1, "topk_group": 1, "intermediate_size_mlp": 64]
        dict[key] = value
        let error = #expect(throws: ConfigError.self) {
            try ModelConfig(huggingFaceJSON: JSONSerialization.data(withJSONObject: dict), path: "c/config.json")
        }
        #expect(error.map { "\($0)".contains("c/config.json") && "\($0)".contains("\(key) = \(value)") } == true, "\(String(describing: error))")
    }

    @Test("non-JSON and non-object input is refused as malformed JSON", arguments: ["not json at all", "", "[1, 2, 3]", "{\"model_type\": "])
    func malformed(_ text: String) throws {
        let error = #expect(throws: ConfigError.self) { try hf(text, path: "bad.json") }
        guard case .malformedJSON(let path, _)? = error else {
            Issue.record("expected malformedJSON, got \(String(describing: error))")
            return
        }
        #expect(path == "bad.json")
    }

    @Test("a key of the wrong type is refused and named")
    func wrongType() throws {
        let error = #expect(throws: ConfigError.self) {
            try hf("""
            {"model_type": "mixtral", "hidden_size": "32", "num_hidden_layers": 2, "intermediate_size": 16,
             "num_local_experts": 8, "num_experts_per_tok": 2}
            """)
        }
        guard case .malformedJSON(_, let reason)? = error else {
            Issue.record("expected malformedJSON, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("hidden_size"))
        let list = #expect(throws: ConfigError.self) {
            try hf("""
            {"model_type": "qwen3_moe", "hidden_size": 32, "num_hidden_layers": 2, "moe_intermediate_size": 16,
             "num_experts": 8, "num_experts_per_tok": 2, "mlp_only_layers": 3}
            """)
        }
        if case .malformedJSON(_, let reason)? = list { #expect(reason.contains("mlp_only_layers")) } else {
            Issue.record("expected malformedJSON, got \(String(describing: list))")
        }
    }

    @Test("top-k larger than the expert count is refused")
    func topKTooLarge() throws {
        let error = #expect(throws: ConfigError.self) {
            try hf("""
            {"model_type": "mixtral", "hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 16,
             "num_local_experts": 4, "num_experts_per_tok": 5}
            """)
        }
        guard case .invalidField(let field, let value, _)? = error else {
            Issue.record("expected invalidField, got \(String(describing: error))")
            return
        }
        #expect(field == "num_experts_per_tok" && value == "5")
    }

    @Test("n_group that does not divide the experts is refused")
    func nGroup() throws {
        let error = #expect(throws: ConfigError.self) {
            try hf("""
            {"model_type": "deepseek_v3", "hidden_size": 64, "num_hidden_layers": 1, "moe_intermediate_size": 32,
             "n_routed_experts": 16, "num_experts_per_tok": 4, "n_group": 3, "topk_group": 2}
            """)
        }
        guard case .invalidField(let field, let value, _)? = error else {
            Issue.record("expected invalidField, got \(String(describing: error))")
            return
        }
        #expect(field == "n_group" && value == "3")
        // topk_group larger than n_group is refused too.
        let kept = #expect(throws: ConfigError.self) {
            try hf("""
            {"model_type": "deepseek_v3", "hidden_size": 64, "num_hidden_layers": 1, "moe_intermediate_size": 32,
             "n_routed_experts": 16, "num_experts_per_tok": 4, "n_group": 4, "topk_group": 5}
            """)
        }
        if case .invalidField(let f, _, _)? = kept { #expect(f == "topk_group") } else { Issue.record("got \(String(describing: kept))") }
    }

    @Test("unsupported model types are refused and named", arguments: ["llama", "mistral", "custom", "Mixtral"])
    func unsupported(_ type: String) throws {
        #expect(throws: ConfigError.unsupportedArchitecture(path: "c.json", modelType: type)) {
            try hf("""
            {"model_type": "\(type)", "hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 16,
             "num_local_experts": 8, "num_experts_per_tok": 2}
            """, path: "c.json")
        }
    }

    @Test("an unsupported hidden_act is refused")
    func badActivation() throws {
        let error = #expect(throws: ConfigError.self) {
            try hf("""
            {"model_type": "mixtral", "hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 16,
             "num_local_experts": 8, "num_experts_per_tok": 2, "hidden_act": "softplus"}
            """)
        }
        if case .invalidField(let f, let v, _)? = error { #expect(f == "hidden_act" && v == "softplus") } else {
            Issue.record("got \(String(describing: error))")
        }
    }

    // MARK: MoEKit JSON

    static let roundTripConfigs: [ModelConfig] = {
        var configs: [ModelConfig] = [
            ModelConfig(architecture: .custom, moe: MoEConfig(
                hiddenSize: 64, expertCount: 8, expertsPerToken: 2, expertIntermediateSize: 128,
                router: .softmaxTopK(normalizesTopKWeights: false), expert: .mlp(.geluTanh),
                sharedExpert: SharedExpertConfig(intermediateSize: 96, gate: .sigmoid), capacityFactor: 1.25),
                layerCount: 3, sparseLayers: [false, true, true], denseIntermediateSize: 256),
            ModelConfig(architecture: .custom, moe: MoEConfig(
                hiddenSize: 16, expertCount: 12, expertsPerToken: 3, expertIntermediateSize: 10,
                router: .sigmoidGroupedTopK(groupCount: 3, keptGroupCount: 2, normalizesTopKWeights: false, scalingFactor: 1.5),
                expert: .mlp(.relu)), layerCount: 1),
            ModelConfig(architecture: .custom, moe: MoEConfig(
                hiddenSize: 16, expertCount: 4, expertsPerToken: 2, expertIntermediateSize: 10, router: .topKThenSoftmax,
                routerHasBias: true, expert: .clampedGated(alpha: 1.702, limit: 7.25)), layerCount: 2),
            ModelConfig(architecture: .llama4, moe: MoEConfig(
                hiddenSize: 16, expertCount: 4, expertsPerToken: 1, expertIntermediateSize: 10, router: .sigmoidTopKScalesInput,
                expert: .gated(.gelu), sharedExpert: SharedExpertConfig(intermediateSize: 10, gate: .none)), layerCount: 2),
        ]
        for name in ModelConfig.presetNames { if let p = try? ModelConfig.preset(named: name) { configs.append(p) } }
        return configs
    }()

    @Test("moekitJSON round trip", arguments: roundTripConfigs)
    func roundTrip(_ config: ModelConfig) throws {
        let data = config.moekitJSON()
        #expect(!data.isEmpty)
        let back = try ModelConfig(moekitJSON: data, path: "round-trip.json")
        #expect(back == config)
        // And through the auto-detecting reader.
        let dir = try makeTemporaryDirectory("config")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try data.write(to: URL(fileURLWithPath: dir + "/moekit.json"))
        #expect(try ModelConfig(contentsOf: dir + "/moekit.json") == config)
    }

    @Test("Hugging Face configs survive a MoEKit JSON round trip (the declared dtype is not part of it)")
    func roundTripFromHF() throws {
        for json in [Self.llama4Text, """
        {"model_type": "qwen2_moe", "hidden_size": 64, "num_hidden_layers": 6, "intermediate_size": 128,
         "moe_intermediate_size": 32, "shared_expert_intermediate_size": 96, "num_experts": 8,
         "num_experts_per_tok": 2, "decoder_sparse_step": 2, "mlp_only_layers": [3]}
        """, """
        {"model_type": "deepseek_v3", "hidden_size": 64, "num_hidden_layers": 5, "intermediate_size": 160,
         "moe_intermediate_size": 32, "n_routed_experts": 16, "n_shared_experts": 2, "num_experts_per_tok": 4,
         "n_group": 4, "topk_group": 2, "routed_scaling_factor": 2.5, "first_k_dense_replace": 2}
        """] {
            let c = try hf(json)
            #expect(try ModelConfig(moekitJSON: c.moekitJSON(), path: "x") == c)
        }
    }

    @Test("MoEKit JSON refusals name the field")
    func moekitRefusals() throws {
        let bad = #expect(throws: ConfigError.self) {
            try ModelConfig(moekitJSON: Data("""
            {"hidden_size": 8, "num_experts": 4, "num_experts_per_tok": 2, "expert_intermediate_size": 4,
             "router": {"kind": "softmax"}}
            """.utf8), path: "m.json")
        }
        if case .invalidField(let f, _, _)? = bad { #expect(f == "router.kind") } else { Issue.record("got \(String(describing: bad))") }
        let layers = #expect(throws: ConfigError.self) {
            try ModelConfig(moekitJSON: Data("""
            {"hidden_size": 8, "num_experts": 4, "num_experts_per_tok": 2, "expert_intermediate_size": 4,
             "router": {"kind": "topk_softmax"}, "num_layers": 2, "dense_layers": [2], "dense_intermediate_size": 8}
            """.utf8), path: "m.json")
        }
        if case .invalidField(let f, _, _)? = layers { #expect(f == "dense_layers") } else { Issue.record("got \(String(describing: layers))") }
        #expect(throws: ConfigError.missingKey(path: "m.json", key: "router")) {
            try ModelConfig(moekitJSON: Data("""
            {"hidden_size": 8, "num_experts": 4, "num_experts_per_tok": 2, "expert_intermediate_size": 4}
            """.utf8), path: "m.json")
        }
    }

    // MARK: Fixture checkpoints

    struct Manifest: Decodable {
        struct Fixture: Decodable { var name: String; var architecture: String; var layers: [Layer] }
        struct Layer: Decodable { var layer: Int; var kind: String }
        var fixtures: [Fixture]
    }

    @Test("every fixture checkpoint's config agrees with the manifest")
    func fixtures() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturesDirectory + "/manifest.json"))
        let manifest = try JSONDecoder().decode(Manifest.self, from: data)
        #expect(manifest.fixtures.count >= 7)
        for fixture in manifest.fixtures {
            let checkpoint = try Checkpoint(directory: fixturesDirectory + "/" + fixture.name + "/checkpoint")
            let config = checkpoint.config
            #expect(config.architecture.rawValue == fixture.architecture, "\(fixture.name)")
            #expect(config.sparseLayers.count == config.layerCount)
            for layer in fixture.layers {
                #expect(try config.isSparse(layer: layer.layer) == (layer.kind == "moe"), "\(fixture.name) layer \(layer.layer)")
                let ff = try checkpoint.feedForward(layer: layer.layer)
                switch ff {
                case .moe(let block): #expect(layer.kind == "moe"); #expect(block.config == config.moe)
                case .dense: #expect(layer.kind == "dense")
                }
            }
        }
    }
}
