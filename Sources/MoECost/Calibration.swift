import Foundation

/// Builds the `this-machine` ``HardwareProfile`` from a `moe bench --json` file.
///
/// - F32 peak: the bench's measured F32 GEMM roof (`machine.gemm_gflops`).
/// - BF16 peak: the best FLOP rate of the bench's BF16-compute cases (a rate the engine reached, so a lower bound
///   of the true peak); 2 × the F32 peak when the file has no BF16-compute case. ``bf16PeakSource`` says which.
/// - Memory bandwidth: `machine.mem_gbs`. The "link" is memory too (CPU weights are already in RAM).
/// - Region overhead: `machine.pool_region_us` per worker-pool region; the block predictor counts the regions of a
///   forward (``BlockEstimate/regions``). The per-launch overhead (model configs, one launch per component of a
///   block) is 3 regions (pack, GEMM, write) — an assumption, not measured.
/// - Overlap: how much of the shorter of compute and memory time hides under the longer (one number, **fitted**
///   on a grid together with the efficiencies; 1 is the plain roofline).
/// - Efficiency: one factor per compute dtype, **fitted** on the bench cases with T ≥ `fitMinimumTokens` so that the
///   predictions' squared log error is smallest (the fraction of the peak the kernels reach on these shapes).
///   `fitted: false` leaves it at 1 (the plain roofline).
public struct Calibration: Sendable, Equatable {
    /// The `this-machine` profile.
    public var profile: HardwareProfile
    /// `"best bf16-compute case (NAME)"` or `"2 × f32 peak (no bf16-compute case)"`.
    public var bf16PeakSource: String
    /// Fitted efficiencies per compute dtype (empty when not fitted).
    public var fittedEfficiency: [String: Double]
    /// Cases each efficiency was fitted on.
    public var fittedCaseCount: [String: Int]
    /// The fitted compute-memory overlap (`nil` when not fitted).
    public var fittedOverlap: Double?

    /// Cases with fewer tokens are left out of the fit (T = 1 is the decode step, memory- and overhead-bound).
    public static let fitMinimumTokens = 16
    /// Pool regions per launch for ``HardwareProfile/launchOverhead`` (model-config predictions).
    public static let regionsPerLaunch = 3.0

