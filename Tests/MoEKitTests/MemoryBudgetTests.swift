import Foundation
import MoEKit
import MoETestSupport
import Testing

@Suite("Memory budget")
struct MemoryBudgetTests {
    @Test("the machine's available memory is known on Linux and positive")
    func availableIsKnown() throws {
        #if os(Linux)
        let available = try #require(MemoryBudget.availableBytes())
        #expect(available > 0)
        #endif
    }

    @Test("a layer that cannot fit is refused with both numbers before loading, in one line")
    func layerTooBigIsRefused() throws {
        let scratch = try ScratchDirectory()
        let input = scratch.path + "/x.safetensors"
        var g = SeededGenerator(seed: 3)
        try SafetensorsWriter.write([("hidden_states", .f32(randomTensor([3, 64], generator: &g)))], to: input)
        // The gpt-oss-mxfp4 fixture's routed experts pack to 39 168 bytes a layer (panels and scales): allow 10 000.
        let result = try MoEProcess.run(["forward", "--checkpoint", fixturesDirectory + "/gpt-oss-mxfp4/checkpoint", "--layer", "0",
                                         "--input", input, "--output", scratch.path + "/y.safetensors"],
                                        environment: ["MOEKIT_MEMORY_AVAILABLE": "10000"])
        #expect(result.exitedNormally && result.status == 1)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(result.stderr.contains("moe: error: layer 0's routed experts (mxfp4) needs"))
        #expect(result.stderr.contains("needs 39168 bytes of memory, but only 10000 bytes is available"))
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/y.safetensors"))
    }
}
