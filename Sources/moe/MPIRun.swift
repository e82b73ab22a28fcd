import ArgumentParser
import MoEKit
#if MPI
import MoEMPI
#endif

/// `moe run --mpi`: the main job with one expert-parallel rank per process. Every rank builds the same
/// seeded block and tokens and runs its token shard; rank 0 reports the slowest rank's time per forward,
/// the bytes every all-to-all moved, and whether the gathered output is bit-identical to one device.
enum MPIRun {
    static func run(_ command: RunCommand) throws {
        #if MPI
        try MPIJob.run(timeoutSeconds: command.parallel.timeout) { try measure(command, $0) }
        #else
        try MPIJob.unavailable()
        #endif
    }

    #if MPI
    struct Report: Encodable {
        var source: String
        var ranks: Int
        var tokens: Int
        var ms: Double
        var dispatch_bytes: Int
        var combine_bytes: Int
        var bit_identical_to_one_device: Bool
    }

    private static func measure(_ command: RunCommand, _ communicator: MPICommunicator) throws {
        let threads = command.parallel.threadCount
        let (block, source) = try command.loadBlock()
        let h = block.config.hiddenSize
        var rng = SplitMix64(seed: command.seed &+ 1)
        let hidden = rng.tensor([command.tokens, h], std: 1)
        let parallel = try ExpertParallelMoE(block: block, deviceCount: communicator.size)
        let mine = ExpertParallelMoE.shard(communicator.rank, of: command.tokens, ranks: communicator.size)
        let shard = try hidden.rows(mine)

        var times: [Double] = []
        var last: ExpertParallelMoE.RankResult?
        for repeat_ in 0...command.repeats {
            try communicator.barrier()
            let start = ContinuousClock.now
            last = try parallel.forward(shard: shard, communicator: communicator, threads: threads)
            let seconds = MachineRoofs.seconds(ContinuousClock.now - start)
            // The layer is done when its slowest rank is.
            let all: [Double] = try communicator.allGather([seconds].wireBytes).map { [Double](wireBytes: $0)[0] }
            if repeat_ > 0 { times.append(all.max() ?? seconds) }
        }
        guard let last else { return }
        let outputs = try communicator.allGather(last.output.storage.wireBytes)
        let traffic: [Int64] = try communicator.allGather([Int64(last.traffic.dispatchBytes), Int64(last.traffic.combineBytes)].wireBytes)
            .map { [Int64](wireBytes: $0) }.reduce([0, 0]) { [$0[0] + $1[0], $0[1] + $1[1]] }
        guard communicator.rank == 0 else { return }
        let gathered: [Float] = outputs.flatMap { [Float](wireBytes: $0) }
        let one = try block.forward(hidden, variant: .fast, threads: threads).hiddenStates
        let report = Report(source: source, ranks: communicator.size, tokens: command.tokens,
                            ms: times.sorted()[times.count / 2] * 1e3, dispatch_bytes: Int(traffic[0]), combine_bytes: Int(traffic[1]),
                            bit_identical_to_one_device: gathered == one.storage)
        if command.json { try printJSON(report); return }
        print("moe run --mpi: \(source) on \(report.ranks) ranks, \(report.tokens) tokens")
        print("  time        \(format(report.ms, 2)) ms per forward (slowest rank, median of \(command.repeats) after 1 warm-up)")
        print("  all-to-all  dispatch \(report.dispatch_bytes) B · combine \(report.combine_bytes) B per forward (all ranks)")
        print("  check       output bit-identical to one device: \(report.bit_identical_to_one_device ? "yes" : "NO")")
    }
    #endif
}
