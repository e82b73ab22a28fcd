import MoECost
import MoEKit

/// `moe bench --suite realsize`: one MoE layer of real models at their real shapes, random weights made
/// directly in the format the Hub stores them (``MoEBlock/randomStored(config:seed:format:compute:threads:)``),
/// one layer at a time (built, measured, released before the next), each checked against the memory
/// available first.
struct RealSizeCase {
    var name: String
    var config: MoEConfig
    var format: WeightFormat

    /// Mixtral-8x7B, Qwen3-30B-A3B (BF16), DeepSeek-V3 (FP8 128 × 128, shared expert, grouped sigmoid router),
    /// GPT-OSS-120B (MXFP4, clamped SwiGLU with biases, biased router).
    static let all: [RealSizeCase] = [
        RealSizeCase(name: "mixtral-8x7b", config: MoEConfig(hiddenSize: 4096, expertCount: 8, expertsPerToken: 2, expertIntermediateSize: 14336,
                                                             router: .softmaxTopK(normalizesTopKWeights: true)), format: .bf16),
        RealSizeCase(name: "qwen3-30b-a3b", config: MoEConfig(hiddenSize: 2048, expertCount: 128, expertsPerToken: 8, expertIntermediateSize: 768,
                                                              router: .softmaxTopK(normalizesTopKWeights: true)), format: .bf16),
        RealSizeCase(name: "deepseek-v3", config: MoEConfig(
            hiddenSize: 7168, expertCount: 256, expertsPerToken: 8, expertIntermediateSize: 2048,
            router: .sigmoidGroupedTopK(groupCount: 8, keptGroupCount: 4, normalizesTopKWeights: true, scalingFactor: 2.5),
            sharedExpert: SharedExpertConfig(intermediateSize: 2048, gate: .none)), format: .fp8E4M3(blockRows: 128, blockColumns: 128)),
        RealSizeCase(name: "gpt-oss-120b", config: MoEConfig(hiddenSize: 2880, expertCount: 128, expertsPerToken: 4, expertIntermediateSize: 2880,
                                                             router: .topKThenSoftmax, routerHasBias: true,
                                                             expert: .clampedGated(alpha: 1.702, limit: 7)), format: .mxfp4),
    ]

    /// The token counts timed: a decode step and a prefill chunk.
    static let tokens = [1, 512]

    /// Bytes the layer's expert weights occupy as stored (values and scales; router F32 and biases apart).
    var storedBytes: Int {
        func stack(_ count: Int, _ rows: Int, _ columns: Int) -> Int {
            switch format {
            case .f32: count * rows * columns * 4
            case .bf16, .f16: count * rows * columns * 2
            case .fp8E4M3(let br, let bc): count * (rows * columns + ((rows + br - 1) / br) * ((columns + bc - 1) / bc) * 4)
            case .mxfp4: count * rows * (columns / WeightFormat.mxfp4Group) * 17
            case .ggml(let type): count * rows * (columns / type.blockSize) * type.bytesPerBlock
            }
        }
        let (e, h, f) = (config.expertCount, config.hiddenSize, config.expertIntermediateSize)
        var total = stack(e, f, h) * (config.expert.isGated ? 2 : 1) + stack(e, h, f)
        if let s = config.sharedExpert?.intermediateSize { total += 2 * stack(1, s, h) + stack(1, h, s) }
        return total
    }

    /// The bench case of this layer at `tokens` (for FLOPs, bytes touched and the case name).
    func benchCase(tokens: Int) -> BenchCase {
        BenchCase(preset: name, config: config, tokens: tokens, precision: .init(format: format, compute: .f32))
    }

    /// Whether every word of `filter` is part of the name or the format (`deepseek`, `bf16`, `fp8`).
    func matches(_ filter: String?) -> Bool {
        guard let filter else { return true }
        let dtype = benchCase(tokens: 1).dtype
        return filter.split(separator: " ").allSatisfy { word in name.contains(word) || dtype == word }
    }
}

