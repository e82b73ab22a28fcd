import Foundation
import Testing
@testable import MoEKit
import MoETestSupport

@Suite("GGUF split files")
struct GGUFSplitTests {
    /// A 3-block qwen3moe model cut into three shards the way gguf-split cuts it: the first shard
    /// carries the metadata, every shard its `split.*` keys; tensors are dealt out in order.
    static func shards(_ change: (inout [GGUFTestWriter]) -> Void = { _ in }) throws -> (dir: String, paths: [String]) {
        let whole = GGUFTestModels.writer(.qwen3moe, GGUFTestModels.Sizes(blocks: 3))
        let count = 3
        var shards = (0..<count).map { i -> GGUFTestWriter in
            var w = GGUFTestWriter()
            if i == 0 { w.entries = whole.entries }
            w.set("split.no", .u16(UInt16(i)))
            w.set("split.count", .u16(UInt16(count)))
            w.set("split.tensors.count", .i32(Int32(whole.tensors.count)))
            return w
        }
        let perShard = (whole.tensors.count + count - 1) / count
        for (i, t) in whole.tensors.enumerated() { shards[i / perShard].tensors.append(t) }
        change(&shards)
        let dir = try makeTemporaryDirectory("gguf")
        let paths = try shards.enumerated().map { i, w in try w.write(named: "tiny-\(String(format: "%05d", i + 1))-of-00003.gguf", in: dir) }
        return (dir, paths)
    }

    @Test("all shards are opened from any one of them; tensors are found in the shard that holds them")
    func openAll() throws {
        let (_, paths) = try Self.shards()
        for entry in paths {
            let model = try GGUFModel(path: entry)
            #expect(model.shards.files.map(\.path) == paths)
            #expect(model.path == paths[0])
            #expect(model.config.layerCount == 3 && model.config.moe.expertCount == 4)
            let names = Set(model.layers.flatMap(\.tensors).map(\.name))
            #expect(names.count == 3 * 4)
            for layer in model.layers {
                for t in layer.tensors {
                    #expect(model.shards.files.first { $0.path == t.path }?.info(t.name) != nil, "\(t.name) in \(t.path)")
                }
            }
            #expect(Set(model.layers.flatMap(\.tensors).map(\.path)).count == 3)
        }
    }

    @Test("file names: only -iiiii-of-nnnnn.gguf with 1 ≤ i ≤ n is a shard")
    func names() {
        #expect(GGUFShards.splitName("/m/a-b-00002-of-00003.gguf").map { [$0.prefix, "\($0.count)"] } == ["/m/a-b", "3"])
        #expect(GGUFShards.splitName("/m/a-00001-of-00003.gguf")?.path(shard: 3) == "/m/a-00003-of-00003.gguf")
        #expect(GGUFShards.splitName("/m/a.gguf") == nil)
        #expect(GGUFShards.splitName("/m/a-00004-of-00003.gguf") == nil)
        #expect(GGUFShards.splitName("/m/a-0001-of-00003.gguf") == nil)
        #expect(GGUFShards.splitName("/m/a-00000-of-00000.gguf") == nil)
        #expect(GGUFShards.splitName("-00001-of-00002.gguf") == nil)
    }

    @Test("a missing shard, wrong split keys and a tensor in two shards are refused, naming the shard")
    func refusals() throws {
        do {
            let (_, paths) = try Self.shards()
            try FileManager.default.removeItem(atPath: paths[2])
            #expect(throws: GGUFError.missingShard(path: paths[0], shard: paths[2], reason: "not found (shard 3 of 3)")) { try GGUFShards(path: paths[0]) }
        }
        do {
            let (_, paths) = try Self.shards { $0[1].set("split.no", .u16(2)) }
            #expect(throws: GGUFError.splitMismatch(path: paths[1], key: "split.no", value: "2", expected: "1 (shard 2 of 3, numbered from 0)")) {
                try GGUFShards(path: paths[0])
            }
        }
        do {
            let (_, paths) = try Self.shards { $0[2].set("split.count", .u16(4)) }
            #expect(throws: GGUFError.splitMismatch(path: paths[2], key: "split.count", value: "4", expected: "3 (from the file names)")) {
                try GGUFShards(path: paths[1])
            }
        }
        do {
            let (_, paths) = try Self.shards { $0[1].remove("split.count") }
            #expect(throws: GGUFError.missingKey(path: paths[1], key: "split.count")) { try GGUFShards(path: paths[0]) }
        }
        do {
            let (_, paths) = try Self.shards { $0[2].tensors.append($0[0].tensors[0]) }
            #expect(throws: GGUFError.duplicateTensor(path: paths[2], tensor: "token_embd.weight", otherPath: paths[0])) { try GGUFShards(path: paths[0]) }
        }
        do {
            let (_, paths) = try Self.shards { $0[0].set("split.tensors.count", .i32(7)) }
            do {
                _ = try GGUFShards(path: paths[0])
                Issue.record("opened")
            } catch {
                #expect(error.description.contains("split.tensors.count = 7"), "\(error)")
            }
        }
        do {
            // A bad shard is reported with its own path.
            let (_, paths) = try Self.shards { $0[2].version = 1 }
            #expect(throws: GGUFError.unsupportedVersion(path: paths[2], version: 1)) { try GGUFModel(path: paths[0]) }
        }
        do {
            // A single file that says it is one of several.
            var w = GGUFTestModels.writer(.olmoe)
            w.set("split.count", .u16(2))
            let path = try w.write()
            #expect(throws: GGUFError.self) { try GGUFShards(path: path) }
        }
    }
}
