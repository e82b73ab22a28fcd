import Foundation
@testable import MoEKit
import MoETestSupport
import Testing

/// Weights read in place (``WeightResidency/mapped``) against the same weights packed once: the kernels see
/// the same panel bytes, so every output must be the same bits — on the golden checkpoints, across the
/// kernels' block boundaries, in tensor-parallel slices — and nothing may be allocated for the weights.
@Suite("Weights read in place")
struct MappedWeightsTests {
    /// Whether two outputs are the same bits (a Bool, so a failure does not diff 10⁵-element arrays).
    static func same(_ a: Tensor<Float>, _ b: Tensor<Float>) -> Bool {
        a.shape == b.shape && zip(a.storage, b.storage).allSatisfy { $0.bitPattern == $1.bitPattern }
    }

    /// The safetensors goldens (the GGUF ones hold block-quantized experts, which are always packed).
    static let checkpoints = GoldenCase.all.filter { !$0.isGGUF }

    @Test("a checkpoint read in place gives the packed bits: whole batch, one token, 1 and 2 threads, reference",
          arguments: checkpoints)
    func sameBitsAsPacked(_ golden: GoldenCase) throws {
        let checkpoint = try Checkpoint(directory: golden.checkpointPath)
        let packed = try checkpoint.feedForward(layer: golden.layer, residency: .packed)
        let mapped = try checkpoint.feedForward(layer: golden.layer, residency: .mapped)
        let input = try SafetensorsFile(path: fixturesDirectory + "/" + golden.fixture + "/layer\(golden.layer).safetensors")
            .tensor("hidden_states").floats(named: "hidden_states")
        let h = packed.hiddenSize
        let x = try input.reshaped([input.count / h, h])
        if case .moe(let block) = mapped {
            let quantized = block.experts.format.isQuantized
            #expect(block.experts.residency == (quantized ? .packed : .mapped))
            if !quantized {
                guard case .moe(let packedBlock) = packed else { Issue.record("packed layer is not MoE"); return }
                // Exactly the stored bytes (+ F32 biases); packing pads each matrix to whole 32-column panels.
                let w = block.experts
                let element = w.format == .f32 ? 4 : 2
                let biases = 4 * [w.gateBias, w.upBias, w.downBias].reduce(0) { $0 + ($1?.count ?? 0) }
                #expect(w.residentBytes == w.expertCount * w.hiddenSize * w.intermediateSize * (w.kind.isGated ? 3 : 2) * element + biases)
                #expect(w.residentBytes <= packedBlock.experts.residentBytes)
                #expect(block.experts.gateUp.values.count == 0 && block.experts.down.values.count == 0)
            }
        }
        for (variant, threads) in [(KernelVariant.fast, 2), (.fast, 1), (.reference, 1)] {
            let want = try packed.forward(x, variant: variant, threads: threads).hiddenStates
            let got = try mapped.forward(x, variant: variant, threads: threads).hiddenStates
            #expect(Self.same(got, want), "\(variant), \(threads) threads")
        }
        let one = try x.rows(0..<1)
        #expect(Self.same(try mapped.forward(one, threads: 2).hiddenStates, try packed.forward(one, threads: 2).hiddenStates))
    }

    @Test("tensor-parallel slices of weights read in place are views with the packed bits", arguments: ["mixtral-bf16", "qwen3-moe"])
    func tensorParallel(_ fixture: String) throws {
        let checkpoint = try Checkpoint(directory: fixturesDirectory + "/" + fixture + "/checkpoint")
        guard case .moe(let packed) = try checkpoint.feedForward(layer: 1, residency: .packed),
              case .moe(let mapped) = try checkpoint.feedForward(layer: 1, residency: .mapped) else {
            Issue.record("layer 1 of \(fixture) is not MoE")
            return
        }
        let input = try SafetensorsFile(path: fixturesDirectory + "/" + fixture + "/layer1.safetensors")
            .tensor("hidden_states").floats(named: "hidden_states")
        let h = packed.experts.hiddenSize
        let x = try input.reshaped([input.count / h, h])
        let mesh = try MeshShape(parsing: "2x2")
        let want = try ExpertParallelMoE(block: packed, mesh: mesh).forward(x, threads: 2).output.hiddenStates
        let got = try ExpertParallelMoE(block: mapped, mesh: mesh).forward(x, threads: 2).output.hiddenStates
        #expect(Self.same(got, want))
        let slice = try TensorParallelSlice(mapped.experts, rank: 1, of: 2)
        #expect(slice.intermediate.residency == .mapped && slice.intermediate.gateUp.values.count == 0)
    }

