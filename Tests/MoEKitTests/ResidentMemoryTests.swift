import Foundation
@testable import MoEKit
import MoETestSupport
import Testing

/// A layer is resident at its stored size: `moe forward` on a BF16 checkpoint peaks at no more than
/// 1.25 × the layer's stored bytes above what the same command needs for a 1-expert tiny layer. A loader
/// that keeps a widened F32 copy (2× a BF16 layer) fails it, and so does one that holds the file's pages
/// and the packed copy at once.
@Suite("Resident memory")
struct ResidentMemoryTests {
    /// Writes a Mixtral checkpoint of one MoE layer with per-expert BF16 tensors (`w1`/`w2`/`w3`) and an input
    /// of `tokens` tokens; returns the experts' stored bytes.
    static func writeMixtral(_ dir: String, hidden: Int, intermediate: Int, experts: Int, topK: Int, tokens: Int) throws -> Int {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let config = """
            {"model_type": "mixtral", "num_hidden_layers": 1, "hidden_size": \(hidden), "intermediate_size": \(intermediate),
             "num_local_experts": \(experts), "num_experts_per_tok": \(topK), "dtype": "bfloat16"}
            """
        try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        var state: UInt64 = 7
        // Random BF16 values of magnitude 2^-8 … 2^-5 with random signs (finite, never widened by the writer).
        func bf16(_ shape: [Int]) throws -> AnyTensor {
            let count = shape.reduce(1, *)
            var bits = [BFloat16](repeating: BFloat16(bitPattern: 0), count: count)
            for i in 0..<count {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let r = UInt16(truncatingIfNeeded: state >> 40)
                bits[i] = BFloat16(bitPattern: (r & 0x8000) | (0x3B80 + (r & 0x01FF)))
            }
            return .bf16(try Tensor(shape: shape, storage: bits))
        }
        let prefix = "model.layers.0.block_sparse_moe."
        var tensors: [(name: String, tensor: AnyTensor)] = [(prefix + "gate.weight", try bf16([experts, hidden]))]
        for e in 0..<experts {
            tensors.append(("\(prefix)experts.\(e).w1.weight", try bf16([intermediate, hidden])))
            tensors.append(("\(prefix)experts.\(e).w2.weight", try bf16([hidden, intermediate])))
            tensors.append(("\(prefix)experts.\(e).w3.weight", try bf16([intermediate, hidden])))
        }
        try SafetensorsWriter.write(tensors, metadata: ["format": "pt"], to: dir + "/model.safetensors")
        var x = Tensor<Float>(shape: [tokens, hidden])
        for i in 0..<x.count { x.storage[i] = Float(i % 17) / 17 - 0.5 }
        try SafetensorsWriter.write([("hidden_states", .f32(x))], to: dir + "/input.safetensors")
        return experts * 3 * hidden * intermediate * 2
    }

    /// The peak resident bytes of `moe forward` on the checkpoint in `dir` (its `--print-peak-memory` line).
    static func forwardPeak(_ dir: String, weights: WeightResidency) throws -> Int {
        let result = try MoEProcess.run(["forward", "--checkpoint", dir, "--layer", "0", "--input", dir + "/input.safetensors",
                                         "--output", dir + "/output.safetensors", "--threads", "2", "--print-peak-memory",
                                         "--weights", weights.rawValue])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let line = try #require(result.stderr.split(separator: "\n").first { $0.hasPrefix("peak resident bytes: ") })
        return try #require(Int(line.dropFirst("peak resident bytes: ".count)), "no peak in '\(line)'")
    }

    @Test("moe forward on a BF16 layer peaks at ≤ 1.25 × its stored bytes above a tiny layer's peak, packed or read in place",
          arguments: WeightResidency.allCases)
    func bf16LayerResidentOnce(_ weights: WeightResidency) throws {
        let scratch = try ScratchDirectory()
        // Baseline: the process itself (runtime, libraries, worker threads) with a 1-expert 64-wide layer.
        _ = try Self.writeMixtral(scratch.path + "/tiny", hidden: 64, intermediate: 64, experts: 1, topK: 1, tokens: 4)
        let baseline = try Self.forwardPeak(scratch.path + "/tiny", weights: weights)
        // 8 experts of 512 × 3072: 75 MB of BF16 weights (an F32 copy would be 150 MB more). Big enough that the
        // ~9 MB AddressSanitizer adds (quarantined buffers, shadow; scripts/sanitize.sh) stay well inside the 25 %.
        let stored = try Self.writeMixtral(scratch.path + "/layer", hidden: 512, intermediate: 3072, experts: 8, topK: 2, tokens: 4)
        let peak = try Self.forwardPeak(scratch.path + "/layer", weights: weights)
        let above = peak - baseline
        #expect(above > stored / 2, "the measured peak (\(peak) B, baseline \(baseline) B) does not even hold the \(stored) B of weights")
        #expect(Double(above) <= 1.25 * Double(stored),
                "peak \(peak) B is \(above) B above the tiny layer's \(baseline) B: more than 1.25 × the \(stored) B stored (a widened or doubled copy?)")
    }

    @Test("random stored weights have the asked standard deviation, no NaN codes, and do not depend on threads",
          arguments: [WeightFormat.f32, .bf16, .f16, .fp8E4M3(blockRows: 128, blockColumns: 128), .fp8E4M3(blockRows: 16, blockColumns: 64), .mxfp4])
    func randomStoredStatistics(_ format: WeightFormat) throws {
        let (count, rows, columns, std): (Int, Int, Int, Float) = (3, 300, 512, 0.02)
        let a = try StoredMatrices.random(format: format, count: count, rows: rows, columns: columns, std: std, seed: 9, threads: 1)
        let b = try StoredMatrices.random(format: format, count: count, rows: rows, columns: columns, std: std, seed: 9, threads: 2)
        var sum = 0.0, squares = 0.0, n = 0.0, nonFinite = 0, differ = 0
        for m in 0..<count {
            for r in 0..<rows {
                for c in 0..<columns {
                    let v = a.element(matrix: m, row: r, column: c)
                    if !v.isFinite { nonFinite += 1 }
                    if v.bitPattern != b.element(matrix: m, row: r, column: c).bitPattern { differ += 1 }
                    sum += Double(v)
                    squares += Double(v) * Double(v)
                    n += 1
                }
            }
        }
        #expect(nonFinite == 0)
        #expect(differ == 0, "1 and 2 threads made different weights")
        let rms = (squares / n).squareRoot()
        #expect(abs(rms / Double(std) - 1) < 0.1, "rms \(rms) for std \(std)")
        #expect(abs(sum / n) < 0.05 * Double(std))
        #expect(a.storedBytes == (try StoredMatrices(quantizing: Tensor(shape: [count, rows, columns]), as: format)).storedBytes)
        if case .fp8E4M3 = format {
            let nanCodes = (0..<count).reduce(0) { total, m in
                total + (0..<(rows * columns)).filter { WeightDecoding.isNaN(e4m3: a.matrices[m].values.load(fromByteOffset: $0, as: UInt8.self)) }.count
            }
            #expect(nanCodes == 0)
        }
    }
}
