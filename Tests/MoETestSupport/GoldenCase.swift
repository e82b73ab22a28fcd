import Foundation
import MoEKit
import Testing

/// One fixture layer from `Tests/Fixtures/manifest.json` (safetensors checkpoints) or `Tests/Fixtures/manifest-gguf.json`
/// (GGUF files): the golden cases the parity, parallelism and CLI tests run.
package struct GoldenCase: Sendable, CustomTestStringConvertible {
    package var fixture: String
    package var layer: Int
    package var isMoE: Bool
    /// The model inside the fixture's folder: `checkpoint` (a safetensors folder) or a `.gguf` file (the first
    /// shard of a split model).
    package var checkpoint = "checkpoint"
    package var testDescription: String { "\(fixture) layer \(layer) (\(isMoE ? "moe" : "dense"))" }

    /// What `--checkpoint` takes.
    package var checkpointPath: String { fixturesDirectory + "/" + fixture + "/" + checkpoint }

    package var isGGUF: Bool { checkpoint.hasSuffix(".gguf") }

    /// The layer's feed-forward block, from the checkpoint folder or the GGUF file.
    package func feedForward(threads: Int = Parallel.defaultThreadCount) throws -> FeedForward {
        isGGUF ? try GGUFModel(path: checkpointPath).feedForward(layer: layer, threads: threads)
            : try Checkpoint(directory: checkpointPath).feedForward(layer: layer, threads: threads)
    }

    package static let all: [GoldenCase] = read("manifest.json") + read("manifest-gguf.json")

    /// The GGUF fixtures' layers.
    package static var gguf: [GoldenCase] { all.filter(\.isGGUF) }

    private static func read(_ file: String) -> [GoldenCase] {
        struct Manifest: Decodable {
            struct Fixture: Decodable { var name: String; var checkpoint: String?; var layers: [Layer] }
            struct Layer: Decodable { var layer: Int; var kind: String }
            var fixtures: [Fixture]
        }
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: fixturesDirectory + "/" + file)),
              let manifest = try? JSONDecoder().decode(Manifest.self, from: data) else { return [] }
        return manifest.fixtures.flatMap { f in
            f.layers.map { GoldenCase(fixture: f.name, layer: $0.layer, isMoE: $0.kind == "moe", checkpoint: f.checkpoint ?? "checkpoint") }
        }
    }
}
