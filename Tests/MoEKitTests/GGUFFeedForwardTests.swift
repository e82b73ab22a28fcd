import Foundation
import Testing
@testable import MoEKit
import MoETestSupport

/// `GGUFModel.feedForward`: every architecture's blocks built from the file as stored, against the block
/// MoEKit builds from F32 copies of the same (dequantized) tensors.
@Suite("GGUF blocks as MoEKit blocks")
struct GGUFFeedForwardTests {
    typealias Sizes = GGUFTestModels.Sizes

    /// A weight-matrix format of the feed-forward tensors: gate and up (and the dense/shared MLPs' gate and
    /// up), down.
    struct Formats: Sendable, CustomTestStringConvertible {
        var gateUp: GGMLType
        var down: GGMLType
        var testDescription: String { gateUp == down ? "\(gateUp)" : "\(gateUp)+\(down)" }
        static let all = [Formats(gateUp: .f32, down: .f32), Formats(gateUp: .q8_0, down: .q4_0), Formats(gateUp: .mxfp4, down: .q5_1),
                          Formats(gateUp: .f16, down: .bf16), Formats(gateUp: .q4_1, down: .q5_0)]
    }

    /// The block MoEKit builds from F32 copies of `model`'s tensors of block `layer`, decoded as ggml does.
    static func reference(_ model: GGUFModel, layer: Int) throws -> FeedForward {
        func tensor(_ v: GGUFTensorView) throws -> Tensor<Float> { try Tensor(shape: v.shape, storage: try GGUFModel.floats(v)) }
        func mlp(_ m: GGUFMLPTensors) throws -> DenseMLP {
            try DenseMLP(gate: try tensor(m.gate), up: try tensor(m.up), down: try tensor(m.down), format: .f32)
        }
        switch try model.layer(layer).feedForward {
        case .dense(let m): return .dense(try mlp(m))
        case .moe(let m):
            let moe = model.config.moe
            let router = try Router(config: moe, weight: try tensor(m.router), bias: try m.routerBias.map(GGUFModel.floats),
                                    correctionBias: try m.scoreCorrectionBias.map(GGUFModel.floats))
            let experts = try ExpertWeights(kind: moe.expert, gate: try tensor(m.gate), up: try tensor(m.up), down: try tensor(m.down),
                                            gateBias: try m.gateBias.map(tensor), upBias: try m.upBias.map(tensor),
                                            downBias: try m.downBias.map(tensor), format: .f32)
            let shared = try m.shared.map { try SharedExpert(mlp: try mlp($0), gateWeight: try m.sharedGate.map(GGUFModel.floats)) }
            return .moe(try MoEBlock(config: moe, router: router, experts: experts, sharedExpert: shared))
        }
    }

    /// Runs every block of `model` (both kernel variants) against ``reference(_:layer:)``.
    static func checkAgainstReference(_ model: GGUFModel, tokens: Int = 9) throws {
        var rng = SeededGenerator(seed: 7)
        for layer in 0..<model.config.layerCount {
            let block = try model.feedForward(layer: layer, threads: 2)
            let expected = try reference(model, layer: layer)
            let x = randomTensor([tokens, model.config.moe.hiddenSize], generator: &rng)
            let want = try expected.forward(x, variant: .reference, threads: 1)
            for variant in KernelVariant.allCases {
                let got = try block.forward(x, variant: variant, threads: 2)
                let error = relativeError(got.hiddenStates, want.hiddenStates)
                #expect(error <= 1e-5, "block \(layer) \(variant): max|y − y_ref| / max|y_ref| = \(error)")
                #expect((got.moe == nil) == !model.config.sparseLayers[layer])
                if let moe = got.moe, let ref = want.moe {
                    #expect(moe.routing.expertIDs == ref.routing.expertIDs, "block \(layer) \(variant)")
                    #expect(relativeError(moe.routing.weights, ref.routing.weights) <= 1e-6)
                }
            }
        }
    }

