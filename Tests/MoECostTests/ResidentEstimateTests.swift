import MoECost
@testable import MoEKit
import MoETestSupport
import Testing

/// The cost model's resident bytes (`ResidentEstimate`, `ModelShape.residentBytes`, what `moe estimate` prints)
/// are exactly what MoEKit holds: for blocks made in each stored format and for every layer the loader reads.
@Suite("Resident estimate")
struct ResidentEstimateTests {
    /// Small blocks of every shape the realsize suite runs, in every stored format.
    static let blocks: [(name: String, config: MoEConfig, format: WeightFormat)] = [
        ("mixtral-like bf16", MoEConfig(hiddenSize: 96, expertCount: 4, expertsPerToken: 2, expertIntermediateSize: 80,
                                        router: .softmaxTopK(normalizesTopKWeights: true)), .bf16),
        ("f32", MoEConfig(hiddenSize: 64, expertCount: 3, expertsPerToken: 1, expertIntermediateSize: 40,
                          router: .softmaxTopK(normalizesTopKWeights: false)), .f32),
        ("f16 shared gate", MoEConfig(hiddenSize: 64, expertCount: 4, expertsPerToken: 2, expertIntermediateSize: 48,
                                      router: .softmaxTopK(normalizesTopKWeights: false),
                                      sharedExpert: SharedExpertConfig(intermediateSize: 40, gate: .sigmoid)), .f16),
        ("deepseek-like fp8", MoEConfig(hiddenSize: 160, expertCount: 16, expertsPerToken: 4, expertIntermediateSize: 72,
                                        router: .sigmoidGroupedTopK(groupCount: 4, keptGroupCount: 2, normalizesTopKWeights: true, scalingFactor: 2.5),
                                        sharedExpert: SharedExpertConfig(intermediateSize: 72, gate: .none)),
         .fp8E4M3(blockRows: 128, blockColumns: 128)),
        ("gpt-oss-like mxfp4", MoEConfig(hiddenSize: 96, expertCount: 8, expertsPerToken: 2, expertIntermediateSize: 64,
                                         router: .topKThenSoftmax, routerHasBias: true, expert: .clampedGated(alpha: 1.702, limit: 7)), .mxfp4),
    ]

    @Test("moe estimate's resident bytes are exactly what a block made in its stored format holds",
          arguments: blocks.map(\.name))
    func estimateIsExact(_ name: String) throws {
        let (_, config, format) = try #require(Self.blocks.first { $0.name == name })
        let block = try MoEBlock.randomStored(config: config, seed: 3, format: format, threads: 2)
        #expect(block.residentBytes == ResidentEstimate(config, format: format).total)
        #expect(block.experts.format == format)
        // And the block computes: fast and reference agree on a few tokens.
        var rng = SplitMix64(seed: 4)
        let x = rng.tensor([5, config.hiddenSize], std: 1)
        let fast = try block.forward(x, variant: .fast, threads: 2), reference = try block.forward(x, variant: .reference, threads: 2)
        #expect(relativeError(fast.hiddenStates, reference.hiddenStates) <= 1e-5)
        #expect(fast.hiddenStates.storage.allSatisfy { $0.isFinite })
    }

    /// Every golden fixture checkpoint (each architecture; F32, BF16, FP8 with F32 or BF16 scales, MXFP4).
    static let fixtures = ["mixtral-f32", "mixtral-bf16", "qwen2-moe", "qwen3-moe", "qwen3-moe-fused", "qwen3-moe-fp8", "deepseek-v3-f32",
                           "deepseek-v3-bf16", "deepseek-v3-fp8", "gpt-oss", "gpt-oss-mxfp4", "olmoe", "llama4", "llama4-top2"]

    @Test("moe estimate predicts the resident bytes of every layer moe forward loads, byte for byte", arguments: fixtures)
    func estimateMatchesLoader(_ fixture: String) throws {
        let dir = fixturesDirectory + "/" + fixture + "/checkpoint"
        let shape = try ModelShape(contentsOf: dir + "/config.json")
        let model = try Checkpoint(directory: dir)
        for layer in 0..<model.config.layerCount {
            let loaded = try model.feedForward(layer: layer, threads: 2).residentBytes
            #expect(shape.residentBytes(layer: layer) == loaded, "layer \(layer)")
        }
    }
}
