/// A multi-device configuration MoEKit cannot run.
public enum ParallelError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidDeviceCount(Int)
    case expertsNotDivisible(expertCount: Int, deviceCount: Int)
    case capacityNotSupported
    case invalidMesh(String)
    case notDivisible(what: String, size: Int, parts: Int)

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