/// What one real-size layer measured (the `realsize` array of the JSON).
struct RealSizeLayer: Encodable {
    var name: String
    var dtype: String
    var hidden: Int
    var intermediate: Int
    var experts: Int
    var topK: Int
    var sharedIntermediate: Int
    /// Expert (routed and shared) weights as stored.
    var storedBytes: Int
    /// ``ResidentEstimate`` (MoECost): what `moe estimate` predicts the loaded layer holds.
    var predictedResidentBytes: Int
    /// Why the layer was not run (memory), or `nil`.
    var skipped: String?
    /// Seconds to make the random stored weights and pack them.
    var loadSeconds: Double?
    /// The process's resident bytes (`/proc/self/statm`) after the load minus before.
    var residentBytes: Int?
    /// The peak resident bytes during the load (`VmHWM`, reset before it) minus the resident bytes before.
    var loadPeakBytes: Int?
    /// What the block says it holds (``MoEBlock/residentBytes``: packed experts, shared expert, router).
    var weightsResidentBytes: Int?
    /// predicted / measured (``residentBytes``).
    var predictedOverMeasured: Double?
    var msT1: Double?
    var msT512: Double?
    /// Weight bytes a T = 1 forward reads per second, and as % of the machine's read bandwidth.
    var weightGBsT1: Double?
    var pctMemoryBandwidthT1: Double?

    enum CodingKeys: String, CodingKey {
        case name, dtype, hidden, intermediate, experts, skipped
        case topK = "top_k", sharedIntermediate = "shared_intermediate", storedBytes = "stored_bytes"
        case predictedResidentBytes = "predicted_resident_bytes", loadSeconds = "load_s", residentBytes = "resident_bytes"
        case loadPeakBytes = "load_peak_bytes", weightsResidentBytes = "weights_resident_bytes"
        case predictedOverMeasured = "predicted_over_measured", msT1 = "ms_t1", msT512 = "ms_t512"
        case weightGBsT1 = "weight_gbs_t1", pctMemoryBandwidthT1 = "pct_mem_bw_t1"
    }
}

/// Runs the realsize suite.
struct RealSizeBench {
    var machine: BenchReport.Machine
    var threads: Int
    var repeats: Int
    var progress: (String) -> Void

    /// Every case matching `filter`, one at a time: the bench rows (T = 1 and 512) and the layer summaries.
    func run(filter: String?) throws -> (cases: [BenchReport.Case], layers: [RealSizeLayer]) {
        var cases: [BenchReport.Case] = []
        var layers: [RealSizeLayer] = []
        for c in RealSizeCase.all where c.matches(filter) {
            let (rows, layer) = try measure(c)
            cases += rows
            layers.append(layer)
        }
        return (cases, layers)
    }

