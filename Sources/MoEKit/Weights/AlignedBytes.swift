/// Bytes MoEKit owns: 64-byte aligned (cache lines and 512-bit loads), never initialised by the
/// allocator (every writer writes all of them), freed when the last reference goes. Buffers of 2 MiB and
/// more (packed weights) are mapped from the kernel in huge pages (``LargePages``).
final class AlignedBytes: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let count: Int
    /// Whether ``pointer`` came from ``LargePages/map(_:)`` (else from `posix_memalign`).
    private let mapped: Bool

    /// - Throws: ``WeightError/outOfMemory(bytes:)`` when the allocator refuses.
    init(count: Int) throws(WeightError) {
        if count >= LargePages.size, let pointer = LargePages.map(count) {
            self.pointer = pointer
            mapped = true
        } else {
            var raw: UnsafeMutableRawPointer?
            guard posix_memalign(&raw, 64, max(count, 64)) == 0, let raw else { throw .outOfMemory(bytes: count) }
            pointer = raw
            mapped = false
        }
        self.count = count
    }

    deinit {
        if mapped { LargePages.unmap(pointer, count: count) } else { free(pointer) }
    }
}

/// Anonymous memory for large weight buffers, aligned to 2 MiB and advised for transparent huge pages
/// (`MADV_HUGEPAGE`; Linux only, a hint elsewhere ignored): the first write of a 4 KiB page is a page
/// fault, and on a virtual machine each fault can cost more than copying the page (a 2.8 GB layer took
/// ~4 s of faults to pack with 4 KiB pages, ~0.3 s with 2 MiB ones). Resident only once written, like
/// any anonymous mapping; the tail past the last whole huge page stays in small pages.
enum LargePages {
    /// A transparent huge page on x86-64 and arm64 (4 KiB base pages): 2 MiB.
    static let size = 2 << 20

    /// `count` bytes (at least 1) of zero-filled anonymous memory starting on a 2 MiB boundary, or `nil`
    /// when the kernel refuses. Release with ``unmap(_:count:)``.
    static func map(_ count: Int) -> UnsafeMutableRawPointer? {
        let page = max(Int(sysconf(Int32(_SC_PAGESIZE))), 1)
        let length = (max(count, 1) + page - 1) / page * page
        let (padded, overflow) = length.addingReportingOverflow(size)
        guard !overflow, let raw = mmap(nil, padded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              raw != MAP_FAILED else { return nil }
        let start = (Int(bitPattern: raw) + size - 1) / size * size
        let head = start - Int(bitPattern: raw), tail = padded - head - length
        if head > 0 { munmap(raw, head) }
        let aligned = raw + head
        if tail > 0 { munmap(aligned + length, tail) }
        #if os(Linux)
        _ = madvise(aligned, length, Int32(MADV_HUGEPAGE))
        #endif
        return aligned
    }

    /// Unmaps what ``map(_:)`` returned for `count`.
    static func unmap(_ pointer: UnsafeMutableRawPointer, count: Int) {
        let page = max(Int(sysconf(Int32(_SC_PAGESIZE))), 1)
        munmap(pointer, (max(count, 1) + page - 1) / page * page)
    }
}
