import Foundation
import MoECost

/// One predicted block (a bench case or a preset), with the measurement when there is one.
struct BlockPredictionRow: Encodable {
    var name: String
    var preset: String
    var tokens: Int
    var dtype: String
    var compute: String
    var flops: Double
    var executed_flops: Double
    var bytes: Double
    var weight_bytes: Double
    var expected_experts_touched: Double
    var regions: Int
    var compute_ms: Double
    var memory_ms: Double
    var overhead_ms: Double
    var predicted_ms: Double
    var compute_bound: Bool
    var measured_ms: Double?
    /// predicted / measured.
    var ratio: Double?

    init(name: String, preset: String, block: BlockShape, tokens: Int, hardware: HardwareProfile, measured: Double?,
         measuredExpertsTouched: Double? = nil) {
        let e = BlockEstimate(block, tokens: tokens, measuredExpertsTouched: measuredExpertsTouched)
        let t = BlockTime(e, on: hardware)
        self.name = name
        self.preset = preset
        self.tokens = tokens
        dtype = block.weightDType.rawValue
        compute = block.computeDType.rawValue
        flops = e.flops
        executed_flops = e.executedRouterFLOPs + e.executedExpertFLOPs
        bytes = e.bytes
        weight_bytes = e.weightBytes
        expected_experts_touched = e.expertsTouched
        regions = e.regions
        compute_ms = t.computeSeconds * 1e3
        memory_ms = t.memorySeconds * 1e3
        overhead_ms = t.overheadSeconds * 1e3
        predicted_ms = t.predictedMilliseconds
        compute_bound = t.isComputeBound
        measured_ms = measured
        ratio = measured.map { t.predictedMilliseconds / $0 }
    }

    static func printTable(_ rows: [BlockPredictionRow], hardware: String) {
        let measured = rows.contains { $0.measured_ms != nil }
        var header = ["case", "experts touched", "GFLOP", "MB moved", "compute ms", "memory ms", "overhead ms", "predicted ms", "bound"]
        if measured { header += ["measured ms", "pred/meas"] }
        var table = [header]
        for r in rows {
            var line = [r.name, String(format: "%.2f", r.expected_experts_touched), String(format: "%.3f", r.flops / 1e9),
                        String(format: "%.2f", r.bytes / 1e6), String(format: "%.3f", r.compute_ms), String(format: "%.3f", r.memory_ms),
                        String(format: "%.3f", r.overhead_ms), String(format: "%.3f", r.predicted_ms), r.compute_bound ? "compute" : "memory"]
            if measured {
                line += [r.measured_ms.map { String(format: "%.3f", $0) } ?? "-", r.ratio.map { String(format: "%.2f", $0) } ?? "-"]
            }
            table.append(line)
        }
        print("hardware \(hardware)")
        printColumns(table)
    }
}

/// `moe estimate --preset NAME`: one bench preset block at one or more token counts.
struct BlockPredictionReport: Encodable {
    var preset: String
    var hardware: String
    var cases: [BlockPredictionRow]

    init(preset: String, blocks: [BlockShape], tokens: [Int], hardware: HardwareProfile) {
        self.preset = preset
        self.hardware = hardware.name
        cases = blocks.flatMap { block in
            tokens.map { t in
                BlockPredictionRow(name: "\(preset) \(block.modeName) T=\(t)", preset: preset, block: block, tokens: t,
                                   hardware: hardware, measured: nil)
            }
        }
    }

    func printTable() { BlockPredictionRow.printTable(cases, hardware: hardware) }
}

/// `moe estimate --bench-case BENCH.json`: every case of a bench file, predicted vs measured.
struct BenchPredictionReport: Encodable {
    var bench: String
    var hardware: String
    var cases: [BlockPredictionRow]
    /// Cases with T ≥ 16 whose prediction is within ±30 % of the measurement (issue 5's acceptance).
    var within_30_percent_t16_plus: Int
    var cases_t16_plus: Int

    init(benchFile: String, hardware: HardwareProfile) throws {
        let results = try BenchResults(contentsOf: benchFile)
        bench = benchFile
        self.hardware = hardware.name
        cases = try results.cases.map { c in
            BlockPredictionRow(name: c.name, preset: c.preset, block: try c.block(), tokens: c.tokens, hardware: hardware, measured: c.ms,
                               measuredExpertsTouched: c.expertsTouched)
        }
        let big = cases.filter { $0.tokens >= 16 }
        cases_t16_plus = big.count
        within_30_percent_t16_plus = big.filter { abs(($0.ratio ?? 0) - 1) <= 0.3 }.count
    }

    func printTable() {
        BlockPredictionRow.printTable(cases, hardware: hardware)
        print("within ±30 % at T ≥ 16: \(within_30_percent_t16_plus) of \(cases_t16_plus)")
    }
}

/// `moe estimate --calibrate BENCH.json`: the profile built and where it was saved.
struct CalibrationReport: Encodable {
    var bench: String
    var saved_to: String
    var name: String
    var peak_flops: [String: Double]
    var bf16_peak_source: String
    var memory_bandwidth: Double
    var region_overhead_us: Double
    var launch_overhead_us: Double
    /// Fitted, not measured: the fraction of the peak the kernels reach on the bench shapes.
    var fitted_compute_efficiency: [String: Double]
    /// Fitted, not measured: how much of the shorter of compute and memory time hides under the longer.
    var fitted_compute_memory_overlap: Double?
    var fitted_on_cases: [String: Int]
    var source: String

    init(_ c: Calibration, bench: String, savedTo: String) {
        self.bench = bench
        saved_to = savedTo
        name = c.profile.name
        peak_flops = c.profile.peakFLOPS
        bf16_peak_source = c.bf16PeakSource
        memory_bandwidth = c.profile.memoryBandwidth
        region_overhead_us = (c.profile.regionOverhead ?? 0) * 1e6
        launch_overhead_us = c.profile.launchOverhead * 1e6
        fitted_compute_efficiency = c.fittedEfficiency
        fitted_compute_memory_overlap = c.fittedOverlap
        fitted_on_cases = c.fittedCaseCount
        source = c.profile.source ?? ""
    }

    func printTable() {
        print("profile       \(name), saved to \(saved_to) (use --hardware \(name))")
        print("from          \(bench)")
        print(String(format: "f32 peak      %.1f GFLOP/s (gemm_gflops)", (peak_flops["f32"] ?? 0) / 1e9))
        print(String(format: "bf16 peak     %.1f GFLOP/s (%@)", (peak_flops["bf16"] ?? 0) / 1e9, bf16_peak_source))
        print(String(format: "memory        %.1f GB/s (mem_gbs)", memory_bandwidth / 1e9))
        print(String(format: "overhead      %.2f µs per pool region (pool_region_us); %.2f µs per launch (3 regions, assumed)",
                     region_overhead_us, launch_overhead_us))
        if fitted_compute_efficiency.isEmpty {
            print("efficiency    none fitted (plain roofline)")
        } else {
            for (dtype, e) in fitted_compute_efficiency.sorted(by: { $0.key > $1.key }) {
                print(String(format: "efficiency    %@ %.3f of peak — FITTED on %d bench cases with T >= 16, not measured", dtype, e,
                             fitted_on_cases[dtype] ?? 0))
            }
        }
        if let overlap = fitted_compute_memory_overlap {
            print(String(format: "overlap       %.2f of the shorter of compute and memory hides under the longer — FITTED, not measured", overlap))
        }
    }
}
