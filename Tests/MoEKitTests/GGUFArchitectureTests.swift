import Foundation
import Testing
@testable import MoEKit
import MoETestSupport

@Suite("GGUF architectures → ModelConfig and layer tensors")
struct GGUFArchitectureTests {
    typealias Sizes = GGUFTestModels.Sizes

    /// What each architecture's tiny file (H 64, E 4, K 2, F 32, 2 blocks) must map to.
    static func expected(_ arch: GGUFArchitecture) -> ModelConfig {
        let (h, e, k, f) = (64, 4, 2, 32)
        func moe(_ router: RouterKind, bias: Bool = false, expert: ExpertKind = .gated(.silu), shared: SharedExpertConfig? = nil) -> MoEConfig {
            MoEConfig(hiddenSize: h, expertCount: e, expertsPerToken: k, expertIntermediateSize: f, router: router,
                      routerHasBias: bias, expert: expert, sharedExpert: shared)
        }
        switch arch {
        case .llama: return ModelConfig(architecture: .mixtral, moe: moe(.softmaxTopK(normalizesTopKWeights: true)), layerCount: 2)
        case .olmoe: return ModelConfig(architecture: .olmoe, moe: moe(.softmaxTopK(normalizesTopKWeights: false)), layerCount: 2)
        case .qwen3moe: return ModelConfig(architecture: .qwen3MoE, moe: moe(.softmaxTopK(normalizesTopKWeights: true)), layerCount: 2)
        case .qwen2moe:
            return ModelConfig(architecture: .qwen2MoE, moe: moe(.softmaxTopK(normalizesTopKWeights: false),
                                                                  shared: SharedExpertConfig(intermediateSize: 64, gate: .sigmoid)), layerCount: 2)
        case .deepseek2:
            let router = RouterKind.sigmoidGroupedTopK(groupCount: 2, keptGroupCount: 1, normalizesTopKWeights: true, scalingFactor: 2.5)
            return ModelConfig(architecture: .deepseekV3, moe: moe(router, shared: SharedExpertConfig(intermediateSize: 64, gate: .none)),
                               layerCount: 2, sparseLayers: [false, true], denseIntermediateSize: 96)
        case .gptOSS:
            return ModelConfig(architecture: .gptOSS, moe: moe(.topKThenSoftmax, bias: true, expert: .clampedGated(alpha: 1.702, limit: 7)), layerCount: 2)
        case .llama4:
            return ModelConfig(architecture: .llama4, moe: moe(.sigmoidTopKScalesInput, shared: SharedExpertConfig(intermediateSize: 32, gate: .none)),
                               layerCount: 2, sparseLayers: [false, true], denseIntermediateSize: 128)
        }
    }

    /// Opens the file `change` makes of `arch`'s tiny model; returns the error's description.
    static func refusal(_ arch: GGUFArchitecture, _ change: (inout GGUFTestWriter) -> Void) throws -> (GGUFError?, String) {
        var w = GGUFTestModels.writer(arch)
        change(&w)
        let path = try w.write()
        do {
            _ = try GGUFModel(path: path)
            return (nil, path)
        } catch {
            #expect(error.description.hasPrefix(path + ": "), "\(error)")
            return (error, path)
        }
    }

    @Test("each architecture's metadata maps onto the ModelConfig llama.cpp would run", arguments: GGUFArchitecture.allCases)
    func mapping(_ arch: GGUFArchitecture) throws {
        let w = GGUFTestModels.writer(arch)
        let model = try GGUFModel(path: try w.write())
        var expected = Self.expected(arch)
        #expect(try GGUFArchitecture.modelConfig(metadata: model.shards.metadata) == expected)
        expected.declaredDType = "F32"
        #expect(model.config == expected)
        #expect(model.architecture == arch && model.layers.count == 2)
    }