    /// Calibrates from `bench`.
    /// - Parameters:
    ///   - bench: a validated bench file.
    ///   - source: what the profile's ``HardwareProfile/source`` names as the numbers' origin.
    ///   - fitted: whether to fit the efficiencies and the overlap (`false`: the plain roofline).
    /// - Throws: ``CostError`` for a case whose block cannot be predicted.
    public init(_ bench: BenchResults, source: String = "moe bench --json", fitted: Bool = true) throws(CostError) {
        let f32Peak = bench.machine.gemmGFLOPS * 1e9
        let bf16Cases = bench.cases.filter { $0.compute == "bf16" && $0.dtype == "bf16" }
        var bf16Peak = 2 * f32Peak
        bf16PeakSource = "2 × f32 peak (no bf16-compute case)"
        var best: (rate: Double, name: String)?
        for c in bf16Cases {
            let block = try c.block()
            let rate = BlockEstimate(block, tokens: c.tokens).flops / (c.ms * 1e-3)
            if rate > (best?.rate ?? 0) { best = (rate, c.name) }
        }
        if let best {
            bf16Peak = best.rate
            bf16PeakSource = "best bf16-compute case (\(best.name))"
        }
        let region = (bench.machine.regionMicroseconds ?? 0) * 1e-6
        var profile = HardwareProfile(name: HardwareProfile.thisMachineName, peakFLOPS: [.f32: f32Peak, .bf16: bf16Peak],
                                      memoryBandwidth: bench.machine.memoryGBs * 1e9, linkBandwidth: bench.machine.memoryGBs * 1e9,
                                      launchOverhead: Self.regionsPerLaunch * region)
        profile.regionOverhead = region
        fittedEfficiency = [:]
        fittedCaseCount = [:]
        if fitted {
            // Fit the compute-memory overlap (one number, a grid) and, for each overlap, one efficiency per
            // compute dtype (golden section); keep the combination with the smallest squared log error.
            var best: (loss: Double, overlap: Double, efficiency: [String: Double], counts: [String: Int])?
            for step in 0...20 {
                var trialProfile = profile
                trialProfile.computeMemoryOverlap = Double(step) / 20
                var efficiency: [String: Double] = [:], counts: [String: Int] = [:]
                var total = 0.0
                for dtype in [WeightDType.f32, .bf16] {
                    let cases = bench.cases.filter { $0.compute == dtype.rawValue && $0.tokens >= Self.fitMinimumTokens }
                    guard !cases.isEmpty else { continue }
                    let blocks = try cases.map { c throws(CostError) in (try c.block(), c.tokens, c.ms, c.expertsTouched) }
                    func loss(_ eff: Double) -> Double {
                        var trial = trialProfile
                        trial.computeEfficiency[dtype.rawValue] = eff
                        return blocks.reduce(0) { sum, item in
                            let estimate = BlockEstimate(item.0, tokens: item.1, measuredExpertsTouched: item.3)
                            let r = log(BlockTime(estimate, on: trial).predictedMilliseconds / item.2)
                            return sum + r * r
                        }
                    }
                    let eff = Self.fit(loss)
                    trialProfile.computeEfficiency[dtype.rawValue] = eff
                    efficiency[dtype.rawValue] = eff
                    counts[dtype.rawValue] = cases.count
                    total += loss(eff)
                }
                if total < (best?.loss ?? .infinity) {
                    best = (total, trialProfile.computeMemoryOverlap, efficiency, counts)
                }
            }
            if let best {
                profile.computeMemoryOverlap = best.overlap
                profile.computeEfficiency = best.efficiency
                fittedEfficiency = best.efficiency
                fittedCaseCount = best.counts
                fittedOverlap = best.overlap
            }
        }
        let fitText = fittedEfficiency.isEmpty ? "no fitted factor"
            : "FITTED compute efficiency " + fittedEfficiency.sorted { $0.key > $1.key }
                .map { "\($0.key) \(String(format: "%.3f", $0.value))" }.joined(separator: ", ")
                + ", compute-memory overlap \(String(format: "%.2f", fittedOverlap ?? 1))"
                + " on the cases with T ≥ \(Self.fitMinimumTokens)"
        profile.source = "moe estimate --calibrate \(source): f32 peak = gemm_gflops, bf16 peak = \(bf16PeakSource), "
            + "memory = mem_gbs, region = pool_region_us; \(fitText)"
        try profile.validate(path: source)
        self.profile = profile
    }

    /// Reads a bench file and calibrates from it.
    public init(benchFile path: String, fitted: Bool = true) throws(CostError) {
        try self.init(BenchResults(contentsOf: path), source: path, fitted: fitted)
    }

    /// Golden-section search of `loss` over efficiencies in [0.02, 2] (log scale); the loss is unimodal enough here
    /// (a max of two terms, one monotone in the efficiency).
    static func fit(_ loss: (Double) -> Double) -> Double {
        var a = log(0.02), b = log(2.0)
        let g = (sqrt(5.0) - 1) / 2
        var c = b - g * (b - a), d = a + g * (b - a)
        var fc = loss(exp(c)), fd = loss(exp(d))
        for _ in 0..<80 {
            if fc < fd { b = d; d = c; fd = fc; c = b - g * (b - a); fc = loss(exp(c)) }
            else { a = c; c = d; fc = fd; d = a + g * (b - a); fd = loss(exp(d)) }
        }
        return exp((a + b) / 2)
    }

    /// Writes the profile as JSON (creating the folder), for `--hardware this-machine` or `--hardware FILE`.
    public func save(to path: String) throws(CostError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            let data = try encoder.encode(profile)
            let url = URL(fileURLWithPath: path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try (data + Data("\n".utf8)).write(to: url)
        } catch {
            throw .unreadable(path: path, reason: "cannot write the profile (\(error.localizedDescription))")
        }
    }
}
