/// How much memory this process may still take: the smaller of the kernel's `MemAvailable` and the
/// room left under the cgroup's limit (v2 `memory.max − memory.current`, v1 `limit_in_bytes − usage`).
/// A layer that cannot fit is refused with both numbers before anything is allocated, rather than
/// killed by the OOM killer half way through. The environment variable `MOEKIT_MEMORY_AVAILABLE`
/// (bytes) caps the figure further, to try the refusal without filling a machine.
public enum MemoryBudget {
    /// Bytes available now, or `nil` when neither source can be read (not Linux).
    public static func availableBytes() -> Int? {
        var candidates: [Int] = []
        if let cap = ProcessInfo.processInfo.environment["MOEKIT_MEMORY_AVAILABLE"].flatMap({ Int($0) }) { candidates.append(cap) }
        if let meminfo = read("/proc/meminfo"),
           let line = meminfo.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
           let kib = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) {
            candidates.append(kib * 1024)
        }
        if let limit = number("/sys/fs/cgroup/memory.max"), let used = number("/sys/fs/cgroup/memory.current") {
            candidates.append(max(0, limit - used))
        } else if let limit = number("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
                  let used = number("/sys/fs/cgroup/memory/memory.usage_in_bytes"), limit < 1 << 60 {
            candidates.append(max(0, limit - used))
        }
        return candidates.min()
    }

    /// Throws unless `bytes` fit in ``availableBytes()`` (no check where it is unknown).
    /// - Throws: ``CheckpointError/insufficientMemory(what:needed:available:)``.
    public static func check(_ bytes: Int, for what: String) throws {
        if let available = availableBytes(), bytes > available {
            throw CheckpointError.insufficientMemory(what: what, needed: bytes, available: available)
        }
    }

    private static func read(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// A file holding one integer ("max" reads as no limit: `nil`).
    private static func number(_ path: String) -> Int? {
        read(path).flatMap { Int($0.filter { !$0.isWhitespace }) }
    }
}

/// How far loading a layer has come, for a progress line.
public struct LoadProgress: Sendable {
    /// Stored bytes read and packed so far, of ``totalBytes``.
    public var bytes: Int
    /// Stored bytes of every matrix to pack.
    public var totalBytes: Int
    /// Weight matrices (a per-expert checkpoint's tensors) packed so far, of ``totalMatrices``.
    public var matrices: Int
    /// Weight matrices to pack.
    public var totalMatrices: Int
}
