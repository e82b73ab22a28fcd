import Foundation
import Testing
import MoEKit
import MoETestSupport

/// The fast path's results must not depend on the thread count or on which other tokens share the
/// batch (dropless): every output element is computed by one thread in a fixed reduction order.
@Suite("Determinism")
struct DeterminismTests {
    static let cases: [BlockCase] = BlockCase.all + [
        BlockCase(router: .softmaxTopK(normalizesTopKWeights: false), routerName: "biased MLP gelu", gate: .none, expert: .mlp(.gelu)),
    ]

    @Test("threads 1, 2 and 3 give bit-identical outputs", arguments: cases)
    func threadCount(_ c: BlockCase) throws {
        let block = try randomBlock(c.config, seed: 41)
        var g = SeededGenerator(seed: 42)
        // 61 tokens: uneven splits over 2 and 3 threads, and row tiles that straddle the split points.
        let x = randomTensor([61, 24], generator: &g)
        let one = try block.forward(x, variant: .fast, threads: 1)
        for threads in [2, 3] {
            let many = try block.forward(x, variant: .fast, threads: threads)
            #expect(many.hiddenStates.storage == one.hiddenStates.storage, "threads = \(threads)")
            #expect(many.routing.logits.storage == one.routing.logits.storage)
            #expect(many.routing.weights.storage == one.routing.weights.storage)
            #expect(many.routing.expertIDs == one.routing.expertIDs)
        }
        // The reference path is deterministic too.
        let ref1 = try block.forward(x, variant: .reference, threads: 1)
        let ref3 = try block.forward(x, variant: .reference, threads: 3)
        #expect(ref1.hiddenStates.storage == ref3.hiddenStates.storage)
    }

    @Test("a token's output does not depend on the rest of the batch", arguments: cases)
    func batchComposition(_ c: BlockCase) throws {
        let block = try randomBlock(c.config, seed: 43)
        var g = SeededGenerator(seed: 44)
        let (t, h) = (40, 24)
        let x = randomTensor([t, h], generator: &g)
        let full = try block.forward(x, variant: .fast, threads: 2)
        let subsets: [[Int]] = [Array(3..<11), Array(stride(from: 0, to: t, by: 3)), [39], [17, 2, 30, 2]]
        for subset in subsets {
            let xs = floatTensor([subset.count, h], subset.flatMap { Array(x.storage[($0 * h)..<(($0 + 1) * h)]) })
            let part = try block.forward(xs, variant: .fast, threads: 2)
            for (i, token) in subset.enumerated() {
                let a = part.hiddenStates.storage[(i * h)..<((i + 1) * h)]
                let b = full.hiddenStates.storage[(token * h)..<((token + 1) * h)]
                #expect(a.elementsEqual(b), "token \(token) as row \(i) of subset \(subset)")
            }
        }
    }

    @Test("the same block and input give the same output twice")
    func repeatable() throws {
        let block = try randomBlock(BlockCase.all[0].config, seed: 45)
        var g = SeededGenerator(seed: 46)
        let x = randomTensor([19, 24], generator: &g)
        #expect(try block.forward(x, threads: 2).hiddenStates == block.forward(x, threads: 2).hiddenStates)
    }
}
