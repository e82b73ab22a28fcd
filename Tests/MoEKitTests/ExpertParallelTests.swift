import Testing
import MoEKit
import MoETestSupport

@Suite("Expert parallelism in process")
struct ExpertParallelTests {
    /// Every MoE fixture layer, for each device count dividing E: the same bits as one device, and so
    /// still within 1e-5 of transformers.
    @Test("D devices give the bits of one device on every fixture", arguments: GoldenCase.all.filter(\.isMoE))
    func fixturesBitIdentical(_ golden: GoldenCase) throws {
        guard let (block, x, file) = try moeFixture(golden) else { return }
        let expected = try file.tensor("expected_hidden_states").floats(named: "y")
        let one = try block.forward(x, variant: .fast, threads: 2)
        for d in [2, 4, 8, 16] where block.config.expertCount % d == 0 {
            let (out, _) = try ExpertParallelMoE(block: block, deviceCount: d).forward(x, threads: 2)
            #expect(out.hiddenStates.storage == one.hiddenStates.storage, "D = \(d)")
            #expect(out.routing.expertIDs == one.routing.expertIDs, "D = \(d)")
            #expect(relativeError(out.hiddenStates, try expected.reshaped(out.hiddenStates.shape)) <= 1e-5)
        }
    }

    /// Dispatch and combine move exactly the rows whose expert lives on another device than their token.
    @Test("traffic equals what the routing predicts", arguments: [1, 2, 4])
    func traffic(_ d: Int) throws {
        let config = MoEConfig(hiddenSize: 24, expertCount: 8, expertsPerToken: 2, expertIntermediateSize: 16,
                               router: .softmaxTopK(normalizesTopKWeights: true))
        let block = try MoEBlock.random(config: config, seed: 11)
        var g = SeededGenerator(seed: 12)
        let t = 13  // not a multiple of D: uneven shards
        let x = randomTensor([t, 24], generator: &g)
        let (out, traffic) = try ExpertParallelMoE(block: block, deviceCount: d).forward(x, threads: 2)
        var remote = 0
        for token in 0..<t {
            let device = (0..<d).first { token >= t * $0 / d && token < t * ($0 + 1) / d } ?? 0
            for slot in 0..<2 where Int(out.routing.expertIDs.storage[token * 2 + slot]) / (8 / d) != device { remote += 1 }
        }
        #expect(traffic.remoteRows == remote)
        #expect(traffic.dispatchBytes == remote * (24 * 4 + 12))
        #expect(traffic.combineBytes == remote * 24 * 4)
        if d > 1 { #expect(remote > 0) }
    }

    /// Random blocks of every router kind, with shared experts, and token counts that do not split evenly.
    @Test("every router kind and shared expert", arguments: BlockCase.all)
    func routerKinds(_ c: BlockCase) throws {
        let block = try randomBlock(c.config, seed: 21)
        var g = SeededGenerator(seed: 22)
        let x = randomTensor([29, 24], generator: &g)
        let one = try block.forward(x, threads: 1)
        for d in [2, 4, 8] where c.config.expertCount % d == 0 {
            let out = try ExpertParallelMoE(block: block, deviceCount: d).forward(x, threads: 2).output
            #expect(out.hiddenStates.storage == one.hiddenStates.storage, "D = \(d)")
        }
    }

    @Test("bad device counts and capacity are refused")
    func refusals() throws {
        let config = MoEConfig(hiddenSize: 8, expertCount: 6, expertsPerToken: 2, expertIntermediateSize: 8,
                               router: .softmaxTopK(normalizesTopKWeights: true))
        let block = try MoEBlock.random(config: config, seed: 1)
        #expect(throws: ParallelError.expertsNotDivisible(expertCount: 6, deviceCount: 4)) {
            try ExpertParallelMoE(block: block, deviceCount: 4)
        }
        #expect(throws: ParallelError.invalidDeviceCount(0)) { try ExpertParallelMoE(block: block, deviceCount: 0) }
        var capped = config
        capped.capacityFactor = 1.0
        let cappedBlock = try MoEBlock.random(config: capped, seed: 1)
        #expect(throws: ParallelError.capacityNotSupported) {
            try ExpertParallelMoE(block: cappedBlock, deviceCount: 2)
        }
    }
}

