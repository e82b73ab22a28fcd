import Foundation
import Testing
@testable import MoEKit

/// The persistent pool every parallel region runs on: each item exactly once, whatever the item and
/// thread counts, from several callers at once, after the workers went to sleep, and nested.
@Suite("Worker pool")
struct WorkerPoolTests {
    /// Runs a region of `count` items on `threads` threads and returns how often each item ran.
    static func tally(_ pool: WorkerPool, count: Int, threads: Int) -> [Int] {
        let lock = PThreadMutex()
        nonisolated(unsafe) var hits = [Int](repeating: 0, count: count)
        pool.run(count: count, threads: threads) { i in lock.locked { hits[i] += 1 } }
        return lock.locked { hits }
    }

    @Test("every item runs exactly once", arguments: [(0, 4), (1, 4), (3, 8), (1000, 1), (1000, 2), (1000, 64)])
    func everyItemOnce(_ shape: (count: Int, threads: Int)) {
        let pool = WorkerPool(workerCount: 3)
        #expect(Self.tally(pool, count: shape.count, threads: shape.threads) == [Int](repeating: 1, count: shape.count))
    }

    @Test("items really spread over the workers")
    func spreadsOverThreads() {
        let pool = WorkerPool(workerCount: 2)
        let lock = PThreadMutex()
        nonisolated(unsafe) var threads = Set<UInt>()
        pool.run(count: 64, threads: 3) { _ in
            let id = UInt(pthread_self())
            lock.locked { _ = threads.insert(id) }
            usleep(2000)  // long enough that the workers take items before the caller has drained them all
        }
        #expect(lock.locked { threads.count } > 1)
    }

    @Test("sleeping workers wake for the next region")
    func wakesAfterIdle() {
        let pool = WorkerPool(workerCount: 2)
        #expect(Self.tally(pool, count: 10, threads: 3) == [Int](repeating: 1, count: 10))
        usleep(200_000)  // far past the spin phase: the workers sleep on the condition variable
        #expect(Self.tally(pool, count: 100, threads: 3) == [Int](repeating: 1, count: 100))
    }

    @Test("regions from several threads at once each run all their items")
    func concurrentCallers() {
        let pool = WorkerPool(workerCount: 2)
        let lock = PThreadMutex()
        nonisolated(unsafe) var results: [[Int]] = []
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            let tally = Self.tally(pool, count: 200 + caller, threads: 3)
            lock.locked { results.append(tally) }
        }
        let all = lock.locked { results }
        #expect(all.count == 4)
        #expect(all.allSatisfy { $0.allSatisfy { $0 == 1 } })
    }

    @Test("a region inside a region's item runs inline instead of deadlocking")
    func nestedRegion() {
        let pool = WorkerPool(workerCount: 2)
        let lock = PThreadMutex()
        nonisolated(unsafe) var inner = [Int](repeating: 0, count: 8 * 5)
        pool.run(count: 8, threads: 3) { outer in
            pool.run(count: 5, threads: 3) { i in lock.locked { inner[outer * 5 + i] += 1 } }
        }
        #expect(lock.locked { inner } == [Int](repeating: 1, count: 8 * 5))
    }
}
