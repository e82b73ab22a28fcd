/// Expert parallelism (seeds 000 and 002): device d owns experts d·E/D … (d+1)·E/D − 1 and holds the
/// token shard d (tokens T·d/D ..< T·(d+1)/D). Each device routes its own tokens, **dispatches** every
/// (token, slot) row to the device that owns its expert (all-to-all-v), the owners run their experts on
/// the rows they received, and the outputs are sent back (**combine**, all-to-all-v) and summed per
/// token in slot order. Shared experts run beside the routed ones on each token's own device.
///
/// With the fast kernels the result is bit-identical to one device: every row goes through the same
/// kernel arithmetic whatever other rows share its tile, and each token's sum runs over its slots in the
/// same order (the reference kernels' F64 combine agrees to rounding only).
/// In process the devices run one after another, each using all `threads` for its kernels.
public struct ExpertParallelMoE: Sendable {
    public let block: MoEBlock
    public let mesh: DeviceMesh

    /// - Throws: ``ParallelError`` when E is not divisible by D or the block drops tokens by capacity.
    public init(block: MoEBlock, mesh: DeviceMesh) throws(ParallelError) {
        let e = block.config.expertCount
        guard e % mesh.deviceCount == 0 else { throw .expertsNotDivisible(expertCount: e, deviceCount: mesh.deviceCount) }
        guard block.config.capacityFactor == nil || mesh.deviceCount == 1 else { throw .capacityNotSupported }
        self.block = block
        self.mesh = mesh
    }

    /// One dispatched row: the token's hidden state, its routing weight and global expert, and where
    /// its output goes back to (the source-local token and slot).
    struct DispatchedRows: Sendable {
        var hidden: [Float] = []
        var weights: [Float] = []
        var experts: [Int32] = []
        var slots: [Int32] = []  // localToken · K + slot on the source device
        var count: Int { weights.count }
    }

    /// Traffic of one forward, in bytes that left a device.
    public struct Traffic: Sendable, Equatable {
        /// Dispatch: hidden state (F32), weight, expert id and slot of every row routed to another device.
        public var dispatchBytes: Int
        /// Combine: the F32 output row of every row computed on another device.
        public var combineBytes: Int
        /// Rows sent to another device.
        public var remoteRows: Int
    }