    @Test("each architecture's layer tensors: names, ggml types, MoEKit shapes, strides and bytes", arguments: GGUFArchitecture.allCases)
    func layerTensors(_ arch: GGUFArchitecture) throws {
        let w = GGUFTestModels.writer(arch)
        let model = try GGUFModel(path: try w.write())
        func data(_ name: String) -> [UInt8]? { w.tensors.first { $0.name == name }?.data }
        for n in 0..<2 {
            let layer = try model.layer(n)
            for t in layer.tensors { #expect(Array(t.bytes) == data(t.name), "\(t.name)") }
            switch layer.feedForward {
            case .dense(let mlp):
                #expect(!model.config.sparseLayers[n])
                let fd = model.config.denseIntermediateSize ?? 0
                #expect(mlp.gate.name == "blk.\(n).ffn_gate.weight" && mlp.gate.shape == [fd, 64] && mlp.down.shape == [64, fd])
            case .moe(let block):
                #expect(model.config.sparseLayers[n])
                #expect(block.router.name == "blk.\(n).ffn_gate_inp.weight" && block.router.shape == [4, 64])
                #expect(block.gate.name == "blk.\(n).ffn_gate_exps.weight" && block.gate.shape == [4, 32, 64] && block.gate.dims == [64, 32, 4])
                #expect(block.up.shape == [4, 32, 64] && block.down.shape == [4, 64, 32])
                #expect(block.gate.type == .f32 && block.gate.rowStride == 256 && block.gate.matrixStride == 32 * 256)
                #expect(block.down.rowStride == 128 && block.down.matrixCount == 4 && block.down.rows == 64 && block.down.columns == 32)
                #expect(block.gate.matrix(3).map(Array.init) == data(block.gate.name).map { Array($0[(3 * 8192)...]) })
                #expect((block.routerBias != nil) == (arch == .gptOSS))
                #expect((block.gateBias?.shape, block.upBias?.shape, block.downBias?.shape) == (arch == .gptOSS ? ([4, 32], [4, 32], [4, 64]) : (nil, nil, nil)))
                #expect((block.scoreCorrectionBias?.shape) == (arch == .deepseek2 ? [4] : nil))
                #expect((block.sharedGate?.shape) == (arch == .qwen2moe ? [64] : nil))
                let fs = model.config.moe.sharedExpert?.intermediateSize
                #expect(block.shared?.gate.shape == fs.map { [$0, 64] } && block.shared?.down.shape == fs.map { [64, $0] })
                if let bias = block.routerBias, let index = w.tensors.firstIndex(where: { $0.name == bias.name }) {
                    #expect(bias.floats() == (0..<4).map { GGUFTestWriter.value($0, seed: index) })
                }
            }
        }
        #expect(throws: GGUFError.layerOutOfRange(path: model.path, layer: 2, layerCount: 2)) { try model.layer(2) }
        #expect(throws: GGUFError.self) { try model.layer(-1) }
    }

    @Test("quantized experts: rows are whole Q8_0 blocks; the config reports the stored type")
    func quantizedExperts() throws {
        let model = try GGUFModel(path: try GGUFTestModels.writer(.qwen3moe, expertType: .q8_0).write())
        guard case .moe(let block) = try model.layer(0).feedForward else { Issue.record("not MoE"); return }
        #expect(block.gate.type == .q8_0 && block.gate.rowStride == 2 * 34 && block.gate.matrixStride == 32 * 68)
        #expect(block.down.rowStride == 34 && block.down.bytes.count == 4 * 64 * 34)
        #expect(block.router.type == .f32 && model.config.declaredDType == "Q8_0")
    }

    @Test("defaults where the file has no key: llama.cpp's, per architecture")
    func defaults() throws {
        // qwen3moe without expert_feed_forward_length: feed_forward_length / expert_used_count.
        var w = GGUFTestModels.writer(.qwen3moe)
        w.remove("qwen3moe.expert_feed_forward_length")
        w.set("qwen3moe.feed_forward_length", .u32(64))
        #expect(try GGUFModel(path: try w.write()).config.moe.expertIntermediateSize == 32)
        // feed_forward_length may be a per-layer array when every value is the same.
        w.set("qwen3moe.feed_forward_length", .array(.uint32, [.u32(64), .u32(64)]))
        #expect(try GGUFModel(path: try w.write()).config.moe.expertIntermediateSize == 32)
        // qwen2moe without expert_shared_feed_forward_length: the shared expert is feed_forward_length wide.
        var q2 = GGUFTestModels.writer(.qwen2moe)
        q2.remove("qwen2moe.expert_shared_feed_forward_length")
        q2.set("qwen2moe.feed_forward_length", .u32(64))
        #expect(try GGUFModel(path: try q2.write()).config.moe.sharedExpert == SharedExpertConfig(intermediateSize: 64, gate: .sigmoid))
        // deepseek2 without expert_gating_func (DeepSeek-V2 files): softmax; no scale, no norm, no groups.
        var ds = GGUFTestModels.writer(.deepseek2)
        for key in ["expert_gating_func", "expert_weights_scale", "expert_weights_norm", "expert_group_count", "expert_group_used_count", "leading_dense_block_count"] {
            ds.remove("deepseek2." + key)
        }
        ds.tensors.removeAll { $0.name.hasPrefix("blk.0.") }
        for t in GGUFTestModels.writer(.deepseek2, GGUFTestModels.Sizes(blocks: 2)).tensors where t.name.hasPrefix("blk.1.") {
            ds.tensors.append(GGUFTestWriter.Tensor(name: t.name.replacingOccurrences(of: "blk.1.", with: "blk.0."), dims: t.dims, type: t.type, data: t.data))
        }
        let config = try GGUFModel(path: try ds.write()).config
        #expect(config.moe.router == .softmaxTopK(normalizesTopKWeights: false) && config.sparseLayers == [true, true])
        // deepseek2 sigmoid without groups: one group, kept; scale 1 when absent.
        var dsig = GGUFTestModels.writer(.deepseek2)
        dsig.remove("deepseek2.expert_group_count")
        dsig.remove("deepseek2.expert_group_used_count")
        dsig.remove("deepseek2.expert_weights_scale")
        #expect(try GGUFModel(path: try dsig.write()).config.moe.router ==
            .sigmoidGroupedTopK(groupCount: 1, keptGroupCount: 1, normalizesTopKWeights: true, scalingFactor: 1))
        // deepseek2 without an exp_probs_b tensor: llama.cpp treats it as optional.
        var nobias = GGUFTestModels.writer(.deepseek2)
        nobias.tensors.removeAll { $0.name.contains("exp_probs_b") }
        guard case .moe(let block) = try GGUFModel(path: try nobias.write()).layer(1).feedForward else { Issue.record("not MoE"); return }
        #expect(block.scoreCorrectionBias == nil)
    }