@Suite("In-process ranks: faults")
struct InProcessFaultTests {
    struct Crash: Error {}

    /// A rank that fails before a collective makes the others fail at once with "another rank failed",
    /// and the group reports the root cause.
    @Test("a failing rank aborts the others")
    func failingRank() throws {
        let group = try InProcessGroup(size: 3, timeoutSeconds: 30)
        let start = ContinuousClock.now
        #expect(throws: Crash.self) {
            _ = try group.run { c -> Int in
                if c.rank == 1 { throw Crash() }
                return try c.allGather([UInt8(c.rank)]).count
            }
        }
        #expect(ContinuousClock.now - start < .seconds(10), "the survivors must not wait for the time limit")
    }

    /// A rank that never arrives (a hang, or a withheld message) turns into a time-out error on the others.
    @Test("a silent rank times the others out")
    func silentRank() throws {
        let group = try InProcessGroup(size: 2, timeoutSeconds: 0.3)
        #expect(throws: CommunicatorError.self) {
            _ = try group.run { c -> Int in
                if c.rank == 1 {
                    usleep(800_000)  // misses the collective entirely
                    return 0
                }
                return try c.allToAll([[1], [2]]).count
            }
        }
    }

    @Test("all-to-all delivers send[s][d] to rank d from rank s")
    func allToAllRouting() throws {
        let group = try InProcessGroup(size: 3)
        let received = try group.run { c in try c.allToAll((0..<3).map { [UInt8(c.rank * 10 + $0)] }) }
        for d in 0..<3 { #expect(received[d] == (0..<3).map { [UInt8($0 * 10 + d)] }) }
    }
}

@Suite("Tensor parallelism and the 2-D mesh")
struct MeshTests {
    /// Every MoE fixture layer on meshes EP×TP: the bits of one device.
    @Test("EP×TP meshes give the bits of one device on every fixture", arguments: GoldenCase.all.filter(\.isMoE))
    func fixtures(_ golden: GoldenCase) throws {
        guard let (block, x, _) = try moeFixture(golden) else { return }
        let one = try block.forward(x, threads: 2)
        for (ep, tp) in [(1, 2), (2, 2), (1, 3), (4, 2)] where block.config.expertCount % ep == 0 {
            let mesh = try MeshShape(expertParallel: ep, tensorParallel: tp)
            let (out, traffic) = try ExpertParallelMoE(block: block, mesh: mesh).forward(x, threads: 2)
            #expect(out.hiddenStates.storage == one.hiddenStates.storage, "mesh \(mesh)")
            #expect(traffic.tensorParallelBytes > 0, "mesh \(mesh)")
        }
    }

    /// Random blocks of every router and expert kind (biases included) on a 2×2 mesh.
    @Test("every router and expert kind on a 2x2 mesh", arguments: BlockCase.all)
    func kinds(_ c: BlockCase) throws {
        let block = try randomBlock(c.config, seed: 51)
        var g = SeededGenerator(seed: 52)
        let x = randomTensor([23, 24], generator: &g)
        let one = try block.forward(x, threads: 1)
        let out = try ExpertParallelMoE(block: block, mesh: try MeshShape(parsing: "2x2")).forward(x, threads: 2).output
        #expect(out.hiddenStates.storage == one.hiddenStates.storage)
    }

    @Test("mesh strings")
    func parsing() throws {
        #expect(try MeshShape(parsing: "4x2").rankCount == 8)
        #expect(throws: ParallelError.invalidMesh("2by2")) { try MeshShape(parsing: "2by2") }
        #expect(throws: ParallelError.invalidDeviceCount(0)) { try MeshShape(parsing: "0x2") }
        for text in ["2x2x", "x2x2", "2xx2", "2x", ""] {
            #expect(throws: ParallelError.invalidMesh(text)) { try MeshShape(parsing: text) }
        }
        // EP · TP must not overflow: rankCount would trap.
        #expect(throws: ParallelError.invalidMesh("\(1 << 62)x4")) { try MeshShape(parsing: "\(1 << 62)x4") }
    }
}