    @Test("every architecture, weights in every stored format, matches the block made from F32 copies",
          arguments: GGUFArchitecture.allCases, Formats.all)
    func matchesF32Copies(_ arch: GGUFArchitecture, _ formats: Formats) throws {
        var w = GGUFTestModels.writer(arch)
        w.storeMatrices(gateUp: formats.gateUp, down: formats.down)
        let model = try GGUFModel(path: try w.write())
        try Self.checkAgainstReference(model)
        for layer in 0..<model.config.layerCount {
            switch try model.feedForward(layer: layer) {
            case .moe(let block):
                #expect(block.experts.format == (try GGUFModel.stored(try #require(try model.layer(layer).moeTensors).gate)).format)
                #expect(block.experts.residentBytes > 0)
            case .dense(let mlp):
                #expect(mlp.weights.expertCount == 1)
            }
        }
    }

    @Test("K-quants: Q4_K gate/up with Q6_K down (as Q4_K_M stores some layers), Q5_K; a Q8_0 router is dequantized")
    func kQuants() throws {
        for (gateUp, down) in [(GGMLType.q4_K, GGMLType.q6_K), (.q5_K, .q8_0)] {
            var w = GGUFTestModels.writer(.qwen3moe, Sizes(hidden: 256, experts: 4, topK: 2, width: 256, blocks: 1))
            w.storeMatrices(gateUp: gateUp, down: down)
            w.store(GGUFTensorName.router(0), as: .q8_0, seed: 3)
            let model = try GGUFModel(path: try w.write())
            guard case .moe(let block) = try model.feedForward(layer: 0) else { Issue.record("not MoE"); return }
            #expect(block.experts.format == .ggml(GGMLBlockType(ggmlTypeID: gateUp.rawValue)!))
            try Self.checkAgainstReference(model, tokens: 5)
        }
    }

    @Test("gpt-oss: ggml MXFP4 experts with F32 biases and a BF16 router")
    func gptOSS() throws {
        var w = GGUFTestModels.writer(.gptOSS, Sizes(hidden: 64, experts: 4, topK: 2, width: 96, blocks: 1))
        w.storeMatrices(gateUp: .mxfp4, down: .mxfp4)
        w.store(GGUFTensorName.router(0), as: .bf16, seed: 4)
        let model = try GGUFModel(path: try w.write())
        guard case .moe(let block) = try model.feedForward(layer: 0) else { Issue.record("not MoE"); return }
        #expect(block.experts.format == .ggml(.mxfp4))
        #expect(block.experts.gateBias?.shape == [4, 96] && block.experts.downBias?.shape == [4, 64])
        #expect(block.router.bias?.count == 4)
        try Self.checkAgainstReference(model)
    }

    /// The error `feedForward(layer:)` throws for the file `change` makes of `arch`'s tiny model.
    static func loadError(_ arch: GGUFArchitecture, layer: Int = 0, _ change: (inout GGUFTestWriter) -> Void) throws -> any Error {
        var w = GGUFTestModels.writer(arch)
        change(&w)
        let model = try GGUFModel(path: try w.write())
        do {
            _ = try model.feedForward(layer: layer)
        } catch {
            return error
        }
        throw NotRefused()
    }

    struct NotRefused: Error {}

