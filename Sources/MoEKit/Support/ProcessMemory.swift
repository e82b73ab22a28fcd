/// This process's own memory, as the kernel counts it (Linux `/proc/self`): what `moe bench --suite
/// realsize` measures a loaded layer with and what `moe forward --print-peak-memory` reports.
public enum ProcessMemory {
    /// Resident bytes now (`/proc/self/statm`: resident pages × page size), or `nil` where unreadable.
    public static func residentBytes() -> Int? {
        guard let text = read("/proc/self/statm") else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count >= 2, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// The peak resident bytes of this process (`VmHWM` of `/proc/self/status`), or `nil` where unreadable.
    public static func peakResidentBytes() -> Int? {
        guard let text = read("/proc/self/status"),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              // "VmHWM:\t 2890928 kB": a tab, then the number padded to 8 digits (no space from 10 GB on).
              let kib = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap({ Int($0) }) else { return nil }
        return kib * 1024
    }

    /// Resets the peak (``peakResidentBytes()``) to the resident bytes now (writes 5 to
    /// `/proc/self/clear_refs`); returns whether the kernel allowed it.
    @discardableResult
    public static func resetPeak() -> Bool {
        let fd = open("/proc/self/clear_refs", O_WRONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return posixWrite(fd, "5", 1) == 1
    }

    private static func read(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
