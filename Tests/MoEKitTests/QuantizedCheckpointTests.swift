import Foundation
@testable import MoEKit
import MoETestSupport
import Testing

/// A quantized fixture checkpoint broken one way, and how the loader must refuse it.
struct BrokenQuantizedCheckpoint: Sendable, CustomTestStringConvertible {
    var name: String
    var fixture: String
    var layer: Int
    /// The tensor the message must name (`nil`: an error in config.json).
    var tensor: String?
    /// The file the message must name, relative to the checkpoint folder (`nil`: the folder itself).
    var file: String?
    /// Further words the message must contain.
    var words: String
    /// Whether the thrown error is the right typed one (given the checkpoint folder).
    var isExpected: @Sendable (any Error, String) -> Bool
    /// Breaks the copy in this folder.
    var breakIt: @Sendable (String) throws -> Void
    var testDescription: String { name }

    static let fp8 = "deepseek-v3-fp8", mxfp4 = "gpt-oss-mxfp4"
    static let expert = "model.layers.1.mlp.experts.2.gate_proj.weight"
    static let gateUp = "model.layers.0.mlp.experts.gate_up_proj", down = "model.layers.0.mlp.experts.down_proj"

    /// A weights-file edit.
    static func weights(_ name: String, _ fixture: String, layer: Int, tensor: String, words: String,
                        _ isExpected: @escaping @Sendable (any Error, String) -> Bool,
                        _ change: @escaping @Sendable (inout EditableSafetensors) throws -> Void) -> BrokenQuantizedCheckpoint {
        BrokenQuantizedCheckpoint(name: name, fixture: fixture, layer: layer, tensor: tensor, file: "model.safetensors", words: words,
                                  isExpected: isExpected) { dir in try EditableSafetensors.rewrite(dir + "/model.safetensors", change) }
    }

    /// A weights-file edit followed by cutting `cut` bytes off the end.
    static func truncated(_ name: String, _ fixture: String, layer: Int, last tensor: String) -> BrokenQuantizedCheckpoint {
        BrokenQuantizedCheckpoint(name: name, fixture: fixture, layer: layer, tensor: tensor, file: "model.safetensors",
                                  words: "outside the data section", isExpected: { e, dir in
            if case .badOffsets(let path, let t, _)? = e as? SafetensorsError { path == dir + "/model.safetensors" && t == tensor } else { false }
        }) { dir in
            let path = dir + "/model.safetensors"
            try EditableSafetensors.rewrite(path) { try $0.moveToEnd(tensor) }
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            try data.prefix(data.count - 3).write(to: URL(fileURLWithPath: path))
        }
    }

    /// A config.json edit.
    static func config(_ name: String, _ fixture: String, layer: Int, tensor: String? = nil, file: String? = "config.json", words: String,
                       _ isExpected: @escaping @Sendable (any Error, String) -> Bool,
                       _ change: @escaping @Sendable (inout [String: Any]) -> Void) -> BrokenQuantizedCheckpoint {
        BrokenQuantizedCheckpoint(name: name, fixture: fixture, layer: layer, tensor: tensor, file: file, words: words,
                                  isExpected: isExpected) { dir in try editConfigJSON(dir, change) }
    }

    static func badQuantization(_ tensor: String) -> @Sendable (any Error, String) -> Bool {
        { e, dir in if case .badQuantization(let n, let f, _)? = e as? CheckpointError { n == tensor && f == dir + "/model.safetensors" } else { false } }
    }

    static func exactly(_ make: @escaping @Sendable (String) -> CheckpointError) -> @Sendable (any Error, String) -> Bool {
        { e, dir in (e as? CheckpointError) == make(dir + "/model.safetensors") }
    }

    static let configRefusal: @Sendable (any Error, String) -> Bool = { e, dir in
        if case .malformedJSON(let path, _)? = e as? ConfigError { path == dir + "/config.json" } else { false }
    }

    /// Sets element `index` (4-byte F32) of a tensor's bytes to NaN.
    static func setNaN(_ e: inout EditableSafetensors.Entry, element index: Int) {
        withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { e.bytes.replaceSubrange((4 * index)..<(4 * index + 4), with: $0) }
    }

