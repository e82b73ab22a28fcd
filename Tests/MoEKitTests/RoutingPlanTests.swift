import Foundation
import Testing
import MoEKit
import MoETestSupport

struct PlanCase: Sendable, CustomTestStringConvertible {
    var tokens: Int
    var topK: Int
    var experts: Int
    var pool: [Int]?
    var capacityFactor: Double?
    var seed: UInt64
    var testDescription: String {
        "T=\(tokens) K=\(topK) E=\(experts)\(pool.map { " pool \($0)" } ?? "")\(capacityFactor.map { " f=\($0)" } ?? " dropless")"
    }

    static let all: [PlanCase] = [
        .init(tokens: 17, topK: 2, experts: 4, seed: 1),
        .init(tokens: 1, topK: 3, experts: 8, seed: 2),
        .init(tokens: 40, topK: 4, experts: 4, seed: 3),
        .init(tokens: 25, topK: 2, experts: 8, pool: [1, 2], seed: 4),
        .init(tokens: 30, topK: 2, experts: 8, pool: [0, 2, 3, 7], seed: 5),
        .init(tokens: 33, topK: 2, experts: 4, capacityFactor: 1.0, seed: 6),
        .init(tokens: 33, topK: 2, experts: 8, pool: [1, 2, 5], capacityFactor: 1.25, seed: 7),
        .init(tokens: 16, topK: 3, experts: 6, capacityFactor: 0.5, seed: 8),
        .init(tokens: 20, topK: 1, experts: 4, pool: [3], capacityFactor: 2.0, seed: 9),
    ]
}

