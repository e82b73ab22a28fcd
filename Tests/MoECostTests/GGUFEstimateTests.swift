import Testing
@testable import MoEKit
import MoETestSupport
import MoECost

/// `moe estimate --config model.gguf`: the cost model reads a GGUF file's own sizes, attention keys and
/// ggml types, and predicts the resident bytes of every layer `moe forward` loads from it.
@Suite("GGUF estimate")
struct GGUFEstimateTests {
    /// A tiny model of `arch` with the attention keys and tensors llama.cpp writes.
    static func model(_ arch: GGUFArchitecture, expertType: GGMLType) throws -> String {
        var w = GGUFTestModels.writer(arch, expertType: expertType)
        // Q8_0 experts that decode to finite weights: scale 2⁻⁴ (f16 0x2C00), codes from a pattern.
        for i in w.tensors.indices where w.tensors[i].type == GGMLType.q8_0.rawValue {
            let blocks = Int(w.tensors[i].dims.reduce(1, *)) / 32
            var data: [UInt8] = []
            for b in 0..<blocks {
                data += [0x00, 0x2C]
                for j in 0..<32 { data.append(UInt8((b * 7 + j * 13) % 255)) }
            }
            w.tensors[i].data = data
        }
        let p = arch.rawValue + "."
        let h = GGUFTestModels.Sizes().hidden
        w.set(p + "attention.head_count", .u32(4))
        if arch == .deepseek2 {
            w.set(p + "attention.kv_lora_rank", .u32(16))
            w.set(p + "attention.key_length", .u32(24))
            w.set(p + "attention.value_length", .u32(16))
            w.set(p + "rope.dimension_count", .u32(8))
            w.add("blk.0.attn_kv_a_mqa.weight", dims: [h, 16 + 8], type: .f16)
        } else {
            w.set(p + "attention.head_count_kv", .u32(2))
            w.set(p + "attention.key_length", .u32(16))
            w.add("blk.0.attn_q.weight", dims: [h, 4 * 16], type: .f16)
            if arch == .qwen2moe { w.add("blk.0.attn_q.bias", dims: [4 * 16]) }
        }
        return try w.write(named: "\(arch)-estimate.gguf", in: try makeTemporaryDirectory("gguf"))
    }

    @Test("the shape comes from the file's keys and tensors", arguments: GGUFArchitecture.allCases)
    func shape(_ arch: GGUFArchitecture) throws {
        let model = try GGUFModel(path: try Self.model(arch, expertType: .q8_0))
        let shape = try ModelShape(gguf: model)
        #expect(shape.modelType == arch.architecture.rawValue)
        #expect(shape.moe == MoEBlockShape(model.config.moe))
        #expect(shape.layerCount == model.config.layerCount && shape.sparseLayers == model.config.sparseLayers)
        #expect(shape.vocabSize == 8)
        #expect(shape.expertDType == .q8_0 && shape.expertFormat == .ggml(.q8_0))
        // The other linear weights' dtype: the dense or shared MLP's (F32 in these files), else the attention's.
        #expect(shape.weightDType == ([.deepseek2, .llama4, .qwen2moe].contains(arch) ? .f32 : .f16))
        #expect(shape.tiesWordEmbeddings, "no output.weight: the embedding is tied")
        switch shape.attention {
        case .latent(let a):
            #expect(arch == .deepseek2)
            #expect(a.heads == 4 && a.keyValueLoRARank == 16 && a.qkNopeHeadDim == 16 && a.qkRopeHeadDim == 8 && a.valueHeadDim == 16)
            #expect(a.queryLoRARank == nil)
        case .grouped(let a):
            #expect(arch != .deepseek2)
            #expect(a.heads == 4 && a.kvHeads == 2 && a.headDim == 16)
            #expect(a.qkvBias == (arch == .qwen2moe))
        default:
            Issue.record("no attention shape for \(arch)")
        }
    }

    @Test("resident bytes predicted as the GGUF loader holds them", arguments: GGUFArchitecture.allCases)
    func residentBytes(_ arch: GGUFArchitecture) throws {
        let model = try GGUFModel(path: try Self.model(arch, expertType: .q8_0))
        let shape = try ModelShape(gguf: model)
        for layer in 0..<model.config.layerCount {
            let loaded = try model.feedForward(layer: layer, threads: 2).residentBytes
            #expect(shape.residentBytes(layer: layer) == loaded, "layer \(layer)")
        }
    }

    @Test("a file without what the estimate needs is refused naming it")
    func refusals() throws {
        var w = GGUFTestModels.writer(.qwen3moe, expertType: .q8_0)
        w.set("qwen3moe.attention.head_count_kv", .u32(2))
        let path = try w.write(named: "no-attention.gguf", in: try makeTemporaryDirectory("gguf"))
        #expect(throws: CostError.self) { try ModelShape(gguf: GGUFModel(path: path)) }
        do { _ = try ModelShape(gguf: GGUFModel(path: path)) } catch {
            #expect("\(error)".contains("blk.0.attn_q.weight") && "\(error)".contains(path))
        }
    }
}
