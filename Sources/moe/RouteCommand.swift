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
    @Option(help: "E: the number of experts.") var numExperts: Int
    @Option(help: "D: devices; device d owns experts d·E/D ..< (d+1)·E/D.") var devices = 1
    @Option(help: "Output .safetensors to write.") var output: String

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
            let tables = try DispatchTables.prepareMoERoutingTensors(routes, deviceCount: devices)
            try SafetensorsWriter.write([
                ("mapping", .f32(DispatchTables.prepareMoEMappingTensor(routes))),
                ("num_routed_tokens", .u32(tables.numRoutedTokens)),
                ("routed_tokens", .u32(tables.routedTokens)),
                ("routed_token_weights", .f32(tables.routedTokenWeights)),
            ], metadata: ["format": "pt", "producer": "moekit"], to: output)
        }
    }
}
