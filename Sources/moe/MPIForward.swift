import ArgumentParser
import MoEKit
#if MPI
import MoEMPI
#endif

/// `moe forward --mpi`: every process of an `mpirun -np D` job is one device of the expert-parallel
/// layer. All ranks load the layer's weights; rank 0 reads the input and sends it to all, every rank
/// runs its token shard, and rank 0 gathers and writes the output. Any error on any rank stops the
/// whole job with one line and exit code 1 (`MPI_Abort`), so no rank is left waiting.
enum MPIForward {
    static func run(_ command: ForwardCommand) throws {
        #if MPI
        try MPIJob.run(timeoutSeconds: command.parallel.timeout) { try forward(command, $0) }
        #else
        try MPIJob.unavailable()
        #endif
    }

    #if MPI
    private static func forward(_ command: ForwardCommand, _ communicator: MPICommunicator) throws {
        let (variant, threads) = (command.kernel, command.parallel.threadCount)
        let block = try ModelSource(path: command.checkpoint).feedForward(layer: command.layer, residency: command.weights,
                                                                          compute: command.compute.mode)
        let h = block.hiddenSize
        try agreeOnConfiguration(block, command, communicator)

        // Rank 0 reads the input; the all-gather doubles as a broadcast (the others send nothing).
        var payload: [UInt8] = []
        if communicator.rank == 0 {
            let hidden = try SafetensorsFile(path: command.input).floats("hidden_states")
            guard hidden.rank == 2 || hidden.rank == 3, hidden.shape.last == h else {
                throw CLIError.inFile(command.input, "hidden_states has shape \(hidden.shape); expected [T, \(h)] or [B, S, \(h)]")
            }
            // [rank: 1 byte][shape: rank × Int32][values: F32]
            payload = [UInt8(hidden.rank)] + hidden.shape.map(Int32.init).wireBytes + hidden.storage.wireBytes
        }
        let root = try communicator.allGather(payload)[0]
        let rank = root.isEmpty ? 0 : Int(root[0])
        guard rank == 2 || rank == 3, root.count >= 4 * rank + 1 else { throw CommunicatorError.transport("malformed input broadcast") }
        let shape = [Int32](wireBytes: Array(root[1..<(1 + 4 * rank)])).map(Int.init)
        let storage = [Float](wireBytes: Array(root[(1 + 4 * rank)...]))
        let hidden = try Tensor(shape: shape, storage: storage)
        let tokens = hidden.count / h
        let x = try hidden.reshaped([tokens, h])

        guard case .moe(let moe) = block else {
            // A dense layer is replicated: rank 0 computes and writes it.
            if communicator.rank == 0 {
                let y = try block.forward(x, variant: variant, threads: threads).hiddenStates
                try SafetensorsWriter.write([("hidden_states", .f32(try y.reshaped(shape)))], metadata: ["format": "pt"], to: command.output)
            }
            return
        }
        // The ranks form an EP×TP mesh (--mesh), or all do expert parallelism: rank r is (r / TP, r % TP).
        let mesh = try command.parallel.mesh ?? MeshShape(expertParallel: communicator.size, tensorParallel: 1)
        guard mesh.rankCount == communicator.size else {
            throw CLIError.invalidOption("--mesh \(mesh) needs \(mesh.rankCount) ranks, the job has \(communicator.size)")
        }
        let (group, tensorRank) = (communicator.rank / mesh.tensorParallel, communicator.rank % mesh.tensorParallel)
        let expertComm = mesh.tensorParallel == 1 ? communicator : try communicator.split(color: tensorRank, key: group)
        let tensorComm = mesh.tensorParallel == 1 ? nil : try communicator.split(color: group, key: tensorRank)
        let parallel = try ExpertParallelMoE(block: moe, mesh: mesh)
        let mine = ExpertParallelMoE.shard(group, of: tokens, ranks: mesh.expertParallel)
        let shard = try x.rows(mine)
        if command.simulateHungRank == communicator.rank {
            // For the fault test: this rank withholds its messages; the others must time out and stop the job.
            sleep(UInt32(command.parallel.timeout * 3 + 10))
        }
        let result = try parallel.forward(shard: shard, communicator: expertComm, tensorCommunicator: tensorComm,
                                          variant: variant, threads: threads)

        // Tensor rank 0 of each expert group holds its shard's result; the others send nothing.
        let leader = tensorRank == 0
        let outputs = try communicator.allGather(leader ? result.output.storage.wireBytes : [])
        let logits = try communicator.allGather(leader ? result.routing.logits.storage.wireBytes : [])
        let ids = try communicator.allGather(leader ? result.routing.expertIDs.storage.wireBytes : [])
        let weights = try communicator.allGather(leader ? result.routing.weights.storage.wireBytes : [])
        guard communicator.rank == 0 else { return }
        let (e, k) = (moe.config.expertCount, moe.config.expertsPerToken)
        let y = outputs.flatMap { [Float](wireBytes: $0) }
        try SafetensorsWriter.write([
            ("hidden_states", .f32(try Tensor(shape: shape, storage: y))),
            ("router_logits", .f32(try Tensor(shape: [tokens, e], storage: logits.flatMap { [Float](wireBytes: $0) }))),
            ("topk_ids", .i32(try Tensor(shape: [tokens, k], storage: ids.flatMap { [Int32](wireBytes: $0) }))),
            ("topk_weights", .f32(try Tensor(shape: [tokens, k], storage: weights.flatMap { [Float](wireBytes: $0) }))),
        ], metadata: ["format": "pt", "producer": "moekit"], to: command.output)
    }

    /// Start-up check: every rank must run the same layer of the same model (a rank started with another
    /// checkpoint or layer would silently mix experts); a mismatch stops the job with both descriptions.
    private static func agreeOnConfiguration(_ block: FeedForward, _ command: ForwardCommand, _ communicator: MPICommunicator) throws {
        var mine = "layer \(command.layer) H=\(block.hiddenSize)"
        if case .moe(let moe) = block {
            let c = moe.config
            mine += " moe E=\(c.expertCount) K=\(c.expertsPerToken) F=\(c.expertIntermediateSize) router=\(c.router) experts=\(c.expert)"
            mine += " mesh=\(command.parallel.mesh.map(String.init(describing:)) ?? "-")"
            var checksum: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a over the router weights: same checkpoint
            for v in moe.router.weight.storage { checksum = (checksum ^ UInt64(v.bitPattern)) &* 0x100_0000_01b3 }
            mine += " router-checksum=\(checksum)"
        } else {
            mine += " dense"
        }
        let all = try communicator.allGather(Array(mine.utf8)).map { String(decoding: $0, as: UTF8.self) }
        if let other = all.firstIndex(where: { $0 != all[0] }) {
            throw CommunicatorError.mismatch("rank 0 runs \(all[0]) but rank \(other) runs \(all[other])")
        }
    }
    #endif
}
