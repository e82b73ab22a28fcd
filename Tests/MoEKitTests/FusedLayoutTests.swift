import Foundation
import Testing
@testable import MoEKit
import MoETestSupport

/// Fused expert tensors come as gate/up `[E, 2F, H]` with down `[E, H, F]` (transformers v5) or as `[E, H, 2F]`
/// with down `[E, F, H]` (x @ W). When H = 2F both gate/up shapes are `[E, H, H]`: down's shape must decide,
/// or an x @ W checkpoint is read transposed without a word.
@Suite("Fused expert layouts")
struct FusedLayoutTests {
    /// The qwen3-moe-fused fixture (H 32, F 24, 8 experts) cut to F = 16, so that H = 2F, in `transposed` or
    /// linear layout.
    static func checkpoint(transposed: Bool) throws -> String {
        let dir = try copyFixtureCheckpoint("qwen3-moe-fused")
        let (e, h, f0, f) = (8, 32, 24, 16)
        try editConfigJSON(dir) { $0["moe_intermediate_size"] = f }
        try EditableSafetensors.rewrite(dir + "/model.safetensors") { file in
            for layer in 0..<2 {
                let base = "model.layers.\(layer).mlp.experts."
                try file.edit(base + "gate_up_proj") { entry in
                    let w = entry.floats  // [E, 2·24, 32], gate rows then up rows
                    var out: [Float] = []
                    for m in 0..<e {
                        // Gate rows 0..<16 and up rows 24..<40 of expert m, as [2F, H] …
                        var linear: [Float] = []
                        for r in Array(0..<f) + Array(f0..<(f0 + f)) {
                            let start = (m * 2 * f0 + r) * h
                            linear += w[start..<(start + h)]
                        }
                        // … or its transpose [H, 2F].
                        out += transposed ? Self.transpose(linear, rows: 2 * f, columns: h) : linear
                    }
                    entry.setFloats(out, shape: transposed ? [e, h, 2 * f] : [e, 2 * f, h])
                }
                try file.edit(base + "down_proj") { entry in
                    let w = entry.floats  // [E, 32, 24]
                    var out: [Float] = []
                    for m in 0..<e {
                        var linear: [Float] = []  // [H, F]: the first 16 columns
                        for r in 0..<h {
                            let start = (m * h + r) * f0
                            linear += w[start..<(start + f)]
                        }
                        out += transposed ? Self.transpose(linear, rows: h, columns: f) : linear
                    }
                    entry.setFloats(out, shape: transposed ? [e, f, h] : [e, h, f])
                }
            }
        }
        return dir
    }

    /// `[rows, columns]` row-major → `[columns, rows]`.
    static func transpose(_ m: [Float], rows: Int, columns: Int) -> [Float] {
        var t = [Float](repeating: 0, count: m.count)
        for r in 0..<rows {
            for c in 0..<columns { t[c * rows + r] = m[r * columns + c] }
        }
        return t
    }

    @Test("H = 2F: the x @ W layout is recognised by down's shape, and both layouts give the same bits")
    func squareGateUp() throws {
        let linear = try Checkpoint(directory: try Self.checkpoint(transposed: false))
        let transposed = try Checkpoint(directory: try Self.checkpoint(transposed: true))
        #expect(linear.config.moe.hiddenSize == 2 * linear.config.moe.expertIntermediateSize)
        var g = SeededGenerator(seed: 61)
        let x = randomTensor([5, 32], generator: &g)
        for layer in 0..<2 {
            guard case .moe(let a) = try linear.feedForward(layer: layer, threads: 2),
                  case .moe(let b) = try transposed.feedForward(layer: layer, threads: 2) else {
                Issue.record("layer \(layer) is not an MoE block")
                return
            }
            let (ya, yb) = (try a.forward(x, threads: 2), try b.forward(x, threads: 2))
            #expect(ya.hiddenStates.storage.allSatisfy { $0.isFinite })
            #expect(ya.hiddenStates.storage.map(\.bitPattern) == yb.hiddenStates.storage.map(\.bitPattern), "layer \(layer)")
        }
    }
}

extension EditableSafetensors.Entry {
    /// The bytes as little-endian F32 values (the entry must be F32).
    var floats: [Float] {
        stride(from: 0, to: bytes.count, by: 4).map { i in
            Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
        }
    }

    /// Replaces the values (F32) and the shape.
    mutating func setFloats(_ values: [Float], shape: [Int]) {
        dtype = "F32"
        self.shape = shape
        bytes = values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) }
    }
}

/// F16 checkpoints (`"dtype": "F16"` tensors): read as stored (F16 panels, widened exactly in registers), the
/// same bits as the same values stored as F32.
@Suite("F16 checkpoints")
struct F16CheckpointTests {
    /// The mixtral-f32 fixture with every expert tensor's values rounded to F16, stored as `F16` or as `F32`.
    static func checkpoint(f16: Bool) throws -> String {
        let dir = try copyFixtureCheckpoint("mixtral-f32")
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name.hasSuffix(".safetensors") {
            try EditableSafetensors.rewrite(dir + "/" + name) { file in
                for entry in file.entries where entry.name.contains(".experts.") {
                    try file.edit(entry.name) { e in
                        let halves = e.floats.map { Float16($0) }
                        if f16 {
                            e.dtype = "F16"
                            e.bytes = halves.flatMap { h in withUnsafeBytes(of: h.bitPattern.littleEndian, Array.init) }
                        } else {
                            e.setFloats(halves.map { Float($0) }, shape: e.shape)
                        }
                    }
                }
            }
        }
        return dir
    }

    @Test("an F16 checkpoint loads as F16 and gives the bits of its values stored as F32")
    func f16MatchesF32() throws {
        let half = try Checkpoint(directory: try Self.checkpoint(f16: true))
        let single = try Checkpoint(directory: try Self.checkpoint(f16: false))
        var g = SeededGenerator(seed: 62)
        let x = randomTensor([7, half.config.moe.hiddenSize], generator: &g)
        guard case .moe(let a) = try half.feedForward(layer: 0, threads: 2),
              case .moe(let b) = try single.feedForward(layer: 0, threads: 2) else {
            Issue.record("layer 0 is not an MoE block")
            return
        }
        #expect(a.experts.format == .f16)
        #expect(a.experts.residentBytes < b.experts.residentBytes, "F16 panels are half the F32 ones")
        for variant in KernelVariant.allCases {
            let (ya, yb) = (try a.forward(x, variant: variant, threads: 2), try b.forward(x, variant: variant, threads: 2))
            #expect(ya.hiddenStates.storage.allSatisfy { $0.isFinite })
            #expect(ya.hiddenStates.storage.map(\.bitPattern) == yb.hiddenStates.storage.map(\.bitPattern), "\(variant)")
        }
    }
}
