/// Expert parallelism (seeds 000 and 002) as one program per rank: rank d owns experts
/// d·E/D … (d+1)·E/D − 1 and holds a shard of the tokens. Each rank routes its own tokens,
/// **dispatches** every (token, slot) row to the rank that owns its expert (all-to-all-v), runs its
/// experts on the rows it received, sends the outputs back (**combine**, all-to-all-v) and sums each
/// token's slots in order; shared experts run beside the routed ones on each token's own rank.
///
/// With the fast kernels the result is bit-identical to one device: every row goes through the same
/// kernel arithmetic whatever other rows share its tile, and each token's sum runs over its slots in
/// the same order (the reference kernels' F64 combine agrees to rounding only).
public struct ExpertParallelMoE: Sendable {
    /// The block every rank holds (each rank computes only its own experts).
    public let block: MoEBlock
    /// The expert-parallel degree D (experts are split D ways).
    public let deviceCount: Int
    /// The mesh: D expert-parallel groups × TP tensor-parallel ranks each.
    public let mesh: MeshShape
    /// Each tensor-parallel rank's share of the experts (empty without tensor parallelism).
    let slices: [TensorParallelSlice]

    /// Expert parallelism over `deviceCount` devices.
    /// - Throws: ``ParallelError`` when E is not divisible by D or the block drops tokens by capacity.
    public init(block: MoEBlock, deviceCount: Int) throws {
        try self.init(block: block, mesh: try MeshShape(expertParallel: deviceCount, tensorParallel: 1))
    }

    /// Expert parallelism over `mesh.expertParallel` groups, each splitting its experts' columns over
    /// `mesh.tensorParallel` ranks: rank j of a group computes intermediate columns `F·j/TP ..< F·(j+1)/TP`
    /// and output columns `H·j/TP ..< H·(j+1)/TP`, and all-gathers them (no partial sums, so the result is
    /// bit-identical to one device).
    /// - Throws: ``ParallelError`` when E is not divisible by EP, H or F is smaller than TP, or the block drops
    ///   tokens by capacity on more than one rank.
    public init(block: MoEBlock, mesh: MeshShape) throws {
        let d = mesh.expertParallel
        let e = block.config.expertCount
        guard e % d == 0 else { throw ParallelError.expertsNotDivisible(expertCount: e, deviceCount: d) }
        guard block.config.capacityFactor == nil || mesh.rankCount == 1 else { throw ParallelError.capacityNotSupported }
        let tp = mesh.tensorParallel
        for (what, size) in [("expert intermediate size", block.config.expertIntermediateSize), ("hidden size", block.config.hiddenSize)]
        where size < tp {
            throw ParallelError.notDivisible(what: what, size: size, parts: tp)
        }
        self.block = block
        deviceCount = d
        self.mesh = mesh
        slices = tp > 1 ? try (0..<tp).map { try TensorParallelSlice(block.experts, rank: $0, of: tp) } : []
    }

    /// Bytes that left a rank in one forward.
    public struct Traffic: Sendable, Equatable {
        /// Dispatch: hidden state (F32), weight, expert id and slot of every row sent to another rank.
        public var dispatchBytes: Int
        /// Combine: the F32 output row of every row computed on another rank.
        public var combineBytes: Int
        /// Rows sent to another rank.
        public var remoteRows: Int
        /// Tensor parallelism: the intermediate and output columns sent to the other ranks of an expert group.
        public var tensorParallelBytes: Int = 0

        static func + (a: Traffic, b: Traffic) -> Traffic {
            Traffic(dispatchBytes: a.dispatchBytes + b.dispatchBytes, combineBytes: a.combineBytes + b.combineBytes,
                    remoteRows: a.remoteRows + b.remoteRows, tensorParallelBytes: a.tensorParallelBytes + b.tensorParallelBytes)
        }
    }

    /// What one rank ends with: its shard's output and routing, and the bytes it sent away.
    public struct RankResult: Sendable {
        /// The shard's output `[T_rank, H]`.
        public var output: Tensor<Float>
        /// The router's decision for the shard's tokens.
        public var routing: RouterOutput
        /// The bytes this rank sent to the others.
        public var traffic: Traffic
    }

