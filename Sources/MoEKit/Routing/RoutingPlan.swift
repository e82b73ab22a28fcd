/// The routing decision as data: which rows each expert processes and where each result goes.
///
/// Rows are packed by expert (seed 000): expert e owns rows `offsets[e] ..< offsets[e + 1]`, and the
/// i-th token routed to e (ascending token order) sits at row `offsets[e] + i`. The gather (reader),
/// both projections and the combine (writer) are driven by this plan; split by device it also drives
/// dispatch and combine across devices.
public struct RoutingPlan: Sendable, Equatable {
    /// T.
    public let tokenCount: Int
    /// K.
    public let expertsPerToken: Int
    /// E.
    public let expertCount: Int
    /// Admitted rows per expert (E values).
    public let tokensPerExpert: [Int]
    /// Exclusive prefix sums of ``tokensPerExpert`` (E + 1 values); `offsets[E]` is the row count.
    public let offsets: [Int]
    /// The token of each row.
    public let rowToken: [Int32]
    /// The routing weight of each row.
    public let rowWeight: [Float]
    /// For each (token, slot) in row-major `[T, K]` order: its row, or −1 when capacity dropped it.
    public let slotRow: [Int32]
    /// The per-expert capacity in force, or `nil` when dropless.
    public let capacity: Int?
    /// Assignments dropped because their expert was full.
    public let droppedAssignmentCount: Int

    /// The number of rows (admitted assignments).
    public var rowCount: Int { offsets[expertCount] }

    /// Builds the plan. With a `capacityFactor`, assignments are admitted per ``ExpertCapacity``.
    public init(_ routes: RouteAssignments, capacityFactor: Double? = nil) {
        let (t, k, e) = (routes.tokenCount, routes.expertsPerToken, routes.expertCount)
        let capacity = capacityFactor.map { ExpertCapacity.capacity(factor: $0, tokenCount: t, expertsPerToken: k, expertCount: e) }
        let admitted = ExpertCapacity.admit(routes, capacity: capacity)
        var counts = [Int](repeating: 0, count: e)
        for (i, id) in routes.expertIDs.enumerated() where admitted[i] { counts[Int(id)] += 1 }
        var offsets = [Int](repeating: 0, count: e + 1)
        for i in 0..<e { offsets[i + 1] = offsets[i] + counts[i] }
        var next = Array(offsets.dropLast())
        var rowToken = [Int32](repeating: 0, count: offsets[e])
        var rowWeight = [Float](repeating: 0, count: offsets[e])
        var slotRow = [Int32](repeating: -1, count: t * k)
        for token in 0..<t {  // token-major: rows of each expert come out in ascending token order
            for slot in 0..<k where admitted[token * k + slot] {
                let expert = Int(routes.expertIDs[token * k + slot])
                let row = next[expert]
                next[expert] += 1
                rowToken[row] = Int32(token)
                rowWeight[row] = routes.weights[token * k + slot]
                slotRow[token * k + slot] = Int32(row)
            }
        }
        tokenCount = t
        expertsPerToken = k
        expertCount = e
        tokensPerExpert = counts
        self.offsets = offsets
        self.rowToken = rowToken
        self.rowWeight = rowWeight
        self.slotRow = slotRow
        self.capacity = capacity
        droppedAssignmentCount = admitted.lazy.filter { !$0 }.count
    }

    /// A plan that sends all T tokens to one expert with weight 1 (dense and shared MLPs).
    public static func allTokens(_ tokenCount: Int) -> RoutingPlan {
        let routes = RouteAssignments(unchecked: tokenCount, expertsPerToken: 1, expertCount: 1,
                                      expertIDs: [Int32](repeating: 0, count: tokenCount),
                                      weights: [Float](repeating: 1, count: tokenCount))
        return RoutingPlan(routes)
    }
}

extension RoutingPlan {
    /// The plan must route over exactly the experts of `experts`.
    func check(against experts: ExpertWeights) throws(TensorError) {
        guard expertCount == experts.expertCount else {
            throw .shapeMismatch(expected: "a plan over \(experts.expertCount) experts", actual: "\(expertCount) experts")
        }
    }
}

extension RouteAssignments {
    /// Internal: assignments known valid by construction.
    init(unchecked tokenCount: Int, expertsPerToken: Int, expertCount: Int, expertIDs: [Int32], weights: [Float]) {
        self.tokenCount = tokenCount
        self.expertsPerToken = expertsPerToken
        self.expertCount = expertCount
        self.expertIDs = expertIDs
        self.weights = weights
    }
}

/// Expert capacity and token dropping (seed 003; off by default, MoEKit is dropless).
///
/// Capacity C = ⌈factor · T · K / E⌉. Assignments are admitted slot-major: all first choices in token
/// order, then all second choices, and so on (GShard / Switch: earlier tokens and higher-ranked choices
/// first). An assignment to an expert already holding C rows is dropped: its slot contributes nothing
/// and the token's other weights are **not** renormalised.
public enum ExpertCapacity {
    /// C = ⌈factor · T · K / E⌉.
    public static func capacity(factor: Double, tokenCount: Int, expertsPerToken: Int, expertCount: Int) -> Int {
        Int((factor * Double(tokenCount * expertsPerToken) / Double(expertCount)).rounded(.up))
    }

    /// Whether each (token, slot), row-major `[T, K]`, is admitted.
    static func admit(_ routes: RouteAssignments, capacity: Int?) -> [Bool] {
        let (t, k) = (routes.tokenCount, routes.expertsPerToken)
        guard let capacity else { return [Bool](repeating: true, count: t * k) }
        var admitted = [Bool](repeating: false, count: t * k)
        var load = [Int](repeating: 0, count: routes.expertCount)
        for slot in 0..<k {
            for token in 0..<t {
                let expert = Int(routes.expertIDs[token * k + slot])
                if load[expert] < capacity {
                    load[expert] += 1
                    admitted[token * k + slot] = true
                }
            }
        }
        return admitted
    }
}
