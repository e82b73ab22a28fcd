import Foundation
import MoECost

/// What `moe estimate` prints: the `--json` keys (snake case, see ../shared/spec/CLI.md) and the table.
struct EstimateReport: Encodable {
    struct Layer: Encodable {
        var index: Int
        var kind: String
        var params: Int
        var active_params: Int
        var flops: Double?
        var bytes: Double?
        var predicted_ms: Double?
        var weight_load_ms: Double?
        /// Bytes MoEKit keeps resident once this layer's feed-forward block is loaded (``ResidentEstimate``).
        var resident_bytes: Int
    }

    /// What a loaded MoE block keeps resident, by part (``ResidentEstimate``); activations with --tokens.
    struct Resident: Encodable {
        var expert_format: String
        var shared_format: String
        var routed_experts: Int
        var expert_biases: Int
        var shared_expert: Int
        var router: Int
        var total: Int
        /// The F32 working buffers of one forward of `tokens` tokens (not part of `total`).
        var forward_activation_bytes: Int?
    }

    struct MoELayer: Encodable {
        var expected_experts_touched: Double
        var router_flops: Double
        var experts_flops: Double
        var shared_flops: Double
        var combine_flops: Double
        var flops: Double
        var bytes: Double
        var weight_bytes: Double
        var activation_bytes_unsliced: Double
        var activation_bytes_sliced: Double
        var activation_bytes_dense: Double
        var all_to_all_bytes: Double
        var predicted_ms: Double
        var compute_bound: Bool
        var weight_load_ms: Double
        var expert_load_ms: Double
        var expert_load_cycles: Double?
    }

    var config: String
    var model_type: String
    var ffn_scaling: String?
    var num_layers: Int
    var moe_layers: Int
    var hidden_size: Int
    var num_experts: Int
    var top_k: Int
    var expert_intermediate_size: Int
    var expert_dtype: String
    var weight_dtype: String
    var total_params: Int
    var active_params: Int
    var active_params_convention: String
    var active_params_with_embeddings: Int
    var active_params_without_input_embedding: Int
    var embedding_params: Int
    var output_head_params: Int
    var params_per_expert: Int
    var routed_expert_params: Int
    var expert_weight_bytes: Double
    var moe_layer_weight_bytes: Double
    /// One loaded MoE layer's resident bytes (`moe forward`), when the model has MoE layers.
    var moe_layer_resident: Resident?
    var layers: [Layer]
    var tokens: Int?
    var devices: Int?
    var hardware: String?
    var flops: Double?
    var bytes: Double?
    var predicted_ms: Double?
    var weight_load_ms: Double?
    var moe_layer: MoELayer?

    init(shape: ModelShape, config: String, scaling: FFNScaling?, tokens: Int?, devices: Int, routing: RoutingModel,
         hardware: HardwareProfile) {
        let count = ParameterCount(shape)
        let work = tokens.map { WorkEstimate(shape, tokens: $0, devices: devices, routing: routing) }
        let times = work.map { $0.layers.map { LayerTime($0, on: hardware) } }
        self.config = config
        model_type = shape.modelType
        ffn_scaling = scaling?.rawValue
        num_layers = shape.layerCount
        moe_layers = shape.sparseLayers.filter { $0 }.count
        hidden_size = shape.hiddenSize
        num_experts = shape.moe.expertCount
        top_k = shape.moe.expertsPerToken
        expert_intermediate_size = shape.moe.expertIntermediateSize
        expert_dtype = shape.expertDType.rawValue
        weight_dtype = shape.weightDType.rawValue
        total_params = count.total
        active_params = count.active
        active_params_convention = count.convention.rawValue
        active_params_with_embeddings = count.active(.withEmbeddings)
        active_params_without_input_embedding = count.active(.withoutInputEmbedding)
        embedding_params = count.embedding
        output_head_params = count.outputHead
        params_per_expert = count.parametersPerExpert
        routed_expert_params = count.routedExpertTotal
        let estimateForBytes = work ?? WorkEstimate(shape, tokens: 1)
        expert_weight_bytes = estimateForBytes.expertWeightBytes
        moe_layer_weight_bytes = estimateForBytes.moeLayerWeightBytes
        layers = count.layers.map { layer in
            let w = work?.layers[layer.index], t = times?[layer.index]
            return Layer(index: layer.index, kind: layer.kind.rawValue, params: layer.total, active_params: layer.active,
                         flops: w?.flops, bytes: w?.bytes, predicted_ms: t?.predictedMilliseconds,
                         weight_load_ms: t?.weightLoadMilliseconds, resident_bytes: shape.residentBytes(layer: layer.index))
        }
        if shape.sparseLayers.contains(true) {
            let r = ResidentEstimate(shape)
            moe_layer_resident = Resident(expert_format: shape.expertFormat.description, shared_format: shape.linearFormat.description,
                                          routed_experts: r.routedExperts, expert_biases: r.expertBiases, shared_expert: r.sharedExpert,
                                          router: r.router, total: r.total,
                                          forward_activation_bytes: tokens.map { ResidentEstimate.forwardActivationBytes(shape.moe, tokens: $0) })
        }
        guard let work, let times else { return }
        self.tokens = work.tokens
        self.devices = devices
        self.hardware = hardware.name
        flops = work.flops
        bytes = work.bytes
        predicted_ms = times.reduce(0) { $0 + $1.predictedMilliseconds }
        weight_load_ms = times.reduce(0) { $0 + $1.weightLoadMilliseconds }
        if let m = work.moeLayer {
            let t = LayerTime(m, on: hardware)
            let expertLoad = work.expertWeightBytes / hardware.linkBandwidth
            moe_layer = MoELayer(
                expected_experts_touched: m.expertsTouched, router_flops: m.router.flops, experts_flops: m.routedExperts.flops,
                shared_flops: m.sharedOrDense.flops, combine_flops: m.combine.flops, flops: m.flops, bytes: m.bytes,
                weight_bytes: m.weightBytes, activation_bytes_unsliced: work.activationBytesUnsliced,
                activation_bytes_sliced: work.activationBytesSliced, activation_bytes_dense: work.activationBytesDense,
                all_to_all_bytes: work.allToAllBytes, predicted_ms: t.predictedMilliseconds, compute_bound: t.isComputeBound,
                weight_load_ms: t.weightLoadMilliseconds, expert_load_ms: expertLoad * 1e3,
                expert_load_cycles: hardware.loadCycles(bytes: work.expertWeightBytes))
        }
    }

