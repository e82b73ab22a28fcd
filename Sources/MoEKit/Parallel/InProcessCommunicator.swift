/// Ranks as threads of this process: messages are handed over through shared mailboxes, and every
/// collective waits on a barrier with a time limit, so a rank that fails or hangs turns into a clear
/// error on the others instead of a hang.
public final class InProcessGroup: @unchecked Sendable {
    /// The number of ranks.
    public let size: Int
    /// How long a collective waits for the other ranks.
    public let timeoutSeconds: Double

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let changed: UnsafeMutablePointer<pthread_cond_t>
    // All guarded by `mutex`.
    private var mailbox: [[[UInt8]]]
    private var arrived = 0
    private var generation = 0
    private var failure: String?

    /// A group of `size` ranks.
    /// - Throws: ``ParallelError/invalidDeviceCount(_:)`` unless `size ≥ 1`.
    public init(size: Int, timeoutSeconds: Double = 60) throws(ParallelError) {
        guard size >= 1 else { throw .invalidDeviceCount(size) }
        self.size = size
        self.timeoutSeconds = timeoutSeconds
        mailbox = Array(repeating: Array(repeating: [], count: size), count: size)
        mutex = .allocate(capacity: 1)
        changed = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        pthread_cond_destroy(changed)
        mutex.deallocate()
        changed.deallocate()
    }

    /// Runs `body` on every rank, each on its own thread, and returns the ranks' results in rank order.
    /// Groups in `others` (sub-groups of these ranks) are aborted too.
    /// A rank that throws aborts the group: the others' pending collectives throw
    /// ``CommunicatorError/peerFailed(rank:reason:)``, and the first error is rethrown here.
    public func run<R: Sendable>(alsoAborting others: [InProcessGroup] = [],
                                 _ body: @escaping @Sendable (InProcessCommunicator) throws -> R) throws -> [R] {
        let results = ResultBox<R>(count: size)
        var threads: [pthread_t] = []
        for rank in 0..<size {
            let job = RankJob { [self] in
                do {
                    results.set(rank, .success(try body(InProcessCommunicator(group: self, rank: rank))))
                } catch {
                    results.set(rank, .failure(error))
                    abort(reason: "\(error)")
                    for group in others { group.abort(reason: "\(error)") }
                }
            }
            var thread = pthread_t()
            let context = Unmanaged.passRetained(job).toOpaque()
            let created = pthread_create(&thread, nil, { raw in
                Unmanaged<RankJob>.fromOpaque(raw!).takeRetainedValue().body()
                return nil
            }, context)
            if created != 0 {
                Unmanaged<RankJob>.fromOpaque(context).release()
                abort(reason: "could not start a thread for rank \(rank)")
                results.set(rank, .failure(CommunicatorError.transport("could not start a thread for rank \(rank)")))
                continue
            }
            threads.append(thread)
        }
        for thread in threads { pthread_join(thread, nil) }
        return try results.values()
    }

    /// The communicator of `rank` in this group, for ranks run by another group's ``run(alsoAborting:_:)``
    /// (the sub-groups of a mesh).
    public func communicator(rank: Int) throws -> InProcessCommunicator {
        guard rank >= 0, rank < size else { throw CommunicatorError.mismatch("rank \(rank) of a group of \(size)") }
        return InProcessCommunicator(group: self, rank: rank)
    }

    /// Marks the group failed and wakes every waiting rank.
    func abort(reason: String) {
        pthread_mutex_lock(mutex)
        if failure == nil { failure = reason }
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
    }

    /// Deposits `send` (one message per destination), waits for every rank, then collects this rank's
    /// messages; a second barrier keeps the mailboxes intact until everyone has read them.
    func exchange(rank: Int, send: [[UInt8]], operation: String) throws -> [[UInt8]] {
        pthread_mutex_lock(mutex)
        for destination in 0..<size { mailbox[rank][destination] = send[destination] }
        pthread_mutex_unlock(mutex)
        try barrier(rank: rank, operation: operation)
        pthread_mutex_lock(mutex)
        let received = (0..<size).map { mailbox[$0][rank] }
        pthread_mutex_unlock(mutex)
        try barrier(rank: rank, operation: operation)
        return received
    }

    private func barrier(rank: Int, operation: String) throws {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if let failure { throw CommunicatorError.peerFailed(rank: rank, reason: failure) }
        let myGeneration = generation
        arrived += 1
        if arrived == size {
            arrived = 0
            generation += 1
            pthread_cond_broadcast(changed)
            return
        }
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        let whole = timeoutSeconds.rounded(.down)
        deadline.tv_sec += Int(whole)
        deadline.tv_nsec += Int((timeoutSeconds - whole) * 1e9)
        if deadline.tv_nsec >= 1_000_000_000 { deadline.tv_sec += 1; deadline.tv_nsec -= 1_000_000_000 }
        while generation == myGeneration {
            if let failure { throw CommunicatorError.peerFailed(rank: rank, reason: failure) }
            if pthread_cond_timedwait(changed, mutex, &deadline) == ETIMEDOUT, generation == myGeneration {
                failure = "rank \(rank) timed out in \(operation)"
                pthread_cond_broadcast(changed)
                throw CommunicatorError.timedOut(rank: rank, operation: operation, seconds: timeoutSeconds)
            }
        }
    }
}

/// One rank of an ``InProcessGroup``.
public struct InProcessCommunicator: Communicator {
    let group: InProcessGroup
    public let rank: Int
    public var size: Int { group.size }

    public func allToAll(_ send: [[UInt8]]) throws -> [[UInt8]] {
        guard send.count == size else { throw CommunicatorError.mismatch("all-to-all with \(send.count) messages for \(size) ranks") }
        return try group.exchange(rank: rank, send: send, operation: "all-to-all")
    }

    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        try group.exchange(rank: rank, send: Array(repeating: bytes, count: size), operation: "all-gather")
    }
}

/// A rank's work, boxed for `pthread_create`.
private final class RankJob {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Per-rank results, written by the rank threads, read after they are joined.
private final class ResultBox<R>: @unchecked Sendable {
    private var results: [Result<R, any Error>?]
    private let lock = PThreadMutex()
    init(count: Int) { results = Array(repeating: nil, count: count) }
    func set(_ rank: Int, _ result: Result<R, any Error>) { lock.locked { results[rank] = result } }
    func values() throws -> [R] {
        // Report the root cause: a real error before the peers' "another rank failed".
        let failures = results.compactMap { r -> (any Error)? in if case .failure(let e) = r { return e }; return nil }
        if let first = failures.first(where: { !($0 is CommunicatorError) }) ?? failures.first { throw first }
        var values: [R] = []
        for (rank, r) in results.enumerated() {
            guard case .success(let v) = r else { throw CommunicatorError.transport("rank \(rank) returned no result") }
            values.append(v)
        }
        return values
    }
}