    static let all: [BrokenQuantizedCheckpoint] = [
        // FP8 (DeepSeek-V3: F32 scales; Qwen3: BF16 scales).
        weights("FP8 weight_scale_inv of the wrong shape", fp8, layer: 1, tensor: expert + "_scale_inv", words: "has shape [2, 1]",
                badQuantization(expert + "_scale_inv")) { try $0.edit(expert + "_scale_inv") { $0.shape = [2, 1] } },
        weights("missing weight_scale_inv of a routed expert", fp8, layer: 1, tensor: expert + "_scale_inv", words: "is missing",
                badQuantization(expert)) { try $0.remove(expert + "_scale_inv") },
        weights("missing weight_scale_inv of the dense MLP", fp8, layer: 0, tensor: "model.layers.0.mlp.down_proj.weight_scale_inv",
                words: "is missing", badQuantization("model.layers.0.mlp.down_proj.weight")) { try $0.remove("model.layers.0.mlp.down_proj.weight_scale_inv") },
        config("unknown quant_method (fp8 checkpoint)", fp8, layer: 1, words: "quantization_config.quant_method = awq", configRefusal) {
            $0["quantization_config"] = ["quant_method": "awq", "weight_block_size": [128, 128]]
        },
        weights("NaN F32 weight_scale_inv", fp8, layer: 1, tensor: expert + "_scale_inv", words: "element 1 is NaN",
                exactly { .nonFinite(name: expert + "_scale_inv", file: $0, index: 1) }) { try $0.edit(expert + "_scale_inv") { setNaN(&$0, element: 1) } },
        weights("NaN BF16 weight_scale_inv", "qwen3-moe-fp8", layer: 0, tensor: "model.layers.0.mlp.experts.1.up_proj.weight_scale_inv",
                words: "element 0 is NaN", exactly { .nonFinite(name: "model.layers.0.mlp.experts.1.up_proj.weight_scale_inv", file: $0, index: 0) }) {
            try $0.edit("model.layers.0.mlp.experts.1.up_proj.weight_scale_inv") { $0.bytes[0] = 0xC0; $0.bytes[1] = 0x7F }
        },
        weights("E4M3 NaN code 0x7F in a routed expert", fp8, layer: 1, tensor: "model.layers.1.mlp.experts.3.up_proj.weight", words: "(expert 3)",
                exactly { .nonFiniteWeight(name: "model.layers.1.mlp.experts.3.up_proj.weight", file: $0, expert: 3) }) {
            try $0.edit("model.layers.1.mlp.experts.3.up_proj.weight") { $0.bytes[17] = 0x7F }
        },
        weights("E4M3 NaN code 0xFF in the shared expert", fp8, layer: 1, tensor: "model.layers.1.mlp.shared_experts.down_proj.weight",
                words: "element 5 is NaN", exactly { .nonFinite(name: "model.layers.1.mlp.shared_experts.down_proj.weight", file: $0, index: 5) }) {
            try $0.edit("model.layers.1.mlp.shared_experts.down_proj.weight") { $0.bytes[5] = 0xFF }
        },
        weights("E4M3 NaN code 0x7F in the dense MLP", fp8, layer: 0, tensor: "model.layers.0.mlp.gate_proj.weight",
                words: "element 200 is NaN", exactly { .nonFinite(name: "model.layers.0.mlp.gate_proj.weight", file: $0, index: 200) }) {
            try $0.edit("model.layers.0.mlp.gate_proj.weight") { $0.bytes[200] = 0x7F }
        },
        config("F8_E4M3 weights without quantization_config", fp8, layer: 0, tensor: "model.layers.0.mlp.gate_proj.weight", file: "model.safetensors",
               words: "no quantization_config with quant_method fp8", badQuantization("model.layers.0.mlp.gate_proj.weight")) {
            $0["quantization_config"] = nil
        },
        weights("F8_E5M2 weight", fp8, layer: 1, tensor: expert, words: "has dtype F8_E5M2",
                exactly { .wrongDType(name: expert, file: $0, dtype: "F8_E5M2") }) { try $0.edit(expert) { $0.dtype = "F8_E5M2" } },
        weights("FP8 weight_scale_inv of dtype I32", fp8, layer: 1, tensor: expert + "_scale_inv", words: "has dtype I32",
                badQuantization(expert + "_scale_inv")) { try $0.edit(expert + "_scale_inv") { $0.dtype = "I32" } },
        config("FP8 block width MoEKit cannot pack", fp8, layer: 0, tensor: "model.layers.0.mlp.gate_proj.weight", file: "model.safetensors",
               words: "128x100 blocks", badQuantization("model.layers.0.mlp.gate_proj.weight")) {
            $0["quantization_config"] = ["quant_method": "fp8", "weight_block_size": [128, 100]]
        },
        truncated("FP8 data past the end of the file", fp8, layer: 1, last: "model.layers.1.mlp.experts.7.down_proj.weight_scale_inv"),

        // MXFP4 (GPT-OSS).
        weights("E8M0 NaN scale 0xFF", mxfp4, layer: 0, tensor: down + "_scales", words: "element 7 is 0xFF",
                badQuantization(down + "_scales")) { try $0.edit(down + "_scales") { $0.bytes[7] = 0xFF } },
        weights("MXFP4 blocks of dtype I8", mxfp4, layer: 0, tensor: gateUp + "_blocks", words: "has dtype I8",
                badQuantization(gateUp + "_blocks")) { try $0.edit(gateUp + "_blocks") { $0.dtype = "I8" } },
        weights("MXFP4 blocks of dtype F16", mxfp4, layer: 0, tensor: gateUp + "_blocks", words: "has dtype F16",
                badQuantization(gateUp + "_blocks")) { try $0.edit(gateUp + "_blocks") { $0.dtype = "F16"; $0.shape = [4, 192, 2, 8] } },
        weights("MXFP4 blocks of the wrong shape", mxfp4, layer: 0, tensor: gateUp + "_blocks", words: "has shape [4, 192, 1, 32]",
                badQuantization(gateUp + "_blocks")) { try $0.edit(gateUp + "_blocks") { $0.shape = [4, 192, 1, 32] } },
        weights("MXFP4 scales of the wrong shape", mxfp4, layer: 0, tensor: down + "_scales", words: "has shape [4, 3, 64]",
                badQuantization(down + "_scales")) { try $0.edit(down + "_scales") { $0.shape = [4, 3, 64] } },
        BrokenQuantizedCheckpoint(name: "missing MXFP4 scales", fixture: mxfp4, layer: 0, tensor: down + "_scales", file: nil,
                                  words: "missing tensor", isExpected: { e, dir in
            (e as? CheckpointError) == .missingTensor(name: down + "_scales", directory: dir, hint: "")
        }) { dir in try EditableSafetensors.rewrite(dir + "/model.safetensors") { try $0.remove(down + "_scales") } },
        config("MXFP4 blocks without quantization_config", mxfp4, layer: 0, tensor: gateUp + "_blocks", file: "model.safetensors",
               words: "MXFP4 needs quant_method mxfp4", badQuantization(gateUp + "_blocks")) { $0["quantization_config"] = nil },
        config("MXFP4 blocks under quant_method fp8", mxfp4, layer: 0, tensor: gateUp + "_blocks", file: "model.safetensors",
               words: "has quant_method fp8", badQuantization(gateUp + "_blocks")) {
            $0["quantization_config"] = ["quant_method": "fp8", "weight_block_size": [128, 128]]
        },
        config("unknown quant_method (mxfp4 checkpoint)", mxfp4, layer: 0, words: "quantization_config.quant_method = gptq", configRefusal) {
            $0["quantization_config"] = ["quant_method": "gptq"]
        },
        truncated("MXFP4 data past the end of the file", mxfp4, layer: 0, last: down + "_blocks"),
    ]
}