    @Test("refusals name the tensor: gate and up in two formats, a type MoEKit cannot compute with, NaN weights")
    func refusals() throws {
        let twoFormats = try Self.loadError(.qwen3moe) { w in
            w.store(GGUFTensorName.experts(0, .gate), as: .q8_0, seed: 1)
            w.store(GGUFTensorName.experts(0, .up), as: .q4_0, seed: 2)
        }
        #expect("\(twoFormats)".contains("'blk.0.ffn_up_exps.weight' is Q4_0") && "\(twoFormats)".contains("one format"), "\(twoFormats)")

        let q2K = try Self.loadError(.qwen3moe) { w in
            for p in GGUFTensorName.Projection.allCases {
                let i = w.tensors.firstIndex { $0.name == GGUFTensorName.experts(0, p) }!
                if p == .down {
                    w.tensors[i].dims = [32, 256, 4]
                    w.tensors[i].data = GGUFTestWriter.pattern(dims: [32, 256, 4], type: .f32, seed: 0)
                } else {
                    w.tensors[i].type = GGMLType.q2_K.rawValue
                    w.tensors[i].dims = [256, 32, 4]
                    w.tensors[i].data = [UInt8](repeating: 0, count: 4 * 32 * 84)
                }
            }
            w.set("qwen3moe.embedding_length", .u32(256))
            w.set("qwen3moe.expert_feed_forward_length", .u32(32))
            let r = w.tensors.firstIndex { $0.name == GGUFTensorName.router(0) }!
            w.tensors[r].dims = [256, 4]
            w.tensors[r].data = GGUFTestWriter.pattern(dims: [256, 4], type: .f32, seed: 0)
            w.tensors.removeAll { $0.name.hasPrefix("blk.1.") }
            w.set("qwen3moe.block_count", .u32(1))
        }
        #expect("\(q2K)".contains("'blk.0.ffn_gate_exps.weight' is Q2_K") && "\(q2K)".contains("MoEKit computes with"), "\(q2K)")

        // Q8_0 down whose second expert's first block has a NaN scale (F16 0x7E00).
        let nanExpert = try Self.loadError(.qwen3moe) { w in
            w.storeMatrices(gateUp: .q8_0, down: .q8_0)
            let i = w.tensors.firstIndex { $0.name == GGUFTensorName.experts(0, .down) }!
            let matrixBytes = 64 * (32 / 32 * 34)
            w.tensors[i].data[matrixBytes] = 0x00
            w.tensors[i].data[matrixBytes + 1] = 0x7E
        }
        #expect("\(nanExpert)".hasSuffix("model.gguf: tensor 'blk.0.ffn_down_exps.weight' (expert 1) holds a NaN or infinite weight"), "\(nanExpert)")

        let nanRouter = try Self.loadError(.mixtralLike) { w in
            let i = w.tensors.firstIndex { $0.name == GGUFTensorName.router(0) }!
            w.tensors[i].data.replaceSubrange(20..<24, with: withUnsafeBytes(of: Float.nan.bitPattern.littleEndian, Array.init))
        }
        #expect("\(nanRouter)".hasSuffix("tensor 'blk.0.ffn_gate_inp.weight' element 5 is NaN or infinite"), "\(nanRouter)")

        let nanDense = try Self.loadError(.deepseek2) { w in
            let i = w.tensors.firstIndex { $0.name == GGUFTensorName.dense(0, .up) }!
            w.tensors[i].data.replaceSubrange(4 * 70..<4 * 71, with: withUnsafeBytes(of: Float.infinity.bitPattern.littleEndian, Array.init))
        }
        #expect("\(nanDense)".hasSuffix("tensor 'blk.0.ffn_up.weight' element 70 is NaN or infinite"), "\(nanDense)")

        let nanBias = try Self.loadError(.gptOSS) { w in
            let i = w.tensors.firstIndex { $0.name == GGUFTensorName.expertBias(0, .down) }!
            w.tensors[i].data.replaceSubrange(0..<4, with: withUnsafeBytes(of: Float.nan.bitPattern.littleEndian, Array.init))
        }
        #expect("\(nanBias)".hasSuffix("tensor 'blk.0.ffn_down_exps.bias' element 0 is NaN or infinite"), "\(nanBias)")
    }
}

extension GGUFArchitecture {
    /// llama with experts (Mixtral).
    static var mixtralLike: GGUFArchitecture { .llama }
}

extension GGUFLayerTensors {
    /// The MoE tensors, `nil` for a dense block.
    var moeTensors: GGUFMoETensors? {
        if case .moe(let m) = feedForward { return m }
        return nil
    }
}
