import Foundation
import Testing
import MoEKit
import MoETestSupport

/// Hand-worked routing cases for every ``RouterKind``. The routers use identity weights, so each
/// token's logits are exactly the numbers written here; the expected weights were worked out by hand
/// (closed forms in the comments, decimals from an independent F64 evaluation).
@Suite("Router: hand-worked cases")
struct RouterTests {
    /// Routes one token whose logits are `logits` and returns (ids, weights) of its K slots.
    func routeOne(_ router: Router, _ logits: [Float]) throws -> (ids: [Int], weights: [Float], output: RouterOutput) {
        let out = try router.route(floatTensor([1, logits.count], logits))
        return (out.expertIDs.storage.map(Int.init), out.weights.storage, out)
    }

    /// Pairs sorted by expert id (DeepSeek-V3's top-k is unsorted: compare sets).
    func sortedPairs(_ ids: [Int], _ weights: [Float]) -> [(Int, Float)] {
        zip(ids, weights).sorted { $0.0 < $1.0 }
    }

    func close(_ a: Float, _ b: Double, rel: Double = 1e-6) -> Bool {
        relativeError(a, b) <= rel
    }

    // logits [1, 2, 3, 0.5]: e^x = 2.71828, 7.38906, 20.0855, 1.64872, Σ = 31.8416
    // p = [0.0853689, 0.232057, 0.630796, 0.0517789]; top-2 = experts 2, 1.

    @Test("softmax top-k without renormalisation keeps the softmax probabilities")
    func softmaxTopKRaw() throws {
        let router = try identityRouter(.softmaxTopK(normalizesTopKWeights: false), experts: 4, topK: 2)
        let (ids, w, out) = try routeOne(router, [1, 2, 3, 0.5])
        #expect(ids == [2, 1])
        #expect(close(w[0], 0.6307955432474669))
        #expect(close(w[1], 0.23205671194331448))
        #expect(out.logits.storage == [1, 2, 3, 0.5])
        #expect(!out.scalesExpertInput)
    }

    @Test("softmax top-k with renormalisation: e^3/(e^3+e^2) = σ(1)")
    func softmaxTopKRenormalised() throws {
        let router = try identityRouter(.softmaxTopK(normalizesTopKWeights: true), experts: 4, topK: 2)
        let (ids, w, _) = try routeOne(router, [1, 2, 3, 0.5])
        #expect(ids == [2, 1])
        #expect(close(w[0], 0.7310585786300049))  // σ(1)
        #expect(close(w[1], 0.2689414213699951))  // σ(−1)
        #expect(abs(w[0] + w[1] - 1) <= 1e-6)
    }

    @Test("softmax top-1 and top-3 pick the largest in descending order")
    func softmaxOtherK() throws {
        let r1 = try identityRouter(.softmaxTopK(normalizesTopKWeights: true), experts: 4, topK: 1)
        let (ids1, w1, _) = try routeOne(r1, [1, 2, 3, 0.5])
        #expect(ids1 == [2])
        #expect(w1 == [1])
        let r3 = try identityRouter(.softmaxTopK(normalizesTopKWeights: false), experts: 4, topK: 3)
        let (ids3, w3, _) = try routeOne(r3, [1, 2, 3, 0.5])
        #expect(ids3 == [2, 1, 0])
        #expect(close(w3[2], 0.08536889350978889))
    }

    // σ(2) = 0.880797, σ(1) = 0.731059, σ(0) = 0.5, σ(−1) = 0.268941.

    @Test("sigmoid grouped: the correction bias changes the selection, weights come from σ(logits)")
    func groupedCorrectionBias() throws {
        // E = 4 in 2 groups of 2, both kept. s = [0.8808, 0.7311, 0.5, 0.2689];
        // c = s + [0, 0, 0.5, 0] = [0.8808, 0.7311, 1.0, 0.2689] → top-2 of c = {2, 0}
        // (without the bias it would be {0, 1}). Weights are s[2] = 0.5 and s[0] = 0.8808, × 2.5.
        let kind = RouterKind.sigmoidGroupedTopK(groupCount: 2, keptGroupCount: 2, normalizesTopKWeights: false, scalingFactor: 2.5)
        let biased = try identityRouter(kind, experts: 4, topK: 2, correctionBias: [0, 0, 0.5, 0])
        let (ids, w, out) = try routeOne(biased, [2, 1, 0, -1])
        let pairs = sortedPairs(ids, w)
        #expect(pairs.map(\.0) == [0, 2])
        #expect(close(pairs[0].1, 2.5 * 0.8807970779778823))
        #expect(close(pairs[1].1, 2.5 * 0.5))
        #expect(out.logits.storage == [2, 1, 0, -1], "the correction bias must not leak into the logits")

        let unbiased = try identityRouter(kind, experts: 4, topK: 2)
        let (ids0, w0, _) = try routeOne(unbiased, [2, 1, 0, -1])
        let pairs0 = sortedPairs(ids0, w0)
        #expect(pairs0.map(\.0) == [0, 1])
        #expect(close(pairs0[1].1, 2.5 * 0.7310585786300049))
    }

