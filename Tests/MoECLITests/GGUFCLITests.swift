import Foundation
import Testing
@testable import MoEKit
import MoETestSupport

/// `moe forward`, `moe inspect` and `moe run` on GGUF files (`--checkpoint model.gguf`), and the one-line
/// refusals of broken ones.
@Suite("moe with GGUF files")
struct GGUFCLITests {
    @Test("moe inspect --json describes a GGUF file: both architecture names, layers, ggml types per group")
    func inspectJSON() throws {
        let result = try MoEProcess.run(["inspect", "--checkpoint", fixturesDirectory + "/deepseek2-gguf/model.gguf", "--json"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(json["architecture"] as? String == "deepseek_v3")
        #expect(json["gguf_architecture"] as? String == "deepseek2")
        #expect(json["layers"] as? [String] == ["dense", "moe"])
        #expect(json["num_experts"] as? Int == 4 && json["top_k"] as? Int == 2 && json["hidden_size"] as? Int == 256)
        let groups = try #require(json["groups"] as? [[String: Any]])
        #expect(groups.map { $0["group"] as? String } == ["routed experts", "shared expert", "dense MLP", "router", "not loaded"])
        #expect(groups.map { $0["format"] as? String } == ["q4_K+q4_0", "q6_K+q8_0", "q6_K+q8_0", "f32", "f16+f32"])
        // Routed experts: 4 × [32, 256] gate and up in Q4_K (144 bytes per 256), 4 × [256, 32] down in Q4_0 (18 per 32).
        #expect(groups[0]["bytes_on_disk"] as? Int == 2 * 4 * 32 * 144 + 4 * 256 * 18)
        #expect(groups[0]["tensors"] as? Int == 3)
        let dtypes = try #require(json["dtypes"] as? [String: Int])
        #expect(dtypes["Q6_K"] == 4 && dtypes["Q4_K"] == 2)
        #expect((json["unused_tensors"] as? [String])?.contains("output_norm.weight") == true)
    }

    @Test("moe inspect prints the GGUF architecture and the ggml types")
    func inspectText() throws {
        let result = try MoEProcess.run(["inspect", "--checkpoint", fixturesDirectory + "/mixtral-gguf/model-00001-of-00002.gguf"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("architecture mixtral (GGUF llama)"))
        #expect(result.stdout.contains("routed experts  q4_0+q4_1+q5_1"), "\(result.stdout)")
        #expect(result.stdout.contains("token_embd.weight"))
    }

    @Test("moe run takes its block from a GGUF file")
    func runFromGGUF() throws {
        let path = fixturesDirectory + "/gpt-oss-gguf/model.gguf"
        let result = try MoEProcess.run(["run", "--checkpoint", path, "--layer", "1", "--tokens", "8", "--repeats", "1",
                                         "--check-tokens", "4", "--threads", "2", "--json"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(json["source"] as? String == path + " layer 1 (gpt_oss)")
        #expect((json["max_rel_diff"] as? Double).map { $0 <= 1e-5 } == true)
    }

    @Test("moe run --compute int8 runs llama.cpp's arithmetic on a GGUF file and reports its distance from exact")
    func runInt8() throws {
        let path = fixturesDirectory + "/qwen3moe-gguf/model.gguf"
        let result = try MoEProcess.run(["run", "--checkpoint", path, "--tokens", "16", "--repeats", "1", "--check-tokens", "16",
                                         "--threads", "2", "--compute", "int8", "--json"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let difference = try #require(json["max_rel_diff"] as? Double)
        // 8-bit activations: not the exact path's 1e-5, but near it (and not zero: int8 really ran).
        #expect(difference > 1e-5 && difference <= 3e-2, "max_rel_diff \(difference)")
    }

    @Test("moe forward --compute int8 on a GGUF file writes outputs near the exact ones")
    func forwardInt8() throws {
        let scratch = try ScratchDirectory()
        let model = fixturesDirectory + "/qwen3moe-gguf/model.gguf"
        let input = fixturesDirectory + "/qwen3moe-gguf/layer0.safetensors"
        var outputs: [Tensor<Float>] = []
        for compute in ["f32", "int8"] {
            let out = scratch.path + "/\(compute).safetensors"
            let result = try MoEProcess.run(["forward", "--checkpoint", model, "--layer", "0", "--input", input, "--output", out,
                                             "--compute", compute])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            outputs.append(try SafetensorsFile(path: out).tensor("hidden_states").floats(named: "hidden_states"))
        }
        let difference = relativeError(outputs[1], outputs[0])
        #expect(difference > 0 && difference <= 3e-2, "int8 vs exact: \(difference)")
    }

    /// A GGUF model of `arch` (H 64, E 4, K 2, F 32) as `change` leaves it, written into `scratch`; returns its path.
    static func writeModel(_ scratch: ScratchDirectory, _ arch: GGUFArchitecture = .qwen3moe, name: String = "model.gguf",
                           _ change: (inout GGUFTestWriter) -> Void = { _ in }) throws -> String {
        var w = GGUFTestModels.writer(arch)
        w.storeMatrices(gateUp: .q8_0, down: .q8_0)
        change(&w)
        return try w.write(named: name, in: scratch.path)
    }

    /// `hidden_states` [3, 64] in the scratch folder.
    static func input(_ scratch: ScratchDirectory) throws -> String {
        let path = scratch.path + "/in.safetensors"
        var rng = SeededGenerator(seed: 1)
        try SafetensorsWriter.write([("hidden_states", .f32(randomTensor([3, 64], generator: &rng)))], to: path)
        return path
    }

    static func forward(_ name: String, _ expected: String, layer: Int = 0,
                        _ prepare: @escaping @Sendable (ScratchDirectory) throws -> String) -> BadInvocation {
        BadInvocation(name: name, expected: expected) { scratch in
            let model = try prepare(scratch)
            return ["forward", "--checkpoint", model, "--layer", "\(layer)", "--input", try input(scratch),
                    "--output", scratch.path + "/out.safetensors"]
        }
    }

    /// Replaces bytes `range` of the file at `path`.
    static func patch(_ path: String, _ range: Range<Int>, with bytes: [UInt8]) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data.replaceSubrange(range, with: bytes)
        try data.write(to: URL(fileURLWithPath: path))
    }

    static let bad: [BadInvocation] = [
        BadInvocation(name: "--compute int8 without a GGUF checkpoint", expected: "--compute int8 needs a .gguf --checkpoint") { _ in
            ["run", "--preset", "mixtral", "--compute", "int8"]
        },
        forward("a GGUF file cut short", "model.gguf: tensor") { scratch in
            let path = try writeModel(scratch)
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            try data.prefix(data.count - 100).write(to: URL(fileURLWithPath: path))
            return path
        },
        forward("not a GGUF file", "not a GGUF file: magic \"GGUX\"") { scratch in
            let path = try writeModel(scratch)
            try patch(path, 0..<4, with: Array("GGUX".utf8))
            return path
        },
        forward("a tensor count of 2^40", "tensor count 1099511627776 is impossible") { scratch in
            let path = try writeModel(scratch)
            try patch(path, 8..<16, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian, Array.init))
            return path
        },
        forward("GGUF version 1", "GGUF version 1 is not supported") { scratch in
            try writeModel(scratch) { $0.version = 1 }
        },
        forward("a block past the last", "layer 2 is out of range: the model has 2 blocks", layer: 2) { scratch in
            try writeModel(scratch)
        },
        forward("a split model without its second shard", "not found (shard 2 of 2)") { scratch in
            let target = scratch.path + "/model-00001-of-00002.gguf"
            try FileManager.default.copyItem(atPath: fixturesDirectory + "/mixtral-gguf/model-00001-of-00002.gguf", toPath: target)
            return target
        },
        forward("an unknown architecture", "general.architecture = 'mamba' is not supported") { scratch in
            try writeModel(scratch) { $0.set("general.architecture", .string("mamba")) }
        },
        forward("experts that disagree with expert_count", "holds 4 experts but qwen3moe.expert_count = 8") { scratch in
            try writeModel(scratch) { $0.set("qwen3moe.expert_count", .u32(8)) }
        },
        forward("experts in a type MoEKit cannot compute with", "is IQ4_NL: MoEKit computes with") { scratch in
            try writeModel(scratch) { w in
                for p in [GGUFTensorName.Projection.gate, .up] {
                    let i = w.tensors.firstIndex { $0.name == GGUFTensorName.experts(0, p) }!
                    w.tensors[i].type = GGMLType.iq4_NL.rawValue  // same block size and bytes as Q4_0
                    w.tensors[i].data = [UInt8](repeating: 0, count: 4 * 32 * 2 * 18)
                }
            }
        },
        forward("gate and up in two formats", "'blk.0.ffn_up_exps.weight' is Q4_0") { scratch in
            try writeModel(scratch) { $0.store(GGUFTensorName.experts(0, .up), as: .q4_0, seed: 9) }
        },
        forward("a NaN block scale in an expert", "tensor 'blk.1.ffn_gate_exps.weight' (expert 3) holds a NaN or infinite weight", layer: 1) { scratch in
            try writeModel(scratch) { w in
                let i = w.tensors.firstIndex { $0.name == GGUFTensorName.experts(1, .gate) }!
                let block = 3 * 32 * 2 * 34 + 5 * 34  // expert 3, row 2, block 1
                w.tensors[i].data.replaceSubrange(block..<(block + 2), with: [0x00, 0x7C])  // F16 +infinity
            }
        },
        forward("a NaN router weight", "tensor 'blk.0.ffn_gate_inp.weight' element 64 is NaN or infinite") { scratch in
            try writeModel(scratch) { w in
                let i = w.tensors.firstIndex { $0.name == GGUFTensorName.router(0) }!
                w.tensors[i].data.replaceSubrange(256..<260, with: withUnsafeBytes(of: Float.nan.bitPattern.littleEndian, Array.init))
            }
        },
        forward("an input of the wrong width", "hidden_states has shape [3, 64]; expected [T, 32]") { scratch in
            var sizes = GGUFTestModels.Sizes()
            sizes.hidden = 32
            return try GGUFTestModels.writer(.olmoe, sizes).write(named: "model.gguf", in: scratch.path)
        },
        BadInvocation(name: "moe inspect of a GGUF file cut short", expected: "model.gguf: metadata key count 11 is impossible") { scratch in
            let path = try writeModel(scratch)
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            try data.prefix(40).write(to: URL(fileURLWithPath: path))
            return ["inspect", "--checkpoint", path]
        },
        BadInvocation(name: "moe estimate of a GGUF file with --top-k", expected: "--top-k 2 rescales a config.json; a GGUF file is estimated as it is") { _ in
            ["estimate", "--config", fixturesDirectory + "/qwen2moe-gguf/model.gguf", "--top-k", "2"]
        },
        BadInvocation(name: "moe estimate of a GGUF file without attention keys", expected: "missing required key 'olmoe.attention.head_count'") { scratch in
            var w = GGUFTestModels.writer(.olmoe)
            w.remove("olmoe.attention.head_count")
            return ["estimate", "--config", try w.write(named: "model.gguf", in: scratch.path)]
        },
        BadInvocation(name: "moe run on a missing GGUF file", expected: "nowhere.gguf") { scratch in
            ["run", "--checkpoint", scratch.path + "/nowhere.gguf"]
        },
    ]

    @Test("a broken GGUF file ends in one clear line and exit code 1", arguments: bad)
    func refusesBadGGUF(_ bad: BadInvocation) throws {
        try bad.expectRefused()
    }
}
