import CMoEKernels

/// Runs work items on up to `threads` threads of the persistent worker pool (spin, then sleep). Each item is computed
/// by exactly one thread with a loop order that does not depend on the split, so results are
/// bit-identical for any thread count.
public enum Parallel {
    /// The number of threads to use when the caller does not say: the active processor count.
    public static var defaultThreadCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Makes the C allocator keep freed memory for reuse (glibc: no mmap/munmap per large buffer).
    /// A forward allocates tens of MB of row buffers; without this, the page faults of zero-filling fresh
    /// mappings cost ~5 % of a prefill layer. Process-wide, so left to the application (`moe` calls it).
    public static func retainFreedMemory() { moe_retain_freed_memory() }

    /// Calls `body` once for every index in `0..<count`, on up to `threads` threads.
    public static func forEach(_ count: Int, threads: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        WorkerPool.shared.run(count: count, threads: threads, body)
    }
}
