import Foundation
import MoEKit

/// Writes GGUF files byte by byte for the tests: well-formed ones, and — because every field is
/// settable, counts and offsets included — every kind of lie a bad file can tell.
package struct GGUFTestWriter {
    package enum Value {
        case u8(UInt8), i8(Int8), u16(UInt16), i16(Int16), u32(UInt32), i32(Int32), f32(Float), bool(Bool)
        case string(String), u64(UInt64), i64(Int64), f64(Double)
        case array(GGUFValueType, [Value])
        /// Any type id followed by any bytes.
        case raw(type: UInt32, bytes: [UInt8])
    }

    package struct Tensor {
        package var name: String
        /// ggml ne, innermost first.
        package var dims: [UInt64]
        package var type: UInt32
        package var data: [UInt8]
        /// `nil`: laid out after the previous tensor, aligned.
        package var offset: UInt64?

        package init(name: String, dims: [UInt64], type: UInt32, data: [UInt8], offset: UInt64? = nil) {
            (self.name, self.dims, self.type, self.data, self.offset) = (name, dims, type, data, offset)
        }
    }

    package var magic = Array("GGUF".utf8)
    package var version: UInt32 = 3
    package var entries: [(String, Value)] = []
    package var tensors: [Tensor] = []
    /// Used to lay out the data section; add `general.alignment` to say it in the file.
    package var alignment = 32
    package var tensorCountOverride: UInt64?
    package var entryCountOverride: UInt64?

    /// An empty version-3 file: no keys, no tensors.
    package init() {}

    package mutating func set(_ key: String, _ value: Value) {
        entries.removeAll { $0.0 == key }
        entries.append((key, value))
    }

    package mutating func remove(_ key: String) { entries.removeAll { $0.0 == key } }

    package mutating func add(_ name: String, dims: [Int], type: GGMLType = .f32, data: [UInt8]? = nil, offset: UInt64? = nil) {
        let bytes = data ?? Self.pattern(dims: dims, type: type, seed: tensors.count)
        tensors.append(Tensor(name: name, dims: dims.map(UInt64.init), type: type.rawValue, data: bytes, offset: offset))
    }

    /// Deterministic bytes for a tensor: F32/F16 values of a formula, other types a byte pattern.
    package static func pattern(dims: [Int], type: GGMLType, seed: Int) -> [UInt8] {
        let elements = dims.reduce(1, *)
        switch type {
        case .f32:
            return (0..<elements).flatMap { i -> [UInt8] in
                withUnsafeBytes(of: Self.value(i, seed: seed).bitPattern.littleEndian, Array.init)
            }
        case .f16:
            return (0..<elements).flatMap { i -> [UInt8] in
                withUnsafeBytes(of: Float16(Self.value(i, seed: seed)).bitPattern.littleEndian, Array.init)
            }
        default:
            let bytes = (type.rowBytes(elements: dims.first ?? 1) ?? 0) * dims.dropFirst().reduce(1, *)
            return (0..<bytes).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) }
        }
    }

    /// The value of element `i` (memory order) of a tensor made by ``pattern``.
    package static func value(_ i: Int, seed: Int) -> Float { Float((i * 3 + seed) % 17 - 8) / 8 }

    package func bytes() -> [UInt8] {
        var out: [UInt8] = magic
        out += le(version)
        out += le(tensorCountOverride ?? UInt64(tensors.count))
        out += le(entryCountOverride ?? UInt64(entries.count))
        for (key, value) in entries {
            out += string(key)
            out += encode(value, withType: true)
        }
        var next: UInt64 = 0
        var offsets: [UInt64] = []
        for t in tensors {
            let offset = t.offset ?? next
            offsets.append(offset)
            // A lying offset far past any real data is written into the header only.
            if offset <= 1 << 24 { next = max(next, align(offset + UInt64(t.data.count))) }
            out += string(t.name)
            out += le(UInt32(t.dims.count))
            for d in t.dims { out += le(d) }
            out += le(t.type)
            out += le(offset)
        }
        let dataStart = Int(align(UInt64(out.count)))
        out += [UInt8](repeating: 0, count: dataStart - out.count)
        var data = [UInt8](repeating: 0, count: Int(next))
        for (t, offset) in zip(tensors, offsets) where Int(offset) + t.data.count <= data.count {
            data.replaceSubrange(Int(offset)..<(Int(offset) + t.data.count), with: t.data)
        }
        return out + data
    }

    /// Writes the file into `directory` (default: a fresh temporary folder) and returns its path.
    package func write(named name: String = "model.gguf", in directory: String? = nil) throws -> String {
        let dir = try directory ?? makeTemporaryDirectory("gguf")
        let path = dir + "/" + name
        try Data(bytes()).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func align(_ n: UInt64) -> UInt64 {
        let a = UInt64(alignment)
        return (n + a - 1) / a * a
    }

    private func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }

    private func string(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }

    private func encode(_ value: Value, withType: Bool) -> [UInt8] {
        func typed(_ t: GGUFValueType, _ payload: [UInt8]) -> [UInt8] { (withType ? le(t.rawValue) : []) + payload }
        switch value {
        case .u8(let v): return typed(.uint8, [v])
        case .i8(let v): return typed(.int8, le(v))
        case .u16(let v): return typed(.uint16, le(v))
        case .i16(let v): return typed(.int16, le(v))
        case .u32(let v): return typed(.uint32, le(v))
        case .i32(let v): return typed(.int32, le(v))
        case .f32(let v): return typed(.float32, le(v.bitPattern))
        case .bool(let v): return typed(.bool, [v ? 1 : 0])
        case .string(let v): return typed(.string, string(v))
        case .u64(let v): return typed(.uint64, le(v))
        case .i64(let v): return typed(.int64, le(v))
        case .f64(let v): return typed(.float64, le(v.bitPattern))
        case .array(let type, let values):
            return typed(.array, le(type.rawValue) + le(UInt64(values.count)) + values.flatMap { encode($0, withType: false) })
        case .raw(let type, let bytes): return (withType ? le(type) : []) + bytes
        }
    }
}

