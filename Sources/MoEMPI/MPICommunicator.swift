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
        let sendLayout = try CollectiveCounts(send.map(\.count), operation: "all-to-all")
        let memory = CollectiveMemory()
        let sendCounts = memory.copy(sendLayout.counts), recvCounts = memory.copy([Int32](repeating: 0, count: size))
        try wait("all-to-all sizes", memory) { request in
            MPI_Ialltoall(sendCounts, 1, cmpi_int(), recvCounts, 1, cmpi_int(), comm, request)
        }
        let recvLayout = try CollectiveCounts((0..<size).map { Int(recvCounts[$0]) }, operation: "all-to-all")
        let sendBuffer = memory.copy(send.flatMap { $0 }), sendDispls = memory.copy(sendLayout.displacements)
        let recvBuffer = memory.bytes(recvLayout.total), recvDispls = memory.copy(recvLayout.displacements)
        try wait("all-to-all", memory) { request in
            MPI_Ialltoallv(sendBuffer, sendCounts, sendDispls, cmpi_byte(), recvBuffer, recvCounts, recvDispls,
                           cmpi_byte(), comm, request)
        }
        defer { memory.release() }
        return (0..<size).map { Array(UnsafeBufferPointer(start: recvBuffer + Int(recvDispls[$0]), count: Int(recvCounts[$0]))) }
    }

    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        let own = try CollectiveCounts([bytes.count], operation: "all-gather")
        let memory = CollectiveMemory()
        let count = memory.copy(own.counts), counts = memory.copy([Int32](repeating: 0, count: size))
        try wait("all-gather sizes", memory) { request in
            MPI_Iallgather(count, 1, cmpi_int(), counts, 1, cmpi_int(), comm, request)
        }
        let layout = try CollectiveCounts((0..<size).map { Int(counts[$0]) }, operation: "all-gather")
        let sendBuffer = memory.copy(bytes), displs = memory.copy(layout.displacements)
        let recvBuffer = memory.bytes(layout.total)
        try wait("all-gather", memory) { request in
            MPI_Iallgatherv(sendBuffer, count[0], cmpi_byte(), recvBuffer, counts, displs, cmpi_byte(), comm, request)
        }
        defer { memory.release() }
        return (0..<size).map { Array(UnsafeBufferPointer(start: recvBuffer + Int(displs[$0]), count: Int(counts[$0]))) }
    }

    /// Starts a non-blocking collective and polls it until it completes or the deadline passes. Every buffer
    /// the collective touches lives in `memory`, which stays allocated while MPI may still use it: on a
    /// timeout or failure the collective is still pending (MPI cannot cancel a collective), so `memory` is
    /// abandoned, never freed, and the caller aborts the job.
    private func wait(_ operation: String, _ memory: CollectiveMemory,
                      _ start: (UnsafeMutablePointer<MPI_Request?>) -> Int32) throws {
        let request = memory.request()
        guard start(request) == cmpi_success() else {
            memory.release()  // nothing started: nothing can touch the buffers
            throw CommunicatorError.transport("\(operation) could not start")
        }
        let deadline = ContinuousClock.now + .milliseconds(Int(timeoutSeconds * 1000))
        var done: Int32 = 0
        while true {
            guard MPI_Test(request, &done, cmpi_status_ignore()) == cmpi_success() else {
                memory.abandon()
                throw CommunicatorError.transport("\(operation) failed")
            }
            if done != 0 { return }
            if ContinuousClock.now > deadline {
                memory.abandon()
                throw CommunicatorError.timedOut(rank: rank, operation: operation, seconds: timeoutSeconds)
            }
            usleep(50)
        }
    }
}

/// The memory a non-blocking collective reads and writes (buffers, counts, displacements, the request),
/// allocated by hand so that it stays where MPI was told it is until the collective completes — Swift's
/// `&array` arguments are valid only for the duration of the `MPI_I*` call itself. ``release()`` frees it
/// once the last collective using it has completed; after a timeout it is ``abandon()``ed (leaked on
/// purpose: the pending collective may still write into it, and the job is about to be aborted).
private final class CollectiveMemory {
    private var blocks: [UnsafeMutableRawPointer] = []
    private var abandoned = false

    /// A pinned copy of `values`.
    func copy<T: BitwiseCopyable>(_ values: [T]) -> UnsafeMutablePointer<T> {
        let p = allocate(T.self, count: values.count)
        values.withUnsafeBufferPointer { if let base = $0.baseAddress { p.update(from: base, count: values.count) } }
        return p
    }

    /// `count` pinned bytes, zeroed (the collective writes them).
    func bytes(_ count: Int) -> UnsafeMutablePointer<UInt8> {
        let p = allocate(UInt8.self, count: count)
        p.initialize(repeating: 0, count: count)
        return p
    }

    /// A pinned request handle, initialised to `MPI_REQUEST_NULL`.
    func request() -> UnsafeMutablePointer<MPI_Request?> {
        let p = allocate(MPI_Request?.self, count: 1)
        p.initialize(to: cmpi_request_null())
        return p
    }

    private func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        // At least one element, so a zero-length buffer still has a valid, distinct address.
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<T>.stride,
                                                   alignment: max(MemoryLayout<T>.alignment, 16))
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// Frees everything (only when no collective using it can still be pending).
    func release() {
        guard !abandoned else { return }
        for block in blocks { block.deallocate() }
        blocks = []
    }

    /// Leaves everything allocated for good: a collective that timed out may still be using it.
    func abandon() { abandoned = true }

    deinit { release() }
}
#endif