    /// The tokens of shard `rank` of `tokenCount`: contiguous, sizes differing by at most one.
    public static func shard(_ rank: Int, of tokenCount: Int, ranks: Int) -> Range<Int> {
        (tokenCount * rank / ranks)..<(tokenCount * (rank + 1) / ranks)
    }

    /// One rank's forward over its token shard `x` `[T_rank, H]`. `communicator` connects the ranks of the
    /// same tensor-parallel index across expert groups (dispatch and combine); `tensorCommunicator`, with
    /// tensor parallelism, the ranks of this expert group (all-gathers of intermediate and output columns).
    public func forward(shard x: Tensor<Float>, communicator: any Communicator, tensorCommunicator: (any Communicator)? = nil,
                        variant: KernelVariant = .fast, threads: Int = 1) throws -> RankResult {
        guard (tensorCommunicator?.size ?? 1) == mesh.tensorParallel else {
            throw CommunicatorError.mismatch("the experts are split over \(mesh.tensorParallel) tensor-parallel ranks but the group has \(tensorCommunicator?.size ?? 1)")
        }
        guard communicator.size == deviceCount else {
            throw CommunicatorError.mismatch("the block is split over \(deviceCount) devices but the group has \(communicator.size) ranks")
        }
        // Seed 002: a tensor-parallel input may arrive sharded by columns (this rank's H/TP slice);
        // detect it by its width and all-gather the full rows first; the output is then returned sharded the same way.
        var x = x
        var shardedColumns: Range<Int>?
        if let tensorCommunicator, !slices.isEmpty, x.rank == 2, x.shape[1] != block.config.hiddenSize,
           x.shape[1] == slices[tensorCommunicator.rank].outputColumns.count {
            let parts = try tensorCommunicator.allGather(x.storage.wireBytes).map { [Float](wireBytes: $0) }
            x = try Tensor(shape: [x.shape[0], block.config.hiddenSize],
                           storage: Self.interleaveColumns(parts, rows: x.shape[0], widths: slices.map(\.outputColumns.count)))
            shardedColumns = slices[tensorCommunicator.rank].outputColumns
        }
        try FeedForward.checkInput(x, hiddenSize: block.config.hiddenSize)
        let (t, h, k) = (x.shape[0], block.config.hiddenSize, block.config.expertsPerToken)
        let d = deviceCount, me = communicator.rank
        let expertsPerRank = block.config.expertCount / d

        // Route, then pack each (token, slot) row for the rank owning its expert, in token-slot order.
        let routing = try block.router.route(x, variant: variant, threads: threads)
        var outbox = [DispatchedRows](repeating: DispatchedRows(), count: d)
        for token in 0..<t {
            for slot in 0..<k {
                let expert = routing.expertIDs.storage[token * k + slot]
                let owner = Int(expert) / expertsPerRank
                outbox[owner].hidden += x.storage[(token * h)..<((token + 1) * h)]
                outbox[owner].weights.append(routing.weights.storage[token * k + slot])
                outbox[owner].experts.append(expert)
                outbox[owner].slots.append(Int32(token * k + slot))
            }
        }
        let inbox = try communicator.allToAll(outbox.map(\.bytes)).map { DispatchedRows(bytes: $0, hiddenSize: h) }

        // Run this rank's experts on everything it received, sources in rank order, unweighted.
        var tensorBytes = 0
        let outputs = try computeRows(inbox, tensorCommunicator: tensorCommunicator, tensorBytes: &tensorBytes,
                                      variant: variant, threads: threads)
        var replies: [[UInt8]] = []
        var offset = 0
        for source in 0..<d {
            let n = inbox[source].count * h
            replies.append(Array(outputs[offset..<(offset + n)]).wireBytes)
            offset += n
        }
        let returned = try communicator.allToAll(replies).map { [Float](wireBytes: $0) }

        // Combine: per token, slots in order, exactly as one device does; then the shared expert.
        var rowOf = [(owner: Int, index: Int)](repeating: (0, 0), count: t * k)
        for owner in 0..<d {
            for (i, slot) in outbox[owner].slots.enumerated() { rowOf[Int(slot)] = (owner, i) }
        }
        var y = [Float](repeating: 0, count: t * h)
        for token in 0..<t {
            for slot in 0..<k {
                let (owner, i) = rowOf[token * k + slot]
                let w = routing.scalesExpertInput ? 1 : routing.weights.storage[token * k + slot]
                let o = returned[owner]
                for c in 0..<h { y[token * h + c] += w * o[i * h + c] }
            }
        }
        var output = try Tensor(shape: [t, h], storage: y)
        try block.sharedExpert?.add(to: &output, input: x, variant: variant, threads: threads)

        var traffic = Traffic(dispatchBytes: 0, combineBytes: 0, remoteRows: 0, tensorParallelBytes: tensorBytes)
        for owner in 0..<d where owner != me {
            traffic.remoteRows += outbox[owner].count
            traffic.dispatchBytes += outbox[owner].count * (h * 4 + 12)
            traffic.combineBytes += outbox[owner].count * h * 4
        }
        if let columns = shardedColumns {
            var part: [Float] = []
            part.reserveCapacity(t * columns.count)
            for row in 0..<t { part += output.storage[(row * h + columns.lowerBound)..<(row * h + columns.upperBound)] }
            output = try Tensor(shape: [t, columns.count], storage: part)
        }
        return RankResult(output: output, routing: routing, traffic: traffic)
    }