    /// Builds, measures and releases one layer (the block lives only inside this call).
    private func measure(_ c: RealSizeCase) throws -> ([BenchReport.Case], RealSizeLayer) {
        let predicted = ResidentEstimate(c.config, format: c.format).total
        var layer = RealSizeLayer(name: c.name, dtype: c.benchCase(tokens: 1).dtype, hidden: c.config.hiddenSize,
                                  intermediate: c.config.expertIntermediateSize, experts: c.config.expertCount,
                                  topK: c.config.expertsPerToken, sharedIntermediate: c.config.sharedExpert?.intermediateSize ?? 0,
                                  storedBytes: c.storedBytes, predictedResidentBytes: predicted)
        // Making and packing holds about max(stored, packed) (stored pages are given back as they are packed),
        // then the largest forward's buffers; 256 MB of headroom for the rest of the process.
        let activations = ResidentEstimate.forwardActivationBytes(MoEBlockShape(c.config), tokens: RealSizeCase.tokens.max() ?? 1)
        let needed = max(predicted, c.storedBytes) + activations + (256 << 20)
        if let available = MemoryBudget.availableBytes(), needed > available {
            let reason = "needs about \(gb(needed)) GB, \(gb(available)) GB available"
            progress("\(c.name) \(layer.dtype): skipped, \(reason)")
            layer.skipped = reason
            return ([], layer)
        }
        progress("\(c.name) \(layer.dtype): making \(gb(c.storedBytes)) GB of random stored weights and packing them…")
        let before = ProcessMemory.residentBytes()
        let peakReset = ProcessMemory.resetPeak()
        let start = ContinuousClock.now
        let block = try MoEBlock.randomStored(config: c.config, seed: 1, format: c.format, threads: threads)
        layer.loadSeconds = MachineRoofs.seconds(ContinuousClock.now - start)
        let after = ProcessMemory.residentBytes()
        if let before, let after {
            layer.residentBytes = after - before
            layer.predictedOverMeasured = Double(predicted) / Double(max(after - before, 1))
        }
        if peakReset, let before, let peak = ProcessMemory.peakResidentBytes() { layer.loadPeakBytes = peak - before }
        layer.weightsResidentBytes = block.residentBytes
        var rows: [BenchReport.Case] = []
        for tokens in RealSizeCase.tokens {
            let bench = c.benchCase(tokens: tokens)
            progress("\(bench.name): 1 warm-up + \(repeats) timed…")
            var rng = SplitMix64(seed: UInt64(tokens))
            var times: [Double] = []
            var routed = 0, touched = 0.0, expertsUsed = 0
            for i in 0...repeats {
                let x = rng.tensor([tokens, c.config.hiddenSize], std: 1)
                let t0 = ContinuousClock.now
                let out = try block.forward(x, variant: .fast, threads: threads)
                let t = MachineRoofs.seconds(ContinuousClock.now - t0)
                guard i > 0 else { continue }
                times.append(t)
                routed += out.plan.rowCount
                touched += bench.weightBytesTouched(out.plan)
                expertsUsed += out.plan.tokensPerExpert.filter { $0 > 0 }.count
            }
            let median = times.sorted()[times.count / 2]
            let n = Double(times.count)
            let gflops = c.config.forwardFLOPs(tokenCount: tokens, routedRows: routed / times.count) / median / 1e9
            let weightGBs = touched / n / median / 1e9
            rows.append(BenchReport.Case(
                name: bench.name, preset: c.name, tokens: tokens, dtype: bench.dtype, compute: bench.compute, hidden: c.config.hiddenSize,
                intermediate: c.config.expertIntermediateSize, experts: c.config.expertCount, topK: c.config.expertsPerToken,
                sharedIntermediate: c.config.sharedExpert?.intermediateSize ?? 0, ms: median * 1e3, gflops: gflops,
                pctGEMMPeak: 100 * gflops / machine.gemmGFLOPS, weightGBs: weightGBs, pctMemoryBandwidth: 100 * weightGBs / machine.memoryGBs,
                speedupVsReference: nil, expertsTouched: Double(expertsUsed) / n))
            if tokens == 1 {
                layer.msT1 = median * 1e3
                layer.weightGBsT1 = weightGBs
                layer.pctMemoryBandwidthT1 = 100 * weightGBs / machine.memoryGBs
            } else if tokens == 512 {
                layer.msT512 = median * 1e3
            }
        }
        return (rows, layer)
    }

    private func gb(_ bytes: Int) -> String { format(Double(bytes) / 1e9, 2) }

    /// The realsize table.
    static func printTable(_ layers: [RealSizeLayer]) {
        func gb(_ bytes: Int?) -> String { bytes.map { format(Double($0) / 1e9, 3) } ?? "—" }
        func number(_ x: Double?, _ digits: Int) -> String { x.map { format($0, digits) } ?? "—" }
        var rows = [["layer", "format", "stored GB", "load s", "RSS +GB", "load peak +GB", "weights GB", "predicted GB", "pred/RSS",
                     "T=1 ms", "T=1 GB/s", "% mem BW", "T=512 ms"]]
        for l in layers where l.skipped == nil {
            rows.append([l.name, l.dtype, gb(l.storedBytes), number(l.loadSeconds, 2), gb(l.residentBytes), gb(l.loadPeakBytes),
                         gb(l.weightsResidentBytes), gb(l.predictedResidentBytes), number(l.predictedOverMeasured, 3),
                         number(l.msT1, 2), number(l.weightGBsT1, 2), number(l.pctMemoryBandwidthT1, 1), number(l.msT512, 1)])
        }
        printColumns(rows)
        for l in layers { if let skipped = l.skipped { print("\(l.name) \(l.dtype): skipped, \(skipped)") } }
    }
}
