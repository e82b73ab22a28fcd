/// Bytes MoEKit owns: 64-byte aligned (cache lines and 512-bit loads), never initialised by the
/// allocator (every writer writes all of them), freed when the last reference goes.
final class AlignedBytes: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let count: Int

    /// - Throws: ``WeightError/outOfMemory(bytes:)`` when the allocator refuses.
    init(count: Int) throws(WeightError) {
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, max(count, 64)) == 0, let raw else { throw .outOfMemory(bytes: count) }
        pointer = raw
        self.count = count
    }

    deinit { free(pointer) }
}
