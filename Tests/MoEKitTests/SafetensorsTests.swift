import Foundation
import Testing
import MoEKit
import MoETestSupport

@Suite("Safetensors I/O")
struct SafetensorsTests {
    // MARK: Round trip

    @Test("writer → reader round trip for all six dtypes, with metadata")
    func roundTrip() throws {
        let dir = try makeTemporaryDirectory("st-roundtrip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var g = SeededGenerator(seed: 3)
        let f32 = randomTensor([3, 5], generator: &g)
        let bf16 = try Tensor<BFloat16>(shape: [2, 3, 2], storage: randomTensor([12], generator: &g).storage.map(BFloat16.init))
        let f16 = try Tensor<Float16>(shape: [7], storage: randomTensor([7], generator: &g).storage.map { Float16($0) })
        let i32 = try Tensor<Int32>(shape: [2, 2], storage: [-5, 0, Int32.max, Int32.min])
        let u32 = try Tensor<UInt32>(shape: [3], storage: [0, 0xFFFF_FFFF, 12345])
        let i64 = try Tensor<Int64>(shape: [1, 2], storage: [Int64.min, 1 << 40])
        let scalar = try Tensor<Float>(shape: [], storage: [42.5])
        let empty = Tensor<Float>(shape: [0, 4])
        let tensors: [(name: String, tensor: AnyTensor)] = [
            ("f32", AnyTensor(f32)), ("bf16", AnyTensor(bf16)), ("f16", AnyTensor(f16)), ("i32", AnyTensor(i32)),
            ("u32", AnyTensor(u32)), ("i64", AnyTensor(i64)), ("scalar", AnyTensor(scalar)), ("empty", AnyTensor(empty)),
            ("name with \"quotes\" and \\ and é", AnyTensor(f32)),
        ]
        let metadata = ["format": "pt", "note": "line\nbreak \"quoted\"", "ü": "ß"]
        let path = dir + "/all.safetensors"
        try SafetensorsWriter.write(tensors, metadata: metadata, to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata == metadata)
        #expect(file.tensorNames == tensors.map(\.name).sorted())
        for (name, tensor) in tensors {
            let back = try file.tensor(name)
            #expect(back == tensor, "\(name)")
            #expect(file.entries[name]?.dtype == tensor.dtype)
            #expect(file.entries[name]?.shape == tensor.shape)
        }
        // The header is padded to a multiple of 8 and the file is exactly header + payload.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian }
        #expect(headerLength % 8 == 0)
        let payload = 15 * 4 + 12 * 2 + 7 * 2 + 4 * 4 + 3 * 4 + 2 * 8 + 4 + 0 + 15 * 4
        #expect(bytes.count == 8 + Int(headerLength) + payload)
        // Exact widening of the float dtypes.
        #expect(try file.tensor("bf16").floats(named: "bf16").storage == bf16.storage.map(\.float))
        #expect(try file.tensor("f16").floats(named: "f16").storage == f16.storage.map { Float($0) })
        #expect(try file.tensor("u32").indices(named: "u32").storage == [0, 0xFFFF_FFFF, 12345])
        #expect(throws: TensorError.self) { try file.tensor("i32").floats(named: "i32") }
        #expect(throws: TensorError.self) { try file.tensor("f32").indices(named: "f32") }
    }

    @Test("writing over an existing file replaces it; an unwritable path is an error")
    func overwrite() throws {
        let dir = try makeTemporaryDirectory("st-overwrite")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/x.safetensors"
        var g = SeededGenerator(seed: 4)
        try SafetensorsWriter.write([("a", AnyTensor(randomTensor([100], generator: &g)))], to: path)
        let small = randomTensor([2], generator: &g)
        try SafetensorsWriter.write([("b", AnyTensor(small))], to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.tensorNames == ["b"])
        #expect(try file.tensor("b") == .f32(small))
        #expect(throws: SafetensorsError.self) {
            try SafetensorsWriter.write([("b", AnyTensor(small))], to: dir + "/no/such/dir/x.safetensors")
        }
    }

