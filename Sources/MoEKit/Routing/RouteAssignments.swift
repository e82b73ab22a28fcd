/// A validated `[T, K]` routing decision: every id in `0..<E`, no expert twice in a row, every
/// weight finite. The seed dispatch operations and the ``RoutingPlan`` start from this.
public struct RouteAssignments: Sendable, Equatable {
    /// T.
    public let tokenCount: Int
    /// K.
    public let expertsPerToken: Int
    /// E.
    public let expertCount: Int
    /// `[T·K]` expert ids, row-major.
    public let expertIDs: [Int32]
    /// `[T·K]` weights, row-major.
    public let weights: [Float]

    /// Validates `selectedExperts` `[T, K]` and `routingWeights` `[T, K]` against `expertCount`.
    /// - Throws: ``RoutingError`` naming the first bad (token, slot).
    public init(selectedExperts: Tensor<Int64>, routingWeights: Tensor<Float>, expertCount: Int) throws(RoutingError) {
        guard expertCount > 0 else { throw .invalidCount(name: "num_experts", value: expertCount, reason: "must be positive") }
        guard selectedExperts.rank == 2 else {
            throw .shapeMismatch("selected_experts must be [T, K], got \(selectedExperts.shape)")
        }
        guard routingWeights.shape == selectedExperts.shape else {
            throw .shapeMismatch("routing_weights \(routingWeights.shape) must have the shape of selected_experts \(selectedExperts.shape)")
        }
        let (t, k) = (selectedExperts.shape[0], selectedExperts.shape[1])
        guard k >= 1 else { throw .shapeMismatch("selected_experts has K = 0 experts per token") }
        guard k <= expertCount else {
            throw .shapeMismatch("K = \(k) experts per token is more than the \(expertCount) experts")
        }
        var ids = [Int32](repeating: 0, count: t * k)
        for row in 0..<t {
            for slot in 0..<k {
                let id = selectedExperts.storage[row * k + slot]
                guard id >= 0, id < Int64(expertCount) else {
                    throw .expertOutOfRange(token: row, slot: slot, expert: id, expertCount: expertCount)
                }
                for earlier in 0..<slot where Int64(ids[row * k + earlier]) == id {
                    throw .duplicateExpert(token: row, expert: id, firstSlot: earlier, secondSlot: slot)
                }
                ids[row * k + slot] = Int32(id)
                let w = routingWeights.storage[row * k + slot]
                guard w.isFinite else { throw .nonFiniteWeight(token: row, slot: slot, value: w) }
            }
        }
        tokenCount = t
        expertsPerToken = k
        self.expertCount = expertCount
        expertIDs = ids
        weights = routingWeights.storage
    }

    /// Wraps a router's decision (already valid by construction).
    public init(_ output: RouterOutput, expertCount: Int) {
        tokenCount = output.expertIDs.shape[0]
        expertsPerToken = output.expertIDs.shape[1]
        self.expertCount = expertCount
        expertIDs = output.expertIDs.storage
        weights = output.weights.storage
    }
}
