import ArgumentParser
import MoEKit

/// `moe run`: forward one MoE block on random tokens and report time, throughput, expert load and
/// the fast path's difference from the reference kernels.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Forward one MoE block on random tokens and report what happened (the main job).",
        discussion: """
            Examples:
              moe run                              # default preset (mixtral), 512 tokens
              moe run --preset deepseek-v3 --tokens 128 --json
              moe run --checkpoint ./Qwen3-MoE --layer 3
              moe run --config block.json          # MoEKit JSON: any router, expert kind, capacity factor
            """)

    @Option(help: "A built-in architecture preset (see --list-presets).") var preset: String?
    @Option(help: "A config file (MoEKit JSON or a model's config.json) to build a random block from.") var config: String?
    @Option(help: "A checkpoint folder (config.json + safetensors) or a .gguf file to take the block from instead of a preset.") var checkpoint: String?
    @Option(help: "With --checkpoint: the decoder layer (default: the first MoE layer).") var layer: Int?
    @Option(help: "Number of random tokens.") var tokens = 512
    @Option(help: "Worker threads (default: all cores).") var threads: Int?
    @Option(help: "Devices for expert parallelism, in process (D must divide the number of experts).") var devices = 1
    @Option(help: "A 2-D device mesh EPxTP, e.g. 2x2 (in process).") var mesh: String?
    @Option(help: "Seed of the random weights and tokens.") var seed: UInt64 = 0
    @Option(help: "Timed repeats after one warm-up forward.") var repeats = 3
    @Option(help: "Tokens also run through the reference kernels for the correctness check.") var checkTokens = 64
    @Flag(help: "Print one JSON object instead of the report.") var json = false
    @Flag(help: "List the presets and exit.") var listPresets = false
    @Flag(help: "Run as one rank of an Open MPI job (mpirun -np D moe run … --mpi); needs a build with --traits MPI.")
    var mpi = false
    @Option(help: "With --mpi: seconds a rank waits for the others before every rank stops with an error.") var timeout: Double = 60

    func run() throws {
        if mpi {
            try MPIRun.run(self)
            return
        }
        try reportingErrors {
            if listPresets {
                for name in ModelConfig.presetNames { print(name) }
                return
            }
            try validateOptions()
            let threadCount = threads ?? Parallel.defaultThreadCount
            let (block, source) = try loadBlock()
            let config = block.config
            var rng = SplitMix64(seed: seed &+ 1)
            let hidden = rng.tensor([tokens, config.hiddenSize], std: 1)

            if mesh != nil && devices != 1 { throw CLIError.invalidOption("give --devices or --mesh, not both") }
            let parallel = try mesh.map { try ExpertParallelMoE(block: block, mesh: try MeshShape(parsing: $0)) }
                ?? (devices > 1 ? try ExpertParallelMoE(block: block, deviceCount: devices) : nil)
            var traffic: ExpertParallelMoE.Traffic?
            let forward = { (x: Tensor<Float>) throws -> MoEBlockOutput in
                guard let parallel else { return try block.forward(x, variant: .fast, threads: threadCount) }
                let result = try parallel.forward(x, variant: .fast, threads: threadCount)
                traffic = result.traffic
                return result.output
            }
            _ = try forward(hidden)  // warm-up
            var times: [Double] = []
            var output: MoEBlockOutput?
            for _ in 0..<repeats {
                let start = ContinuousClock.now
                output = try forward(hidden)
                times.append(MachineRoofs.seconds(ContinuousClock.now - start))
            }
            guard let output else { return }
            let median = times.sorted()[times.count / 2]

            // Without capacity limits a token's output depends on that token alone, so the reference
            // runs on the first `checkTokens` tokens; with capacity it must see the whole batch.
            let checked = config.capacityFactor == nil ? min(checkTokens, tokens) : tokens
            let subset = try hidden.rows(0..<checked)
            let reference = try block.forward(subset, variant: .reference, threads: threadCount).hiddenStates
            let fastRows = try output.hiddenStates.rows(0..<checked)
            let difference = maxRelativeDifference(fastRows, reference)

            let flops = config.forwardFLOPs(tokenCount: tokens, routedRows: output.plan.rowCount)
            let report = RunReport(
                source: source, config: config, tokens: tokens,
                threads: threadCount, devices: parallel.map { $0.mesh.rankCount } ?? devices, seed: seed, ms: median * 1e3, repeats: repeats,
                tokensPerSecond: Double(tokens) / median, gflops: flops / median / 1e9, statistics: output.routing.statistics,
                droppedAssignments: output.plan.droppedAssignmentCount, capacity: output.plan.capacity,
                checkTokens: checked, maxRelativeDifference: difference,
                dispatchBytes: traffic?.dispatchBytes, combineBytes: traffic?.combineBytes,
                tensorParallelBytes: traffic?.tensorParallelBytes, mesh: mesh)
            if json { try printJSON(report) } else { report.printTable() }
        }
    }

    func validateOptions() throws {
        guard tokens >= 1 else { throw CLIError.invalidOption("--tokens must be at least 1 (got \(tokens))") }
        guard repeats >= 1 else { throw CLIError.invalidOption("--repeats must be at least 1 (got \(repeats))") }
        guard checkTokens >= 1 else { throw CLIError.invalidOption("--check-tokens must be at least 1 (got \(checkTokens))") }
        if let threads, threads < 1 { throw CLIError.invalidOption("--threads must be at least 1 (got \(threads))") }
        guard devices >= 1 else { throw CLIError.invalidOption("--devices must be at least 1 (got \(devices))") }
        if [preset, checkpoint, config].compactMap({ $0 }).count > 1 {
            throw CLIError.invalidOption("give one of --preset, --config or --checkpoint")
        }
        if layer != nil && checkpoint == nil { throw CLIError.invalidOption("--layer needs --checkpoint") }
    }

    /// The block to run and a description of where it came from.
    func loadBlock() throws -> (MoEBlock, String) {
        if let checkpoint {
            let model = try ModelSource(path: checkpoint)
            let chosen = try layer ?? {
                guard let first = model.config.sparseLayers.firstIndex(of: true) else {
                    throw CLIError.invalidOption("\(checkpoint): the model has no MoE layer")
                }
                return first
            }()
            guard case .moe(let block) = try model.feedForward(layer: chosen) else {
                throw CLIError.invalidOption("\(checkpoint): layer \(chosen) is a dense layer; moe run needs an MoE layer (use moe forward for dense layers)")
            }
            return (block, "\(checkpoint) layer \(chosen) (\(model.config.architecture))")
        }
        if let config {
            let model = try ModelConfig(contentsOf: config)
            return (try MoEBlock.random(config: model.moe, seed: seed), "\(config) (\(model.architecture))")
        }
        let name = preset ?? ModelConfig.defaultPresetName
        let config = try ModelConfig.preset(named: name)
        return (try MoEBlock.random(config: config.moe, seed: seed), "preset \(name) (\(config.architecture))")
    }

}

/// max|a − b| / max|b| in `Double`.
func maxRelativeDifference(_ a: Tensor<Float>, _ b: Tensor<Float>) -> Double {
    var diff = 0.0, scale = 0.0
    for (x, y) in zip(a.storage, b.storage) {
        diff = max(diff, abs(Double(x) - Double(y)).isNaN ? .infinity : abs(Double(x) - Double(y)))
        scale = max(scale, abs(Double(y)))
    }
    return scale > 0 ? diff / scale : diff
}
