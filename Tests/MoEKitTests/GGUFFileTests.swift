import Foundation
import Testing
@testable import MoEKit
import MoETestSupport

/// A malformed GGUF file and what its refusal must say.
struct BadGGUF: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: @Sendable () -> [UInt8]
    /// Words the message must contain (besides the file's path).
    let mentions: [String]
    let matches: @Sendable (GGUFError) -> Bool

    var testDescription: String { name }
}

@Suite("GGUF file reader")
struct GGUFFileTests {
    /// Two tensors (F32 and Q8_0, 64 × 2 each), two keys: the base every bad file is made from.
    static func base() -> GGUFTestWriter {
        var w = GGUFTestWriter()
        w.set("general.architecture", .string("qwen3moe"))
        w.set("general.name", .string("base"))
        w.add("a.weight", dims: [64, 2], type: .f32)
        w.add("b.weight", dims: [64, 2], type: .q8_0)
        return w
    }

    static func patched(_ w: GGUFTestWriter = base(), at offset: Int, _ value: UInt64) -> [UInt8] {
        var bytes = w.bytes()
        withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(offset..<(offset + 8), with: $0) }
        return bytes
    }

    /// Where the length of the string `name` is stored in the base file.
    static func nameLengthOffset(_ name: String) -> Int {
        let bytes = base().bytes(), needle = Array(name.utf8)
        let at = (8..<(bytes.count - needle.count)).first { Array(bytes[$0..<($0 + needle.count)]) == needle } ?? 8
        return at - 8
    }

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }

    static func with(_ change: (inout GGUFTestWriter) -> Void) -> [UInt8] {
        var w = base()
        change(&w)
        return w.bytes()
    }

    static let badFiles: [BadGGUF] = [
        BadGGUF(name: "bad magic", bytes: { with { $0.magic = Array("GGML".utf8) } }, mentions: ["\"GGML\"", "GGUF"]) {
            if case .badMagic = $0 { true } else { false }
        },
        BadGGUF(name: "empty file", bytes: { [] }, mentions: ["magic", "needs 4 bytes"]) {
            if case .truncated = $0 { true } else { false }
        },
        BadGGUF(name: "version 1", bytes: { with { $0.version = 1 } }, mentions: ["version 1"]) {
            if case .unsupportedVersion(_, 1) = $0 { true } else { false }
        },
        BadGGUF(name: "version 4", bytes: { with { $0.version = 4 } }, mentions: ["version 4"]) {
            if case .unsupportedVersion(_, 4) = $0 { true } else { false }
        },
        BadGGUF(name: "big-endian", bytes: { with { $0.version = UInt32(3).byteSwapped } }, mentions: ["big-endian"]) {
            if case .bigEndian(_, 3) = $0 { true } else { false }
        },
        BadGGUF(name: "a key string length past the end", bytes: { patched(at: 24, 1 << 40) },
                mentions: ["key of metadata entry 0", "1099511627776"]) {
            if case .truncated(_, _, 32, 1 << 40, _) = $0 { true } else { false }
        },
        BadGGUF(name: "a string value past the end",
                bytes: { with { $0.set("general.name", .raw(type: 8, bytes: le(UInt64(1) << 40) + Array("abc".utf8))) } },
                mentions: ["general.name", "1099511627776"]) {
            if case .truncated = $0 { true } else { false }
        },
        BadGGUF(name: "a tensor count of 2^40", bytes: { with { $0.tensorCountOverride = 1 << 40 } },
                mentions: ["tensor count", "1099511627776"]) {
            if case .countTooLarge(_, "tensor count", 1 << 40, _) = $0 { true } else { false }
        },
        BadGGUF(name: "a key count of 2^62", bytes: { with { $0.entryCountOverride = 1 << 62 } },
                mentions: ["metadata key count", "4611686018427387904"]) {
            if case .countTooLarge(_, "metadata key count", _, _) = $0 { true } else { false }
        },
        BadGGUF(name: "an array count past the end",
                bytes: { with { $0.set("tokenizer.ggml.tokens", .raw(type: 9, bytes: le(UInt32(8)) + le(UInt64(1) << 50))) } },
                mentions: ["tokenizer.ggml.tokens", "1125899906842624"]) {
            if case .countTooLarge = $0 { true } else { false }
        },
        BadGGUF(name: "value type 13", bytes: { with { $0.set("general.x", .raw(type: 13, bytes: [0, 0, 0, 0])) } },
                mentions: ["general.x", "13"]) {
            if case .invalidValueType(_, "general.x", 13) = $0 { true } else { false }
        },
        BadGGUF(name: "array element type 99", bytes: { with { $0.set("general.x", .raw(type: 9, bytes: le(UInt32(99)) + le(UInt64(0)))) } },
                mentions: ["general.x", "99"]) {
            if case .invalidArrayType(_, "general.x", 99) = $0 { true } else { false }
        },
        BadGGUF(name: "an array of arrays", bytes: { with { $0.set("general.x", .array(.array, [])) } }, mentions: ["general.x", "array of arrays"]) {
            if case .nestedArray = $0 { true } else { false }
        },
        BadGGUF(name: "a bool stored as 2", bytes: { with { $0.set("general.flag", .raw(type: 7, bytes: [2])) } },
                mentions: ["general.flag", "2"]) {
            if case .invalidBool(_, "general.flag", 2) = $0 { true } else { false }
        },
        BadGGUF(name: "a duplicate key", bytes: { with { $0.entries.append(("general.name", .string("again"))) } },
                mentions: ["general.name", "twice"]) {
            if case .duplicateKey(_, "general.name") = $0 { true } else { false }
        },
        BadGGUF(name: "alignment 48", bytes: { with { $0.set("general.alignment", .u32(48)) } }, mentions: ["general.alignment", "48"]) {
            if case .invalidAlignment = $0 { true } else { false }
        },
        BadGGUF(name: "alignment 0", bytes: { with { $0.set("general.alignment", .u32(0)) } }, mentions: ["general.alignment = 0"]) {
            if case .invalidAlignment = $0 { true } else { false }
        },
        BadGGUF(name: "alignment as a string", bytes: { with { $0.set("general.alignment", .string("32")) } },
                mentions: ["general.alignment", "STRING"]) {
            if case .invalidAlignment = $0 { true } else { false }
        },
        BadGGUF(name: "n_dims 5", bytes: { with { $0.add("c.weight", dims: [2, 2, 2, 2, 2]) } }, mentions: ["c.weight", "n_dims = 5"]) {
            if case .tooManyDimensions(_, "c.weight", 5) = $0 { true } else { false }
        },
        BadGGUF(name: "a dimension of 2^63", bytes: { with { $0.add("c.weight", dims: [1], data: []); $0.tensors[2].dims = [1 << 63] } },
                mentions: ["c.weight", "ne[0] = 9223372036854775808"]) {
            if case .invalidDimension(_, "c.weight", 0, 1 << 63) = $0 { true } else { false }
        },
        BadGGUF(name: "a size that overflows", bytes: { with { $0.add("c.weight", dims: [1], data: []); $0.tensors[2].dims = [1 << 40, 1 << 40] } },
                mentions: ["c.weight", "too large"]) {
            if case .sizeOverflow(_, "c.weight", _) = $0 { true } else { false }
        },
        BadGGUF(name: "unknown type id 99", bytes: { with { $0.tensors[1].type = 99 } }, mentions: ["b.weight", "type id 99"]) {
            if case .unknownType(_, "b.weight", 99) = $0 { true } else { false }
        },
        BadGGUF(name: "removed type id 31 (Q4_0_4_4)", bytes: { with { $0.tensors[1].type = 31 } }, mentions: ["b.weight", "31", "Q4_0_4_4", "removed"]) {
            if case .removedType(_, "b.weight", 31, "Q4_0_4_4") = $0 { true } else { false }
        },
        BadGGUF(name: "removed type id 4 (Q4_2)", bytes: { with { $0.tensors[0].type = 4 } }, mentions: ["a.weight", "Q4_2"]) {
            if case .removedType(_, "a.weight", 4, _) = $0 { true } else { false }
        },
        BadGGUF(name: "ne[0] not a multiple of the block", bytes: { with { $0.tensors[1].dims = [48, 2] } },
                mentions: ["b.weight", "Q8_0", "ne[0] = 48", "32"]) {
            if case .blockMismatch(_, "b.weight", .q8_0, 48) = $0 { true } else { false }
        },
        BadGGUF(name: "a misaligned offset", bytes: { with { $0.tensors[1].offset = 520 } }, mentions: ["b.weight", "520", "32"]) {
            if case .misalignedOffset(_, "b.weight", 520, 32) = $0 { true } else { false }
        },
        BadGGUF(name: "overlapping tensors", bytes: { with { $0.tensors[1].offset = 256 } }, mentions: ["b.weight", "a.weight", "overlaps"]) {
            if case .overlappingTensors(_, "b.weight", 256, "a.weight", 512) = $0 { true } else { false }
        },
        BadGGUF(name: "a tensor past the end (truncated file)", bytes: { Array(base().bytes().dropLast(100)) },
                mentions: ["b.weight", "past the data section"]) {
            if case .tensorPastEnd(_, "b.weight", _, 136, _) = $0 { true } else { false }
        },
        BadGGUF(name: "an offset of 2^62", bytes: { with { $0.tensors[1].offset = 1 << 62; $0.tensors[1].data = [] } },
                mentions: ["b.weight", "4611686018427387904"]) {
            if case .tensorPastEnd(_, "b.weight", 1 << 62, _, _) = $0 { true } else { false }
        },
        BadGGUF(name: "a duplicate tensor name", bytes: { with { $0.add("a.weight", dims: [4]) } }, mentions: ["a.weight", "twice"]) {
            if case .duplicateTensor(_, "a.weight", _) = $0 { true } else { false }
        },
        BadGGUF(name: "a tensor name past the end", bytes: { patched(at: nameLengthOffset("a.weight"), 1 << 41) },
                mentions: ["needs"]) {
            if case .truncated = $0 { true } else { false }
        },
    ]

    @Test("a bad file is refused with an error naming the file and what is wrong, never a crash", arguments: badFiles)
    func refusal(_ bad: BadGGUF) throws {
        let path = try makeTemporaryDirectory("gguf") + "/bad.gguf"
        try Data(bad.bytes()).write(to: URL(fileURLWithPath: path))
        do {
            _ = try GGUFFile(path: path)
            Issue.record("\(bad.name): opened without an error")
        } catch {
            #expect(bad.matches(error), "\(bad.name): \(error)")
            #expect(error.description.hasPrefix(path + ": "), "\(error.description)")
            for word in bad.mentions { #expect(error.description.contains(word), "'\(word)' not in: \(error.description)") }
        }
    }

    @Test("every prefix of a good file is refused, never a crash")
    func everyTruncation() throws {
        var w = Self.base()
        w.set("tokenizer.ggml.tokens", .array(.string, [.string("a"), .string("bb"), .string("")]))
        w.set("general.flags", .array(.bool, [.bool(true), .bool(false)]))
        let bytes = w.bytes()
        let dir = try makeTemporaryDirectory("gguf")
        let full = dir + "/full.gguf"
        try Data(bytes).write(to: URL(fileURLWithPath: full))
        _ = try GGUFFile(path: full)
        for length in Set(Array(0..<400) + stride(from: 400, to: bytes.count, by: 37)) {
            let path = dir + "/cut.gguf"
            try Data(bytes.prefix(length)).write(to: URL(fileURLWithPath: path))
            #expect(throws: GGUFError.self, "a file cut at \(length) of \(bytes.count) bytes was opened") { try GGUFFile(path: path) }
        }
    }

    @Test("random corruption of a model's header is opened or refused, never a crash")
    func corruptedHeaders() throws {
        var w = GGUFTestModels.writer(.deepseek2)
        w.set("tokenizer.ggml.tokens", .array(.string, (0..<20).map { .string("tok\($0)") }))
        let good = w.bytes()
        let dataStart = try GGUFFile(path: try w.write()).dataOffset
        let dir = try makeTemporaryDirectory("gguf")
        var generator = SeededGenerator(seed: 12)
        var refused = 0
        for round in 0..<300 {
            var bytes = good
            for _ in 0..<(1 + round % 4) {
                let at = Int.random(in: 0..<dataStart, using: &generator)
                bytes[at] = round % 3 == 0 ? 0xFF : UInt8.random(in: 0...255, using: &generator)
            }
            let path = dir + "/fuzz.gguf"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                _ = try GGUFModel(path: path)
            } catch {
                #expect(error.description.hasPrefix(path + ": "))
                refused += 1
            }
        }
        #expect(refused > 150)
    }

    @Test("metadata of every type, arrays and tensor views read back as written (v3 and v2)", arguments: [UInt32(3), 2])
    func roundTrip(version: UInt32) throws {
        var w = GGUFTestWriter()
        w.version = version
        w.set("general.architecture", .string("qwen3moe"))
        w.set("t.u8", .u8(200))
        w.set("t.i8", .i8(-100))
        w.set("t.u16", .u16(60000))
        w.set("t.i16", .i16(-30000))
        w.set("t.u32", .u32(4_000_000_000))
        w.set("t.i32", .i32(-2_000_000_000))
        w.set("t.f32", .f32(1.5))
        w.set("t.bool", .bool(true))
        w.set("t.string", .string("héllo"))
        w.set("t.u64", .u64(1 << 63))
        w.set("t.i64", .i64(-(1 << 62)))
        w.set("t.f64", .f64(-0.25))
        w.set("t.strings", .array(.string, [.string("a"), .string("bc")]))
        w.set("t.ints", .array(.int32, [.i32(3), .i32(-4)]))
        w.add("x.weight", dims: [64, 3, 2], type: .q8_0)
        w.add("y.weight", dims: [5], type: .f32)
        w.add("z.weight", dims: [4, 2], type: .f16)
        let path = try w.write()
        let file = try GGUFFile(path: path)
        #expect(file.version == version)
        #expect(file.alignment == 32)
        #expect(file.dataOffset % 32 == 0)
        let m = file.metadata
        #expect(m.keys.count == 15)
        #expect(m["t.u8"]?.integer == 200 && m["t.i8"]?.integer == -100 && m["t.u16"]?.integer == 60000)
        #expect(m["t.i16"]?.integer == -30000 && m["t.u32"]?.integer == 4_000_000_000 && m["t.i32"]?.integer == -2_000_000_000)
        #expect(m["t.f32"]?.float == 1.5 && m["t.f64"]?.float == -0.25 && m["t.bool"]?.bool == true)
        #expect(m["t.string"]?.string == "héllo" && m["t.i64"]?.integer == -(1 << 62))
        if case .uint64(let big) = m["t.u64"] { #expect(big == 1 << 63) } else { Issue.record("t.u64") }
        #expect(m["t.strings"]?.array?.values.compactMap(\.string) == ["a", "bc"])
        #expect(m["t.ints"]?.array?.integers == [3, -4])
        #expect(try m.count("t.u32") == 4_000_000_000)
        #expect(throws: GGUFError.self) { try m.count("t.i8") }
        #expect(throws: GGUFError.self) { try m.count("t.u64") }
        #expect(throws: GGUFError.self) { try m.count("t.string") }
        #expect(try m.count("absent") == nil)

        let x = try file.tensor("x.weight")
        #expect(x.type == .q8_0 && x.dims == [64, 3, 2] && x.shape == [2, 3, 64])
        #expect(x.columns == 64 && x.rows == 3 && x.matrixCount == 2)
        #expect(x.rowStride == 68 && x.matrixStride == 204 && x.bytes.count == 408)
        #expect(Array(x.bytes) == w.tensors[0].data)
        #expect(x.matrix(1).map(Array.init) == Array(w.tensors[0].data[204...]))
        #expect(x.matrix(2) == nil)
        #expect(x.floats() == nil)
        let y = try file.tensor("y.weight")
        #expect(y.floats() == (0..<5).map { GGUFTestWriter.value($0, seed: 1) })
        #expect(try file.tensor("z.weight").floats() == (0..<8).map { GGUFTestWriter.value($0, seed: 2) })
        #expect(file.tensorNames == ["x.weight", "y.weight", "z.weight"])
        #expect(throws: GGUFError.tensorNotFound(path: path, tensor: "nope")) { try file.tensor("nope") }
    }

    @Test("general.alignment moves the data section and the offsets")
    func customAlignment() throws {
        var w = Self.base()
        w.alignment = 256
        w.set("general.alignment", .u32(256))
        let file = try GGUFFile(path: try w.write())
        #expect(file.alignment == 256 && file.dataOffset % 256 == 0)
        #expect(file.tensors.map(\.offset) == [0, 512])
        #expect(Array(try file.tensor("b.weight").bytes) == w.tensors[1].data)
    }

    @Test("a missing file or a directory cannot be opened")
    func cannotOpen() {
        #expect(throws: GGUFError.self) { try GGUFFile(path: "/nonexistent/model.gguf") }
        do {
            _ = try GGUFFile(path: NSTemporaryDirectory())
        } catch {
            #expect(error.description.contains("not a regular file"))
        }
    }

    @Test("ggml type ids and block sizes are ggml's (Q8_1 is 36 bytes, gguf-py's 40 is stale)")
    func typeTable() {
        let expected: [(UInt32, Int, Int)] = [
            (0, 1, 4), (1, 1, 2), (2, 32, 18), (3, 32, 20), (6, 32, 22), (7, 32, 24), (8, 32, 34), (9, 32, 36),
            (10, 256, 84), (11, 256, 110), (12, 256, 144), (13, 256, 176), (14, 256, 210), (15, 256, 292),
            (24, 1, 1), (25, 1, 2), (26, 1, 4), (27, 1, 8), (28, 1, 8), (30, 1, 2), (39, 32, 17),
        ]
        for (id, block, bytes) in expected {
            let type = GGMLType(rawValue: id)
            #expect(type?.blockSize == block && type?.bytesPerBlock == bytes, "type id \(id)")
        }
        #expect(GGMLType.q4_K.rowBytes(elements: 2048) == 1152)
        #expect(GGMLType.q4_K.rowBytes(elements: 100) == nil)
        #expect(GGMLType.mxfp4.description == "MXFP4" && GGMLType.iq4_XS.description == "IQ4_XS")
        for id: UInt32 in [4, 5, 31, 32, 33, 36, 37, 38] {
            #expect(GGMLType(rawValue: id) == nil && GGMLType.removedName(id: id) != nil)
        }
    }
}