    @Test("a missing required key is named", arguments: [
        (GGUFArchitecture.qwen3moe, "general.architecture"), (.qwen3moe, "qwen3moe.block_count"), (.olmoe, "olmoe.embedding_length"),
        (.llama, "llama.expert_used_count"), (.llama, "llama.feed_forward_length"), (.gptOSS, "gpt-oss.expert_feed_forward_length"),
        (.deepseek2, "deepseek2.expert_shared_count"), (.deepseek2, "deepseek2.expert_feed_forward_length"),
        (.llama4, "llama4.interleave_moe_layer_step"), (.llama4, "llama4.expert_feed_forward_length"), (.olmoe, "olmoe.expert_count"),
    ])
    func missingKey(_ arch: GGUFArchitecture, _ key: String) throws {
        let (error, path) = try Self.refusal(arch) { $0.remove(key) }
        #expect(error == .missingKey(path: path, key: key), "\(String(describing: error))")
    }

    @Test("qwen3moe with neither expert_feed_forward_length nor feed_forward_length names the expert key")
    func qwen3Width() throws {
        let (error, path) = try Self.refusal(.qwen3moe) { $0.remove("qwen3moe.expert_feed_forward_length"); $0.remove("qwen3moe.feed_forward_length") }
        #expect(error == .missingKey(path: path, key: "qwen3moe.expert_feed_forward_length"))
    }