    @Test("across the kernels' block boundaries (row blocks, K-blocks, BF16 pairs), F32 and BF16 compute",
          arguments: [(ComputeMode.f32, WeightFormat.f32), (.f32, .bf16), (.f32, .f16), (.bf16, .bf16)])
    func boundaries(_ compute: ComputeMode, _ format: WeightFormat) throws {
        var g = SeededGenerator(seed: 77)
        // 400 rows on expert 0 (three row blocks), gate/up depth 600 (three K-blocks; 300 pairs: two), down depth
        // 300 (two K-blocks), F = 300 and H = 600 not multiples of the 32-column panel (partial last panels).
        let (e, h, f, t) = (3, 600, 300, 400)
        func stack(_ shape: [Int]) throws -> StoredMatrices {
            try StoredMatrices(quantizing: randomTensor(shape, std: 1 / Float(shape[2]).squareRoot(), generator: &g), as: format)
        }
        let (gate, up, down) = (try stack([e, f, h]), try stack([e, f, h]), try stack([e, h, f]))
        let packed = try ExpertWeights(kind: .gated(.silu), gate: gate, up: up, down: down, compute: compute, residency: .packed)
        let mapped = try ExpertWeights(kind: .gated(.silu), gate: gate, up: up, down: down, compute: compute, residency: .mapped)
        #expect(mapped.residency == .mapped && packed.residency == .packed)
        let ids = (0..<t).map { [0, 1 + $0 % 2] }
        let plan = RoutingPlan(try routes(ids, ids.map { _ in [Float(0.7), 0.3] }, experts: e))
        let x = randomTensor([t, h], generator: &g)
        for threads in [1, 3] {
            let want = try RoutedExperts.run(.fast, input: x, plan: plan, experts: packed, threads: threads)
            let got = try RoutedExperts.run(.fast, input: x, plan: plan, experts: mapped, threads: threads)
            #expect(Self.same(got, want), "\(threads) threads")
        }
        let alone = RoutingPlan(try routes([ids[5]], [[0.7, 0.3]], experts: e))
        let one = try x.rows(5..<6)
        #expect(Self.same(try RoutedExperts.run(.fast, input: one, plan: alone, experts: mapped, threads: 2),
                          try RoutedExperts.run(.fast, input: one, plan: alone, experts: packed, threads: 2)))
        var row = [Float](repeating: .nan, count: h), packedRow = [Float](repeating: .nan, count: h)
        mapped.decodeRow(.up, expert: 2, row: f - 1, into: &row)
        packed.decodeRow(.up, expert: 2, row: f - 1, into: &packedRow)
        #expect(row.map(\.bitPattern) == packedRow.map(\.bitPattern))
    }

    @Test("a NaN weight read in place is refused naming its tensor, as when packed")
    func nonFinite() throws {
        let dir = try copyFixtureCheckpoint("mixtral-bf16")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let name = "model.layers.1.block_sparse_moe.experts.5.w2.weight"
        try EditableSafetensors.rewrite(dir + "/model.safetensors") { try $0.edit(name) { $0.bytes[6] = 0xC0; $0.bytes[7] = 0x7F } }
        let checkpoint = try Checkpoint(directory: dir)
        for residency in WeightResidency.allCases {
            let error = #expect(throws: CheckpointError.self) { try checkpoint.feedForward(layer: 1, residency: residency) }
            #expect(error == .nonFiniteWeight(name: name, file: dir + "/model.safetensors", expert: 5), "\(residency)")
        }
    }
}
