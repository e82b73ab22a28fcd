/// Byte counts and displacements of a variable-size collective in the 32-bit form MPI takes
/// (`MPI_Ialltoallv`, `MPI_Iallgatherv`), checked: a message, or the running total of a rank's messages,
/// past `Int32.max` bytes is refused instead of trapping in the conversion.
public struct CollectiveCounts: Sendable, Equatable {
    /// Bytes of each rank's message.
    public let counts: [Int32]
    /// Offset of each rank's message in the packed buffer (exclusive prefix sums of ``counts``).
    public let displacements: [Int32]
    /// Bytes of all messages.
    public let total: Int

    /// Checks `bytes` (one entry per rank) for `operation`, whose name the error carries.
    /// - Throws: ``CommunicatorError/messageTooLarge(operation:bytes:limit:)`` when the sum passes
    ///   `Int32.max`, ``CommunicatorError/mismatch(_:)`` for a negative count.
    public init(_ bytes: [Int], operation: String) throws(CommunicatorError) {
        let limit = Int(Int32.max)
        var counts: [Int32] = [], displacements: [Int32] = []
        counts.reserveCapacity(bytes.count)
        displacements.reserveCapacity(bytes.count)
        var total = 0
        for count in bytes {
            guard count >= 0 else { throw .mismatch("\(operation): a message of \(count) bytes") }
            // `total` and `count` are both ≤ Int32.max here, so the sum cannot overflow `Int`.
            guard count <= limit, total + count <= limit else {
                throw .messageTooLarge(operation: operation, bytes: Self.saturatingSum(bytes), limit: limit)
            }
            displacements.append(Int32(total))
            counts.append(Int32(count))
            total += count
        }
        self.counts = counts
        self.displacements = displacements
        self.total = total
    }

    /// The sum of the non-negative counts, `Int.max` if it overflows (for the error message only).
    private static func saturatingSum(_ bytes: [Int]) -> Int {
        var sum = 0
        for count in bytes where count > 0 {
            let (next, overflow) = sum.addingReportingOverflow(count)
            if overflow { return .max }
            sum = next
        }
        return sum
    }
}
