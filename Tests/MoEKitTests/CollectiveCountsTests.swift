import Testing
import MoEKit

/// MPI's variable-size collectives take 32-bit counts and displacements: a prefill-sized all-to-all at
/// DeepSeek-V3 shapes can pass 2 GiB, which must be refused with a typed error, not trap in `Int32(_:)`.
@Suite("Collective counts")
struct CollectiveCountsTests {
    @Test("counts become 32-bit counts and exclusive prefix sums")
    func layout() throws {
        let c = try CollectiveCounts([5, 0, 7, 1], operation: "all-to-all")
        #expect(c.counts == [5, 0, 7, 1])
        #expect(c.displacements == [0, 5, 5, 12])
        #expect(c.total == 13)
        #expect(try CollectiveCounts([], operation: "all-gather").total == 0)
        let edge = try CollectiveCounts([Int(Int32.max) - 1, 1], operation: "all-to-all")
        #expect(edge.total == Int(Int32.max))
    }

    @Test("more than 2 GiB − 1 bytes in one call is refused", arguments: [
        [Int(Int32.max) + 1], [Int(Int32.max), 1], [1 << 30, 1 << 30, 1 << 30], [Int.max, Int.max],
    ])
    func tooLarge(_ bytes: [Int]) {
        #expect(throws: CommunicatorError.self) { try CollectiveCounts(bytes, operation: "all-to-all") }
        do {
            _ = try CollectiveCounts(bytes, operation: "all-to-all")
        } catch {
            guard case .messageTooLarge(let op, let total, let limit) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(op == "all-to-all" && limit == Int(Int32.max) && total > limit)
            #expect(!error.description.contains("\n") && error.description.contains("all-to-all"))
        }
    }

    @Test("a negative count is refused")
    func negative() {
        #expect(throws: CommunicatorError.mismatch("all-gather: a message of -1 bytes")) { try CollectiveCounts([3, -1], operation: "all-gather") }
    }
}
