import Foundation

// Scratch files for the tests: every folder is fresh (a UUID in its name), so tests running in parallel never meet.

/// A fresh, empty temporary directory unique to this call (`moekit-tests-<label>-<UUID>`).
package func makeTemporaryDirectory(_ label: String) throws -> String {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("moekit-tests-\(label)-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

/// Writes `text` as `name` in a fresh temporary directory and returns the file's path.
package func writeTemporaryFile(_ text: String, named name: String) throws -> String {
    let path = try makeTemporaryDirectory("file") + "/" + name
    try writeBytes(Array(text.utf8), to: path)
    return path
}

/// Writes bytes to `path`.
package func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// A scratch folder removed when the test ends (when the last reference goes).
package final class ScratchDirectory {
    package let path: String

    package init() throws {
        path = try makeTemporaryDirectory("scratch")
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Copies a fixture checkpoint here and returns the copy's path.
    package func copyCheckpoint(_ fixture: String) throws -> String {
        let target = path + "/" + fixture
        try FileManager.default.copyItem(atPath: fixturesDirectory + "/" + fixture + "/checkpoint", toPath: target)
        return target
    }
}