    /// Runs the block on `hidden` `[T, H]` over the mesh.
    public func forward(_ hidden: Tensor<Float>, variant: KernelVariant = .fast, threads: Int = 1) throws -> (output: MoEBlockOutput, traffic: Traffic) {
        try FeedForward.checkInput(hidden, hiddenSize: block.config.hiddenSize)
        let (t, h, k) = (hidden.shape[0], block.config.hiddenSize, block.config.expertsPerToken)
        let d = mesh.deviceCount
        let expertsPerDevice = block.config.expertCount / d
        let shard = { (device: Int) in (t * device / d)..<(t * (device + 1) / d) }

        // Route on every device, then pack each (token, slot) row for the device owning its expert.
        var routings: [RouterOutput] = []
        var outbox: [[DispatchedRows]] = []
        for device in 0..<d {
            let tokens = shard(device)
            let x = try Tensor(shape: [tokens.count, h], storage: Array(hidden.storage[(tokens.lowerBound * h)..<(tokens.upperBound * h)]))
            let routing = try block.router.route(x, variant: variant, threads: threads)
            var messages = [DispatchedRows](repeating: DispatchedRows(), count: d)
            for token in 0..<tokens.count {
                for slot in 0..<k {
                    let expert = routing.expertIDs.storage[token * k + slot]
                    let owner = Int(expert) / expertsPerDevice
                    messages[owner].hidden += x.storage[(token * h)..<((token + 1) * h)]
                    messages[owner].weights.append(routing.weights.storage[token * k + slot])
                    messages[owner].experts.append(expert)
                    messages[owner].slots.append(Int32(token * k + slot))
                }
            }
            routings.append(routing)
            outbox.append(messages)
        }
        let (inbox, dispatchBytes) = mesh.allToAll(outbox) { $0.count * (h * 4 + 12) }

        // Each owner runs its experts on the rows it received, sources in order, unweighted.
        var replies: [[[Float]]] = []
        for owner in 0..<d {
            let rows = inbox[owner]
            let outputs = try computeRows(rows, variant: variant, threads: threads)
            var perSource: [[Float]] = []
            var offset = 0
            for source in 0..<d {
                let n = rows[source].count * h
                perSource.append(Array(outputs[offset..<(offset + n)]))
                offset += n
            }
            replies.append(perSource)
        }
        let (returned, combineBytes) = mesh.allToAll(replies) { $0.count * 4 }

        // Combine on each source: per token, slots in order, exactly as one device does; then shared experts.
        var output = Tensor<Float>(shape: [t, h])
        for device in 0..<d {
            let tokens = shard(device)
            var y = [Float](repeating: 0, count: tokens.count * h)
            var rowOf = [(owner: Int, index: Int)](repeating: (0, 0), count: tokens.count * k)
            for owner in 0..<d {
                for (i, slot) in outbox[device][owner].slots.enumerated() { rowOf[Int(slot)] = (owner, i) }
            }
            let scalesInput = routings[device].scalesExpertInput
            for token in 0..<tokens.count {
                for slot in 0..<k {
                    let (owner, i) = rowOf[token * k + slot]
                    let w = scalesInput ? 1 : routings[device].weights.storage[token * k + slot]
                    let o = returned[device][owner]
                    for c in 0..<h { y[token * h + c] += w * o[i * h + c] }
                }
            }
            var part = try Tensor(shape: [tokens.count, h], storage: y)
            if let shared = block.sharedExpert {
                let x = try Tensor(shape: [tokens.count, h], storage: Array(hidden.storage[(tokens.lowerBound * h)..<(tokens.upperBound * h)]))
                try shared.add(to: &part, input: x, variant: variant, threads: threads)
            }
            output.storage.replaceSubrange((tokens.lowerBound * h)..<(tokens.upperBound * h), with: part.storage)
        }

        let routing = Self.concatenate(routings, tokenCount: t, expertCount: block.config.expertCount, k: k)
        let plan = RoutingPlan(RouteAssignments(routing, expertCount: block.config.expertCount))
        var remoteRows = 0
        for source in 0..<d {
            for owner in 0..<d where owner != source { remoteRows += outbox[source][owner].count }
        }
        return (MoEBlockOutput(hiddenStates: output, routing: routing, plan: plan),
                Traffic(dispatchBytes: dispatchBytes, combineBytes: combineBytes, remoteRows: remoteRows))
    }

    /// The owner's expert compute: the received rows as a batch of "tokens", each routed to its one expert.
    private func computeRows(_ messages: [DispatchedRows], variant: KernelVariant, threads: Int) throws -> [Float] {
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
        let a = try ProjectionToIntermediate.run(variant, input: x, plan: plan, experts: block.experts, scalesInput: scalesInput, threads: threads)
        // One slot per row and no weighting: 0 + 1·o = o exactly; the weight is applied at the source.
        return try ProjectionToOutput.run(variant, intermediate: a, plan: plan, experts: block.experts, weightsOutputs: false,
                                          threads: threads).storage
    }

    /// The devices' routing results stacked in token order.
    static func concatenate(_ parts: [RouterOutput], tokenCount t: Int, expertCount e: Int, k: Int) -> RouterOutput {
        let logits = (try? Tensor(shape: [t, e], storage: parts.flatMap(\.logits.storage))) ?? Tensor(shape: [t, e])
        let ids = (try? Tensor(shape: [t, k], storage: parts.flatMap(\.expertIDs.storage))) ?? Tensor(shape: [t, k])
        let weights = (try? Tensor(shape: [t, k], storage: parts.flatMap(\.weights.storage))) ?? Tensor(shape: [t, k])
        return RouterOutput(logits: logits, expertIDs: ids, weights: weights, scalesExpertInput: parts.first?.scalesExpertInput ?? false,
                            statistics: RoutingStatistics(logits: logits, expertIDs: ids))
    }
}