@Suite("Collectives")
struct CollectiveTests {
    @Test("reduce-scatter sums each block in rank order; barrier and all-gather", arguments: [1, 2, 3, 4])
    func reduceScatter(_ size: Int) throws {
        let group = try InProcessGroup(size: size)
        let n = 10
        let results = try group.run { c -> [Float] in
            try c.barrier()
            let values = (0..<n).map { Float($0 * 10 + c.rank) + 0.25 }
            #expect(try c.allGather([UInt8(c.rank)]).map { $0[0] } == (0..<size).map(UInt8.init))
            return try c.reduceScatterSum(values)
        }
        var expected: [Float] = []
        for i in 0..<n {
            var sum: Float = 0
            for r in 0..<size { sum += Float(i * 10 + r) + 0.25 }
            expected.append(sum)
        }
        #expect(results.flatMap { $0 } == expected)
    }
}

@Suite("Tensor-parallel sharded input")
struct ShardedInputTests {
    /// Seed 002: an input sharded by columns over the TP ranks is detected by its width, gathered, and the
    /// output comes back sharded the same way — the same bits as the matching columns of one device.
    @Test("column-sharded input and output")
    func shardedColumns() throws {
        let config = MoEConfig(hiddenSize: 24, expertCount: 4, expertsPerToken: 2, expertIntermediateSize: 20,
                               router: .softmaxTopK(normalizesTopKWeights: true),
                               sharedExpert: SharedExpertConfig(intermediateSize: 12, gate: .sigmoid))
        let block = try MoEBlock.random(config: config, seed: 61)
        var g = SeededGenerator(seed: 62)
        let x = randomTensor([9, 24], generator: &g)
        let one = try block.forward(x, threads: 1).hiddenStates
        let parallel = try ExpertParallelMoE(block: block, mesh: try MeshShape(expertParallel: 1, tensorParallel: 2))
        let experts = try InProcessGroup(size: 1), tensors = try InProcessGroup(size: 2)
        let world = try InProcessGroup(size: 2)
        let parts = try world.run(alsoAborting: [experts, tensors]) { c -> [Float] in
            let columns = (12 * c.rank)..<(12 * (c.rank + 1))
            var shard: [Float] = []
            for row in 0..<9 { shard += x.storage[(row * 24 + columns.lowerBound)..<(row * 24 + columns.upperBound)] }
            let result = try parallel.forward(shard: try Tensor(shape: [9, 12], storage: shard),
                                              communicator: try experts.communicator(rank: 0),
                                              tensorCommunicator: try tensors.communicator(rank: c.rank), threads: 1)
            #expect(result.output.shape == [9, 12])
            return result.output.storage
        }
        for rank in 0..<2 {
            for row in 0..<9 {
                #expect(Array(parts[rank][(row * 12)..<((row + 1) * 12)]) == Array(one.storage[(row * 24 + 12 * rank)..<(row * 24 + 12 * rank + 12)]))
            }
        }
    }
}

/// An MoE fixture layer: its block, its input `hidden_states` as `[T, H]`, and the layer's file (expected
/// outputs). `nil`, with an issue recorded, when the layer is not an MoE layer.
func moeFixture(_ golden: GoldenCase) throws -> (block: MoEBlock, x: Tensor<Float>, file: SafetensorsFile)? {
    let dir = fixturesDirectory + "/" + golden.fixture
    guard case .moe(let block) = try golden.feedForward() else {
        Issue.record("layer \(golden.layer) is not an MoE layer")
        return nil
    }
    let file = try SafetensorsFile(path: dir + "/layer\(golden.layer).safetensors")
    let input = try file.tensor("hidden_states").floats(named: "hidden_states")
    let h = block.config.hiddenSize
    return (block, try input.reshaped([input.count / h, h]), file)
}
