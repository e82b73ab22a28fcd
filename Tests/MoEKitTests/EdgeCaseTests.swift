import Testing
import MoEKit

@Suite("Edge cases of the forward pass")
struct EdgeCaseTests {
    /// A batch of zero tokens is valid input (an empty prompt chunk) and gives an empty output, on both paths.
    @Test("zero tokens", arguments: KernelVariant.allCases)
    func zeroTokens(_ variant: KernelVariant) throws {
        let config = MoEConfig(hiddenSize: 16, expertCount: 4, expertsPerToken: 2, expertIntermediateSize: 8,
                               router: .softmaxTopK(normalizesTopKWeights: true),
                               sharedExpert: SharedExpertConfig(intermediateSize: 8, gate: .sigmoid))
        let block = try MoEBlock.random(config: config, seed: 3)
        let out = try block.forward(Tensor(shape: [0, 16]), variant: variant, threads: 2)
        #expect(out.hiddenStates.shape == [0, 16])
        #expect(out.routing.expertIDs.shape == [0, 2])
        #expect(out.plan.rowCount == 0)
    }

    /// NaN or infinite hidden states are refused with the index of the first bad element.
    @Test("non-finite input is refused")
    func nonFinite() throws {
        let config = MoEConfig(hiddenSize: 4, expertCount: 2, expertsPerToken: 1, expertIntermediateSize: 4,
                               router: .softmaxTopK(normalizesTopKWeights: true))
        let block = try MoEBlock.random(config: config, seed: 4)
        var x = Tensor<Float>(shape: [2, 4], repeating: 1)
        x.storage[5] = .infinity
        #expect(throws: RoutingError.nonFiniteInput(tensor: "hidden_states", index: 5, value: .infinity)) {
            try block.forward(x)
        }
    }
}