    @Test("values out of range or of the wrong type are refused with key and value, before anything is sized by them")
    func badValues() throws {
        let cases: [(GGUFArchitecture, (inout GGUFTestWriter) -> Void, [String])] = [
            (.llama, { $0.set("llama.expert_count", .u32(0)) }, ["llama.expert_count = 0", "dense"]),
            (.qwen3moe, { $0.set("qwen3moe.expert_used_count", .u32(5)) }, ["qwen3moe.expert_used_count = 5", "1...4"]),
            (.qwen3moe, { $0.set("qwen3moe.expert_used_count", .u32(0)) }, ["qwen3moe.expert_used_count = 0"]),
            (.qwen3moe, { $0.set("qwen3moe.block_count", .u64(1 << 40)) }, ["qwen3moe.block_count = 1099511627776"]),
            (.qwen3moe, { $0.set("qwen3moe.block_count", .u32(0)) }, ["qwen3moe.block_count = 0"]),
            (.qwen3moe, { $0.set("qwen3moe.expert_count", .u64(1 << 40)) }, ["qwen3moe.expert_count = 1099511627776"]),
            (.qwen3moe, { $0.set("qwen3moe.expert_count", .i32(-4)) }, ["qwen3moe.expert_count = -4", "negative"]),
            (.qwen3moe, { $0.set("qwen3moe.embedding_length", .string("64")) }, ["qwen3moe.embedding_length", "STRING", "integer"]),
            (.qwen3moe, { $0.set("qwen3moe.embedding_length", .u32(0)) }, ["qwen3moe.embedding_length = 0", "positive"]),
            (.qwen3moe, { $0.set("qwen3moe.expert_feed_forward_length", .u32(0)) }, ["qwen3moe.expert_feed_forward_length = 0"]),
            (.qwen3moe, { $0.set("qwen3moe.expert_weights_scale", .f32(2)) }, ["qwen3moe.expert_weights_scale = 2.0", "not supported"]),
            (.qwen3moe, { $0.set("qwen3moe.feed_forward_length", .array(.uint32, [.u32(96), .u32(48)])) ; $0.remove("qwen3moe.expert_feed_forward_length") },
             ["qwen3moe.feed_forward_length", "per layer"]),
            (.deepseek2, { $0.set("deepseek2.expert_gating_func", .u32(3)) }, ["deepseek2.expert_gating_func = 3"]),
            (.deepseek2, { $0.set("deepseek2.expert_group_count", .u32(3)) }, ["deepseek2.expert_group_count = 3", "divide"]),
            (.deepseek2, { $0.set("deepseek2.expert_group_used_count", .u32(5)) }, ["deepseek2.expert_group_used_count = 5"]),
            (.deepseek2, { $0.set("deepseek2.expert_weights_norm", .u32(1)) }, ["deepseek2.expert_weights_norm", "bool"]),
            (.deepseek2, { $0.set("deepseek2.leading_dense_block_count", .u32(2)) }, ["deepseek2.leading_dense_block_count = 2"]),
            (.deepseek2, { $0.set("deepseek2.expert_gating_func", .u32(1)) }, ["deepseek2.expert_weights_scale = 2.5", "softmax"]),
            (.llama4, { $0.set("llama4.interleave_moe_layer_step", .u32(0)) }, ["llama4.interleave_moe_layer_step = 0"]),
            (.llama4, { $0.set("llama4.interleave_moe_layer_step", .u32(3)) }, ["llama4.interleave_moe_layer_step = 3", "no MoE block"]),
            (.qwen3moe, { $0.set("general.architecture", .string("gpt2")) }, ["general.architecture = 'gpt2'", "qwen3moe"]),
            (.qwen3moe, { $0.set("general.architecture", .u32(7)) }, ["general.architecture", "string"]),
        ]
        for (arch, change, words) in cases {
            let (error, _) = try Self.refusal(arch, change)
            let message = error?.description ?? "no error"
            for word in words { #expect(message.contains(word), "'\(word)' not in: \(message)") }
        }
    }

    @Test("expert counts that disagree with tensor shapes name the tensor, its dims and the key")
    func expertCountVersusShapes() throws {
        // The key says 8, every tensor holds 4: the router is the first checked.
        let (a, pathA) = try Self.refusal(.qwen3moe) { $0.set("qwen3moe.expert_count", .u32(8)) }
        #expect(a == .expertCountMismatch(path: pathA, tensor: "blk.0.ffn_gate_inp.weight", dims: [64, 4], experts: 4,
                                          key: "qwen3moe.expert_count", value: 8))
        #expect(a?.description.contains("holds 4 experts but qwen3moe.expert_count = 8") == true)
        // One expert stack holds 3.
        let (b, pathB) = try Self.refusal(.llama) { w in
            if let i = w.tensors.firstIndex(where: { $0.name == "blk.1.ffn_up_exps.weight" }) {
                w.tensors[i].dims = [64, 32, 3]
                w.tensors[i].data = Array(w.tensors[i].data.prefix(64 * 32 * 3 * 4))
            }
        }
        #expect(b == .expertCountMismatch(path: pathB, tensor: "blk.1.ffn_up_exps.weight", dims: [64, 32, 3], experts: 3,
                                          key: "llama.expert_count", value: 4))
        // gpt-oss's biases are checked too.
        let (c, _) = try Self.refusal(.gptOSS) { w in
            if let i = w.tensors.firstIndex(where: { $0.name == "blk.0.ffn_down_exps.bias" }) {
                w.tensors[i].dims = [64, 2]
                w.tensors[i].data = Array(w.tensors[i].data.prefix(64 * 2 * 4))
            }
        }
        #expect(c?.description.contains("blk.0.ffn_down_exps.bias") == true && c?.description.contains("holds 2 experts") == true)
    }

    @Test("other shape disagreements name the tensor and the keys the expected shape came from")
    func otherShapes() throws {
        let (a, _) = try Self.refusal(.qwen3moe) { $0.set("qwen3moe.expert_feed_forward_length", .u32(16)) }
        let message = a?.description ?? ""
        #expect(message.contains("'blk.0.ffn_gate_exps.weight' has ggml dims [64, 32, 4]"), "\(message)")
        #expect(message.contains("expected [64, 16, 4]") && message.contains("qwen3moe.expert_feed_forward_length = 16"))
        // qwen2moe's shared width defaults to feed_forward_length (96), which the tensors do not have.
        let (b, _) = try Self.refusal(.qwen2moe) { $0.remove("qwen2moe.expert_shared_feed_forward_length") }
        #expect(b?.description.contains("blk.0.ffn_gate_shexp.weight") == true)
        #expect(b?.description.contains("expert_shared_feed_forward_length absent") == true)
        // deepseek2's dense block is feed_forward_length wide.
        let (c, _) = try Self.refusal(.deepseek2) { $0.set("deepseek2.feed_forward_length", .u32(95)) }
        #expect(c?.description.contains("blk.0.ffn_gate.weight") == true && c?.description.contains("deepseek2.feed_forward_length = 95") == true)
    }

    @Test("missing tensors, unsupported layouts and unusable tensor types are refused by name")
    func tensorRefusals() throws {
        let (a, path) = try Self.refusal(.olmoe) { $0.tensors.removeAll { $0.name == "blk.1.ffn_down_exps.weight" } }
        #expect(a == .tensorNotFound(path: path, tensor: "blk.1.ffn_down_exps.weight"))
        let (b, _) = try Self.refusal(.qwen3moe) { w in
            if let i = w.tensors.firstIndex(where: { $0.name == "blk.0.ffn_gate_exps.weight" }) { w.tensors[i].name = "blk.0.ffn_gate_up_exps.weight" }
        }
        #expect(b?.description.contains("fused gate/up") == true)
        let (c, _) = try Self.refusal(.llama) { w in
            w.tensors.removeAll { $0.name.hasPrefix("blk.0.ffn_") && $0.name.contains("_exps") }
            w.add("blk.0.ffn_gate.0.weight", dims: [64, 32])
        }
        #expect(c?.description.contains("one tensor per expert") == true)
        let (d, _) = try Self.refusal(.gptOSS) { w in
            if let i = w.tensors.firstIndex(where: { $0.name == "blk.0.ffn_gate_inp.bias" }) {
                w.tensors[i].type = GGMLType.i32.rawValue
            }
        }
        #expect(d?.description.contains("'blk.0.ffn_gate_inp.bias' is I32: biases and gates must be F32, F16 or BF16") == true, "\(String(describing: d))")
        let (e, _) = try Self.refusal(.qwen3moe) { w in
            if let i = w.tensors.firstIndex(where: { $0.name == "blk.0.ffn_up_exps.weight" }) { w.tensors[i].type = GGMLType.i32.rawValue }
        }
        #expect(e?.description.contains("'blk.0.ffn_up_exps.weight' is I32") == true, "\(String(describing: e))")
    }
}