@Suite("Quantized checkpoints")
struct QuantizedCheckpointTests {
    @Test("a broken FP8 or MXFP4 checkpoint is refused with a typed error naming file and tensor, and by moe forward in one line",
          arguments: BrokenQuantizedCheckpoint.all)
    func refusesBrokenCheckpoint(_ bad: BrokenQuantizedCheckpoint) throws {
        let scratch = try ScratchDirectory()
        let dir = try scratch.copyCheckpoint(bad.fixture)
        try bad.breakIt(dir)
        let mentions = [bad.file.map { dir + "/" + $0 } ?? dir, bad.tensor.map { "'\($0)'" }, bad.words].compactMap { $0 }

        // The library: Checkpoint(directory:) + feedForward(layer:).
        var thrown: (any Error)?
        do { _ = try Checkpoint(directory: dir).feedForward(layer: bad.layer, threads: 2) } catch { thrown = error }
        let error = try #require(thrown, "\(bad.name) was loaded")
        #expect(bad.isExpected(error, dir), "wrong error: \(String(reflecting: error))")
        let message = "\(error)"
        for words in mentions { #expect(message.contains(words), "\(message) does not contain \(words)") }

        // The command: one line on stderr, exit code 1, the same message.
        let result = try MoEProcess.run(["forward", "--checkpoint", dir, "--layer", "\(bad.layer)",
                                         "--input", fixturesDirectory + "/\(bad.fixture)/layer\(bad.layer).safetensors",
                                         "--output", scratch.path + "/out.safetensors", "--threads", "2"])
        #expect(result.exitedNormally, "terminated by a signal")
        #expect(result.status == 1)
        #expect(result.stderr == "moe: error: \(message)\n", "stderr: \(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/out.safetensors"))
    }

    @Test("fast = reference on random blocks of each quantized format",
          arguments: [("fp8 128x128, hidden 200 (partial edge blocks)", WeightFormat.fp8E4M3(blockRows: 128, blockColumns: 128)),
                      ("fp8 16x64 blocks", WeightFormat.fp8E4M3(blockRows: 16, blockColumns: 64)),
                      ("mxfp4, GPT-OSS experts", WeightFormat.mxfp4), ("mxfp4, shared expert", WeightFormat.mxfp4)])
    func fastMatchesReference(_ label: String, _ format: WeightFormat) throws {
        let config: MoEConfig = switch (format, label.contains("GPT-OSS")) {
        case (.mxfp4, true):
            MoEConfig(hiddenSize: 96, expertCount: 6, expertsPerToken: 2, expertIntermediateSize: 64, router: .topKThenSoftmax,
                      routerHasBias: true, expert: .clampedGated(alpha: 1.702, limit: 7))
        case (.mxfp4, false):
            MoEConfig(hiddenSize: 128, expertCount: 8, expertsPerToken: 3, expertIntermediateSize: 32, router: .softmaxTopK(normalizesTopKWeights: true),
                      sharedExpert: SharedExpertConfig(intermediateSize: 96, gate: .sigmoid))
        default:
            MoEConfig(hiddenSize: 200, expertCount: 6, expertsPerToken: 2, expertIntermediateSize: 72,
                      router: .sigmoidGroupedTopK(groupCount: 2, keptGroupCount: 1, normalizesTopKWeights: true, scalingFactor: 2.5),
                      sharedExpert: SharedExpertConfig(intermediateSize: 40, gate: .none))
        }
        let block = try MoEBlock.random(config: config, seed: 31, format: format)
        #expect(block.experts.format == format)
        #expect(block.sharedExpert.map { $0.mlp.weights.format == format } ?? true)
        var g = SeededGenerator(seed: 7)
        let x = randomTensor([37, config.hiddenSize], generator: &g)
        let fast = try block.forward(x, variant: .fast, threads: 2)
        let reference = try block.forward(x, variant: .reference, threads: 2)
        #expect(fast.routing.expertIDs == reference.routing.expertIDs)
        let error = relativeError(fast.hiddenStates, reference.hiddenStates)
        #expect(error <= 1e-5, "\(label): max rel diff \(error)")
    }

    @Test("moe inspect's resident bytes are what loading every layer holds; its groups cover every tensor once",
          arguments: try FileManager.default.contentsOfDirectory(atPath: fixturesDirectory).sorted()
              .filter { FileManager.default.fileExists(atPath: fixturesDirectory + "/" + $0 + "/checkpoint/config.json") })
    func inventoryMatchesLoadedLayers(_ fixture: String) throws {
        let model = try Checkpoint(directory: fixturesDirectory + "/" + fixture + "/checkpoint")
        for layer in 0..<model.config.layerCount {
            let groups = model.weightGroups(layer: layer)
            let (loaded, formats) = loadedWeightGroups(try model.feedForward(layer: layer, threads: 2))
            #expect(Dictionary(uniqueKeysWithValues: groups.map { ($0.kind, $0.residentBytes) }) == loaded, "\(fixture) layer \(layer)")
            for (kind, format) in formats { #expect(groups.first { $0.kind == kind }?.formats.first == format, "\(fixture) layer \(layer) \(kind)") }
        }
        let all = model.weightGroups()
        #expect(all.reduce(0) { $0 + $1.tensorCount } == model.store.tensorNames.count)
        let fileBytes = model.store.tensorNames.reduce(0) { $0 + (model.store.entry($1)?.dataRange.count ?? 0) }
        #expect(all.reduce(0) { $0 + $1.bytesOnDisk } == fileBytes)
        #expect(all.first { $0.kind == .notLoaded }?.tensorCount ?? 0 == model.unusedTensorNames().count)
    }

    @Test("moe inspect prints the groups and their JSON")
    func inspectGroups() throws {
        let dir = fixturesDirectory + "/deepseek-v3-fp8/checkpoint"
        let result = try MoEProcess.run(["inspect", "--checkpoint", dir, "--json"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let groups = try #require(json["groups"] as? [[String: Any]])
        #expect(groups.map { $0["group"] as? String } == ["routed experts", "shared expert", "dense MLP", "router", "not loaded"])
        let experts = try #require(groups.first)
        #expect(experts["format"] as? String == "fp8-e4m3")
        #expect(experts["layers"] as? Int == 2)
        #expect(experts["tensors"] as? Int == 2 * 8 * 3 * 2)  // 2 layers × 8 experts × 3 projections × (weight + scale)
        // 2 layers × 8 experts × (gate + up 16 × 160 + 1 × 2 F32 scales, down 160 × 16 + 2 × 1).
        #expect(experts["bytes_on_disk"] as? Int == 2 * 8 * 3 * (16 * 160 + 8))
        // Panels of 32 output columns, one byte per value, a 4-byte scale per column per 128 inputs: gate and up one panel
        // each of 160 inputs (2 scale groups), down 5 panels of 16 inputs (1 scale group).
        let gateUp = 2 * 1 * (160 * 32 + 2 * 4 * 32), down = 5 * (16 * 32 + 1 * 4 * 32)
        #expect(experts["bytes_resident"] as? Int == 2 * 8 * (gateUp + down))
        #expect(groups.allSatisfy { $0["bytes_on_disk"] is Int && $0["bytes_resident"] is Int && $0["tensors"] is Int })

        let text = try MoEProcess.run(["inspect", "--checkpoint", fixturesDirectory + "/gpt-oss-mxfp4/checkpoint"])
        #expect(text.status == 0)
        let line = try #require(text.stdout.split(separator: "\n").first { $0.contains("routed experts") })
        #expect(line.contains("mxfp4"))
    }
}

/// What a loaded feed-forward block holds per weight group (bytes and stored format), to compare with
/// `weightGroups(layer:)` of a safetensors checkpoint or a GGUF file.
func loadedWeightGroups(_ block: FeedForward) -> (bytes: [Checkpoint.WeightGroup.Kind: Int], formats: [Checkpoint.WeightGroup.Kind: String]) {
    var loaded: [Checkpoint.WeightGroup.Kind: Int] = [:]
    var formats: [Checkpoint.WeightGroup.Kind: String] = [:]
    switch block {
    case .moe(let block):
        loaded[.routedExperts] = block.experts.residentBytes
        formats[.routedExperts] = block.experts.format.description
        if let shared = block.sharedExpert {
            loaded[.sharedExpert] = shared.mlp.weights.residentBytes + 4 * (shared.gateWeight?.count ?? 0)
            formats[.sharedExpert] = shared.mlp.weights.format.description
        }
        let r = block.router
        loaded[.router] = 4 * r.weight.count + r.packed.residentBytes + 4 * ((r.bias?.count ?? 0) + (r.correctionBias?.count ?? 0))
    case .dense(let mlp):
        loaded[.denseMLP] = mlp.weights.residentBytes
        formats[.denseMLP] = mlp.weights.format.description
    }
    return (loaded, formats)
}
