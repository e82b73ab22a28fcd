/// A roofline prediction of one feed-forward block's time on a ``HardwareProfile``.
public struct LayerTime: Sendable, Equatable {
    /// Σ component FLOPs / (peak FLOP/s × fitted efficiency) at the component's dtype.
    public var computeSeconds: Double
    /// Bytes / memory bandwidth.
    public var memorySeconds: Double
    /// Launches × the profile's per-launch overhead (one launch per non-empty component).
    public var overheadSeconds: Double
    /// Time to bring the weights the block reads over the host link: weight bytes / link bandwidth.
    public var weightLoadSeconds: Double

    /// `max(compute, memory) + overhead`, in milliseconds.
    public var predictedMilliseconds: Double { (max(computeSeconds, memorySeconds) + overheadSeconds) * 1e3 }
    /// Weight-load time in milliseconds.
    public var weightLoadMilliseconds: Double { weightLoadSeconds * 1e3 }
    /// Whether the block is limited by arithmetic rather than memory.
    public var isComputeBound: Bool { computeSeconds >= memorySeconds }

    /// Predicts `work` on `hardware`.
    public init(_ work: LayerWork, on hardware: HardwareProfile) {
        let parts = work.components
        computeSeconds = parts.reduce(0) { sum, part in
            let peak = hardware.peak(for: part.computeDType) * hardware.efficiency(for: part.computeDType)
            return sum + (part.flops > 0 && peak > 0 ? part.flops / peak : 0)
        }
        memorySeconds = hardware.memoryBandwidth > 0 ? work.bytes / hardware.memoryBandwidth : 0
        overheadSeconds = Double(parts.count) * hardware.launchOverhead
        weightLoadSeconds = hardware.linkBandwidth > 0 ? work.weightBytes / hardware.linkBandwidth : 0
    }
}

extension HardwareProfile {
    /// Seed 004's load cycles for `bytes` over the host link: `bytes / link bandwidth × clock`
    /// (`nil` when the profile has no clock).
    public func loadCycles(bytes: Double) -> Double? {
        clockHz.map { bytes / linkBandwidth * $0 }
    }
}
