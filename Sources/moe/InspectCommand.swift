import ArgumentParser
import MoEKit

/// `moe inspect`: what a checkpoint holds and what MoEKit makes of it.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe a checkpoint: architecture, layers, experts, router, dtypes, stored formats with bytes on disk and resident, parameters, unused tensors.",
        discussion: "Example:\n  moe inspect --checkpoint ./Mixtral-8x7B --json")

    @Option(help: "Checkpoint folder.") var checkpoint: String
    @Flag(help: "Print one JSON object.") var json = false

    struct Report: Encodable {
        var architecture: String
        var layers: [String]
        var num_layers: Int
        var hidden_size: Int
        var num_experts: Int
        var top_k: Int
        var expert_intermediate_size: Int
        var dense_intermediate_size: Int?
        var router: String
        var expert_ffn: String
        var shared_expert: String?
        var dtypes: [String: Int]
        /// Per tensor group (routed experts, shared expert, dense MLP, router, not loaded), summed over layers.
        var groups: [InspectWeightGroup]
        var total_params: Int
        var tensor_count: Int
        var unused_tensors: [String]
    }

    func run() throws {
        try reportingErrors {
            let model = try Checkpoint(directory: checkpoint)
            let c = model.config
            var dtypes: [String: Int] = [:]
            var parameters = 0
            for name in model.store.tensorNames {
                guard let entry = model.store.entry(name) else { continue }
                dtypes[entry.dtypeName, default: 0] += 1
                parameters += entry.shape.reduce(1, *)
            }
            let shared = c.moe.sharedExpert.map { "width \($0.intermediateSize)\($0.gate == .sigmoid ? ", sigmoid-gated" : ", added")" }
            let report = Report(
                architecture: c.architecture.rawValue, layers: c.sparseLayers.map { $0 ? "moe" : "dense" }, num_layers: c.layerCount,
                hidden_size: c.moe.hiddenSize, num_experts: c.moe.expertCount, top_k: c.moe.expertsPerToken,
                expert_intermediate_size: c.moe.expertIntermediateSize, dense_intermediate_size: c.denseIntermediateSize,
                router: c.moe.router.description, expert_ffn: c.moe.expert.description, shared_expert: shared,
                dtypes: dtypes, groups: model.weightGroups().map(InspectWeightGroup.init), total_params: parameters, tensor_count: model.store.tensorNames.count,
                unused_tensors: model.unusedTensorNames())
            if json { try printJSON(report); return }
            print("checkpoint   \(checkpoint)")
            print("architecture \(report.architecture)")
            let sparse = c.sparseLayers.indices.filter { c.sparseLayers[$0] }
            print("layers       \(c.layerCount): MoE \(sparse.count == c.layerCount ? "all" : sparse.map(String.init).joined(separator: ",")); dense \(c.layerCount - sparse.count)\(c.denseIntermediateSize.map { " (width \($0))" } ?? "")")
            print("experts      \(c.moe.expertCount) × \(c.moe.expert), width \(c.moe.expertIntermediateSize), hidden \(c.moe.hiddenSize)")
            print("top-k        \(c.moe.expertsPerToken)")
            print("router       \(c.moe.router)\(c.moe.routerHasBias ? " (biased)" : "")")
            print("shared       \(shared ?? "none")")
            print("dtypes       \(dtypes.keys.sorted().map { "\($0) ×\(dtypes[$0]!)" }.joined(separator: ", "))")
            print("weights      stored format, bytes on disk and resident once loaded:")
            InspectWeightGroup.printTable(report.groups)
            print("parameters   \(parameters) in \(report.tensor_count) tensors")
            print("unused       \(report.unused_tensors.count) tensors not read by the feed-forward loader:")
            for name in report.unused_tensors { print("  \(name)") }
        }
    }
}
