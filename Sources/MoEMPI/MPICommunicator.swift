// Compiled only with the package trait `MPI` (`swift build --traits MPI`).
#if MPI
import CMPI
import MoEKit

/// A ``Communicator`` over Open MPI: the ranks of `MPI_COMM_WORLD` (one process each, under
/// `mpirun -np D`). Every collective is started non-blocking and polled against a deadline, so a rank
/// that died or hangs becomes a clear error and `MPI_Abort` on every survivor instead of a hang.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// How long a collective may wait for the other ranks.
    public let timeoutSeconds: Double
    /// The MPI communicator: `MPI_COMM_WORLD` or a split of it.
    private let comm: MPI_Comm

    /// Initialises MPI (once per process) and reads this process's rank and the world size.
    public init(timeoutSeconds: Double = 60) throws {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            guard MPI_Init(nil, nil) == cmpi_success() else { throw CommunicatorError.transport("MPI_Init failed") }
        }
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(cmpi_comm_world(), &r)
        MPI_Comm_size(cmpi_comm_world(), &s)
        rank = Int(r)
        size = Int(s)
        self.timeoutSeconds = timeoutSeconds
        comm = cmpi_comm_world()
    }

    private init(comm: MPI_Comm, timeoutSeconds: Double) {
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r)
        size = Int(s)
        self.timeoutSeconds = timeoutSeconds
        self.comm = comm
    }

    /// The ranks with the same `color`, ordered by `key` (`MPI_Comm_split`): the sub-groups of a 2-D mesh.
    public func split(color: Int, key: Int) throws -> MPICommunicator {
        var sub: MPI_Comm? = nil
        guard MPI_Comm_split(comm, Int32(color), Int32(key), &sub) == cmpi_success(), let sub else {
            throw CommunicatorError.transport("MPI_Comm_split failed")
        }
        return MPICommunicator(comm: sub, timeoutSeconds: timeoutSeconds)
    }

    /// Ends MPI for this process (call once, at exit).
    public static func finalize() {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
    }

    /// Stops every rank with `message` (what `mpirun` shows) and exit code 1.
    public func abort(_ message: String) -> Never {
        let where_ = message.hasPrefix("rank ") ? "" : "rank \(rank): "
        let line = "moe: error: \(where_)\(message)\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
        MPI_Abort(cmpi_comm_world(), 1)
        exit(1)
    }

    public func allToAll(_ send: [[UInt8]]) throws -> [[UInt8]] {
        guard send.count == size else { throw CommunicatorError.mismatch("all-to-all with \(send.count) messages for \(size) ranks") }
        var sendCounts = send.map { Int32($0.count) }
        var recvCounts = [Int32](repeating: 0, count: size)
        try wait("all-to-all sizes") { request in
            MPI_Ialltoall(&sendCounts, 1, cmpi_int(), &recvCounts, 1, cmpi_int(), comm, request)
        }
        var sendBuffer = send.flatMap { $0 }
        var sendDispls = Self.displacements(sendCounts)
        var recvDispls = Self.displacements(recvCounts)
        var recvBuffer = [UInt8](repeating: 0, count: Int(recvCounts.reduce(0, +)))
        try wait("all-to-all") { request in
            MPI_Ialltoallv(&sendBuffer, &sendCounts, &sendDispls, cmpi_byte(), &recvBuffer, &recvCounts, &recvDispls,
                           cmpi_byte(), comm, request)
        }
        return (0..<size).map { Array(recvBuffer[Int(recvDispls[$0])..<Int(recvDispls[$0] + recvCounts[$0])]) }
    }

    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        var count = Int32(bytes.count)
        var counts = [Int32](repeating: 0, count: size)
        try wait("all-gather sizes") { request in
            MPI_Iallgather(&count, 1, cmpi_int(), &counts, 1, cmpi_int(), comm, request)
        }
        var displs = Self.displacements(counts)
        var sendBuffer = bytes
        var recvBuffer = [UInt8](repeating: 0, count: Int(counts.reduce(0, +)))
        try wait("all-gather") { request in
            MPI_Iallgatherv(&sendBuffer, count, cmpi_byte(), &recvBuffer, &counts, &displs, cmpi_byte(), comm, request)
        }
        return (0..<size).map { Array(recvBuffer[Int(displs[$0])..<Int(displs[$0] + counts[$0])]) }
    }

    /// Starts a non-blocking collective and polls it until it completes or the deadline passes.
    private func wait(_ operation: String, _ start: (UnsafeMutablePointer<MPI_Request?>) -> Int32) throws {
        var request: MPI_Request? = cmpi_request_null()
        guard start(&request) == cmpi_success() else { throw CommunicatorError.transport("\(operation) could not start") }
        let deadline = ContinuousClock.now + .milliseconds(Int(timeoutSeconds * 1000))
        var done: Int32 = 0
        while true {
            guard MPI_Test(&request, &done, cmpi_status_ignore()) == cmpi_success() else {
                throw CommunicatorError.transport("\(operation) failed")
            }
            if done != 0 { return }
            if ContinuousClock.now > deadline {
                throw CommunicatorError.timedOut(rank: rank, operation: operation, seconds: timeoutSeconds)
            }
            usleep(50)
        }
    }

    private static func displacements(_ counts: [Int32]) -> [Int32] {
        var displs = [Int32](repeating: 0, count: counts.count)
        for i in 1..<max(counts.count, 1) { displs[i] = displs[i - 1] + counts[i - 1] }
        return displs
    }
}
#endif
