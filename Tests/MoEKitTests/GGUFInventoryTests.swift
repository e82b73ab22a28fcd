import Testing
@testable import MoEKit
import MoETestSupport

/// `GGUFModel.weightGroups` (what `moe inspect` prints for a GGUF file) against what loading each block holds;
/// QuantizedCheckpointTests does the same for safetensors checkpoints.
@Suite("GGUF weight groups")
struct GGUFInventoryTests {
    /// The GGUF golden fixtures, one entry each (`Fixtures/manifest-gguf.json`).
    static let fixtures: [GoldenCase] = {
        var seen = Set<String>()
        return GoldenCase.gguf.filter { seen.insert($0.fixture).inserted }
    }()

    @Test("moe inspect's resident bytes are what loading every block holds; its groups cover every tensor once",
          arguments: fixtures)
    func inventoryMatchesLoadedBlocks(_ golden: GoldenCase) throws {
        let model = try GGUFModel(path: golden.checkpointPath)
        for layer in 0..<model.config.layerCount {
            let groups = model.weightGroups(layer: layer)
            let (loaded, formats) = loadedWeightGroups(try model.feedForward(layer: layer, threads: 2))
            #expect(Dictionary(uniqueKeysWithValues: groups.map { ($0.kind, $0.residentBytes) }) == loaded, "\(golden.fixture) block \(layer)")
            for (kind, format) in formats {
                #expect(groups.first { $0.kind == kind }?.formats.first == format, "\(golden.fixture) block \(layer) \(kind)")
            }
        }
        let all = model.weightGroups()
        let infos = model.shards.files.flatMap(\.tensors)
        #expect(all.reduce(0) { $0 + $1.tensorCount } == infos.count)
        #expect(all.reduce(0) { $0 + $1.bytesOnDisk } == infos.reduce(0) { $0 + $1.byteCount })
        #expect(all.first { $0.kind == .notLoaded }?.tensorCount == model.unusedTensorNames().count)
        #expect(model.unusedTensorNames().contains("token_embd.weight"))
    }
}
