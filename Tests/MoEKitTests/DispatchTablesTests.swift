import Foundation
import Testing
import MoEKit
import MoETestSupport

/// A routing shape for the dispatch-table tests.
struct DispatchCase: Sendable, CustomTestStringConvertible {
    var name: String
    var tokens: Int
    var topK: Int
    var experts: Int
    /// Experts the tokens may pick (nil = all).
    var pool: [Int]?
    var seed: UInt64
    var testDescription: String { "\(name): T=\(tokens) K=\(topK) E=\(experts)" }

    static let all: [DispatchCase] = [
        .init(name: "random", tokens: 8, topK: 2, experts: 4, seed: 1),
        .init(name: "random larger", tokens: 33, topK: 3, experts: 16, seed: 2),
        .init(name: "expert 3 and 6 get no tokens", tokens: 20, topK: 2, experts: 8, pool: [0, 1, 2, 4, 5, 7], seed: 3),
        .init(name: "all tokens on two experts", tokens: 12, topK: 2, experts: 8, pool: [5, 6], seed: 4),
        .init(name: "all tokens on one expert", tokens: 9, topK: 1, experts: 4, pool: [2], seed: 5),
        .init(name: "K == E", tokens: 6, topK: 4, experts: 4, seed: 6),
        .init(name: "T = 1", tokens: 1, topK: 2, experts: 8, seed: 7),
        .init(name: "T = 0", tokens: 0, topK: 2, experts: 4, seed: 8),
    ]
}

/// The seed dispatch operations against a plain implementation written here, loop over experts
/// first and then tokens (the opposite order from the library's), plus every refusal.
@Suite("DispatchTables")
struct DispatchTablesTests {
    /// Independent `prepare_moe_mapping_tensor`: for each (token, expert), search the token's slots.
    func plainMapping(_ r: RouteAssignments) -> [Float] {
        var out: [Float] = []
        for t in 0..<r.tokenCount {
            for e in 0..<r.expertCount {
                let slot = (0..<r.expertsPerToken).first { r.expertIDs[t * r.expertsPerToken + $0] == Int32(e) }
                out.append(slot.map { r.weights[t * r.expertsPerToken + $0] } ?? 0)
            }
        }
        return out
    }

    /// Independent `prepare_moe_routing_tensors`: per device, per local expert, scan tokens ascending.
    func plainTables(_ r: RouteAssignments, devices d: Int) -> (counts: [UInt32], tokens: [UInt32], weights: [Float]) {
        let (t, k, e) = (r.tokenCount, r.expertsPerToken, r.expertCount)
        let local = e / d
        var counts: [UInt32] = [], tokens: [UInt32] = [], weights: [Float] = []
        for device in 0..<d {
            for l in 0..<local {
                let global = device * local + l
                var rowTokens: [UInt32] = [], rowWeights: [Float] = []
                for token in 0..<t {
                    for slot in 0..<k where r.expertIDs[token * k + slot] == Int32(global) {
                        rowTokens.append(UInt32(token))
                        rowWeights.append(r.weights[token * k + slot])
                    }
                }
                counts.append(UInt32(rowTokens.count))
                tokens += rowTokens + Array(repeating: 0xFFFF_FFFF, count: t - rowTokens.count)
                weights += rowWeights + Array(repeating: 0, count: t - rowWeights.count)
            }
        }
        return (counts, tokens, weights)
    }

    @Test("prepareMoEMappingTensor matches a plain implementation", arguments: DispatchCase.all)
    func mapping(_ c: DispatchCase) throws {
        var g = SeededGenerator(seed: c.seed)
        let r = try randomRoutes(tokens: c.tokens, topK: c.topK, experts: c.experts, pool: c.pool, generator: &g)
        let m = DispatchTables.prepareMoEMappingTensor(r)
        #expect(m.shape == [c.tokens, c.experts])
        #expect(m.storage == plainMapping(r))
        // Each row holds exactly K non-zero entries (weights are drawn from 0.05...1).
        for t in 0..<c.tokens {
            #expect(m.storage[(t * c.experts)..<((t + 1) * c.experts)].filter { $0 != 0 }.count == c.topK)
        }
    }