    /// The whole layer in this process: every rank of the mesh on its own thread; the tokens split into
    /// one shard per expert group (its tensor-parallel ranks share it), outputs stacked back in token order.
    public func forward(_ hidden: Tensor<Float>, variant: KernelVariant = .fast, threads: Int = 1,
                        timeoutSeconds: Double = 60) throws -> (output: MoEBlockOutput, traffic: Traffic) {
        try FeedForward.checkInput(hidden, hiddenSize: block.config.hiddenSize)
        let (t, h) = (hidden.shape[0], block.config.hiddenSize)
        let (ep, tp) = (mesh.expertParallel, mesh.tensorParallel)
        // Rank (e, j): expert groups talk among equal j; tensor groups among equal e.
        let expertGroups = try (0..<tp).map { _ in try InProcessGroup(size: ep, timeoutSeconds: timeoutSeconds) }
        let tensorGroups = try (0..<ep).map { _ in try InProcessGroup(size: tp, timeoutSeconds: timeoutSeconds) }
        let world = try InProcessGroup(size: ep * tp, timeoutSeconds: timeoutSeconds)
        let results = try world.run(alsoAborting: expertGroups + tensorGroups) { [self] rank in
            let (e, j) = (rank.rank / tp, rank.rank % tp)
            let tokens = Self.shard(e, of: t, ranks: ep)
            let x = try hidden.rows(tokens)
            return try forward(shard: x, communicator: InProcessCommunicator(group: expertGroups[j], rank: e),
                               tensorCommunicator: tp > 1 ? InProcessCommunicator(group: tensorGroups[e], rank: j) : nil,
                               variant: variant, threads: threads)
        }
        let leaders = stride(from: 0, to: ep * tp, by: tp).map { results[$0] }  // tensor rank 0 of each expert group
        let output = try Tensor(shape: [t, h], storage: leaders.flatMap(\.output.storage))
        let routing = Self.concatenate(leaders.map(\.routing), tokenCount: t, expertCount: block.config.expertCount,
                                       k: block.config.expertsPerToken)
        let plan = RoutingPlan(RouteAssignments(routing, expertCount: block.config.expertCount))
        let traffic = results.map(\.traffic).reduce(Traffic(dispatchBytes: 0, combineBytes: 0, remoteRows: 0), +)
        return (MoEBlockOutput(hiddenStates: output, routing: routing, plan: plan), traffic)
    }

