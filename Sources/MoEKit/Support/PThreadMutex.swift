/// A pthread mutex with a closure API. The library's locks are pthread mutexes rather than
/// `Synchronization.Mutex` so that ThreadSanitizer (which intercepts pthread calls, not the futexes of the
/// uninstrumented standard library) sees their happens-before edges (`scripts/sanitize.sh thread`).
final class PThreadMutex: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t> = .allocate(capacity: 1)
    init() { pthread_mutex_init(m, nil) }
    deinit { pthread_mutex_destroy(m); m.deallocate() }
    func locked<T>(_ body: () throws -> T) rethrows -> T { pthread_mutex_lock(m); defer { pthread_mutex_unlock(m) }; return try body() }
}
