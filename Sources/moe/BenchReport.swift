import MoEKit

/// `moe bench` results; the JSON keys are part of the CLI contract.
struct BenchReport: Encodable {
    struct Machine: Encodable {
        /// MoEKit's own large F32 GEMM.
        var moekitGEMMGFLOPS: Double
        /// The system OpenBLAS's, when installed.
        var openBLASGEMMGFLOPS: Double?
        var memoryGBs: Double
        var isa: String
        /// Why AMX did not run (`machine.amx`), `nil` when it did.
        var amx: String? = nil
        /// The int8-compute kernels (`machine.int8_isa`): `avx512-vnni`, `avx2` or `swift`.
        var int8ISA: String = ExpertWeights.int8KernelISA
        var threads: Int
        var regionMicroseconds: Double

        /// The machine's F32 GEMM peak, which every "% GEMM peak" divides by: the better of the two.
        var gemmGFLOPS: Double { max(moekitGEMMGFLOPS, openBLASGEMMGFLOPS ?? 0) }

        enum CodingKeys: String, CodingKey {
            case gemmGFLOPS = "gemm_gflops", moekitGEMMGFLOPS = "moekit_gemm_gflops", openBLASGEMMGFLOPS = "openblas_gemm_gflops"
            case memoryGBs = "mem_gbs", isa, amx, int8ISA = "int8_isa", threads, regionMicroseconds = "pool_region_us"
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(gemmGFLOPS, forKey: .gemmGFLOPS)
            try c.encode(moekitGEMMGFLOPS, forKey: .moekitGEMMGFLOPS)
            try c.encode(openBLASGEMMGFLOPS, forKey: .openBLASGEMMGFLOPS)  // null without OpenBLAS
            try c.encode(memoryGBs, forKey: .memoryGBs)
            try c.encode(isa, forKey: .isa)
            try c.encode(amx, forKey: .amx)  // null when AMX ran
            try c.encode(int8ISA, forKey: .int8ISA)
            try c.encode(threads, forKey: .threads)
            try c.encode(regionMicroseconds, forKey: .regionMicroseconds)
        }
    }

    struct Case: Encodable {
        var name: String
        var preset: String
        var tokens: Int
        var dtype: String
        var compute: String
        var hidden: Int
        var intermediate: Int
        var experts: Int
        var topK: Int
        var sharedIntermediate: Int
        var ms: Double
        var gflops: Double
        var pctGEMMPeak: Double
        var weightGBs: Double
        var pctMemoryBandwidth: Double
        /// `nil` where the reference was not timed (realsize).
        var speedupVsReference: Double?
        var devices: Int = 1
        /// Dispatch + combine bytes per forward that left their device (with `--devices`).
        var allToAllBytes: Int?
        /// Distinct experts with at least one row, averaged over the timed forwards (the routing's real skew).
        var expertsTouched: Double
        enum CodingKeys: String, CodingKey {
            case name, preset, tokens, dtype, compute, hidden, intermediate, experts, ms, gflops
            case topK = "top_k", sharedIntermediate = "shared_intermediate", pctGEMMPeak = "pct_gemm_peak"
            case weightGBs = "weight_gbs", pctMemoryBandwidth = "pct_mem_bw", speedupVsReference = "speedup_vs_reference"
            case devices, allToAllBytes = "all_to_all_bytes", expertsTouched = "experts_touched"
        }
    }

    var machine: Machine
    var cases: [Case]
    /// `--suite realsize`: each layer's load, memory and times.
    var realsize: [RealSizeLayer]? = nil

    func printTable() {
        let openBLAS = machine.openBLASGEMMGFLOPS.map { "OpenBLAS \(format($0, 1))" } ?? "OpenBLAS not installed"
        print("machine: F32 GEMM peak \(format(machine.gemmGFLOPS, 1)) GFLOP/s (MoEKit \(format(machine.moekitGEMMGFLOPS, 1)), \(openBLAS)) · memory read \(format(machine.memoryGBs, 1)) GB/s · \(machine.isa)\(machine.amx.map { " (no AMX: \($0))" } ?? "") · int8 \(machine.int8ISA) · \(machine.threads) threads · parallel region \(format(machine.regionMicroseconds, 2)) µs")
        let parallel = cases.contains { $0.allToAllBytes != nil }
        let header = ["case", "ms", "GFLOP/s", "% GEMM peak", "weight GB/s", "% mem BW", "× reference"] + (parallel ? ["all-to-all MB"] : [])
        var rows = [header]
        for c in cases {
            rows.append([c.name, format(c.ms, 3), format(c.gflops, 1), format(c.pctGEMMPeak, 1), format(c.weightGBs, 1),
                         format(c.pctMemoryBandwidth, 1), c.speedupVsReference.map { format($0, 1) } ?? "—"]
                        + (parallel ? [format(Double(c.allToAllBytes ?? 0) / 1e6, 2)] : []))
        }
        printColumns(rows)
    }

    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try SafetensorsWriter.writeFile(Array(try encoder.encode(self)), to: path)
    }
}
