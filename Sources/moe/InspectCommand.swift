import ArgumentParser
import MoEKit

/// `moe inspect`: what a checkpoint holds and what MoEKit makes of it.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe a checkpoint: architecture, layers, experts, router, dtypes, stored formats with bytes on disk and resident, parameters, unused tensors.",
        discussion: """
            A GGUF file (a path ending in .gguf, or any of -0000i-of-0000N.gguf shards) is described the same way: its
            architecture as MoEKit maps it (gguf_architecture: llama.cpp's name), ggml types per tensor group.
            Examples:
              moe inspect --checkpoint ./Mixtral-8x7B --json
              moe inspect --checkpoint Qwen3-30B-A3B-Q4_K_M.gguf
            """)

    @Option(help: "Checkpoint folder, or a .gguf file (the first of split shards).") var checkpoint: String
    @Flag(help: "Print one JSON object.") var json = false

    struct Report: Encodable {
        var architecture: String
        /// GGUF only: `general.architecture` (llama.cpp's name).
        var gguf_architecture: String?
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
            let model = try ModelSource(path: checkpoint)
            let c = model.config
            var dtypes: [String: Int] = [:]
            var parameters = 0
            let groups: [Checkpoint.WeightGroup], unused: [String], tensorCount: Int
            var ggufArchitecture: String?
            switch model {
            case .safetensors(let model):
                for name in model.store.tensorNames {
                    guard let entry = model.store.entry(name) else { continue }
                    dtypes[entry.dtypeName, default: 0] += 1
                    parameters += entry.shape.reduce(1, *)
                }
                (groups, unused, tensorCount) = (model.weightGroups(), model.unusedTensorNames(), model.store.tensorNames.count)
            case .gguf(let model):
                let infos = model.shards.files.flatMap(\.tensors)
                for info in infos {
                    dtypes[info.type.description, default: 0] += 1
                    parameters += info.elementCount
                }
                (groups, unused, tensorCount) = (model.weightGroups(), model.unusedTensorNames(), infos.count)
                ggufArchitecture = model.architecture.rawValue
            }
            let shared = c.moe.sharedExpert.map { "width \($0.intermediateSize)\($0.gate == .sigmoid ? ", sigmoid-gated" : ", added")" }
            let report = Report(
                architecture: c.architecture.rawValue, gguf_architecture: ggufArchitecture, layers: c.sparseLayers.map { $0 ? "moe" : "dense" },
                num_layers: c.layerCount, hidden_size: c.moe.hiddenSize, num_experts: c.moe.expertCount, top_k: c.moe.expertsPerToken,
                expert_intermediate_size: c.moe.expertIntermediateSize, dense_intermediate_size: c.denseIntermediateSize,
                router: c.moe.router.description, expert_ffn: c.moe.expert.description, shared_expert: shared,
                dtypes: dtypes, groups: groups.map(InspectWeightGroup.init), total_params: parameters, tensor_count: tensorCount,
                unused_tensors: unused)
            if json { try printJSON(report); return }
            print("checkpoint   \(checkpoint)")
            print("architecture \(report.architecture)\(ggufArchitecture.map { " (GGUF \($0))" } ?? "")")
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
