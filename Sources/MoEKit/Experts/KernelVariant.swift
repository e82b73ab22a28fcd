/// Which implementation of an expert kernel to run. Both share one signature and one test.
public enum KernelVariant: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Plain loops with `Double` accumulation: the specification and the oracle.
    case reference
    /// Reader → compute → writer over packed panels, SIMD, multi-threaded; `Float` accumulation.
    case fast

    /// `reference` or `fast`.
    public var description: String { rawValue }
}