@Suite("RoutingPlan")
struct RoutingPlanTests {
    @Test("plan invariants", arguments: PlanCase.all)
    func invariants(_ c: PlanCase) throws {
        var g = SeededGenerator(seed: c.seed)
        let r = try randomRoutes(tokens: c.tokens, topK: c.topK, experts: c.experts, pool: c.pool, generator: &g)
        let plan = RoutingPlan(r, capacityFactor: c.capacityFactor)
        let (t, k, e) = (c.tokens, c.topK, c.experts)
        #expect(plan.tokenCount == t && plan.expertsPerToken == k && plan.expertCount == e)
        #expect(plan.offsets.count == e + 1)
        #expect(plan.offsets[0] == 0)
        for x in 0..<e { #expect(plan.offsets[x + 1] == plan.offsets[x] + plan.tokensPerExpert[x], "offsets are not prefix sums") }
        #expect(plan.rowCount == plan.offsets[e])
        #expect(plan.rowToken.count == plan.rowCount && plan.rowWeight.count == plan.rowCount)
        #expect(plan.slotRow.count == t * k)
        #expect(plan.rowCount + plan.droppedAssignmentCount == t * k)

        // Each row's token is routed to the row's expert, with the row's weight; rows ascend by token.
        for x in 0..<e {
            let rows = plan.offsets[x]..<plan.offsets[x + 1]
            for row in rows {
                let token = Int(plan.rowToken[row])
                let slot = (0..<k).first { r.expertIDs[token * k + $0] == Int32(x) }
                #expect(slot != nil, "row \(row) of expert \(x) holds token \(token), which is not routed there")
                if let slot {
                    #expect(plan.rowWeight[row] == r.weights[token * k + slot])
                    #expect(plan.slotRow[token * k + slot] == Int32(row))
                }
            }
            #expect(zip(rows, rows.dropFirst()).allSatisfy { plan.rowToken[$0] < plan.rowToken[$1] }, "expert \(x) rows not ascending")
            if let pool = c.pool, !pool.contains(x) { #expect(rows.isEmpty) }
        }
        // slotRow is injective onto 0..<rowCount (a bijection when dropless), −1 exactly for dropped slots.
        let admitted = plan.slotRow.filter { $0 >= 0 }.map(Int.init)
        #expect(Set(admitted) == Set(0..<plan.rowCount))
        #expect(admitted.count == plan.rowCount)
        #expect(plan.slotRow.filter { $0 < 0 }.allSatisfy { $0 == -1 })
        #expect(plan.slotRow.filter { $0 == -1 }.count == plan.droppedAssignmentCount)

        if let f = c.capacityFactor {
            let capacity = Int((f * Double(t * k) / Double(e)).rounded(.up))
            #expect(plan.capacity == capacity)
            #expect(plan.tokensPerExpert.allSatisfy { $0 <= capacity })
            // An expert below capacity dropped nothing.
            for x in 0..<e where plan.tokensPerExpert[x] < capacity {
                let wanted = r.expertIDs.filter { $0 == Int32(x) }.count
                #expect(plan.tokensPerExpert[x] == wanted)
            }
        } else {
            #expect(plan.capacity == nil)
            #expect(plan.droppedAssignmentCount == 0)
            #expect(plan.rowCount == t * k)
            for x in 0..<e { #expect(plan.tokensPerExpert[x] == r.expertIDs.filter { $0 == Int32(x) }.count) }
        }
    }

    @Test("capacity C = ⌈f·T·K/E⌉")
    func capacityFormula() {
        #expect(ExpertCapacity.capacity(factor: 1.0, tokenCount: 5, expertsPerToken: 2, expertCount: 4) == 3)   // ⌈2.5⌉
        #expect(ExpertCapacity.capacity(factor: 1.25, tokenCount: 8, expertsPerToken: 2, expertCount: 4) == 5)  // 5 exactly
        #expect(ExpertCapacity.capacity(factor: 0.5, tokenCount: 3, expertsPerToken: 1, expertCount: 4) == 1)   // ⌈0.375⌉
        #expect(ExpertCapacity.capacity(factor: 1.0, tokenCount: 8, expertsPerToken: 2, expertCount: 4) == 4)   // 4 exactly
        #expect(ExpertCapacity.capacity(factor: 2.0, tokenCount: 7, expertsPerToken: 3, expertCount: 8) == 6)   // ⌈5.25⌉
    }

    @Test("admission is slot-major: token 3's first choice beats token 0's second choice")
    func slotMajor() throws {
        // T = 4, K = 2, E = 4, f = 1 → C = ⌈1·8/4⌉ = 2.
        // First choices: t0→0, t1→3, t2→2, t3→3 (expert 3 is now full with t1, t3).
        // Second choices: t0→3 dropped (full), t1→1, t2→0, t3→2 admitted.
        // Token-major admission would instead admit t0's second choice and drop t3's first.
        let r = try routes([[0, 3], [3, 1], [2, 0], [3, 2]], [[0.6, 0.4], [0.7, 0.3], [0.8, 0.2], [0.9, 0.1]], experts: 4)
        let plan = RoutingPlan(r, capacityFactor: 1.0)
        #expect(plan.capacity == 2)
        #expect(plan.droppedAssignmentCount == 1)
        #expect(plan.slotRow[0 * 2 + 1] == -1, "token 0's second choice must be dropped")
        #expect(plan.slotRow[3 * 2 + 0] >= 0, "token 3's first choice must be admitted")
        #expect(plan.tokensPerExpert == [2, 1, 2, 2])
        // Expert 3's rows: tokens 1 and 3 in ascending order.
        #expect(Array(plan.rowToken[plan.offsets[3]..<plan.offsets[4]]) == [1, 3])
        // The remaining weights are not renormalised.
        #expect(plan.rowWeight[Int(plan.slotRow[0])] == 0.6)
    }

    @Test("capacity 1: only first choices in token order survive")
    func capacityOne() throws {
        // f = 0.5, T = 4, K = 2, E = 4 → C = 1. First choices fill experts 0, 1, 2, 3 → all seconds drop.
        let r = try routes([[0, 1], [1, 2], [2, 3], [3, 0]], [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]], experts: 4)
        let plan = RoutingPlan(r, capacityFactor: 0.5)
        #expect(plan.capacity == 1)
        #expect(plan.droppedAssignmentCount == 4)
        #expect(plan.slotRow == [0, -1, 1, -1, 2, -1, 3, -1])
        #expect(plan.rowToken == [0, 1, 2, 3])
    }

    @Test("a dropped slot contributes nothing to the block output", arguments: [KernelVariant.reference, .fast])
    func droppedSlotContributesNothing(_ variant: KernelVariant) throws {
        let config = MoEConfig(hiddenSize: 12, expertCount: 4, expertsPerToken: 2, expertIntermediateSize: 10,
                               router: .softmaxTopK(normalizesTopKWeights: true), capacityFactor: 0.5)
        let block = try randomBlock(config, seed: 21)
        var g = SeededGenerator(seed: 22)
        let (t, h, k) = (16, 12, 2)
        let x = randomTensor([t, h], generator: &g)
        let out = try block.forward(x, variant: variant, threads: 2)
        let plan = out.plan
        #expect(plan.capacity == 4)  // ⌈0.5·16·2/4⌉
        #expect(plan.droppedAssignmentCount > 0, "the case must drop something to test anything")
        // Manual sum over admitted slots only, with the router's (unrenormalised) weights.
        var expected = [Double](repeating: 0, count: t * h)
        for token in 0..<t {
            let xs = (0..<h).map { Double(x.storage[token * h + $0]) }
            for slot in 0..<k where plan.slotRow[token * k + slot] >= 0 {
                let e = Int(out.routing.expertIDs.storage[token * k + slot])
                let w = Double(out.routing.weights.storage[token * k + slot])
                let y = manualExpert(block.experts, expert: e, input: xs)
                for o in 0..<h { expected[token * h + o] += w * y[o] }
            }
        }
        #expect(relativeError(out.hiddenStates.storage, expected) <= 1e-5)
        // And a token that lost a slot differs from its dropless output.
        var dropless = config
        dropless.capacityFactor = nil
        let full = try MoEBlock(config: dropless, router: block.router, experts: block.experts).forward(x, variant: variant)
        let droppedTokens = Set((0..<(t * k)).filter { plan.slotRow[$0] < 0 }.map { $0 / k })
        for token in droppedTokens {
            let a = out.hiddenStates.storage[(token * h)..<((token + 1) * h)]
            let b = full.hiddenStates.storage[(token * h)..<((token + 1) * h)]
            #expect(!a.elementsEqual(b), "token \(token) lost a slot but its output did not change")
        }
        for token in 0..<t where !droppedTokens.contains(token) {
            let a = out.hiddenStates.storage[(token * h)..<((token + 1) * h)]
            let b = full.hiddenStates.storage[(token * h)..<((token + 1) * h)]
            #expect(a.elementsEqual(b), "token \(token) lost nothing but its output changed")
        }
    }

    @Test("allTokens: every token on one expert with weight 1")
    func allTokens() {
        let plan = RoutingPlan.allTokens(5)
        #expect(plan.rowCount == 5)
        #expect(plan.rowToken == [0, 1, 2, 3, 4])
        #expect(plan.rowWeight == [1, 1, 1, 1, 1])
        #expect(plan.slotRow == [0, 1, 2, 3, 4])
    }
}
