import Foundation
import Testing
@testable import MoEKit
import MoETestSupport

/// Files written by llama.cpp's own writer (gguf-py), by scripts/make_gguf_fixtures.py.
@Suite("GGUF files from gguf-py's GGUFWriter")
struct GGUFFixtureTests {
    static let directory = fixturesDirectory + "/gguf"

    /// The script's formula: value(e, r, c) = ((7e + 3r + c + seed) mod 17 − 8) / 8.
    static func pattern(_ e: Int, _ r: Int, _ c: Int, seed: Int = 0) -> Float { Float((7 * e + 3 * r + c + seed) % 17 - 8) / 8 }

    @Test("qwen3moe with Q8_0 experts and general.alignment = 64")
    func qwen3moe() throws {
        let model = try GGUFModel(path: Self.directory + "/qwen3moe-q8_0.gguf")
        let file = model.shards.files[0]
        #expect(file.version == 3 && file.alignment == 64 && file.dataOffset % 64 == 0)
        #expect(file.tensors.allSatisfy { $0.offset % 64 == 0 })
        #expect(try file.metadata.string("general.name") == "moekit-qwen3moe-tiny")
        var expected = ModelConfig(architecture: .qwen3MoE,
                                   moe: MoEConfig(hiddenSize: 64, expertCount: 4, expertsPerToken: 2, expertIntermediateSize: 32,
                                                  router: .softmaxTopK(normalizesTopKWeights: true)), layerCount: 1)
        expected.declaredDType = "Q8_0"
        #expect(model.config == expected)
        #expect(file.info("token_embd.weight")?.type == .f16)

        guard case .moe(let block) = try model.layer(0).feedForward else { Issue.record("not MoE"); return }
        #expect(block.router.type == .f32 && block.router.shape == [4, 64])
        let router = try #require(block.router.floats())
        #expect(router == (0..<4).flatMap { r in (0..<64).map { c in Self.pattern(0, r, c, seed: 5) } })
        for (view, seed) in [(block.gate, 0), (block.up, 1), (block.down, 2)] {
            #expect(view.type == .q8_0)
            #expect(view.shape == (seed == 2 ? [4, 64, 32] : [4, 32, 64]))
            #expect(view.rowStride == view.columns / 32 * 34 && view.matrixStride == view.rows * view.rowStride)
            // Decode Q8_0 (d: F16, then 32 int8) and compare with the formula, expert by expert.
            var worst: Float = 0
            for e in 0..<view.matrixCount {
                let matrix = try #require(view.matrix(e))
                for r in 0..<view.rows {
                    for c in 0..<view.columns {
                        let block = r * view.rowStride + (c / 32) * 34
                        let d = WeightDecoding.f16(matrix.loadUnaligned(fromByteOffset: block, as: UInt16.self))
                        let q = Int8(bitPattern: matrix[block + 2 + c % 32])
                        worst = max(worst, abs(d * Float(q) - Self.pattern(e, r, c, seed: seed)))
                    }
                }
            }
            #expect(worst < 0.005, "\(view.name): max |Q8_0 − value| = \(worst)")
        }
    }

    @Test("deepseek2 split in two by the writer: dense block 0, sigmoid grouped routing, shared expert, exp_probs_b")
    func deepseek2Split() throws {
        let first = Self.directory + "/deepseek2-00001-of-00002.gguf"
        let second = Self.directory + "/deepseek2-00002-of-00002.gguf"
        let model = try GGUFModel(path: second)
        #expect(model.shards.files.map(\.path) == [first, second])
        let router = RouterKind.sigmoidGroupedTopK(groupCount: 2, keptGroupCount: 1, normalizesTopKWeights: true, scalingFactor: 2.5)
        var expected = ModelConfig(architecture: .deepseekV3,
                                   moe: MoEConfig(hiddenSize: 32, expertCount: 4, expertsPerToken: 2, expertIntermediateSize: 16, router: router,
                                                  sharedExpert: SharedExpertConfig(intermediateSize: 16, gate: .none)),
                                   layerCount: 2, sparseLayers: [false, true], denseIntermediateSize: 48)
        expected.declaredDType = "F32"
        #expect(model.config == expected)

        guard case .dense(let mlp) = try model.layer(0).feedForward else { Issue.record("block 0 not dense"); return }
        #expect(mlp.gate.shape == [48, 32] && mlp.down.shape == [32, 48] && mlp.gate.path == first)
        #expect(mlp.down.floats() == (0..<32).flatMap { r in (0..<48).map { c in Self.pattern(0, r, c, seed: 5) } })

        guard case .moe(let block) = try model.layer(1).feedForward else { Issue.record("block 1 not MoE"); return }
        #expect(block.scoreCorrectionBias?.floats() == (0..<4).map { Float($0) / 10 })
        #expect(block.gate.path == first && block.down.path == second)
        #expect(block.gate.floats() == (0..<4).flatMap { e in (0..<16).flatMap { r in (0..<32).map { c in Self.pattern(e, r, c, seed: 0) } } })
        #expect(block.down.floats() == (0..<4).flatMap { e in (0..<32).flatMap { r in (0..<16).map { c in Self.pattern(e, r, c, seed: 2) } } })
        #expect(block.shared?.up.shape == [16, 32] && block.shared?.up.path == second)
    }
}
