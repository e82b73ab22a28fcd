import Foundation
import MoECost
import MoEKit
import MoETestSupport
import Testing

private struct ExpectedParams: Decodable {
    var total_params: Int
    var card_active_params: Double
}

private func expectedParams() throws -> [String: ExpectedParams] {
    let data = try Data(contentsOf: URL(fileURLWithPath: costFixturesDirectory + "/expected_params.json"))
    return try JSONDecoder().decode([String: ExpectedParams].self, from: data)
}

private let flagships = ["mixtral-8x7b", "qwen3-30b-a3b", "qwen3-235b-a22b", "deepseek-v3", "gpt-oss-120b", "gpt-oss-20b", "olmoe-1b-7b"]

/// Seed 004's dense GPT-3 7B (d_model 4096, 32 layers, d_ff 16384).
private let gpt3Dense = Data(#"{"n_embd": 4096, "n_layer": 32, "n_head": 32, "d_ff": 16384}"#.utf8)

@Suite struct CostModelTests {
    /// `total_params` equals `sum(p.numel())` of the transformers 5.23 model built on the meta device.
    @Test(arguments: flagships)
    func totalMatchesTransformers(name: String) throws {
        let expected = try #require(try expectedParams()[name])
        let shape = try ModelShape(contentsOf: costFixturesDirectory + "/\(name).json")
        #expect(ParameterCount(shape).total == expected.total_params)
    }

    /// Active parameters in the model card's convention (embedding table counted, except GPT-OSS whose
    /// card leaves the input embedding out) are within 5% of the card's figure.
    @Test(arguments: flagships)
    func activeNearModelCard(name: String) throws {
        let expected = try #require(try expectedParams()[name])
        let count = ParameterCount(try ModelShape(contentsOf: costFixturesDirectory + "/\(name).json"))
        #expect(count.convention == (name.hasPrefix("gpt-oss") ? .withoutInputEmbedding : .withEmbeddings))
        let ratio = Double(count.active) / expected.card_active_params
        #expect(abs(ratio - 1) < 0.05, "\(name): \(count.active) vs card \(expected.card_active_params)")
    }

    @Test func deepSeekLayerPattern() throws {
        let count = ParameterCount(try ModelShape(contentsOf: costFixturesDirectory + "/deepseek-v3.json"))
        #expect(count.layers.count == 61)
        #expect(count.layers.prefix(3).allSatisfy { $0.kind == .dense })
        #expect(count.layers.dropFirst(3).allSatisfy { $0.kind == .moe })
    }

    @Test func gptOSSExpertsAreMXFP4() throws {
        let shape = try ModelShape(contentsOf: costFixturesDirectory + "/gpt-oss-120b.json")
        #expect(shape.expertDType == .mxfp4)
        let work = WorkEstimate(shape, tokens: 1)
        // gate_up [H, 2F] + bias 2F, down [F, H] + bias H, at 4.25 bits per weight.
        #expect(work.expertWeightBytes == Double(2880 * 5760 + 5760 + 2880 * 2880 + 2880) * 4.25 / 8)
    }

    /// Seed 004's GPT-3 7B MoE: 64 experts, balanced → d_ff_expert 256, ≈ 2.1 M parameters per expert.
    @Test func seed004GPT3Example() throws {
        let shape = try ModelShape(denseJSON: gpt3Dense, path: "gpt3", experts: 64, topK: 2, scaling: .balanced)
        #expect(shape.moe.expertIntermediateSize == 256)
        let count = ParameterCount(shape)
        #expect(count.parametersPerExpert == 2_097_152)  // 2·4096·256 ≈ 2.1 M
        let layer = try #require(count.layers.first)
        #expect(layer.routedExperts == 134_217_728)  // all 64 experts ≈ 134.2 M
        #expect(layer.router == 262_144)  // ≈ 0.26 M
        #expect(layer.attention == 67_108_864)  // ≈ 67.1 M
        #expect(abs(Double(layer.total) / 201.6e6 - 1) < 0.005)  // ≈ 201.6 M per layer
        #expect(abs(Double(layer.active) / 71.6e6 - 1) < 0.005)  // ≈ 71.6 M active per token (top-2)
        let work = WorkEstimate(shape, tokens: 512)
        #expect(abs(work.expertWeightBytes / 4.2e6 - 1) < 0.01)  // ≈ 4.2 MB per expert in BF16
        // ≈ 31 K load cycles per expert on the PIM profile (seed: "~31,000").
        let cycles = try #require(try HardwareProfile.named("pim").loadCycles(bytes: work.expertWeightBytes))
        #expect(abs(cycles / 31_000 - 1) < 0.1)
    }

    /// Seed 004's token slicing: 50 experts × 512 tokens at full width = 1.9 GB → 40–80 MB; dense ≈ 38 MB.
    @Test func seed004TokenSlicing() throws {
        let shape = try ModelShape(denseJSON: gpt3Dense, path: "gpt3", experts: 50, topK: 2, scaling: .capacity)
        let work = WorkEstimate(shape, tokens: 512)
        #expect(abs(work.activationBytesUnsliced / 1.9e9 - 1) < 0.02)
        #expect(work.activationBytesSliced > 40e6 && work.activationBytesSliced < 80e6)
        #expect(abs(work.activationBytesDense / 38e6 - 1) < 0.02)
    }

    @Test func ffnScalingWidths() {
        #expect(FFNScaling.balanced.expertWidth(denseWidth: 16384, experts: 64) == 256)
        #expect(FFNScaling.compute.expertWidth(denseWidth: 16384, experts: 64) == 2048)
        #expect(FFNScaling.capacity.expertWidth(denseWidth: 16384, experts: 64) == 16384)
        #expect(FFNScaling.compute.expertWidth(denseWidth: 1000, experts: 2) == 707)
        #expect(FFNScaling.balanced.expertWidth(denseWidth: 8, experts: 64) == 1)
    }

    @Test func expectedExpertsUnderUniformRouting() {
        let uniform = RoutingModel.uniform
        #expect(uniform.expectedExpertsTouched(experts: 8, k: 2, tokens: 1) == 2)
        #expect(abs(uniform.expectedExpertsTouched(experts: 8, k: 2, tokens: 2) - 8 * (1 - 0.75 * 0.75)) < 1e-12)
        #expect(uniform.expectedExpertsTouched(experts: 4, k: 4, tokens: 3) == 4)
        #expect(uniform.expectedExpertsTouched(experts: 64, k: 8, tokens: 0) == 0)
        #expect(abs(uniform.expectedExpertsTouched(experts: 128, k: 8, tokens: 512) - 128) < 1e-6)
        // A skew touches fewer experts than uniform routing for the same batch; inclusion still sums to K.
        let skewed = RoutingModel.zipf(exponent: 1.2)
        #expect(skewed.expectedExpertsTouched(experts: 64, k: 4, tokens: 16) < uniform.expectedExpertsTouched(experts: 64, k: 4, tokens: 16))
        #expect(abs(skewed.inclusionProbabilities(experts: 64, k: 4).reduce(0, +) - 4) < 1e-9)
        #expect(skewed.inclusionProbabilities(experts: 64, k: 4).allSatisfy { $0 <= 1 })
    }

    @Test func rooflineAndAllToAll() throws {
        let shape = try ModelShape(contentsOf: costFixturesDirectory + "/mixtral-8x7b.json")
        let one = WorkEstimate(shape, tokens: 16, devices: 1)
        let four = WorkEstimate(shape, tokens: 16, devices: 4)
        #expect(one.allToAllBytes == 0)
        #expect(four.allToAllBytes == 2 * 16 * 2 * 4096 * 2 * 0.75)
        let layer = try #require(one.moeLayer)
        let h100 = try HardwareProfile.named("h100")
        let time = LayerTime(layer, on: h100)
        #expect(!time.isComputeBound)  // 16 tokens read ~all 8 experts: memory bound
        #expect(abs(time.predictedMilliseconds - (layer.bytes / h100.memoryBandwidth + 3 * h100.launchOverhead) * 1e3) < 1e-9)
    }

    @Test func unknownHardwareAndBadConfigAreTypedErrors() {
        #expect(throws: CostError.self) { try HardwareProfile.named("no-such-device") }
        #expect(throws: CostError.self) {
            try ModelShape(denseJSON: Data(#"{"n_layer": 2}"#.utf8), path: "x", experts: 4, topK: 1, scaling: .balanced)
        }
        #expect(throws: CostError.self) { try ModelShape(contentsOf: costFixturesDirectory + "/missing.json") }
    }
}