    @Test("prepareMoERoutingTensors matches a plain implementation for D = 1, 2, 4", arguments: DispatchCase.all, [1, 2, 4])
    func routingTables(_ c: DispatchCase, devices d: Int) throws {
        var g = SeededGenerator(seed: c.seed)
        let r = try randomRoutes(tokens: c.tokens, topK: c.topK, experts: c.experts, pool: c.pool, generator: &g)
        let tables = try DispatchTables.prepareMoERoutingTensors(r, deviceCount: d)
        let local = c.experts / d
        #expect(tables.numRoutedTokens.shape == [d, local])
        #expect(tables.routedTokens.shape == [d, local, c.tokens])
        #expect(tables.routedTokenWeights.shape == [d, local, c.tokens])
        let plain = plainTables(r, devices: d)
        #expect(tables.numRoutedTokens.storage == plain.counts)
        #expect(tables.routedTokens.storage == plain.tokens)
        #expect(tables.routedTokenWeights.storage == plain.weights)

        // Properties stated by the contract, checked directly.
        #expect(tables.numRoutedTokens.storage.reduce(0, +) == UInt32(c.tokens * c.topK))
        for device in 0..<d {
            for l in 0..<local {
                let global = device * local + l  // local index = global − d·E/D
                let n = Int(tables.numRoutedTokens[device, l])
                let row = (0..<c.tokens).map { tables.routedTokens[device, l, $0] }
                let w = (0..<c.tokens).map { tables.routedTokenWeights[device, l, $0] }
                #expect(zip(row.prefix(n), row.prefix(n).dropFirst()).allSatisfy { $0 < $1 }, "not ascending: \(row)")
                #expect(row.dropFirst(n).allSatisfy { $0 == MoERoutingTensors.paddingToken })
                #expect(w.dropFirst(n).allSatisfy { $0 == 0 })
                for (token, weight) in zip(row.prefix(n), w.prefix(n)) {
                    let slots = (0..<c.topK).filter { r.expertIDs[Int(token) * c.topK + $0] == Int32(global) }
                    #expect(slots.count == 1)
                    #expect(slots.first.map { r.weights[Int(token) * c.topK + $0] } == weight)
                }
                if let pool = c.pool, !pool.contains(global) { #expect(n == 0) }
            }
        }
        // The single-device tables equal the multi-device ones reshaped (same global order).
        let one = try DispatchTables.prepareMoERoutingTensors(r)
        #expect(one.routedTokens.storage == tables.routedTokens.storage)
        #expect(one.numRoutedTokens.storage == tables.numRoutedTokens.storage)
    }

    @Test("a hand case: T = 3, K = 2, E = 4, D = 2")
    func handCase() throws {
        // token 0 → experts 3 (0.7), 0 (0.3); token 1 → 0 (0.6), 1 (0.4); token 2 → 3 (0.9), 1 (0.1).
        let r = try routes([[3, 0], [0, 1], [3, 1]], [[0.7, 0.3], [0.6, 0.4], [0.9, 0.1]], experts: 4)
        #expect(DispatchTables.prepareMoEMappingTensor(r).storage == [0.3, 0, 0, 0.7, 0.6, 0.4, 0, 0, 0, 0.1, 0, 0.9])
        let tables = try DispatchTables.prepareMoERoutingTensors(r, deviceCount: 2)
        #expect(tables.numRoutedTokens.storage == [2, 2, 0, 2])
        let pad = MoERoutingTensors.paddingToken
        #expect(tables.routedTokens.storage == [0, 1, pad, 1, 2, pad, pad, pad, pad, 0, 2, pad])
        #expect(tables.routedTokenWeights.storage == [0.3, 0.6, 0, 0.4, 0.1, 0, 0, 0, 0, 0.7, 0.9, 0])
    }

    // MARK: Refusals

    @Test("a duplicate expert in a row is refused")
    func duplicate() throws {
        let error = #expect(throws: RoutingError.self) {
            try routes([[0, 1], [2, 2]], [[0.5, 0.5], [0.5, 0.5]], experts: 4)
        }
        #expect(error == .duplicateExpert(token: 1, expert: 2, firstSlot: 0, secondSlot: 1))
        let later = #expect(throws: RoutingError.self) {
            try routes([[1, 0, 1]], [[0.2, 0.3, 0.5]], experts: 4)
        }
        #expect(later == .duplicateExpert(token: 0, expert: 1, firstSlot: 0, secondSlot: 2))
    }

    @Test("an expert id below 0 or at least E is refused")
    func outOfRange() throws {
        #expect(throws: RoutingError.expertOutOfRange(token: 0, slot: 1, expert: -1, expertCount: 4)) {
            try routes([[0, -1]], [[0.5, 0.5]], experts: 4)
        }
        #expect(throws: RoutingError.expertOutOfRange(token: 1, slot: 0, expert: 4, expertCount: 4)) {
            try routes([[0, 1], [4, 1]], [[0.5, 0.5], [0.5, 0.5]], experts: 4)
        }
        #expect(throws: RoutingError.expertOutOfRange(token: 0, slot: 0, expert: Int64(Int32.max) + 1, expertCount: 4)) {
            try routes([[Int(Int32.max) + 1]], [[1]], experts: 4)
        }
    }

    @Test("NaN and infinite weights are refused", arguments: [Float.nan, .infinity, -.infinity])
    func nonFinite(_ bad: Float) throws {
        let error = #expect(throws: RoutingError.self) {
            try routes([[0, 1], [2, 3]], [[0.5, 0.5], [0.5, bad]], experts: 4)
        }
        guard case .nonFiniteWeight(let token, let slot, let value)? = error else {
            Issue.record("expected nonFiniteWeight, got \(String(describing: error))")
            return
        }
        #expect(token == 1 && slot == 1)
        #expect(value.isNaN == bad.isNaN && (bad.isNaN || value == bad))
    }

    @Test("mismatched shapes, non-2-D input, K = 0, K > E and E = 0 are refused")
    func shapes() throws {
        let ids = idTensor([[0, 1], [2, 3]])
        func isShape(_ e: RoutingError?) -> Bool { if case .shapeMismatch? = e { true } else { false } }
        #expect(isShape(#expect(throws: RoutingError.self) {
            try RouteAssignments(selectedExperts: ids, routingWeights: weightTensor([[0.5, 0.5]]), expertCount: 4)
        }))
        #expect(isShape(#expect(throws: RoutingError.self) {
            try RouteAssignments(selectedExperts: ids, routingWeights: floatTensor([2, 2, 1], [1, 1, 1, 1]), expertCount: 4)
        }))
        #expect(isShape(#expect(throws: RoutingError.self) {
            try RouteAssignments(selectedExperts: try Tensor<Int64>(shape: [4], storage: [0, 1, 2, 3]),
                                 routingWeights: floatTensor([4], [1, 1, 1, 1]), expertCount: 4)
        }))
        #expect(isShape(#expect(throws: RoutingError.self) {
            try RouteAssignments(selectedExperts: try Tensor<Int64>(shape: [1, 2, 2], storage: [0, 1, 2, 3]),
                                 routingWeights: floatTensor([1, 2, 2], [1, 1, 1, 1]), expertCount: 4)
        }))
        #expect(isShape(#expect(throws: RoutingError.self) {
            try RouteAssignments(selectedExperts: Tensor<Int64>(shape: [3, 0]), routingWeights: Tensor<Float>(shape: [3, 0]), expertCount: 4)
        }))
        #expect(isShape(#expect(throws: RoutingError.self) {
            try routes([[0, 1, 2]], [[0.3, 0.3, 0.4]], experts: 2)
        }))
        let zero = #expect(throws: RoutingError.self) { try routes([[0]], [[1]], experts: 0) }
        if case .invalidCount? = zero {} else { Issue.record("E = 0: expected invalidCount, got \(String(describing: zero))") }
    }

    @Test("E not divisible by D, and D < 1, are refused")
    func devices() throws {
        var g = SeededGenerator(seed: 9)
        let r = try randomRoutes(tokens: 5, topK: 2, experts: 6, generator: &g)
        #expect(throws: RoutingError.expertsNotDivisible(expertCount: 6, deviceCount: 4)) {
            try DispatchTables.prepareMoERoutingTensors(r, deviceCount: 4)
        }
        #expect(throws: RoutingError.expertsNotDivisible(expertCount: 6, deviceCount: 5)) {
            try DispatchTables.prepareMoERoutingTensors(r, deviceCount: 5)
        }
        for bad in [0, -2] {
            let error = #expect(throws: RoutingError.self) { try DispatchTables.prepareMoERoutingTensors(r, deviceCount: bad) }
            if case .invalidCount? = error {} else { Issue.record("D = \(bad): got \(String(describing: error))") }
        }
        // 6 experts do split over 2, 3 and 6 devices.
        for ok in [2, 3, 6] { #expect(throws: Never.self) { try DispatchTables.prepareMoERoutingTensors(r, deviceCount: ok) } }
    }

    @Test("every refusal message names what is wrong")
    func messages() {
        #expect(RoutingError.duplicateExpert(token: 1, expert: 2, firstSlot: 0, secondSlot: 1).description.contains("twice"))
        #expect(RoutingError.expertOutOfRange(token: 3, slot: 1, expert: 9, expertCount: 8).description.contains("[3, 1]"))
        #expect(RoutingError.expertsNotDivisible(expertCount: 6, deviceCount: 4).description.contains("6"))
    }
}