    @Test("sigmoid grouped: group masking excludes the single best expert; renormalised and scaled")
    func groupedMasking() throws {
        // E = 8 in 4 groups of 2, keep 2. logits [1.2, 1, 0.5, 0.5, −2, −2, 3, −5]:
        // group scores (sum of the two largest σ): g0 = σ(1.2)+σ(1) = 1.4996, g1 = 2σ(0.5) = 1.2449,
        // g2 = 2σ(−2) = 0.2384, g3 = σ(3)+σ(−5) = 0.9593. Kept: g0, g1. Expert 6 (σ(3) = 0.9526, the best
        // single score) is masked out. Top-2 → {0, 1}; w = 2.5·σ(x)/(σ(1.2)+σ(1)+1e-20).
        let kind = RouterKind.sigmoidGroupedTopK(groupCount: 4, keptGroupCount: 2, normalizesTopKWeights: true, scalingFactor: 2.5)
        let router = try identityRouter(kind, experts: 8, topK: 2)
        let (ids, w, _) = try routeOne(router, [1.2, 1, 0.5, 0.5, -2, -2, 3, -5])
        let pairs = sortedPairs(ids, w)
        #expect(pairs.map(\.0) == [0, 1])
        #expect(!ids.contains(6))
        #expect(close(pairs[0].1, 1.2812305119335115))
        #expect(close(pairs[1].1, 1.2187694880664883))
        #expect(abs(Double(w[0] + w[1]) - 2.5) <= 1e-6)

        // With one group (no masking) the same logits select expert 6 first.
        let flat = try identityRouter(.sigmoidGroupedTopK(groupCount: 1, keptGroupCount: 1, normalizesTopKWeights: true, scalingFactor: 2.5),
                                      experts: 8, topK: 2)
        #expect(Set(try routeOne(flat, [1.2, 1, 0.5, 0.5, -2, -2, 3, -5]).ids) == [6, 0])
    }

    @Test("sigmoid grouped: the +1e-20 in the renormalisation is there (tiny sigmoid scores)")
    func groupedNormEpsilon() throws {
        // logits [−86, −87, −90, −91]: σ(−86) = 4.47378e-38, σ(−87) = 1.64581e-38 (normal floats).
        // w = 2.5·s/(s0 + s1 + 1e-20) = 1.11844e-17 and 4.11453e-18 — without the 1e-20 they would be
        // 1.8388 and 0.6762.
        let kind = RouterKind.sigmoidGroupedTopK(groupCount: 2, keptGroupCount: 2, normalizesTopKWeights: true, scalingFactor: 2.5)
        let router = try identityRouter(kind, experts: 4, topK: 2)
        let (ids, w, _) = try routeOne(router, [-86, -87, -90, -91])
        let pairs = sortedPairs(ids, w)
        #expect(pairs.map(\.0) == [0, 1])
        #expect(close(pairs[0].1, 1.1184448265452802e-17, rel: 1e-5))
        #expect(close(pairs[1].1, 4.114528577705684e-18, rel: 1e-5))

        // All scores underflow to 0: the weights are 0, not NaN.
        let (_, wz, _) = try routeOne(router, [-100, -101, -102, -103])
        #expect(wz == [0, 0])
    }

