import Dispatch

/// Runs work items on up to `threads` threads. Each item is computed by exactly one thread with a
/// loop order that does not depend on the split, so results are bit-identical for any thread count.
public enum Parallel {
    /// The number of threads to use when the caller does not say: the active processor count.
    public static var defaultThreadCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Calls `body` once for every index in `0..<count`, spread over `threads` threads in contiguous chunks.
    public static func forEach(_ count: Int, threads: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        let workers = min(max(threads, 1), count)
        if workers == 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            // Dispatch wants a @Sendable closure; the items write disjoint outputs, so sharing `body` is safe.
            nonisolated(unsafe) let shared = body
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let begin = count * worker / workers
                let end = count * (worker + 1) / workers
                for i in begin..<end { shared(i) }
            }
        }
    }
}
