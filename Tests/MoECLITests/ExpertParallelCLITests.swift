import MoEKit
import MoETestSupport
import Testing

/// `moe forward --devices D`: expert parallelism through the command line (the in-process ranks themselves are
/// MoEKitTests' ExpertParallelTests).
@Suite("moe forward --devices")
struct ExpertParallelCLITests {
    @Test("the written output is the same bits for 1 and 4 devices")
    func forwardDevices() throws {
        let scratch = try ScratchDirectory()
        let dir = fixturesDirectory + "/mixtral-f32"
        var outputs: [AnyTensor] = []
        for d in [1, 4] {
            let path = scratch.path + "/out\(d).safetensors"
            let result = try MoEProcess.run(["forward", "--checkpoint", dir + "/checkpoint", "--layer", "0", "--input",
                                             dir + "/layer0.safetensors", "--output", path, "--devices", "\(d)"])
            #expect(result.status == 0, "stderr: \(result.stderr)")
            outputs.append(try SafetensorsFile(path: path).tensor("hidden_states"))
        }
        #expect(outputs[0] == outputs[1])
        let bad = try MoEProcess.run(["forward", "--checkpoint", dir + "/checkpoint", "--layer", "0", "--input",
                                      dir + "/layer0.safetensors", "--output", scratch.path + "/x.safetensors", "--devices", "3"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("divisible"))
    }
}
