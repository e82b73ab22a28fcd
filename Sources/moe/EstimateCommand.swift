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
            Hardware: cpu-2core (default), h100, h200, wormhole-n300, pim, or a JSON profile file
            ({"name", "peak_flops": {"f32", "bf16", "fp8"}, "memory_bandwidth", "link_bandwidth", "launch_overhead_us"}).
            Examples:
              moe estimate --config Mixtral-8x7B/config.json
              moe estimate --config gpt-oss-120b/config.json --tokens 512 --hardware h100 --json
              moe estimate --config gpt3-7b.json --ffn-scaling balanced --experts 64 --tokens 512
            """)

    @Option(help: "A model's config.json or a MoEKit model JSON.") var config: String
    @Option(help: "Tokens in the batch: adds FLOPs, bytes and predicted time.") var tokens: Int?
    @Option(help: "Expert-parallel devices, for all-to-all bytes.") var devices = 1
    @Option(help: "A built-in hardware profile or a JSON profile file.") var hardware = "cpu-2core"
    @Option(name: .customLong("ffn-scaling"), help: "balanced, compute or capacity: derive an MoE from a dense config.")
    var ffnScaling: String?
    @Option(help: "Experts for --ffn-scaling (default: the config's num_experts).") var experts: Int?
    @Option(name: .customLong("top-k"), help: "Experts per token for --ffn-scaling (default: the config's, else 2).")
    var topK: Int?
    @Option(help: "Routing skew: 0 is uniform, s > 0 a Zipf law 1/i^s over experts.") var skew = 0.0
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        try reportingErrors {
            if let tokens, tokens < 1 { throw CostError.invalidOption(name: "tokens", value: "\(tokens)", reason: "must be at least 1") }
            guard devices >= 1 else { throw CostError.invalidOption(name: "devices", value: "\(devices)", reason: "must be at least 1") }
            guard skew.isFinite, skew >= 0 else { throw CostError.invalidOption(name: "skew", value: "\(skew)", reason: "must be finite and not negative") }
            let shape: ModelShape
            var scaling: FFNScaling?
            if let name = ffnScaling {
                guard let mode = FFNScaling(rawValue: name) else {
                    throw CostError.invalidOption(name: "ffn-scaling", value: name, reason: "must be balanced, compute or capacity")
                }
                scaling = mode
                shape = try ModelShape(denseContentsOf: config, experts: experts, topK: topK, scaling: mode)
            } else {
                if experts != nil || topK != nil {
                    throw CostError.invalidOption(name: experts != nil ? "experts" : "top-k", value: "\(experts ?? topK ?? 0)",
                                                  reason: "needs --ffn-scaling (the config's own values are used otherwise)")
                }
                shape = try ModelShape(contentsOf: config)
            }
            let profile = try HardwareProfile.named(hardware)
            let report = EstimateReport(shape: shape, config: config, scaling: scaling, tokens: tokens, devices: devices,
                                        routing: skew > 0 ? .zipf(exponent: skew) : .uniform, hardware: profile)
            if json { try printJSON(report) } else { report.printTable() }
        }
    }
}
