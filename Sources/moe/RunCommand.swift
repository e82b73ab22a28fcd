import ArgumentParser
import MoECost
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
              moe run --checkpoint model-Q4_K_M.gguf --compute int8   # llama.cpp's arithmetic on its blocks
              moe run --config block.json          # MoEKit JSON: any router, expert kind, capacity factor
            """)

    @Option(help: "A built-in architecture preset (also listed by --list-presets).") var preset: ArchitecturePreset?
    @Option(help: "A config file (MoEKit JSON or a model's config.json) to build a random block from.") var config: String?
    @Option(help: "A checkpoint folder (config.json + safetensors) or a .gguf file to take the block from instead of a preset.") var checkpoint: String?
    @Option(parsing: .unconditional, help: Flags.layer.help("With --checkpoint: the decoder layer (default: the first MoE layer)."),
            transform: Flags.layer.parse) var layer: Int?
    @Option(parsing: .unconditional, help: Flags.runTokens.help("Number of random tokens.", default: 512), transform: Flags.runTokens.parse)
    var tokens = 512
    @Option(parsing: .unconditional, help: Flags.seed.help("Seed of the random weights and tokens.", default: 0), transform: Flags.seed.parse)
    var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: Flags.runRepeats.help("Timed repeats after one warm-up forward, each on fresh random tokens.", default: 3), transform: Flags.runRepeats.parse)
    var repeats = 3
    @Option(parsing: .unconditional, help: Flags.runTokens.help("Tokens also run through the reference kernels for the correctness check.", default: 64),
            transform: Flags.runTokens.parse) var checkTokens = 64
    @Option(help: "With a .gguf --checkpoint: arithmetic of the block weights' projections.") var compute: ForwardCompute = .f32
    @Flag(help: "Print one JSON object instead of the report.") var json = false
    @Flag(help: "List the presets and exit.") var listPresets = false
    @OptionGroup var parallel: ParallelOptions

    func run() throws {
        if parallel.mpi {
            try MPIRun.run(self)
            return
        }
        try reportingErrors {
            if listPresets {
                for name in ModelConfig.presetNames { print(name) }
                return
            }
            let (threadCount, devices, mesh) = (parallel.threadCount, parallel.devices, parallel.mesh)
            let (block, source) = try loadBlock()
            let config = block.config
            var rng = SplitMix64(seed: seed &+ 1)
            // Fresh tokens for the warm-up and every timed repeat, so routing (and the experts a decode step reads)
            // changes from one forward to the next as in real decoding, instead of the same experts staying in cache.
            var hidden = rng.tensor([tokens, config.hiddenSize], std: 1)

            let expertParallel = try mesh.map { try ExpertParallelMoE(block: block, mesh: $0) }
                ?? (devices > 1 ? try ExpertParallelMoE(block: block, deviceCount: devices) : nil)
            var traffic: ExpertParallelMoE.Traffic?
            let forward = { (x: Tensor<Float>) throws -> MoEBlockOutput in
                guard let expertParallel else { return try block.forward(x, variant: .fast, threads: threadCount) }
                let result = try expertParallel.forward(x, variant: .fast, threads: threadCount)
                traffic = result.traffic
                return result.output
            }
            _ = try forward(hidden)  // warm-up
            var times: [Double] = []
            var output: MoEBlockOutput?
            for _ in 0..<repeats {
                hidden = rng.tensor([tokens, config.hiddenSize], std: 1)
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
                threads: threadCount, devices: expertParallel.map { $0.mesh.rankCount } ?? devices, seed: seed, ms: median * 1e3, repeats: repeats,
                tokensPerSecond: Double(tokens) / median, gflops: flops / median / 1e9, statistics: output.routing.statistics,
                droppedAssignments: output.plan.droppedAssignmentCount, capacity: output.plan.capacity,
                checkTokens: checked, maxRelativeDifference: difference,
                dispatchBytes: traffic?.dispatchBytes, combineBytes: traffic?.combineBytes,
                tensorParallelBytes: traffic?.tensorParallelBytes, mesh: mesh?.description)
            if json { try printJSON(report) } else { report.printTable() }
        }
    }

    /// The checks between flags; each flag's own range is checked as it is parsed (``Flags``), and the
    /// parallel flags together by ``ParallelOptions/validate()``.
    func validate() throws {
        if [preset != nil, checkpoint != nil, config != nil].filter({ $0 }).count > 1 {
            throw CLIError.invalidOption("give one of --preset, --config or --checkpoint")
        }
        if layer != nil && checkpoint == nil { throw CLIError.invalidOption("--layer needs --checkpoint") }
        if compute != .f32 && checkpoint == nil { throw CLIError.invalidOption("--compute \(compute.rawValue) needs a .gguf --checkpoint (random blocks are F32)") }
    }

    /// The checks that need the block's shape, made before its weights are made or read: `--devices` or
    /// `--mesh` must split its experts, and the forward's buffers for `--tokens` must fit in memory.
    /// - Throws: ``CLIError``, or ``CheckpointError/insufficientMemory(what:needed:available:)``.
    func checkOptions(against config: MoEConfig) throws {
        try config.checkExpertParallel(devices: parallel.devices, mesh: parallel.mesh)
        try MemoryBudget.check(ResidentEstimate.forwardActivationBytes(MoEBlockShape(config), tokens: tokens),
                               for: "a forward of --tokens \(tokens)")
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
            try model.checkLayer(chosen)
            let dense = CLIError.invalidOption("\(checkpoint): layer \(chosen) is a dense layer; moe run needs an MoE layer (use moe forward for dense layers)")
            guard model.config.sparseLayers[chosen] else { throw dense }
            try checkOptions(against: model.config.moe)
            guard case .moe(let block) = try model.feedForward(layer: chosen, compute: compute.mode) else { throw dense }
            return (block, "\(checkpoint) layer \(chosen) (\(model.config.architecture))")
        }
        let model: ModelConfig, source: String
        if let config {
            (model, source) = (try ModelConfig(contentsOf: config), config)
        } else {
            let name = preset?.name ?? ModelConfig.defaultPresetName
            (model, source) = (try ModelConfig.preset(named: name), "preset \(name)")
        }
        try checkOptions(against: model.moe)
        return (try MoEBlock.random(config: model.moe, seed: seed), "\(source) (\(model.architecture))")
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
