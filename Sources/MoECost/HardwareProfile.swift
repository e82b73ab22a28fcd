import Foundation

/// What a device can do, for the roofline: peak FLOP/s per dtype, memory bandwidth, the host link's
/// bandwidth (weight loading), and a fixed overhead per kernel launch.
///
/// A JSON profile file has the keys `name`, `peak_flops` (an object of dtype → FLOP/s, dtypes
/// `f32`, `bf16`, `f16`, `fp8`), `memory_bandwidth` and `link_bandwidth` (bytes/s), and optionally
/// `launch_overhead_us` and `clock_hz` (for weight-load cycles).
public struct HardwareProfile: Sendable, Equatable, Codable {
    /// The name `--hardware` takes (`h100`, `this-machine`, or the file's `name`).
    public var name: String
    /// Peak FLOP/s keyed by ``WeightDType`` raw value.
    public var peakFLOPS: [String: Double]
    /// Bytes/s from device memory.
    public var memoryBandwidth: Double
    /// Bytes/s over the host link that weights are loaded through.
    public var linkBandwidth: Double
    /// Seconds of fixed cost per kernel launch.
    public var launchOverhead: Double
    /// The clock, for seed 004's load cycles (`bytes / link bandwidth × clock`).
    public var clockHz: Double?
    /// Seconds per worker-pool parallel region (CPU profiles from `moe estimate --calibrate`); the block
    /// predictor multiplies it by the regions a forward runs. `nil`: use ``launchOverhead``.
    public var regionOverhead: Double?
    /// Fitted fraction of the peak the engine's kernels reach, keyed by ``WeightDType`` raw value
    /// (absent: 1, the plain roofline). Only `--calibrate` writes it, and says that it is fitted.
    public var computeEfficiency: [String: Double]
    /// Where the numbers come from (free text, e.g. the bench file and what was fitted).
    public var source: String?
    /// How much of the shorter of compute and memory time hides under the longer: 1 is the plain roofline
    /// `max(compute, memory)`, 0 is `compute + memory`. Only `--calibrate` sets it (fitted, and says so).
    public var computeMemoryOverlap: Double = 1

    /// A profile with no fitted efficiency, no region overhead and a plain roofline.
    public init(name: String, peakFLOPS: [WeightDType: Double], memoryBandwidth: Double, linkBandwidth: Double,
                launchOverhead: Double, clockHz: Double? = nil) {
        self.name = name
        self.peakFLOPS = Dictionary(uniqueKeysWithValues: peakFLOPS.map { ($0.key.rawValue, $0.value) })
        self.memoryBandwidth = memoryBandwidth
        self.linkBandwidth = linkBandwidth
        self.launchOverhead = launchOverhead
        self.clockHz = clockHz
        self.regionOverhead = nil
        self.computeEfficiency = [:]
        self.source = nil
    }

    enum CodingKeys: String, CodingKey {
        case name, peakFLOPS = "peak_flops", memoryBandwidth = "memory_bandwidth", linkBandwidth = "link_bandwidth"
        case launchOverheadMicroseconds = "launch_overhead_us", clockHz = "clock_hz"
        case regionOverheadMicroseconds = "region_overhead_us", computeEfficiency = "compute_efficiency", source
        case computeMemoryOverlap = "compute_memory_overlap"
    }

