import ArgumentParser
import MoECost
import MoEKit

/// `moe estimate`: the analytical cost model for a model config, without running anything.
struct EstimateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "estimate",
        abstract: "Parameters, active parameters, FLOPs, bytes and predicted time of a model, from its config.json.",
        discussion: """
            CONFIG is a model's own config.json (mixtral, qwen2_moe, qwen3_moe, deepseek_v3, gpt_oss, olmoe, llama4) or a
            MoEKit model JSON (feed-forward layers only). Totals count what transformers instantiates (embeddings and an
            untied output head included; DeepSeek-V3 without its multi-token-prediction layer). Active parameters follow
            the model card's convention: the embedding table is counted, except for GPT-OSS (OpenAI's card leaves it out).
            With --tokens: FLOPs, bytes, activation memory, all-to-all bytes and a roofline time of each layer's
            feed-forward block (attention is not modelled), plus the weight-load time over the hardware's host link.
            With --ffn-scaling, CONFIG is a dense GPT-style config (n_embd/d_model, n_layer, d_ff/n_inner,
            optional vocab_size) turned into an MoE with --experts experts as seed 004 does.
            Hardware: cpu-2core (default), h100, h200, wormhole-n300, pim, this-machine (the profile saved by --calibrate,
            read from .moekit/this-machine.json in the working directory), or a JSON profile file
            ({"name", "peak_flops": {"f32", "bf16", "fp8"}, "memory_bandwidth", "link_bandwidth", "launch_overhead_us",
            optional "region_overhead_us", "compute_efficiency"}).
            Calibration: --calibrate BENCH.json (from 'moe bench --json') builds the this-machine profile: F32 peak =
            gemm_gflops, BF16 peak = the best BF16-compute case's FLOP rate (2 × F32 when the file has none), memory
            bandwidth = mem_gbs, pool_region_us per parallel region (a block forward runs 7 to 16), and one compute
            efficiency per dtype FITTED on the cases with T >= 16 (--no-fit leaves it at 1). It is saved to
            --save-profile (default .moekit/this-machine.json) and printed.
            Bench blocks: --bench-case BENCH.json predicts every case of a bench file on --hardware and prints predicted
            vs measured ms; --preset mixtral|qwen3|deepseek predicts one block of a bench preset (--tokens, --dtype,
            --compute; all three bench precisions without --dtype). FLOPs as moe bench counts them (router + routed rows +
            shared); time = max(executed FLOPs / (peak × efficiency), bytes / bandwidth) + regions × region overhead, with
            the weights of the expected distinct experts touched at the block's dtype.
            --plot FILE.svg draws predicted time vs tokens (1 to 4096) for CONFIG or --preset, one line per hardware
            profile (the built-in ones, this-machine when calibrated, and --hardware).
            Examples:
              moe estimate --config Mixtral-8x7B/config.json
              moe estimate --config gpt-oss-120b/config.json --tokens 512 --hardware h100 --json
              moe estimate --config Qwen3-30B-A3B-Q4_K_M.gguf
              moe estimate --config gpt3-7b.json --ffn-scaling balanced --experts 64 --tokens 512
              moe bench --json bench.json && moe estimate --calibrate bench.json
              moe estimate --bench-case bench.json --hardware this-machine
              moe estimate --preset qwen3 --tokens 128 --hardware this-machine --plot qwen3.svg
            """)

    @Option(help: "A model's config.json, a MoEKit model JSON, or a GGUF file (its own sizes and ggml types).") var config: String?
    @Option(parsing: .unconditional,
            help: Flags.estimateTokens.help("Tokens in the batch: adds FLOPs, bytes and predicted time; at most \(Flags.blockEstimateTokens.bounds.upperBound) with --preset."),
            transform: Flags.estimateTokens.parse) var tokens: Int?
    @Option(parsing: .unconditional, help: Flags.estimateDevices.help("Expert-parallel devices, for all-to-all bytes.", default: 1),
            transform: Flags.estimateDevices.parse) var devices = 1
    @Option(help: "A built-in hardware profile (\(HardwareProfile.builtIn.map(\.name).joined(separator: ", "))), \(HardwareProfile.thisMachineName), or a JSON profile file.")
    var hardware = "cpu-2core"
    @Option(name: .customLong("ffn-scaling"), help: "Derive an MoE from a dense config, each expert this wide:")
    var ffnScaling: FFNScaling?
    @Option(parsing: .unconditional, help: Flags.experts.help("Experts for --ffn-scaling (default: the config's num_experts)."),
            transform: Flags.experts.parse) var experts: Int?
    @Option(name: .customLong("top-k"), parsing: .unconditional,
            help: Flags.topK.help("Experts per token for --ffn-scaling, at most the experts (default: the config's, else 2)."),
            transform: Flags.topK.parse) var topK: Int?
    @Option(parsing: .unconditional, help: Flags.skew.help("Routing skew: 0 is uniform, s > 0 a Zipf law 1/i^s over experts.", default: 0),
            transform: Flags.skew.parse) var skew = 0.0
    @Option(help: "Build the this-machine profile from a 'moe bench --json' file.") var calibrate: String?
    @Option(name: .customLong("save-profile"), help: "Where --calibrate saves the profile (default .moekit/this-machine.json).")
    var saveProfile: String?
    @Flag(name: .customLong("no-fit"), help: "With --calibrate: no fitted efficiency (plain roofline).") var noFit = false
    @Option(name: .customLong("bench-case"), help: "Predict every case of a 'moe bench --json' file against its measured time.")
    var benchCase: String?
    @Option(help: "A moe bench preset block.") var preset: BenchBlockPreset?
    @Option(help: "Weights of --preset (default: all three bench precisions).") var dtype: BenchDType?
    @Option(help: "Arithmetic of --preset (default: f32).") var compute: BenchDType?
    @Option(help: "Write an SVG of predicted time vs tokens per hardware profile.") var plot: String?
    @Flag(help: "Print one JSON object.") var json = false

    /// The checks between flags; each flag's own range is checked as it is parsed (``Flags``).
    func validate() throws {
        let modes = [config != nil, calibrate != nil, benchCase != nil, preset != nil].filter { $0 }.count
        guard modes == 1 else {
            throw CostError.usage("moe estimate needs exactly one of --config, --calibrate, --bench-case, --preset (got \(modes == 0 ? "none" : "\(modes)"))")
        }
        if saveProfile != nil || noFit, calibrate == nil {
            throw CostError.usage("--\(saveProfile != nil ? "save-profile" : "no-fit") needs --calibrate")
        }
        if dtype != nil || compute != nil, preset == nil {
            throw CostError.usage("--\(dtype != nil ? "dtype" : "compute") needs --preset")
        }
        if plot != nil, config == nil, preset == nil {
            throw CostError.usage("--plot needs --config or --preset")
        }
        if let tokens, preset != nil, !Flags.blockEstimateTokens.bounds.contains(tokens) {
            throw CostError.invalidOption(name: "tokens", value: "\(tokens)", reason: "with --preset must be in \(Flags.blockEstimateTokens)")
        }
        if let topK, let experts, topK > experts {
            throw CostError.invalidOption(name: "top-k", value: "\(topK)", reason: "must be at most --experts \(experts)")
        }
    }

    func run() throws {
        try reportingErrors {
            if let calibrate {
                let calibration = try Calibration(benchFile: calibrate, fitted: !noFit)
                let path = saveProfile ?? HardwareProfile.thisMachineDefaultPath
                try calibration.save(to: path)
                let report = CalibrationReport(calibration, bench: calibrate, savedTo: path)
                if json { try printJSON(report) } else { report.printTable() }
                return
            }
            let profile = try HardwareProfile.named(hardware)
            if let benchCase {
                let report = try BenchPredictionReport(benchFile: benchCase, hardware: profile)
                if json { try printJSON(report) } else { report.printTable() }
                return
            }
            if let preset = preset?.name {
                let blocks = try presetBlocks(preset)
                let report = BlockPredictionReport(preset: preset, blocks: blocks, tokens: tokens.map { [$0] } ?? [1, 16, 128, 512],
                                                   hardware: profile)
                if let plot {
                    try plotSeries(title: "moe bench preset \(preset) \(blocks[0].modeName): one MoE block", yLabel: "predicted ms") { p, t in
                        BlockTime(BlockEstimate(blocks[0], tokens: t), on: p).predictedMilliseconds
                    }.write(to: plot)
                }
                if json { try printJSON(report) } else { report.printTable() }
                return
            }
            let config = config!
            let shape: ModelShape
            var scaling: FFNScaling?
            if ModelSource.isGGUF(config) {
                // A GGUF file is estimated as it is: its own experts, widths and ggml types.
                if let given = ffnScaling?.rawValue ?? experts.map({ "\($0)" }) ?? topK.map({ "\($0)" }) {
                    throw CostError.invalidOption(name: ffnScaling != nil ? "ffn-scaling" : experts != nil ? "experts" : "top-k",
                                                  value: given, reason: "rescales a config.json; a GGUF file is estimated as it is")
                }
                shape = try ModelShape(gguf: GGUFModel(path: config))
            } else if let mode = ffnScaling {
                scaling = mode
                shape = try ModelShape(denseContentsOf: config, experts: experts, topK: topK, scaling: mode)
            } else {
                if experts != nil || topK != nil {
                    throw CostError.invalidOption(name: experts != nil ? "experts" : "top-k", value: "\(experts ?? topK ?? 0)",
                                                  reason: "needs --ffn-scaling (the config's own values are used otherwise)")
                }
                shape = try ModelShape(contentsOf: config)
            }
            let report = EstimateReport(shape: shape, config: config, scaling: scaling, tokens: tokens, devices: devices,
                                        routing: skew > 0 ? .zipf(exponent: skew) : .uniform, hardware: profile)
            if let plot {
                let routing: RoutingModel = skew > 0 ? .zipf(exponent: skew) : .uniform
                try plotSeries(title: "\(shape.modelType): all feed-forward blocks", yLabel: "predicted ms") { p, t in
                    WorkEstimate(shape, tokens: t, devices: devices, routing: routing).layers
                        .reduce(0) { $0 + LayerTime($1, on: p).predictedMilliseconds }
                }.write(to: plot)
            }
            if json { try printJSON(report) } else { report.printTable() }
        }
    }

    /// The blocks `--preset` predicts: one precision when --dtype is given, else the three the bench runs.
    private func presetBlocks(_ name: String) throws -> [BlockShape] {
        if dtype == nil, compute == nil {
            return try BlockShape.benchPrecisions.map { try BlockShape.preset(name, weightDType: $0.weights, computeDType: $0.compute) }
        }
        // --compute bf16 alone means BF16 weights too: BF16 compute on F32 weights is not a bench precision.
        let weights = dtype ?? compute ?? .f32
        return [try BlockShape.preset(name, weightDType: weights.weightDType, computeDType: (compute ?? .f32).weightDType)]
    }

    /// One series per profile: the built-in ones, this-machine when it has been calibrated, and --hardware.
    private func plotSeries(title: String, yLabel: String, _ predict: (HardwareProfile, Int) -> Double) throws -> TimePlot {
        var profiles = HardwareProfile.builtIn
        if let saved = try? HardwareProfile.named(HardwareProfile.thisMachineName) { profiles.append(saved) }
        if let chosen = try? HardwareProfile.named(hardware), !profiles.contains(where: { $0.name == chosen.name }) {
            profiles.append(chosen)
        }
        return TimePlot(title: title, yLabel: yLabel, series: profiles.map { p in
            TimePlot.Series(name: p.name, points: TimePlot.defaultTokens.map { (Double($0), predict(p, $0)) })
        })
    }
}
