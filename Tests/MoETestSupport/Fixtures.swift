import Foundation

// The committed fixtures, shared by every test target: `Tests/Fixtures` (golden layers from
// scripts/make_fixtures.py, GGUF files, ggml block vectors) and `Tests/CostFixtures` (flagship configs and the
// parameter counts scripts/count_params.py printed). Found from this file's path, so any working directory works.

/// `Tests/`: this file is `Tests/MoETestSupport/Fixtures.swift`.
private let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path

/// Where the golden fixtures live (`Tests/Fixtures`, made by scripts/make_fixtures.py).
package let fixturesDirectory = testsDirectory + "/Fixtures"

/// Where the cost-model fixtures live (`Tests/CostFixtures`): flagship `config.json`s and `expected_params.json`.
package let costFixturesDirectory = testsDirectory + "/CostFixtures"

/// Copies a fixture checkpoint folder into a fresh temporary directory and returns the copy's path.
package func copyFixtureCheckpoint(_ fixture: String) throws -> String {
    let dir = try makeTemporaryDirectory(fixture)
    let source = fixturesDirectory + "/" + fixture + "/checkpoint"
    for name in try FileManager.default.contentsOfDirectory(atPath: source) {
        try FileManager.default.copyItem(atPath: source + "/" + name, toPath: dir + "/" + name)
    }
    return dir
}