    @Test("GPT-OSS: top-k on the biased logits, softmax over the K values")
    func topKThenSoftmaxWithBias() throws {
        // logits [1, 2, 3, 0.5] + bias [0, 1.5, −2.5, 0] = [1, 3.5, 0.5, 0.5] → top-2 = experts 1, 0
        // (without the bias: 2, 1). softmax([3.5, 1]) = [σ(2.5), σ(−2.5)] = [0.924142, 0.0758582].
        let router = try identityRouter(.topKThenSoftmax, experts: 4, topK: 2, bias: [0, 1.5, -2.5, 0])
        let (ids, w, out) = try routeOne(router, [1, 2, 3, 0.5])
        #expect(ids == [1, 0])
        #expect(close(w[0], 0.9241418199787566))
        #expect(close(w[1], 0.07585818002124355))
        #expect(out.logits.storage == [1, 3.5, 0.5, 0.5], "the router bias is part of the reported logits")
        #expect(!out.scalesExpertInput)
    }

    @Test("Llama-4: top-k of the logits, weight σ(value), scales the input")
    func sigmoidTopKScalesInput() throws {
        let r1 = try identityRouter(.sigmoidTopKScalesInput, experts: 4, topK: 1)
        let (ids1, w1, out1) = try routeOne(r1, [1, 2, 3, 0.5])
        #expect(ids1 == [2])
        #expect(close(w1[0], 0.9525741268224334))  // σ(3)
        #expect(out1.scalesExpertInput)
        let r2 = try identityRouter(.sigmoidTopKScalesInput, experts: 4, topK: 2)
        let (ids2, w2, _) = try routeOne(r2, [1, 2, 3, 0.5])
        #expect(ids2 == [2, 1])
        #expect(close(w2[1], 0.8807970779778823))  // σ(2), not renormalised
    }

    @Test("ties go to the lower expert index", arguments: [
        RouterKind.softmaxTopK(normalizesTopKWeights: true), .softmaxTopK(normalizesTopKWeights: false),
        .topKThenSoftmax, .sigmoidTopKScalesInput,
        .sigmoidGroupedTopK(groupCount: 1, keptGroupCount: 1, normalizesTopKWeights: true, scalingFactor: 1),
    ])
    func tieBreaking(_ kind: RouterKind) throws {
        let r1 = try identityRouter(kind, experts: 4, topK: 1)
        #expect(try routeOne(r1, [1, 2, 2, 0]).ids == [1])
        #expect(try routeOne(r1, [0.5, 0.5, 0.5, 0.5]).ids == [0])
        let r2 = try identityRouter(kind, experts: 4, topK: 2)
        #expect(try routeOne(r2, [0, 2, 1, 2]).ids == [1, 3])
        #expect(try routeOne(r2, [0.5, 0.5, 0.5, 0.5]).ids == [0, 1])
        let r3 = try identityRouter(kind, experts: 5, topK: 3)
        #expect(try routeOne(r3, [1, 3, 1, 2, 1]).ids == [1, 3, 0])
    }

    @Test("equal-weight ties: GPT-OSS gives 1/K each")
    func tieWeights() throws {
        let router = try identityRouter(.topKThenSoftmax, experts: 4, topK: 2)
        let (ids, w, _) = try routeOne(router, [0.5, 0.5, 0.5, 0.5])
        #expect(ids == [0, 1])
        #expect(w == [0.5, 0.5])
    }

    @Test("group ties keep the lower group")
    func groupTie() throws {
        // Two groups with equal scores, keep one: group 0 wins, so expert 1 (its best) is picked over 3.
        let kind = RouterKind.sigmoidGroupedTopK(groupCount: 2, keptGroupCount: 1, normalizesTopKWeights: true, scalingFactor: 1)
        let router = try identityRouter(kind, experts: 4, topK: 1)
        #expect(try routeOne(router, [0.25, 1, 1, 0.25]).ids == [1])
        #expect(try routeOne(router, [1, 0.25, 0.25, 1]).ids == [0])
    }

    @Test("several tokens are routed independently")
    func batchRows() throws {
        let router = try identityRouter(.softmaxTopK(normalizesTopKWeights: true), experts: 4, topK: 2)
        let out = try router.route(floatTensor([3, 4], [1, 2, 3, 0.5, 3, 0.5, 1, 2, -1, -2, -3, 4]))
        #expect(out.expertIDs.shape == [3, 2])
        #expect(out.expertIDs.storage == [2, 1, 0, 3, 3, 0])
        #expect(close(out.weights.storage[2], 0.7310585786300049))
    }
}

