/// A multi-device configuration MoEKit cannot run.
public enum ParallelError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidDeviceCount(Int)
    case expertsNotDivisible(expertCount: Int, deviceCount: Int)
    case capacityNotSupported

    public var description: String {
        switch self {
        case .invalidDeviceCount(let d): "--devices \(d): need at least 1 device"
        case .expertsNotDivisible(let e, let d):
            "\(e) experts cannot be distributed equally over \(d) devices (E must be divisible by D)"
        case .capacityNotSupported:
            "a capacity factor needs one admission order over the whole batch; run it with --devices 1"
        }
    }
}