    // MARK: BFloat16

    @Test("BFloat16 rounds to nearest, ties to even")
    func bfloat16Rounding() {
        func bits(_ f: Float) -> UInt16 { BFloat16(f).bitPattern }
        func fromBits(_ b: UInt32) -> Float { Float(bitPattern: b) }
        #expect(bits(1.0) == 0x3F80)
        #expect(bits(-2.0) == 0xC000)
        #expect(bits(0.0) == 0x0000)
        #expect(bits(-0.0) == 0x8000)
        // Exactly halfway: 1 + 2^-8 lies between 0x3F80 (even) and 0x3F81 → 0x3F80.
        #expect(bits(fromBits(0x3F80_8000)) == 0x3F80)
        // 1 + 3·2^-8 lies between 0x3F81 and 0x3F82 (even) → 0x3F82.
        #expect(bits(fromBits(0x3F81_8000)) == 0x3F82)
        // Just above / below halfway.
        #expect(bits(fromBits(0x3F80_8001)) == 0x3F81)
        #expect(bits(fromBits(0x3F80_7FFF)) == 0x3F80)
        #expect(bits(fromBits(0xBF81_8000)) == 0xBF82)
        // Subnormals round the same way.
        #expect(bits(fromBits(0x0000_8000)) == 0x0000)
        #expect(bits(fromBits(0x0001_8000)) == 0x0002)
        // π = 0x40490FDB → 0x4049 (the dropped 0x0FDB is below half).
        #expect(bits(Float.pi) == 0x4049)
        // Infinities stay infinite.
        #expect(bits(.infinity) == 0x7F80)
        #expect(bits(-.infinity) == 0xFF80)
        // Large values: the largest finite bf16 is 0x7F7F; halfway above it rounds (to even) to infinity.
        #expect(bits(fromBits(0x7F7F_7FFF)) == 0x7F7F)
        #expect(bits(fromBits(0x7F7F_8000)) == 0x7F80)
        #expect(bits(.greatestFiniteMagnitude) == 0x7F80)
        #expect(bits(-.greatestFiniteMagnitude) == 0xFF80)
        // NaN stays NaN, even a signalling NaN whose payload sits only in the low 16 bits.
        #expect(BFloat16(.nan).float.isNaN)
        #expect(BFloat16(-Float.nan).float.isNaN)
        #expect(BFloat16(Float(bitPattern: 0x7F80_0001)).float.isNaN)
        #expect(BFloat16(Float(bitPattern: 0xFF80_0001)).float.isNaN)
        #expect(BFloat16(Float(bitPattern: 0x7FFF_FFFF)).float.isNaN)
    }

    @Test("BFloat16 widening is exact and narrowing a widened value is the identity")
    func bfloat16Widening() {
        for b in 0...UInt32(0xFFFF) {
            let x = BFloat16(bitPattern: UInt16(b))
            let f = x.float
            if f.isNaN { continue }
            if f.bitPattern != b << 16 { Issue.record("widening 0x\(String(b, radix: 16))"); return }
            if BFloat16(f).bitPattern != UInt16(b) { Issue.record("round trip 0x\(String(b, radix: 16))"); return }
        }
        #expect(BFloat16(bitPattern: 0x3F80).float == 1)
        #expect(BFloat16(bitPattern: 0x7F80).float == .infinity)
        #expect(BFloat16(bitPattern: 0x0001).float == Float(bitPattern: 0x0001_0000))
    }

    // MARK: Bad files

