import Foundation
import MoEKit
import MoETestSupport
import Testing

/// A bad invocation and the words its one-line error must contain.
struct BadInvocation: Sendable, CustomTestStringConvertible {
    var name: String
    var expected: String
    /// Prepares files in the scratch folder and returns the arguments.
    var prepare: @Sendable (ScratchDirectory) throws -> [String]
    var testDescription: String { name }

    static let olmoeInput = fixturesDirectory + "/olmoe/layer0.safetensors"

    static func forward(_ name: String, _ expected: String, layer: Int = 0, edit: @escaping @Sendable (String) throws -> Void) -> BadInvocation {
        BadInvocation(name: name, expected: expected) { scratch in
            let dir = try scratch.copyCheckpoint("olmoe")
            try edit(dir)
            return ["forward", "--checkpoint", dir, "--layer", "\(layer)", "--input", olmoeInput, "--output", scratch.path + "/out.safetensors"]
        }
    }

    static func route(_ name: String, _ expected: String, experts: Int = 8, devices: Int = 1,
                      _ tensors: @escaping @Sendable () -> [(name: String, tensor: AnyTensor)]) -> BadInvocation {
        BadInvocation(name: name, expected: expected) { scratch in
            let input = scratch.path + "/in.safetensors"
            try SafetensorsWriter.write(tensors(), to: input)
            return ["route", "--input", input, "--num-experts", "\(experts)", "--devices", "\(devices)", "--output", scratch.path + "/out.safetensors"]
        }
    }

    static func editConfig(_ dir: String, _ change: (inout String) -> Void) throws {
        var text = try String(contentsOfFile: dir + "/config.json", encoding: .utf8)
        change(&text)
        try text.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
    }

    static func routes(ids: [Int64], weights: [Float], rows: Int = 2, k: Int = 2) -> [(name: String, tensor: AnyTensor)] {
        [("selected_experts", .i64(try! Tensor(shape: [rows, k], storage: ids))),
         ("routing_weights", .f32(try! Tensor(shape: [weights.count / k, k], storage: weights)))]
    }

    static let all: [BadInvocation] = [
        forward("truncated weights", "model.safetensors") { dir in
            let path = dir + "/model.safetensors"
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            try data.prefix(data.count - 100).write(to: URL(fileURLWithPath: path))
        },
        forward("header that lies about its size", "header claims") { dir in
            let path = dir + "/model.safetensors"
            var data = try Data(contentsOf: URL(fileURLWithPath: path))
            data.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Data($0) })
            try data.write(to: URL(fileURLWithPath: path))
        },
        forward("config without hidden_size", "missing required key 'hidden_size'") { dir in
            try editConfig(dir) { $0 = $0.replacingOccurrences(of: "\"hidden_size\"", with: "\"hidden_sizes\"") }
        },
        forward("config that is not JSON", "config.json") { dir in
            try "this is not json".write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        },
        forward("top-k larger than the experts", "num_experts_per_tok = 9") { dir in
            try editConfig(dir) { $0 = $0.replacingOccurrences(of: "\"num_experts_per_tok\": 2", with: "\"num_experts_per_tok\": 9") }
        },
        forward("wrong hidden size", "has shape") { dir in
            try editConfig(dir) { $0 = $0.replacingOccurrences(of: "\"hidden_size\": 32", with: "\"hidden_size\": 48") }
        },
        forward("layer out of range", "out of range", layer: 5) { _ in },
        forward("missing weights file", "no model.safetensors") { dir in
            try FileManager.default.removeItem(atPath: dir + "/model.safetensors")
        },
        route("duplicate expert", "twice") { routes(ids: [1, 1, 2, 3], weights: [0.5, 0.5, 0.5, 0.5]) },
        route("expert out of range", "outside 0..<8") { routes(ids: [1, 8, 2, 3], weights: [0.5, 0.5, 0.5, 0.5]) },
        route("negative expert", "outside 0..<8") { routes(ids: [-1, 0, 2, 3], weights: [0.5, 0.5, 0.5, 0.5]) },
        route("NaN weight", "not finite") { routes(ids: [1, 0, 2, 3], weights: [0.5, .nan, 0.5, 0.5]) },
        route("infinite weight", "not finite") { routes(ids: [1, 0, 2, 3], weights: [0.5, 0.5, .infinity, 0.5]) },
        route("mismatched shapes", "shape") { routes(ids: [1, 0, 2, 3], weights: [0.5, 0.5]) },
        route("experts not divisible by devices", "divisible", devices: 3) { routes(ids: [1, 0, 2, 3], weights: [0.5, 0.5, 0.5, 0.5]) },
        route("missing routing_weights", "routing_weights") { [("selected_experts", .i64(try! Tensor(shape: [1, 2], storage: [0, 1])))] },
        BadInvocation(name: "truncated route input", expected: "in.safetensors") { scratch in
            let input = scratch.path + "/in.safetensors"
            try SafetensorsWriter.write(routes(ids: [1, 0, 2, 3], weights: [0.5, 0.5, 0.5, 0.5]), to: input)
            let data = try Data(contentsOf: URL(fileURLWithPath: input))
            try data.prefix(data.count - 3).write(to: URL(fileURLWithPath: input))
            return ["route", "--input", input, "--num-experts", "8", "--output", scratch.path + "/out.safetensors"]
        },
        BadInvocation(name: "unknown preset", expected: "'nope' is invalid for '--preset <preset>'") { _ in ["run", "--preset", "nope"] },
        BadInvocation(name: "run on a dense layer", expected: "dense layer") { _ in
            ["run", "--checkpoint", fixturesDirectory + "/qwen2-moe/checkpoint", "--layer", "1"]
        },
    ]
}

