import MoEKit

/// What `moe run` measured: printed as a table or as JSON (keys are part of the CLI contract).
struct RunReport: Encodable {
    var source: String
    var config: MoEConfig
    var tokens: Int
    var threads: Int
    var devices: Int
    var seed: UInt64
    var ms: Double
    var repeats: Int
    var tokensPerSecond: Double
    var gflops: Double
    var statistics: RoutingStatistics
    var droppedAssignments: Int
    var capacity: Int?
    var checkTokens: Int
    var maxRelativeDifference: Double
    var dispatchBytes: Int?
    var combineBytes: Int?
    var tensorParallelBytes: Int?
    var mesh: String?

    enum CodingKeys: String, CodingKey {
        case source, tokens, threads, devices, seed, ms, repeats, gflops, capacity
        case hiddenSize = "hidden_size", experts = "num_experts", topK = "top_k"
        case expertIntermediateSize = "expert_intermediate_size", router, expert = "expert_ffn", sharedExpert = "shared_expert_intermediate_size"
        case tokensPerSecond = "tokens_per_s", tokensPerExpert = "tokens_per_expert", loadImbalance = "load_imbalance"
        case loadBalancingLoss = "load_balancing_loss", routerZLoss = "router_z_loss"
        case droppedAssignments = "dropped_assignments", checkTokens = "check_tokens", maxRelativeDifference = "max_rel_diff"
        case dispatchBytes = "dispatch_bytes", combineBytes = "combine_bytes", tensorParallelBytes = "tensor_parallel_bytes", mesh
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(source, forKey: .source)
        try c.encode(config.hiddenSize, forKey: .hiddenSize)
        try c.encode(config.expertCount, forKey: .experts)
        try c.encode(config.expertsPerToken, forKey: .topK)
        try c.encode(config.expertIntermediateSize, forKey: .expertIntermediateSize)
        try c.encode(config.router.description, forKey: .router)
        try c.encode(config.expert.description, forKey: .expert)
        try c.encodeIfPresent(config.sharedExpert?.intermediateSize, forKey: .sharedExpert)
        try c.encode(tokens, forKey: .tokens)
        try c.encode(threads, forKey: .threads)
        try c.encode(devices, forKey: .devices)
        try c.encode(seed, forKey: .seed)
        try c.encode(ms, forKey: .ms)
        try c.encode(repeats, forKey: .repeats)
        try c.encode(tokensPerSecond, forKey: .tokensPerSecond)
        try c.encode(gflops, forKey: .gflops)
        try c.encode(statistics.tokensPerExpert, forKey: .tokensPerExpert)
        try c.encode(statistics.loadImbalance, forKey: .loadImbalance)
        try c.encode(statistics.loadBalancingLoss, forKey: .loadBalancingLoss)
        try c.encode(statistics.routerZLoss, forKey: .routerZLoss)
        try c.encode(droppedAssignments, forKey: .droppedAssignments)
        try c.encodeIfPresent(capacity, forKey: .capacity)
        try c.encode(checkTokens, forKey: .checkTokens)
        try c.encode(maxRelativeDifference, forKey: .maxRelativeDifference)
        try c.encodeIfPresent(dispatchBytes, forKey: .dispatchBytes)
        try c.encodeIfPresent(combineBytes, forKey: .combineBytes)
        try c.encodeIfPresent(tensorParallelBytes, forKey: .tensorParallelBytes)
        try c.encodeIfPresent(mesh, forKey: .mesh)
    }

    func printTable() {
        let shared = config.sharedExpert.map { "shared expert width \($0.intermediateSize)\($0.gate == .sigmoid ? " (sigmoid-gated)" : "")" } ?? "no shared expert"
        print("moe run: \(source)")
        print("  block       hidden \(config.hiddenSize) · \(config.expertCount) experts · top-\(config.expertsPerToken) · expert width \(config.expertIntermediateSize)")
        print("  router      \(config.router)\(config.routerHasBias ? " (biased)" : "")")
        print("  experts     \(config.expert) · \(shared)")
        print("  run         \(tokens) tokens · \(threads) threads · \(devices) device\(devices == 1 ? "" : "s (expert parallel, in process)") · seed \(seed)")
        print("  time        \(format(ms, 2)) ms per forward (median of \(repeats) after 1 warm-up)")
        print("  throughput  \(format(tokensPerSecond, 0)) tokens/s · \(format(gflops, 1)) GFLOP/s")
        print("  expert load (assignments per expert)")
        let counts = statistics.tokensPerExpert
        let peak = max(counts.max() ?? 1, 1)
        let labelWidth = String(counts.count - 1).count
        for (e, count) in counts.enumerated() {
            let bar = String(repeating: "█", count: Int((Double(count) / Double(peak) * 40).rounded()))
            let label = String(repeating: " ", count: labelWidth - String(e).count) + String(e)
            print("    e\(label) \(bar)\(bar.isEmpty ? "" : " ")\(count)")
        }
        print("  imbalance   \(format(statistics.loadImbalance, 3)) (max/mean) · load-balancing loss \(format(statistics.loadBalancingLoss, 4)) · z-loss \(format(statistics.routerZLoss, 4))")
        if let dispatchBytes, let combineBytes {
            print("  all-to-all  dispatch \(dispatchBytes) B · combine \(combineBytes) B (bytes that left their device)")
            if let tensorParallelBytes, let mesh {
                print("  mesh        \(mesh) (EPxTP) · tensor-parallel all-gathers \(tensorParallelBytes) B")
            }
        }
        print("  dropped     \(droppedAssignments) assignments\(capacity.map { " (capacity \($0) per expert)" } ?? " (dropless)")")
        print("  check       max|fast − reference| / max|reference| = \(scientific(maxRelativeDifference)) on \(checkTokens) tokens")
    }
}