/// Tiny MoE models of every architecture, as llama.cpp's converter lays them out.
package enum GGUFTestModels {
    package struct Sizes {
        package var hidden = 64
        package var experts = 4
        package var topK = 2
        package var width = 32
        package var blocks = 2

        package init(hidden: Int = 64, experts: Int = 4, topK: Int = 2, width: Int = 32, blocks: Int = 2) {
            (self.hidden, self.experts, self.topK, self.width, self.blocks) = (hidden, experts, topK, width, blocks)
        }
    }

    /// A complete file of `arch` (keys and feed-forward tensors), F32 unless `expertType` says otherwise.
    package static func writer(_ arch: GGUFArchitecture, _ s: Sizes = Sizes(), expertType: GGMLType = .f32) -> GGUFTestWriter {
        var w = GGUFTestWriter()
        let p = arch.rawValue + "."
        w.set("general.architecture", .string(arch.rawValue))
        w.set("general.name", .string("tiny \(arch)"))
        w.set(p + "block_count", .u32(UInt32(s.blocks)))
        w.set(p + "context_length", .u32(256))
        w.set(p + "embedding_length", .u32(UInt32(s.hidden)))
        w.set(p + "expert_count", .u32(UInt32(s.experts)))
        w.set(p + "expert_used_count", .u32(UInt32(s.topK)))
        w.set(p + "attention.head_count", .u32(4))
        w.set(p + "attention.layer_norm_rms_epsilon", .f32(1e-6))
        var dense: [Int] = []
        var shared: Int?
        var sharedGate = false
        switch arch {
        case .llama, .olmoe:
            w.set(p + "feed_forward_length", .u32(UInt32(s.width)))
        case .qwen3moe:
            w.set(p + "feed_forward_length", .u32(UInt32(s.width * 3)))
            w.set(p + "expert_feed_forward_length", .u32(UInt32(s.width)))
        case .qwen2moe:
            w.set(p + "feed_forward_length", .u32(UInt32(s.width * 3)))
            w.set(p + "expert_feed_forward_length", .u32(UInt32(s.width)))
            w.set(p + "expert_shared_feed_forward_length", .u32(UInt32(s.width * 2)))
            shared = s.width * 2
            sharedGate = true
        case .deepseek2:
            w.set(p + "feed_forward_length", .u32(UInt32(s.width * 3)))
            w.set(p + "leading_dense_block_count", .u32(1))
            w.set(p + "expert_feed_forward_length", .u32(UInt32(s.width)))
            w.set(p + "expert_shared_count", .u32(2))
            w.set(p + "expert_weights_scale", .f32(2.5))
            w.set(p + "expert_weights_norm", .bool(true))
            w.set(p + "expert_gating_func", .u32(2))
            w.set(p + "expert_group_count", .u32(2))
            w.set(p + "expert_group_used_count", .u32(1))
            dense = [0]
            shared = s.width * 2
        case .gptOSS:
            w.set(p + "feed_forward_length", .u32(UInt32(s.width)))
            w.set(p + "expert_feed_forward_length", .u32(UInt32(s.width)))
        case .llama4:
            w.set(p + "feed_forward_length", .u32(UInt32(s.width * 4)))
            w.set(p + "expert_feed_forward_length", .u32(UInt32(s.width)))
            w.set(p + "interleave_moe_layer_step", .u32(2))
            dense = (0..<s.blocks).filter { ($0 + 1) % 2 != 0 }
            shared = s.width
        }
        let (h, e, f) = (s.hidden, s.experts, s.width)
        w.add("token_embd.weight", dims: [h, 8])
        for n in 0..<s.blocks {
            w.add("blk.\(n).attn_norm.weight", dims: [h])
            if dense.contains(n) {
                let fd = arch == .llama4 ? f * 4 : f * 3
                w.add(GGUFTensorName.dense(n, .gate), dims: [h, fd])
                w.add(GGUFTensorName.dense(n, .up), dims: [h, fd])
                w.add(GGUFTensorName.dense(n, .down), dims: [fd, h])
                continue
            }
            w.add(GGUFTensorName.router(n), dims: [h, e])
            w.add(GGUFTensorName.experts(n, .gate), dims: [h, f, e], type: expertType)
            w.add(GGUFTensorName.experts(n, .up), dims: [h, f, e], type: expertType)
            w.add(GGUFTensorName.experts(n, .down), dims: [f, h, e], type: expertType)
            if arch == .gptOSS {
                w.add(GGUFTensorName.routerBias(n), dims: [e])
                w.add(GGUFTensorName.expertBias(n, .gate), dims: [f, e])
                w.add(GGUFTensorName.expertBias(n, .up), dims: [f, e])
                w.add(GGUFTensorName.expertBias(n, .down), dims: [h, e])
            }
            if arch == .deepseek2 { w.add(GGUFTensorName.scoreCorrectionBias(n), dims: [e]) }
            if let fs = shared {
                w.add(GGUFTensorName.shared(n, .gate), dims: [h, fs])
                w.add(GGUFTensorName.shared(n, .up), dims: [h, fs])
                w.add(GGUFTensorName.shared(n, .down), dims: [fs, h])
            }
            if sharedGate { w.add(GGUFTensorName.sharedGate(n), dims: [h]) }
        }
        return w
    }
}