    /// Reads a JSON profile; `name` defaults to `custom`, `link_bandwidth` to `memory_bandwidth`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? "custom"
        peakFLOPS = try c.decode([String: Double].self, forKey: .peakFLOPS)
        memoryBandwidth = try c.decode(Double.self, forKey: .memoryBandwidth)
        linkBandwidth = try c.decodeIfPresent(Double.self, forKey: .linkBandwidth) ?? memoryBandwidth
        launchOverhead = (try c.decodeIfPresent(Double.self, forKey: .launchOverheadMicroseconds) ?? 0) * 1e-6
        clockHz = try c.decodeIfPresent(Double.self, forKey: .clockHz)
        regionOverhead = try c.decodeIfPresent(Double.self, forKey: .regionOverheadMicroseconds).map { $0 * 1e-6 }
        computeEfficiency = try c.decodeIfPresent([String: Double].self, forKey: .computeEfficiency) ?? [:]
        computeMemoryOverlap = try c.decodeIfPresent(Double.self, forKey: .computeMemoryOverlap) ?? 1
        source = try c.decodeIfPresent(String.self, forKey: .source)
    }

    /// Writes the JSON profile `init(from:)` reads.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(peakFLOPS, forKey: .peakFLOPS)
        try c.encode(memoryBandwidth, forKey: .memoryBandwidth)
        try c.encode(linkBandwidth, forKey: .linkBandwidth)
        try c.encode(launchOverhead * 1e6, forKey: .launchOverheadMicroseconds)
        try c.encodeIfPresent(clockHz, forKey: .clockHz)
        try c.encodeIfPresent(regionOverhead.map { $0 * 1e6 }, forKey: .regionOverheadMicroseconds)
        if !computeEfficiency.isEmpty { try c.encode(computeEfficiency, forKey: .computeEfficiency) }
        if computeMemoryOverlap != 1 { try c.encode(computeMemoryOverlap, forKey: .computeMemoryOverlap) }
        try c.encodeIfPresent(source, forKey: .source)
    }

    /// The fitted efficiency for arithmetic in `dtype` (the one of the dtype whose peak ``peak(for:)`` uses), 1 if none.
    public func efficiency(for dtype: WeightDType) -> Double {
        guard let used = peakDType(for: dtype) else { return 1 }
        return computeEfficiency[used.rawValue] ?? 1
    }

    /// Peak FLOP/s for arithmetic in `dtype`, falling back to the next wider dtype the device lists
    /// (fp8 → bf16 → f16 → f32), 0 if none.
    public func peak(for dtype: WeightDType) -> Double {
        peakDType(for: dtype).flatMap { peakFLOPS[$0.rawValue] } ?? 0
    }

    /// The dtype whose listed peak serves arithmetic in `dtype`: itself, else the next wider one with a peak.
    private func peakDType(for dtype: WeightDType) -> WeightDType? {
        let order: [WeightDType]
        switch dtype {
        case .fp8: order = [.fp8, .bf16, .f16, .f32]
        case .bf16, .mxfp4: order = [.bf16, .f16, .f32]
        case .f16: order = [.f16, .bf16, .f32]
        case .f32, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K: order = [.f32]  // ggml blocks: decoded to F32
        }
        return order.first { (peakFLOPS[$0.rawValue] ?? 0) > 0 }
    }

    /// Checks that the numbers can be divided by.
    public func validate(path: String) throws(CostError) {
        guard memoryBandwidth > 0, memoryBandwidth.isFinite else {
            throw .invalidValue(path: path, key: "memory_bandwidth", value: "\(memoryBandwidth)", reason: "must be positive")
        }
        guard linkBandwidth > 0, linkBandwidth.isFinite else {
            throw .invalidValue(path: path, key: "link_bandwidth", value: "\(linkBandwidth)", reason: "must be positive")
        }
        guard launchOverhead >= 0, launchOverhead.isFinite else {
            throw .invalidValue(path: path, key: "launch_overhead_us", value: "\(launchOverhead * 1e6)", reason: "must not be negative")
        }
        guard peak(for: .f32) > 0 || peak(for: .bf16) > 0,
              peakFLOPS.values.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw .invalidValue(path: path, key: "peak_flops", value: "\(peakFLOPS)", reason: "needs a positive f32 or bf16 peak")
        }
        if let r = regionOverhead, !(r.isFinite && r >= 0) {
            throw .invalidValue(path: path, key: "region_overhead_us", value: "\(r * 1e6)", reason: "must not be negative")
        }
        guard computeEfficiency.values.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw .invalidValue(path: path, key: "compute_efficiency", value: "\(computeEfficiency)", reason: "must be positive")
        }
    }

    /// Built-in profiles. Sources and assumptions:
    /// - `cpu-2core`: this repository's 2-core AVX-512 host, from docs/PERFORMANCE.md (`moe bench`:
    ///   F32 GEMM peak 210 GFLOP/s, memory read 33.7 GB/s); BF16 compute assumed 2× F32 (420 GFLOP/s,
    ///   AVX-512 BF16 dot products); the "link" is memory itself (weights already in RAM); 10 µs per
    ///   launch (thread-pool dispatch, an assumption).
    /// - `h100`: NVIDIA H100 SXM5 datasheet: dense BF16 989 TFLOP/s, FP8 1979, FP32 (non-tensor) 67;
    ///   HBM3 3.35 TB/s; host link PCIe 5.0 ×16 at 64 GB/s; 5 µs per launch (assumption).
    /// - `h200`: H100's compute with HBM3e 4.8 TB/s (NVIDIA H200 datasheet); same link and overhead.
    /// - `wormhole-n300`: Tenstorrent Wormhole n300 (seed 000's card) product page: FP8 466 TFLOP/s,
    ///   FP16/BF16 131 TFLOP/s, GDDR6 576 GB/s, PCIe 4.0 ×16 at 32 GB/s; FP32 assumed ¼ of BF16;
    ///   10 µs per launch (assumption).
    /// - `pim`: a NeuPIMs-style device (seed 004): a 128×128 systolic array at 1 GHz (32.8 TFLOP/s
    ///   FP16/BF16), HBM at 1 TB/s (assumption), PCIe 5.0 ×16 in both directions at 128 GB/s, which
    ///   gives the seed's ≈ 31 K load cycles (32.8 K here) for a 4.2 MB expert at 1 GHz; 1 µs per launch.
    public static let builtIn: [HardwareProfile] = [
        HardwareProfile(name: "cpu-2core", peakFLOPS: [.f32: 210e9, .bf16: 420e9], memoryBandwidth: 33.7e9,
                        linkBandwidth: 33.7e9, launchOverhead: 10e-6),
        HardwareProfile(name: "h100", peakFLOPS: [.f32: 67e12, .bf16: 989e12, .f16: 989e12, .fp8: 1979e12],
                        memoryBandwidth: 3.35e12, linkBandwidth: 64e9, launchOverhead: 5e-6, clockHz: 1.98e9),
        HardwareProfile(name: "h200", peakFLOPS: [.f32: 67e12, .bf16: 989e12, .f16: 989e12, .fp8: 1979e12],
                        memoryBandwidth: 4.8e12, linkBandwidth: 64e9, launchOverhead: 5e-6, clockHz: 1.98e9),
        HardwareProfile(name: "wormhole-n300", peakFLOPS: [.f32: 32.75e12, .bf16: 131e12, .f16: 131e12, .fp8: 466e12],
                        memoryBandwidth: 576e9, linkBandwidth: 32e9, launchOverhead: 10e-6, clockHz: 1e9),
        HardwareProfile(name: "pim", peakFLOPS: [.bf16: 32.768e12, .f16: 32.768e12, .f32: 8.192e12],
                        memoryBandwidth: 1e12, linkBandwidth: 128e9, launchOverhead: 1e-6, clockHz: 1e9),
    ]

    /// The name that reads the profile `moe estimate --calibrate` saved.
    public static let thisMachineName = "this-machine"
    /// Where `moe estimate --calibrate` saves the `this-machine` profile, relative to the working directory
    /// (a generated, machine-specific file: git-ignored).
    public static let thisMachineDefaultPath = ".moekit/this-machine.json"

    /// A built-in profile by name, `this-machine` (the calibrated profile at `thisMachinePath`), or a JSON profile file.
    /// - Throws: ``CostError/unknownHardware(name:known:)`` or a file error.
    public static func named(_ name: String, thisMachinePath: String = thisMachineDefaultPath) throws(CostError) -> HardwareProfile {
        if let profile = builtIn.first(where: { $0.name == name }) { return profile }
        if name == thisMachineName {
            guard FileManager.default.fileExists(atPath: thisMachinePath) else {
                throw .unreadable(path: thisMachinePath, reason: "no calibrated profile: run 'moe estimate --calibrate BENCH.json' first (BENCH.json from 'moe bench --json')")
            }
            return try named(thisMachinePath)
        }
        guard FileManager.default.fileExists(atPath: name) else {
            throw .unknownHardware(name: name, known: builtIn.map(\.name) + [thisMachineName])
        }
        let data = try readFile(name)
        let profile: HardwareProfile
        do { profile = try JSONDecoder().decode(HardwareProfile.self, from: data) } catch {
            throw .unreadable(path: name, reason: "not a hardware profile (needs peak_flops, memory_bandwidth, link_bandwidth)")
        }
        try profile.validate(path: name)
        return profile
    }
}
