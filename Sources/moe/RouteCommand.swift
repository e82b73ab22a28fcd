import ArgumentParser
import MoEKit

/// `moe route`: the seed dispatch operations on a file of top-k routing decisions.
struct RouteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "route",
        abstract: "Build the seed dispatch tensors (mapping, per-device counts, token and weight tables).",
        discussion: """
            IN holds `selected_experts` [T, K] (I32, U32 or I64) and `routing_weights` [T, K] (F32, BF16 or F16).
            OUT gets `mapping` [T, E] F32, `num_routed_tokens` [D, E/D] U32, `routed_tokens` [D, E/D, T] U32
            (padded with 0xFFFFFFFF) and `routed_token_weights` [D, E/D, T] F32 (padded with 0).
            Example:
              moe route --input topk.safetensors --num-experts 128 --devices 8 --output tables.safetensors
            """)

    @Option(help: "Input .safetensors with selected_experts and routing_weights.") var input: String
    @Option(parsing: .unconditional, help: Flags.experts.help("E: the number of experts."), transform: Flags.experts.parse) var numExperts: Int
    @Option(parsing: .unconditional, help: Flags.devices.help("D: devices; device d owns experts d·E/D ..< (d+1)·E/D.", default: 1),
            transform: Flags.devices.parse) var devices = 1
    @Option(help: "Output .safetensors to write.") var output: String

    /// The checks between flags; each flag's own range is checked as it is parsed (``Flags``).
    func validate() throws {
        try checkExpertSplit(numExperts, over: devices, flag: "--devices \(devices)", experts: "--num-experts \(numExperts)")
    }

    func run() throws {
        try reportingErrors {
            let file = try SafetensorsFile(path: input)
            let routes: RouteAssignments
            do {
                routes = try RouteAssignments(selectedExperts: try file.indices("selected_experts"),
                                              routingWeights: try file.floats("routing_weights"), expertCount: numExperts)
            } catch let error as RoutingError {
                throw CLIError.inFile(input, "\(error)")
            }
            try MemoryBudget.check(Self.outputBytes(tokens: routes.tokenCount, experts: numExperts),
                                   for: "the tables of \(routes.tokenCount) tokens × --num-experts \(numExperts)")
            let tables = try DispatchTables.prepareMoERoutingTensors(routes, deviceCount: devices)
            try SafetensorsWriter.write([
                ("mapping", .f32(DispatchTables.prepareMoEMappingTensor(routes))),
                ("num_routed_tokens", .u32(tables.numRoutedTokens)),
                ("routed_tokens", .u32(tables.routedTokens)),
                ("routed_token_weights", .f32(tables.routedTokenWeights)),
            ], metadata: ["format": "pt", "producer": "moekit"], to: output)
        }
    }

    /// The bytes of the four outputs, `[T, E]` and `[D, E/D, T]` four-byte values plus the counts, or `Int.max`
    /// where that overflows: `--num-experts` sizes them, so they are checked against the memory available first.
    static func outputBytes(tokens: Int, experts: Int) -> Int {
        let (cells, overflow) = tokens.multipliedReportingOverflow(by: experts)
        guard !overflow, cells <= (Int.max - 4 * experts) / 12 else { return .max }
        return 12 * cells + 4 * experts  // mapping, routed_tokens, routed_token_weights; num_routed_tokens
    }
}