@Suite("moe command line")
struct CLITests {
    @Test("moe forward matches transformers on every fixture layer", arguments: GoldenCase.all)
    func forwardMatchesGolden(_ golden: GoldenCase) throws {
        let scratch = try ScratchDirectory()
        let dir = fixturesDirectory + "/" + golden.fixture
        let output = scratch.path + "/out.safetensors"
        let result = try MoEProcess.run(["forward", "--checkpoint", golden.checkpointPath, "--layer", "\(golden.layer)",
                                         "--input", dir + "/layer\(golden.layer).safetensors", "--output", output, "--threads", "2"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let produced = try SafetensorsFile(path: output)
        let expected = try SafetensorsFile(path: dir + "/layer\(golden.layer).safetensors").tensor("expected_hidden_states").floats(named: "y")
        let y = try produced.tensor("hidden_states").floats(named: "hidden_states")
        #expect(y.shape == expected.shape)
        #expect(relativeError(y, expected) <= 1e-5)
        #expect(produced.contains("topk_ids") == golden.isMoE)
        if golden.isMoE { #expect(produced.entries["topk_ids"]?.dtype == .i32) }
    }

    @Test("bad input ends in one clear line and exit code 1", arguments: BadInvocation.all)
    func refusesBadInput(_ bad: BadInvocation) throws {
        try bad.expectRefused()
    }

    @Test("moe route writes the seed tensors")
    func routeWritesTables() throws {
        let scratch = try ScratchDirectory()
        let input = scratch.path + "/in.safetensors", output = scratch.path + "/out.safetensors"
        try SafetensorsWriter.write([("selected_experts", .u32(try Tensor(shape: [3, 2], storage: [0, 3, 1, 3, 2, 0]))),
                                     ("routing_weights", .bf16(try Tensor(shape: [3, 2], storage: [0.6, 0.4, 0.7, 0.3, 0.5, 0.5].map { BFloat16(Float($0)) })))],
                                    to: input)
        let result = try MoEProcess.run(["route", "--input", input, "--num-experts", "4", "--devices", "2", "--output", output])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let file = try SafetensorsFile(path: output)
        #expect(try file.tensor("num_routed_tokens") == .u32(try Tensor(shape: [2, 2], storage: [2, 1, 1, 2])))
        let pad = MoERoutingTensors.paddingToken
        #expect(try file.tensor("routed_tokens") == .u32(try Tensor(shape: [2, 2, 3], storage: [0, 2, pad, 1, pad, pad, 2, pad, pad, 0, 1, pad])))
        #expect(file.entries["mapping"]?.shape == [3, 4])
        #expect(file.entries["routed_token_weights"]?.dtype == .f32)
    }

    @Test("moe run and inspect print their reports", arguments: ["run", "inspect"])
    func reports(_ command: String) throws {
        let args = command == "run"
            ? ["run", "--checkpoint", fixturesDirectory + "/qwen2-moe/checkpoint", "--tokens", "16", "--repeats", "1", "--check-tokens", "4", "--json"]
            : ["inspect", "--checkpoint", fixturesDirectory + "/qwen2-moe/checkpoint", "--json"]
        let result = try MoEProcess.run(args)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let json = try #require(object)
        if command == "run" {
            #expect((json["max_rel_diff"] as? Double).map { $0 <= 1e-5 } == true)
            #expect((json["tokens_per_expert"] as? [Int])?.reduce(0, +) == 16 * 2)
            #expect(json["source"] as? String == fixturesDirectory + "/qwen2-moe/checkpoint layer 0 (qwen2_moe)")
        } else {
            #expect(json["architecture"] as? String == "qwen2_moe")
            #expect(json["layers"] as? [String] == ["moe", "dense", "moe"])
            #expect((json["unused_tensors"] as? [String])?.contains("lm_head.weight") == true)
        }
    }
}

@Suite("moe bench")
struct BenchCLITests {
    @Test("the smoke suite writes the JSON keys of the CLI contract")
    func smokeSuiteJSON() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.path + "/bench.json"
        let result = try MoEProcess.run(["bench", "--suite", "smoke", "--repeats", "1", "--threads", "2", "--json", path])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        let json = try #require(object)
        let machine = try #require(json["machine"] as? [String: Any])
        let peak = try #require(machine["gemm_gflops"] as? Double)
        let own = try #require(machine["moekit_gemm_gflops"] as? Double)
        #expect(peak > 0 && peak >= own)
        // OpenBLAS's rate when the library is installed, null otherwise; the peak is the better of the two.
        #expect(machine.keys.contains("openblas_gemm_gflops"))
        if let openBLAS = machine["openblas_gemm_gflops"] as? Double { #expect(peak == max(own, openBLAS)) } else { #expect(peak == own) }
        #expect((machine["mem_gbs"] as? Double).map { $0 > 0 } == true)
        let cases = try #require(json["cases"] as? [[String: Any]])
        #expect(cases.count == 8)  // T = 1, 8 × f32, bf16, bf16 compute; T = 1 × mxfp4, bf16 (quantized shapes)
        for c in cases {
            for key in ["name", "tokens", "dtype", "ms", "gflops", "pct_gemm_peak", "weight_gbs", "pct_mem_bw", "hidden",
                        "intermediate", "experts", "top_k", "speedup_vs_reference"] {
                #expect(c[key] != nil, "case lacks \(key)")
            }
            #expect((c["name"] as? String)?.contains("smoke") == true)
            #expect(["f32", "bf16", "mxfp4"].contains(c["dtype"] as? String ?? ""))
            #expect(["f32", "bf16"].contains(c["compute"] as? String ?? ""))
        }
        #expect(result.stdout.contains("GEMM peak"))
    }
}

extension BadInvocation {
    /// Runs the invocation in a fresh scratch folder and expects the CLI contract's refusal: exit code 1, one
    /// line on stderr starting `moe: error: ` and containing ``expected``, no signal.
    func expectRefused() throws {
        let scratch = try ScratchDirectory()
        let result = try MoEProcess.run(try prepare(scratch))
        #expect(result.exitedNormally, "terminated by a signal")
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(result.stderr)")
        #expect(result.stderr.hasPrefix("moe: error: "))
        #expect(result.stderr.contains(expected), "stderr: \(result.stderr)")
    }
}