@Suite("RoutingStatistics")
struct RoutingStatisticsTests {
    @Test("load-balancing loss is K when perfectly balanced")
    func balancedLoss() throws {
        // T = 4, E = 4, K = 2: token t's logits are [3, 1, 0, −1] rotated by t, so the mean softmax
        // probability of every expert is 1/4, and token t picks experts t and t+1 (mod 4): every expert
        // gets 2 of the 8 assignments. loss = E·Σ f_e·P_e = 4 · 4 · (2/4 · 1/4) = 2 = K.
        let base: [Float] = [3, 1, 0, -1]
        var logits: [Float] = []
        for t in 0..<4 { for e in 0..<4 { logits.append(base[(e - t + 4) % 4]) } }
        let router = try identityRouter(.softmaxTopK(normalizesTopKWeights: true), experts: 4, topK: 2)
        let out = try router.route(floatTensor([4, 4], logits))
        #expect(out.expertIDs.storage == [0, 1, 1, 2, 2, 3, 3, 0])
        let stats = out.statistics
        #expect(stats.tokensPerExpert == [2, 2, 2, 2])
        #expect(abs(stats.loadBalancingLoss - 2) <= 1e-12)
        #expect(stats.loadImbalance == 1)
    }

    @Test("load-balancing loss of an unbalanced hand case")
    func unbalancedLoss() throws {
        // T = 2, E = 2, K = 1, logits [0, 0] and [ln 3, 0]: p = [1/2, 1/2] and [3/4, 1/4];
        // P = [5/8, 3/8]; both tokens pick expert 0 → f = [1, 0]. loss = 2 · (1 · 5/8) = 1.25.
        let logits = floatTensor([2, 2], [0, 0, Float(log(3.0)), 0])
        let ids = try Tensor<Int32>(shape: [2, 1], storage: [0, 0])
        let stats = RoutingStatistics(logits: logits, expertIDs: ids)
        #expect(abs(stats.loadBalancingLoss - 1.25) <= 1e-7)
        #expect(stats.tokensPerExpert == [2, 0])
        #expect(stats.loadImbalance == 2)
    }

    @Test("router z-loss: mean of logsumexp²")
    func zLoss() throws {
        // Row 0 logits [0, 0, 0, 0]: lse = ln 4 = 1.3862944. Row 1 [1, 2, 3, 0.5]: lse = ln 31.8416 = 3.4607735.
        // z = (1.3862944² + 3.4607735²) / 2 = 6.9493826.
        let logits = floatTensor([2, 4], [0, 0, 0, 0, 1, 2, 3, 0.5])
        let ids = try Tensor<Int32>(shape: [2, 1], storage: [0, 2])
        let stats = RoutingStatistics(logits: logits, expertIDs: ids)
        #expect(abs(stats.routerZLoss - 6.9493825994618454) <= 1e-6)
    }

    @Test("tokensPerExpert sums to T·K on random routing", arguments: [
        RouterKind.softmaxTopK(normalizesTopKWeights: true), .topKThenSoftmax, .sigmoidTopKScalesInput,
        .sigmoidGroupedTopK(groupCount: 4, keptGroupCount: 2, normalizesTopKWeights: true, scalingFactor: 2.5),
    ])
    func countsSum(_ kind: RouterKind) throws {
        var g = SeededGenerator(seed: 11)
        let (t, e, k, h) = (37, 8, 3, 16)
        let config = MoEConfig(hiddenSize: h, expertCount: e, expertsPerToken: k, expertIntermediateSize: 4, router: kind)
        let router = try Router(config: config, weight: randomTensor([e, h], generator: &g))
        let out = try router.route(randomTensor([t, h], generator: &g))
        let stats = out.statistics
        #expect(stats.tokensPerExpert.reduce(0, +) == t * k)
        for e0 in 0..<e {
            #expect(stats.tokensPerExpert[e0] == out.expertIDs.storage.filter { $0 == Int32(e0) }.count)
        }
        for row in 0..<t {
            #expect(Set(out.expertIDs.storage[(row * k)..<((row + 1) * k)]).count == k, "row \(row) repeats an expert")
        }
        #expect(stats.loadBalancingLoss > 0 && stats.loadBalancingLoss.isFinite)
        #expect(stats.routerZLoss > 0 && stats.routerZLoss.isFinite)
    }
}
