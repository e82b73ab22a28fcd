/// D devices of one process and the one collective expert parallelism needs between them:
/// all-to-all-v, where device `s` sends `send[s][d]` to device `d`. In process the "transfer" is a
/// hand-over of buffers (no copy); the bytes that would cross a link are counted.
public struct DeviceMesh: Sendable {
    /// D.
    public let deviceCount: Int

    /// A mesh of `deviceCount` devices.
    /// - Throws: ``ParallelError/invalidDeviceCount(_:)`` unless `deviceCount ≥ 1`.
    public init(deviceCount: Int) throws(ParallelError) {
        guard deviceCount >= 1 else { throw .invalidDeviceCount(deviceCount) }
        self.deviceCount = deviceCount
    }

    /// All-to-all-v: returns `received` with `received[d][s] = send[s][d]`, and the bytes that left their
    /// device (transfers from a device to itself are free).
    func allToAll<Message: Sendable>(_ send: [[Message]], bytes: (Message) -> Int) -> (received: [[Message]], bytesMoved: Int) {
        var moved = 0
        var received: [[Message]] = []
        received.reserveCapacity(deviceCount)
        for d in 0..<deviceCount {
            var fromSources: [Message] = []
            fromSources.reserveCapacity(deviceCount)
            for s in 0..<deviceCount {
                fromSources.append(send[s][d])
                if s != d { moved += bytes(send[s][d]) }
            }
            received.append(fromSources)
        }
        return (received, moved)
    }
}

/// Errors of multi-device execution.
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
