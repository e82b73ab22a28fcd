import Foundation
import Testing

/// Runs the built `moe` executable. `swift build --build-tests` (and so `swift test`) builds every target, the
/// executable included, into the folder that holds the test bundle; `MoECLITests` also depends on `moe`.
package enum MoEProcess {
    /// The `moe` binary beside the test bundle, `nil` when it was not built.
    package static let executable: URL? = {
        var candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        candidates.append(Bundle.main.bundleURL)
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent())
        for dir in candidates {
            let url = dir.appendingPathComponent("moe")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }()

    /// How a run ended and what it printed.
    package struct Result {
        package var status: Int32
        /// `false` when a signal ended the process.
        package var exitedNormally: Bool
        package var stdout: String
        package var stderr: String
    }

    /// Runs `moe arguments…` to the end, with `environment` added to this process's own.
    package static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let exe = try #require(executable, "the moe executable was not built next to the tests")
        let process = Process()
        process.executableURL = exe
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, exitedNormally: process.terminationReason == .exit,
                      stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }
}
