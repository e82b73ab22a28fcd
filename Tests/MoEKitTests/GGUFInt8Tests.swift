import Testing
@testable import MoEKit
import MoETestSupport

/// `--compute int8` (``ComputeMode/int8``) on the GGUF goldens: llama.cpp's arithmetic, so near transformers'
/// exact output rather than within 1e-5, and as deterministic as the exact mode.
@Suite("int8 compute on the GGUF goldens")
struct GGUFInt8Tests {
    /// The golden layer's input `[T, H]` and transformers' output.
    static func golden(_ golden: GoldenCase) throws -> (input: Tensor<Float>, expected: Tensor<Float>) {
        let file = try SafetensorsFile(path: fixturesDirectory + "/" + golden.fixture + "/layer\(golden.layer).safetensors")
        let input = try file.tensor("hidden_states").floats(named: "hidden_states")
        let expected = try file.tensor("expected_hidden_states").floats(named: "expected_hidden_states")
        let h = try #require(input.shape.last)
        return (try input.reshaped([input.count / h, h]), try expected.reshaped([input.count / h, h]))
    }

    /// The ggml block types of a layer's routed experts (gate, down) whose panels run the int8 kernels.
    static func int8Panels(_ block: FeedForward) -> [PanelMatrices.Element] {
        guard case .moe(let moe) = block else { return [] }
        return [moe.experts.gateUp.element, moe.experts.down.element].filter { if case .int8Blocks = $0 { true } else { false } }
    }

    @Test("int8 compute stays within 8-bit activations' error of transformers' output", arguments: GoldenCase.gguf)
    func nearExact(_ golden: GoldenCase) throws {
        let (input, expected) = try Self.golden(golden)
        let model = try GGUFModel(path: golden.checkpointPath)
        let block = try model.feedForward(layer: golden.layer, threads: 2, compute: .int8)
        let output = try block.forward(input, variant: .fast, threads: 2).0
        let error = relativeError(output, expected)
        // Q8_0 / Q8_K activations: half a code step is ≤ 1/254 of a block's largest input; the sums average it down.
        #expect(error <= 3e-2, "max|y − y_ref| / max|y_ref| = \(error)")
        if case .moe(let moe) = block, case .ggml(let type) = moe.experts.gateUp.format, Int8Dot.supports(type) {
            #expect(!Self.int8Panels(block).isEmpty, "\(type) has int8 kernels but the experts were not packed for them")
        }
    }

    @Test("int8 compute: bit-identical across thread counts and batch compositions", arguments: GoldenCase.gguf.filter(\.isMoE))
    func deterministic(_ golden: GoldenCase) throws {
        let (input, _) = try Self.golden(golden)
        let block = try GGUFModel(path: golden.checkpointPath).feedForward(layer: golden.layer, threads: 2, compute: .int8)
        let one = try block.forward(input, variant: .fast, threads: 1).0
        let two = try block.forward(input, variant: .fast, threads: 2).0
        #expect(one.storage.map(\.bitPattern) == two.storage.map(\.bitPattern), "1 thread vs 2")
        let h = input.shape[1]
        for t in [0, input.shape[0] - 1] {
            let alone = try block.forward(try input.rows(t..<(t + 1)), variant: .fast, threads: 2).0
            #expect(alone.storage.map(\.bitPattern) == Array(one.storage[(t * h)..<((t + 1) * h)]).map(\.bitPattern), "token \(t) alone vs in the batch")
        }
    }
}
