/// A multi-device configuration MoEKit cannot run.
public enum ParallelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A device count (or a side of a mesh) below 1.
    case invalidDeviceCount(Int)
    /// E experts cannot be split equally over D expert-parallel groups.
    case expertsNotDivisible(expertCount: Int, deviceCount: Int)
    /// A capacity factor on more than one rank: its admission order spans the whole batch.
    case capacityNotSupported
    /// A mesh that is not `EPxTP` with positive integers, or whose rank count overflows.
    case invalidMesh(String)
    /// A width (`what` of `size`) too small to split into `parts` tensor-parallel parts.
    case notDivisible(what: String, size: Int, parts: Int)

    /// One line naming the flag or size at fault.
    public var description: String {
        switch self {
        case .invalidDeviceCount(let d): "--devices \(d): need at least 1 device"
        case .expertsNotDivisible(let e, let d):
            "\(e) experts cannot be distributed equally over \(d) devices (E must be divisible by D)"
        case .invalidMesh(let text): "--mesh \(text): expected EPxTP with positive integers, e.g. 2x2"
        case .notDivisible(let what, let size, let parts): "\(what) \(size) cannot be split into \(parts) tensor-parallel parts"
        case .capacityNotSupported:
            "a capacity factor needs one admission order over the whole batch; run it with --devices 1"
        }
    }
}