    struct BadFile: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        var check: @Sendable (SafetensorsError) -> Bool
        var testDescription: String { name }
    }

    static let badFiles: [BadFile] = {
        let f32x4 = [UInt8](repeating: 1, count: 16)
        func header(_ s: String, data: [UInt8] = f32x4) -> [UInt8] { rawSafetensors(header: s, data: data) }
        return [
            BadFile(name: "empty file", bytes: []) { if case .truncatedHeader(_, 0) = $0 { true } else { false } },
            BadFile(name: "5-byte file", bytes: [1, 2, 3, 4, 5]) { if case .truncatedHeader(_, 5) = $0 { true } else { false } },
            BadFile(name: "header length larger than the file",
                    bytes: rawSafetensors(header: "{}", declaredLength: 1000)) { if case .headerTooLarge = $0 { true } else { false } },
            BadFile(name: "header length 2^64 − 1",
                    bytes: rawSafetensors(header: "{}", declaredLength: .max)) { if case .headerTooLarge = $0 { true } else { false } },
            BadFile(name: "header not JSON", bytes: header("this is not json")) { if case .invalidHeader = $0 { true } else { false } },
            BadFile(name: "header cut short", bytes: header("{\"a\": {\"dtype\": \"F32\", ")) { if case .invalidHeader = $0 { true } else { false } },
            BadFile(name: "header JSON but not an object", bytes: header("[1, 2, 3]")) { if case .invalidHeader = $0 { true } else { false } },
            BadFile(name: "entry without a dtype",
                    bytes: header(#"{"a": {"shape": [4], "data_offsets": [0, 16]}}"#)) { if case .invalidHeader = $0 { true } else { false } },
            BadFile(name: "data_offsets beyond the data",
                    bytes: header(#"{"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}"#)) { if case .badOffsets(_, "a", _) = $0 { true } else { false } },
            BadFile(name: "negative data_offsets",
                    bytes: header(#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}"#)) { if case .badOffsets(_, "a", _) = $0 { true } else { false } },
            BadFile(name: "end before begin",
                    bytes: header(#"{"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}}"#)) { if case .badOffsets(_, "a", _) = $0 { true } else { false } },
            BadFile(name: "three data_offsets",
                    bytes: header(#"{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8, 16]}}"#)) { if case .badOffsets(_, "a", _) = $0 { true } else { false } },
            BadFile(name: "offsets disagree with shape × dtype",
                    bytes: header(#"{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}"#)) { if case .badOffsets(_, "a", _) = $0 { true } else { false } },
            BadFile(name: "offsets disagree for BF16",
                    bytes: header(#"{"a": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 16]}}"#)) { if case .badOffsets(_, "a", _) = $0 { true } else { false } },
            BadFile(name: "overlapping tensors",
                    bytes: header(#"{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}"#)) {
                        if case .badOffsets(_, "b", _) = $0 { true } else { false } },
            BadFile(name: "negative dimension",
                    bytes: header(#"{"a": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}}"#)) { if case .badOffsets(_, "a", _) = $0 { true } else { false } },
            BadFile(name: "element count overflows Int",
                    bytes: header(#"{"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 16]}}"#)) {
                        if case .badOffsets(_, "a", _) = $0 { true } else { false } },
            BadFile(name: "byte count overflows Int",
                    bytes: header(#"{"a": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 16]}}"#)) {
                        if case .badOffsets(_, "a", _) = $0 { true } else { false } },
            BadFile(name: "__metadata__ not a string map",
                    bytes: header(#"{"__metadata__": {"n": 1}, "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}"#)) {
                        if case .invalidHeader = $0 { true } else { false } },
        ]
    }()

    @Test("a bad file gives a SafetensorsError, never a crash", arguments: badFiles)
    func badFile(_ bad: BadFile) throws {
        let dir = try makeTemporaryDirectory("st-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/bad.safetensors"
        try writeBytes(bad.bytes, to: path)
        let error = #expect(throws: SafetensorsError.self) { try SafetensorsFile(path: path) }
        if let error {
            #expect(bad.check(error), "unexpected error: \(error)")
            #expect(error.description.contains(path), "the message must name the file: \(error)")
        }
    }

    @Test("a missing file or a directory cannot be opened")
    func cannotOpen() throws {
        let dir = try makeTemporaryDirectory("st-open")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let missing = #expect(throws: SafetensorsError.self) { try SafetensorsFile(path: dir + "/nope.safetensors") }
        if case .cannotOpen? = missing {} else { Issue.record("got \(String(describing: missing))") }
        let directory = #expect(throws: SafetensorsError.self) { try SafetensorsFile(path: dir) }
        if case .cannotOpen? = directory {} else { Issue.record("got \(String(describing: directory))") }
    }

    @Test("an unsupported dtype is listed but refused on read; a missing name is refused")
    func unsupportedDType() throws {
        let dir = try makeTemporaryDirectory("st-u8")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/u8.safetensors"
        var data = [UInt8](repeating: 7, count: 6)
        withUnsafeBytes(of: Float(1.5)) { data += $0 }
        try writeBytes(rawSafetensors(header: #"{"bytes": {"dtype": "U8", "shape": [2, 3], "data_offsets": [0, 6]}, "x": {"dtype": "F32", "shape": [1], "data_offsets": [6, 10]}}"#,
                                      data: data), to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.tensorNames == ["bytes", "x"])
        #expect(file.entries["bytes"]?.dtypeName == "U8")
        #expect(file.entries["bytes"]?.dtype == nil)
        #expect(file.entries["bytes"]?.shape == [2, 3])
        #expect(throws: SafetensorsError.unsupportedDType(path: path, tensor: "bytes", dtype: "U8")) { try file.tensor("bytes") }
        #expect(try file.tensor("x") == .f32(floatTensor([1], [1.5])))  // unaligned data offset reads fine
        #expect(throws: SafetensorsError.tensorNotFound(name: "nope", path: path)) { try file.tensor("nope") }
    }

    // MARK: Checkpoints

    @Test("a truncated weights file is refused on open")
    func truncatedWeights() throws {
        let dir = try copyFixtureCheckpoint("mixtral-f32")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let weights = dir + "/model.safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: weights))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: weights))
        #expect(throws: SafetensorsError.self) { try Checkpoint(directory: dir) }
        // Cut inside the header too.
        try data.prefix(20).write(to: URL(fileURLWithPath: weights))
        #expect(throws: SafetensorsError.self) { try Checkpoint(directory: dir) }
    }

    func editConfig(_ dir: String, _ edit: (inout [String: Any]) -> Void) throws {
        let url = URL(fileURLWithPath: dir + "/config.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: url)
    }

    @Test("config.json missing a key names the key")
    func configMissingKey() throws {
        let dir = try copyFixtureCheckpoint("mixtral-f32")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try editConfig(dir) { $0.removeValue(forKey: "num_local_experts") }
        #expect(throws: ConfigError.missingKey(path: dir + "/config.json", key: "num_local_experts")) { try Checkpoint(directory: dir) }
    }

    @Test("config.json that is not JSON, or absent, is refused")
    func configNotJSON() throws {
        let dir = try copyFixtureCheckpoint("mixtral-f32")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("model_type = mixtral".utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        let error = #expect(throws: ConfigError.self) { try Checkpoint(directory: dir) }
        if case .malformedJSON? = error {} else { Issue.record("got \(String(describing: error))") }
        try FileManager.default.removeItem(atPath: dir + "/config.json")
        #expect(throws: CheckpointError.missingConfig(directory: dir)) { try Checkpoint(directory: dir) }
    }

    @Test("hidden_size changed in config.json gives wrongShape naming the tensor")
    func hiddenSizeChanged() throws {
        let dir = try copyFixtureCheckpoint("mixtral-f32")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try editConfig(dir) { $0["hidden_size"] = 48 }
        let checkpoint = try Checkpoint(directory: dir)
        let error = #expect(throws: CheckpointError.self) { try checkpoint.feedForward(layer: 0) }
        guard case .wrongShape(let name, let file, let expected, let actual)? = error else {
            Issue.record("expected wrongShape, got \(String(describing: error))")
            return
        }
        #expect(checkpoint.store.contains(name))
        #expect(name.hasPrefix("model.layers.0."))
        #expect(file == dir + "/model.safetensors")
        #expect(expected != actual)
        #expect(expected.contains(48) && actual.contains(32))
    }

    @Test("no weights at all is refused")
    func noWeights() throws {
        let dir = try copyFixtureCheckpoint("mixtral-f32")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.removeItem(atPath: dir + "/model.safetensors")
        #expect(throws: CheckpointError.noWeights(directory: dir)) { try Checkpoint(directory: dir) }
    }

    @Test("an index mapping a tensor to a shard that lacks it is refused")
    func indexWrongShard() throws {
        let dir = try copyFixtureCheckpoint("qwen3-moe")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: Never.self) { try Checkpoint(directory: dir) }
        let url = URL(fileURLWithPath: dir + "/model.safetensors.index.json")
        var index = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var map = try #require(index["weight_map"] as? [String: String])
        let name = "model.layers.0.mlp.gate.weight"
        let shard = try #require(map[name])
        let other = try #require(Set(map.values).sorted().first { $0 != shard })
        map[name] = other
        index["weight_map"] = map
        try JSONSerialization.data(withJSONObject: index).write(to: url)
        let error = #expect(throws: SafetensorsError.self) { try Checkpoint(directory: dir) }
        guard case .invalidIndex(_, let reason)? = error else {
            Issue.record("expected invalidIndex, got \(String(describing: error))")
            return
        }
        #expect(reason.contains(name))
        // A shard that does not exist, and an index that is not JSON, are refused too.
        map[name] = "model-99999.safetensors"
        index["weight_map"] = map
        try JSONSerialization.data(withJSONObject: index).write(to: url)
        #expect(throws: SafetensorsError.self) { try Checkpoint(directory: dir) }
        try Data("{".utf8).write(to: url)
        #expect(throws: SafetensorsError.self) { try Checkpoint(directory: dir) }
    }

    @Test("feedForward with a layer out of range gives layerOutOfRange", arguments: [-1, 2, 99])
    func layerOutOfRange(_ layer: Int) throws {
        let checkpoint = try Checkpoint(directory: fixturesDirectory + "/mixtral-f32/checkpoint")
        #expect(checkpoint.config.layerCount == 2)
        #expect(throws: ConfigError.layerOutOfRange(layer: layer, layerCount: 2)) { try checkpoint.feedForward(layer: layer) }
    }

    @Test("a missing expert tensor is named")
    func missingTensor() throws {
        let dir = try copyFixtureCheckpoint("mixtral-f32")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = try SafetensorsFile(path: dir + "/model.safetensors")
        let dropped = "model.layers.1.block_sparse_moe.experts.3.w2.weight"
        #expect(source.contains(dropped))
        let kept = try source.tensorNames.filter { $0 != dropped }.map { (name: $0, tensor: try source.tensor($0)) }
        // Write beside it, then replace: never truncate a file that is still memory-mapped.
        try SafetensorsWriter.write(kept, to: dir + "/rewritten.tmp")
        try FileManager.default.removeItem(atPath: dir + "/model.safetensors")
        try FileManager.default.moveItem(atPath: dir + "/rewritten.tmp", toPath: dir + "/model.safetensors")
        let checkpoint = try Checkpoint(directory: dir)
        #expect(throws: Never.self) { try checkpoint.feedForward(layer: 0) }
        let error = #expect(throws: CheckpointError.self) { try checkpoint.feedForward(layer: 1) }
        if case .missingTensor(let name, _, _)? = error { #expect(name == dropped) } else { Issue.record("got \(String(describing: error))") }
    }
}