    func printTable() {
        print("config        \(config)")
        print("model         \(model_type)\(ffn_scaling.map { " (dense → MoE, --ffn-scaling \($0))" } ?? "")")
        print("layers        \(num_layers) (MoE \(moe_layers), dense \(num_layers - moe_layers)), hidden \(hidden_size)")
        print("experts       \(num_experts) × width \(expert_intermediate_size), top-\(top_k); expert dtype \(expert_dtype), others \(weight_dtype)")
        print("total params  \(grouped(total_params))  (\(human(Double(total_params))))")
        print("active params \(grouped(active_params))  (\(human(Double(active_params))), \(active_params_convention.replacingOccurrences(of: "_", with: " ")))")
        print("  with embeddings \(human(Double(active_params_with_embeddings))), without input embedding \(human(Double(active_params_without_input_embedding)))")
        print("per expert    \(grouped(params_per_expert)) params, \(bytesText(expert_weight_bytes)); MoE layer weights \(bytesText(moe_layer_weight_bytes))")
        if let r = moe_layer_resident {
            var line = "resident      \(bytesText(Double(r.total))) per MoE layer once loaded (moe forward): experts \(bytesText(Double(r.routed_experts))) \(r.expert_format)"
            if r.shared_expert > 0 { line += ", shared \(bytesText(Double(r.shared_expert))) \(r.shared_format)" }
            if r.expert_biases > 0 { line += ", biases \(bytesText(Double(r.expert_biases)))" }
            line += ", router \(bytesText(Double(r.router)))"
            if let a = r.forward_activation_bytes { line += "; + \(bytesText(Double(a))) F32 buffers for \(tokens ?? 0) tokens" }
            print(line)
        }
        if let tokens, let m = moe_layer, let hardware {
            print("")
            print("T = \(tokens) tokens on \(hardware), \(devices ?? 1) device(s), one MoE layer:")
            print("  experts touched      \(String(format: "%.2f", m.expected_experts_touched)) of \(num_experts)")
            print("  FLOPs                \(human(m.flops)) (router \(human(m.router_flops)), experts \(human(m.experts_flops)), shared \(human(m.shared_flops)), combine \(human(m.combine_flops)))")
            print("  bytes                \(bytesText(m.bytes)) (weights \(bytesText(m.weight_bytes)))")
            print("  activations          \(bytesText(m.activation_bytes_unsliced)) without token slicing, \(bytesText(m.activation_bytes_sliced)) with")
            print("  all-to-all           \(bytesText(m.all_to_all_bytes))")
            print("  predicted            \(String(format: "%.4f", m.predicted_ms)) ms (\(m.compute_bound ? "compute" : "memory") bound)")
            print("  weight load          \(String(format: "%.4f", m.weight_load_ms)) ms over the link; one expert \(String(format: "%.4f", m.expert_load_ms)) ms\(m.expert_load_cycles.map { String(format: " (%.0f cycles)", $0) } ?? "")")
        }
        print("")
        print(tokens == nil ? "layer kind       params        active" : "layer kind       params        active        GFLOP      MB moved   pred. ms")
        for layer in layers {
            var line = "\(pad(String(layer.index), 5)) \(pad(layer.kind, 5)) \(pad(human(Double(layer.params)), 12, right: true)) \(pad(human(Double(layer.active_params)), 12, right: true))"
            if let f = layer.flops, let b = layer.bytes, let p = layer.predicted_ms {
                line += " " + pad(String(format: "%.3f", f / 1e9), 12, right: true) + " " + pad(String(format: "%.2f", b / 1e6), 12, right: true)
                    + " " + pad(String(format: "%.4f", p), 10, right: true)
            }
            print(line)
        }
        if let flops, let bytes, let predicted_ms {
            print(String(format: "all feed-forward blocks: %.3f GFLOP, %.2f MB, %.4f ms predicted", flops / 1e9, bytes / 1e6, predicted_ms))
        }
    }

    private func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return right ? fill + s : s + fill
    }

    private func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.reversed().enumerated() {
            if i > 0, i % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + String(out.reversed())
    }

    private func human(_ x: Double) -> String {
        let units: [(Double, String)] = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")]
        for (scale, unit) in units where abs(x) >= scale { return String(format: "%.2f %@", x / scale, unit) }
        return String(format: "%.0f", x)
    }

    private func bytesText(_ x: Double) -> String {
        let units: [(Double, String)] = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "KB")]
        for (scale, unit) in units where abs(x) >= scale { return String(format: "%.2f %@", x / scale, unit) }
        return String(format: "%.0f B", x)
    }
}
