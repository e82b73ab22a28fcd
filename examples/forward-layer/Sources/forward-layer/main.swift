// Forwards one layer of a checkpoint (a Hugging Face folder with config.json and safetensors, or a GGUF file)
// and prints how the tokens were routed: the README's "library in five lines", runnable.
//   swift run forward-layer [CHECKPOINT] [LAYER]
// Without arguments it reads MoEKit's own OLMoE test fixture.
import Foundation
import MoEKit

let arguments = CommandLine.arguments.dropFirst()
let path = arguments.first ?? "../../Tests/Fixtures/olmoe/checkpoint"
let layer = arguments.dropFirst().first.flatMap { Int($0) } ?? 0

do {
    let model = try Checkpoint(directory: path)
    guard case .moe(let block) = try model.feedForward(layer: layer) else {
        print("layer \(layer) of \(path) is a dense MLP, not an MoE block")
        exit(0)
    }
    var random = SplitMix64(seed: 1)
    let hidden = random.tensor([16, block.config.hiddenSize], std: 1)   // 16 tokens
    let out = try block.forward(hidden, threads: 2)
    let stats = out.routing.statistics
    print("\(model.config.architecture) layer \(layer): \(block.config.expertCount) experts, top-\(block.config.expertsPerToken), "
          + "weights \(block.experts.format), \(block.experts.residentBytes) bytes resident")
    print("tokens per expert: \(stats.tokensPerExpert)")
    print("load-balancing loss \(stats.loadBalancingLoss), output \(out.hiddenStates.shape)")
} catch {
    print("forward-layer: error: \(error)")
    exit(1)
}
