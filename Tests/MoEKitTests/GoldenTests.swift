import Testing
import MoEKit
import MoETestSupport
import Foundation

@Suite("Golden parity with transformers")
struct GoldenTests {
    @Test("the manifest lists every architecture")
    func manifestCoversArchitectures() throws {
        let names = Set(GoldenCase.all.map(\.fixture))
        for arch in ["mixtral", "qwen2-moe", "qwen3-moe", "deepseek-v3", "gpt-oss", "olmoe", "llama4"] {
            #expect(names.contains { $0.hasPrefix(arch) }, "no fixture for \(arch)")
        }
        #expect(names.contains { $0.hasSuffix("bf16") })
    }

    @Test("the GGUF goldens cover every llama.cpp architecture family MoEKit computes and every ggml block type")
    func ggufManifestCoversTypes() throws {
        struct Manifest: Decodable {
            struct Fixture: Decodable { var gguf_architecture: String; var ggml_types: [[String: String]] }
            var fixtures: [Fixture]
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturesDirectory + "/manifest-gguf.json"))
        let manifest = try JSONDecoder().decode(Manifest.self, from: data)
        let types = Set(manifest.fixtures.flatMap { $0.ggml_types.flatMap(\.values) })
        for type in GGMLBlockType.allCases {
            let name = GGMLType(rawValue: type.ggmlTypeID)!.description
            #expect(types.contains(name), "no GGUF golden stores \(name)")
        }
        #expect(Set(manifest.fixtures.map(\.gguf_architecture)).isSuperset(of: ["qwen3moe", "deepseek2", "llama", "gpt-oss", "qwen2moe"]))
        #expect(GoldenCase.gguf.contains { $0.checkpoint.hasSuffix("-00001-of-00002.gguf") }, "no split GGUF golden")
        #expect(GoldenCase.gguf.contains { !$0.isMoE }, "no dense GGUF golden layer")
    }

    @Test("feed-forward output and routing match transformers", arguments: GoldenCase.all, KernelVariant.allCases)
    func layerMatches(_ golden: GoldenCase, variant: KernelVariant) throws {
        let dir = fixturesDirectory + "/" + golden.fixture
        let block = try golden.feedForward()
        let file = try SafetensorsFile(path: dir + "/layer\(golden.layer).safetensors")
        let input = try file.tensor("hidden_states").floats(named: "hidden_states")
        let expected = try file.tensor("expected_hidden_states").floats(named: "expected_hidden_states")
        let h = input.shape.last!
        let flat = try input.reshaped([input.count / h, h])
        let (output, moe) = try block.forward(flat, variant: variant, threads: 2)
        let error = relativeError(output, try expected.reshaped(output.shape))
        #expect(error <= 1e-5, "max|y − y_ref| / max|y_ref| = \(error)")
        #expect(golden.isMoE == (moe != nil))
        guard let moe else { return }
        let logits = try file.tensor("router_logits").floats(named: "router_logits")
        #expect(relativeError(moe.routing.logits, try logits.reshaped(moe.routing.logits.shape)) <= 1e-5)
        let ids = try file.tensor("topk_ids").indices(named: "topk_ids")
        let weights = try file.tensor("topk_weights").floats(named: "topk_weights")
        let k = ids.shape.last!
        for t in 0..<(ids.count / k) {
            // Compare as sets (DeepSeek-V3's top-k is unsorted): pair ids with weights, sort by id.
            let ref = (0..<k).map { (ids.storage[t * k + $0], weights.storage[t * k + $0]) }.sorted { $0.0 < $1.0 }
            let got = (0..<k).map { (Int64(moe.routing.expertIDs.storage[t * k + $0]), moe.routing.weights.storage[t * k + $0]) }
                .sorted { $0.0 < $1.0 }
            #expect(ref.map(\.0) == got.map(\.0), "token \(t): experts \(got.map(\.0)) vs transformers \(ref.map(\.0))")
            for (r, g) in zip(ref, got) {
                #expect(abs(r.1 - g.1) <= 1e-5 * max(1, abs(r.1)), "token \(t) expert \(r.0): weight \(g.1) vs \(r.1)")
            }
        }
    }
}