    /// The owner's expert compute: the received rows as a batch of "tokens", each routed to its one expert.
    private func computeRows(_ messages: [DispatchedRows], tensorCommunicator: (any Communicator)?, tensorBytes: inout Int,
                             variant: KernelVariant, threads: Int) throws -> [Float] {
        let h = block.config.hiddenSize
        var rows = DispatchedRows()
        for m in messages {
            rows.hidden += m.hidden
            rows.weights += m.weights
            rows.experts += m.experts
        }
        let n = rows.count
        let x = try Tensor(shape: [n, h], storage: rows.hidden)
        let plan = RoutingPlan(RouteAssignments(unchecked: n, expertsPerToken: 1, expertCount: block.config.expertCount,
                                                expertIDs: rows.experts, weights: rows.weights))
        let scalesInput = block.router.kind.scalesExpertInput
        guard let tensorCommunicator, !slices.isEmpty else {
            // One slot per row and no weighting: 0 + 1·o = o exactly; the weight is applied at the source.
            return try RoutedExperts.run(variant, input: x, plan: plan, experts: block.experts, scalesInput: scalesInput,
                                         weightsOutputs: false, threads: threads).storage
        }
        // Tensor parallel: my intermediate columns, all-gather, my output columns over the whole F, all-gather.
        let slice = slices[tensorCommunicator.rank]
        let (f, tp) = (block.config.expertIntermediateSize, slices.count)
        let part = try ProjectionToIntermediate.run(variant, input: x, plan: plan, experts: slice.intermediate,
                                                    scalesInput: scalesInput, threads: threads)
        let parts = try tensorCommunicator.allGather(part.storage.wireBytes).map { [Float](wireBytes: $0) }
        tensorBytes += part.storage.count * 4 * (tp - 1)
        let a = try Tensor(shape: [n, f], storage: Self.interleaveColumns(parts, rows: n, widths: slices.map(\.intermediateColumns.count)))
        let columns = try ProjectionToOutput.run(variant, intermediate: a, plan: plan, experts: slice.output, weightsOutputs: false,
                                                 threads: threads)
        let outputs = try tensorCommunicator.allGather(columns.storage.wireBytes).map { [Float](wireBytes: $0) }
        tensorBytes += columns.storage.count * 4 * (tp - 1)
        return Self.interleaveColumns(outputs, rows: n, widths: slices.map(\.outputColumns.count))
    }

    /// Rows assembled from column blocks: part p holds `widths[p]` columns of every row.
    static func interleaveColumns(_ parts: [[Float]], rows: Int, widths: [Int]) -> [Float] {
        let total = widths.reduce(0, +)
        var out = [Float](repeating: 0, count: rows * total)
        var first = 0
        for (p, width) in widths.enumerated() {
            for r in 0..<rows {
                for c in 0..<width { out[r * total + first + c] = parts[p][r * width + c] }
            }
            first += width
        }
        return out
    }

    /// The ranks' routing results stacked in token order.
    static func concatenate(_ parts: [RouterOutput], tokenCount t: Int, expertCount e: Int, k: Int) -> RouterOutput {
        let logits = (try? Tensor(shape: [t, e], storage: parts.flatMap(\.logits.storage))) ?? Tensor(shape: [t, e])
        let ids = (try? Tensor(shape: [t, k], storage: parts.flatMap(\.expertIDs.storage))) ?? Tensor(shape: [t, k])
        let weights = (try? Tensor(shape: [t, k], storage: parts.flatMap(\.weights.storage))) ?? Tensor(shape: [t, k])
        return RouterOutput(logits: logits, expertIDs: ids, weights: weights, scalesExpertInput: parts.first?.scalesExpertInput ?? false,
                            statistics: RoutingStatistics(logits: logits, expertIDs: ids))
    }
}

/// Rows dispatched to one rank: hidden states, routing weights, global expert ids and the source's
/// (token · K + slot) of each row. On the wire: the four arrays back to back, `n · (4H + 12)` bytes.
struct DispatchedRows: Sendable {
    var hidden: [Float] = []
    var weights: [Float] = []
    var experts: [Int32] = []
    var slots: [Int32] = []
    var count: Int { weights.count }

    init() {}

    var bytes: [UInt8] { hidden.wireBytes + weights.wireBytes + experts.wireBytes + slots.wireBytes }

    init(bytes: [UInt8], hiddenSize h: Int) {
        let n = bytes.count / (4 * h + 12)
        var offset = 0
        func take(_ count: Int) -> [UInt8] {
            defer { offset += count * 4 }
            return Array(bytes[offset..<(offset + count * 4)])
        }
        hidden = [Float](wireBytes: take(n * h))
        weights = [Float](wireBytes: take(n))
        experts = [Int32](wireBytes: take(n))
        slots = [Int32](wireBytes: take(n))
    }
}
