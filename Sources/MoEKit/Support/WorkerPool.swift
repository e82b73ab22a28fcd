import CMoEKernels
import Synchronization

/// A persistent pool of worker threads for the kernels' parallel regions.
///
/// A region hands out work items `0..<count` through an atomic counter (dynamic load balance: one
/// hot expert does not serialise a layer); every item is computed entirely by one thread, so results
/// do not depend on the scheduling. Idle workers spin briefly on an atomic generation counter before
/// sleeping on a condition variable, so back-to-back regions (one MoE layer is several) cost about a
/// microsecond instead of a thread wake-up each. The calling thread works too.
///
/// Regions from different threads run one after another (one lock). A region started from inside a
/// region's item (nested parallelism) runs its items inline on the calling thread instead of waiting for
/// workers that are busy with the outer region — it would deadlock otherwise.
final class WorkerPool: @unchecked Sendable {
    /// The process-wide pool, sized to the machine (callers choose how many threads a region uses).
    static let shared = WorkerPool(workerCount: max(0, Parallel.defaultThreadCount - 1))

    /// Spins (about 50 µs on these machines) before a worker goes to sleep.
    private static let spinIterations = 20_000

    private let workerCount: Int
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>
    private let generation = Atomic<Int>(0)
    private let nextItem = Atomic<Int>(0)
    private let finishedWorkers = Atomic<Int>(0)
    private let regionLock = PThreadMutex()
    // Written by the caller before `generation` is bumped, read by workers after they see it.
    private nonisolated(unsafe) var job: ((Int) -> Void)?
    private nonisolated(unsafe) var itemCount = 0
    private nonisolated(unsafe) var participatingWorkers = 0

    init(workerCount: Int) {
        self.workerCount = workerCount
        mutex = .allocate(capacity: 1)
        wake = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        for index in 0..<workerCount {
            let context = Unmanaged.passRetained(WorkerContext(pool: self, index: index)).toOpaque()
            var thread = pthread_t()
            _ = pthread_create(&thread, nil, { raw in
                let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                context.pool.workerLoop(index: context.index)
                return nil
            }, context)
            pthread_detach(thread)
        }
    }

    /// Calls `body(i)` for every `i` in `0..<count` on up to `threads` threads (the caller included) and
    /// returns when all are done. Regions from different callers run one after another.
    func run(count: Int, threads: Int, _ body: (Int) -> Void) {
        let helpers = min(max(threads, 1), count, workerCount + 1) - 1
        guard helpers > 0, !RegionMarker.isInside else {
            for i in 0..<count { body(i) }
            return
        }
        regionLock.locked {
            withoutActuallyEscaping(body) { body in
                job = body
                itemCount = count
                participatingWorkers = helpers
                nextItem.store(0, ordering: .relaxed)
                finishedWorkers.store(0, ordering: .relaxed)
                pthread_mutex_lock(mutex)
                generation.add(1, ordering: .releasing)
                pthread_cond_broadcast(wake)
                pthread_mutex_unlock(mutex)
                RegionMarker.isInside = true
                drain(body, count: count)
                RegionMarker.isInside = false
                while finishedWorkers.load(ordering: .acquiring) < workerCount { spinPause() }
                job = nil
            }
        }
    }

    private func drain(_ body: (Int) -> Void, count: Int) {
        while true {
            let i = nextItem.add(1, ordering: .relaxed).oldValue
            if i >= count { return }
            body(i)
        }
    }

    private func workerLoop(index: Int) {
        RegionMarker.isInside = true  // a worker only ever runs region items
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < Self.spinIterations {
                    spinPause()
                    continue
                }
                pthread_mutex_lock(mutex)
                while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(wake, mutex) }
                pthread_mutex_unlock(mutex)
            }
            seen = generation.load(ordering: .acquiring)
            if index < participatingWorkers { runCurrentJob() }
            // Every reference this worker took to the job is released by now: the caller may clear it.
            finishedWorkers.add(1, ordering: .releasing)
        }
    }

    /// Runs the current region's items. A separate function so that the worker's reference to the
    /// (not really escaping) job closure ends before the worker reports that it has finished.
    @inline(never) private func runCurrentJob() {
        guard let job else { return }
        drain(job, count: itemCount)
    }

    @inline(__always) private func spinPause() { moe_spin_pause() }
}

/// Whether the current thread is running a region's items (a per-thread flag).
private enum RegionMarker {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    static var isInside: Bool {
        get { pthread_getspecific(key) != nil }
        set { pthread_setspecific(key, newValue ? UnsafeRawPointer(bitPattern: 1) : nil) }
    }
}

/// What a worker thread needs to start.
private final class WorkerContext {
    let pool: WorkerPool
    let index: Int
    init(pool: WorkerPool, index: Int) {
        self.pool = pool
        self.index = index
    }
}
