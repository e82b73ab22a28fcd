/// A model folder as `save_pretrained` writes it: `config.json` plus weights. Loads the feed-forward
/// block of any decoder layer into MoEKit's canonical layout.
public struct Checkpoint: Sendable {
    /// The model folder.
    public let directory: String
    /// The feed-forward configuration read from `config.json`.
    public let config: ModelConfig
    /// Every tensor of the folder's `.safetensors` files, by name.
    public let store: TensorStore
    private let names: ArchitectureNames
    private let layerPrefix: String

    /// Opens `directory`: reads and validates `config.json`, opens and validates every weight file.
    /// - Throws: ``ConfigError``, ``SafetensorsError`` or ``CheckpointError``, each naming the file.
    public init(directory: String) throws {
        let configPath = directory + "/config.json"
        guard FileManager.default.fileExists(atPath: configPath) else { throw CheckpointError.missingConfig(directory: directory) }
        self.directory = directory
        config = try Self.readConfig(configPath)
        store = try TensorStore(directory: directory)
        names = ArchitectureNames(config.architecture)
        let all = store.tensorNames
        layerPrefix = ArchitectureNames.layerPrefixes.first { prefix in all.contains { $0.hasPrefix(prefix) } }
            ?? ArchitectureNames.layerPrefixes[0]
    }

    /// The feed-forward block of decoder layer `layer`: the MoE block if the config makes it sparse,
    /// the dense MLP otherwise.
    /// Weights stay in their stored format: viewed in the mapped files, packed once (``ExpertWeights``),
    /// their file pages given back as they are packed, or read in place there (`residency`
    /// ``WeightResidency/mapped``: F32, BF16, F16 weights; nothing allocated for them). A layer whose packed
    /// copy cannot fit in the memory available is refused before anything is allocated (``MemoryBudget``).
    /// - Parameters:
    ///   - layer: the decoder layer, `0..<config.layerCount`.
    ///   - threads: packing threads.
    ///   - residency: pack the weights once (the default: fastest for repeated forwards) or read them in place.
    ///   - progress: told how far the routed experts' packing has come, after each expert matrix.
    /// - Throws: ``ConfigError/layerOutOfRange(layer:layerCount:)``, ``CheckpointError`` naming a missing,
    ///   misshapen or non-finite tensor or a broken quantization.
    public func feedForward(layer: Int, threads: Int = Parallel.defaultThreadCount, residency: WeightResidency = .packed,
                            progress: ((LoadProgress) -> Void)? = nil) throws -> FeedForward {
        let moe = config.moe
        if try config.isSparse(layer: layer) {
            let n = try tensorNames(layer: layer)
            let (e, h) = (moe.expertCount, moe.hiddenSize)
            let router = try Router(config: moe, weight: try store.floats(n.router, shape: [e, h]),
                                    bias: try n.routerBias.map { try store.floats($0, shape: [e]).storage },
                                    correctionBias: try n.correctionBias.map { try store.floats($0, shape: [e]).storage })
            var shared: SharedExpert?
            if let mlp = n.shared, let spec = moe.sharedExpert {
                shared = try SharedExpert(mlp: try denseMLP(mlp, width: spec.intermediateSize, residency: residency),
                                          gateWeight: try n.sharedGate.map { try store.floats($0, shape: [1, h]).storage })
            }
            let experts = try expertWeights(n.experts, layer: layer, threads: threads, residency: residency, progress: progress)
            return .moe(try MoEBlock(config: moe, router: router, experts: experts, sharedExpert: shared))
        }
        let block = try blockName(layer: layer, probe: "gate_proj.weight")
        let width = config.denseIntermediateSize ?? 0
        return .dense(try denseMLP(.init(gate: block + "gate_proj.weight", up: block + "up_proj.weight", down: block + "down_proj.weight"),
                                   width: width, residency: residency))
    }

    /// `config.json`, a bad field's error naming the file (its own message names none).
    private static func readConfig(_ path: String) throws(ConfigError) -> ModelConfig {
        do {
            return try ModelConfig(contentsOf: path)
        } catch {
            guard case .invalidField(let field, let value, let reason) = error else { throw error }
            throw .malformedJSON(path: path, reason: "\(field) = \(value) \(reason)")
        }
    }

    /// Tensors that loading every layer's feed-forward block would not read (attention, norms,
    /// embeddings, the output head, and anything unexpected).
    public func unusedTensorNames() -> [String] {
        var used = Set<String>()
        for layer in 0..<config.layerCount {
            if config.sparseLayers[layer] {
                if let n = try? tensorNames(layer: layer) { used.formUnion(n.allNames) }
            } else if let block = try? blockName(layer: layer, probe: "gate_proj.weight") {
                used.formUnion(["gate_proj", "up_proj", "down_proj"].map { block + $0 + ".weight" })
            }
        }
        for name in used where store.contains(name + "_scale_inv") { used.insert(name + "_scale_inv") }
        return store.tensorNames.filter { !used.contains($0) }
    }

    /// `prefix + L + "." + block + "."` for the first candidate block that holds `probe`.
    func blockName(layer: Int, probe: String) throws -> String {
        for block in names.blocks {
            let base = "\(layerPrefix)\(layer).\(block)."
            if store.contains(base + probe) { return base }
        }
        throw CheckpointError.missingTensor(name: "\(layerPrefix)\(layer).\(names.blocks[0]).\(probe)", directory: directory,
                                            hint: "layer \(layer) of a \(config.architecture) checkpoint")
    }

    func tensorNames(layer: Int) throws -> LayerTensorNames {
        let base = try blockName(layer: layer, probe: names.router)
        let experts: LayerTensorNames.Experts
        let p = names.expertProjections
        if store.contains(base + "experts.gate_up_proj_blocks") {
            let bias = store.contains(base + "experts.gate_up_proj_bias")
            experts = .fusedMXFP4(gateUp: base + "experts.gate_up_proj", down: base + "experts.down_proj",
                                  gateUpBias: bias ? base + "experts.gate_up_proj_bias" : nil,
                                  downBias: bias ? base + "experts.down_proj_bias" : nil)
        } else if store.contains(base + "experts.gate_up_proj") {
            let bias = store.contains(base + "experts.gate_up_proj_bias")
            var layout = names.fusedLayout
            // Mixtral/Qwen-style fused experts come as [E, 2F, H] with down [E, H, F] (transformers v5) or as
            // [E, H, 2F] with down [E, F, H] (x @ W); the shapes decide, [E, 2F, H] first. When H = 2F the gate/up
            // shapes are the same, and down's (H ≠ F) decides.
            let (e, f, h) = (config.moe.expertCount, config.moe.expertIntermediateSize, config.moe.hiddenSize)
            if layout == .linearChunked, let gateUp = store.entry(base + "experts.gate_up_proj")?.shape {
                let down = store.entry(base + "experts.down_proj")?.shape
                if gateUp != [e, 2 * f, h] || (h == 2 * f && down == [e, f, h]) { layout = .transposedChunked }
            }
            experts = .fused(gateUp: base + "experts.gate_up_proj", down: base + "experts.down_proj",
                             gateUpBias: bias ? base + "experts.gate_up_proj_bias" : nil,
                             downBias: bias ? base + "experts.down_proj_bias" : nil, layout: layout)
        } else {
            let ids = 0..<config.moe.expertCount
            experts = .perExpert(gate: ids.map { "\(base)experts.\($0).\(p.gate).weight" },
                                 up: ids.map { "\(base)experts.\($0).\(p.up).weight" },
                                 down: ids.map { "\(base)experts.\($0).\(p.down).weight" })
        }
        return LayerTensorNames(
            router: base + names.router, routerBias: names.routerBias.map { base + $0 },
            correctionBias: names.correctionBias.map { base + $0 }, experts: experts,
            shared: names.shared.map { .init(gate: "\(base)\($0).gate_proj.weight", up: "\(base)\($0).up_proj.weight",
                                             down: "\(base)\($0).down_proj.weight") },
            sharedGate: names.sharedGate.map { base + $0 })
    }

    /// A dense MLP (a dense layer's or the shared expert), packed once; a NaN or infinite weight is refused
    /// naming its tensor and element.
    private func denseMLP(_ n: LayerTensorNames.MLP, width: Int, residency: WeightResidency) throws -> DenseMLP {
        let h = config.moe.hiddenSize
        let gate = try linear(n.gate, rows: width, columns: h), up = try linear(n.up, rows: width, columns: h)
        let down = try linear(n.down, rows: h, columns: width)
        do {
            return try DenseMLP(gate: gate, up: up, down: down, residency: residency)
        } catch WeightError.nonFinite(_, let source) where (0...2).contains(source) {
            let (name, stored) = [(n.gate, gate), (n.up, up), (n.down, down)][source]
            throw CheckpointError.nonFinite(name: name, file: store.path(of: name), index: Self.firstNonFinite(stored) ?? 0)
        }
    }

    /// The flat index (row · columns + column) of the first NaN or infinite element of a one-matrix stack.
    private static func firstNonFinite(_ stored: StoredMatrices) -> Int? {
        for r in 0..<stored.rows {
            for c in 0..<stored.columns where !stored.element(matrix: 0, row: r, column: c).isFinite { return r * stored.columns + c }
        }
        return nil
    }

    /// Views the routed experts as stored, checks that their packed copy fits in memory, and packs them
    /// once (``ExpertWeights``). A NaN or infinite weight is refused naming its tensor.
    private func expertWeights(_ layout: LayerTensorNames.Experts, layer: Int, threads: Int, residency: WeightResidency,
                               progress: ((LoadProgress) -> Void)?) throws -> ExpertWeights {
        let (h, f) = (config.moe.hiddenSize, config.moe.expertIntermediateSize)
        let kind = config.moe.expert
        let views: (gate: StoredMatrices, up: StoredMatrices?, down: StoredMatrices)
        var biases: (gate: Tensor<Float>?, up: Tensor<Float>?, down: Tensor<Float>?) = (nil, nil, nil)
        // The tensor holding matrix m of stack s (gate 0, up 1, down 2), for messages.
        let tensorName: (_ matrix: Int, _ stack: Int) -> String
        switch layout {
        case .perExpert(let gates, let ups, let downs):
            views = (try stack(gates, rows: f, columns: h), try stack(ups, rows: f, columns: h), try stack(downs, rows: h, columns: f))
            tensorName = { m, s in [gates, ups, downs][s][m] }
        case .fused(let gateUpName, let downName, let gateUpBiasName, let downBiasName, let fusedLayout):
            let fused = try fusedExperts(gateUp: gateUpName, down: downName, layout: fusedLayout)
            views = (fused.gate, fused.up, fused.down)
            biases = try fusedBiases(gateUp: gateUpBiasName, down: downBiasName, interleaved: fusedLayout == .transposedInterleaved,
                                     weight: gateUpName)
            tensorName = { _, s in s == 2 ? downName : gateUpName }
        case .fusedMXFP4(let gateUpName, let downName, let gateUpBiasName, let downBiasName):
            let fused = try mxfp4Experts(gateUp: gateUpName, down: downName)
            views = (fused.gate, fused.up, fused.down)
            biases = try fusedBiases(gateUp: gateUpBiasName, down: downBiasName, interleaved: true, weight: gateUpName + "_blocks")
            tensorName = { _, s in (s == 2 ? downName : gateUpName) + "_blocks" }
        }
        try MemoryBudget.check(ExpertWeights.bytesNeeded(gate: views.gate, up: views.up, down: views.down, residency: residency),
                               for: "layer \(layer)'s routed experts (\(views.gate.format))")
        let totalBytes = views.gate.storedBytes + (views.up?.storedBytes ?? 0) + views.down.storedBytes
        let totalMatrices = views.gate.count * (views.up == nil ? 2 : 3)
        var done = LoadProgress(bytes: 0, totalBytes: totalBytes, matrices: 0, totalMatrices: totalMatrices)
        do {
            return try ExpertWeights(kind: kind, gate: views.gate, up: views.up, down: views.down,
                                     gateBias: biases.gate, upBias: biases.up, downBias: biases.down, residency: residency,
                                     threads: threads) { bytes, matrices in
                done.bytes += bytes
                done.matrices += matrices
                progress?(done)
            }
        } catch WeightError.nonFinite(let matrix, let source) {
            let name = tensorName(matrix, source)
            throw CheckpointError.nonFiniteWeight(name: name, file: store.path(of: name), expert: matrix)
        }
    }

    /// The fused `[E, 2F]` gate/up bias split into gate and up (interleaved: even/odd; else halves) and the
    /// `[E, H]` down bias; all `nil` for experts without biases.
    private func fusedBiases(gateUp: String?, down: String?, interleaved: Bool, weight: String) throws
        -> (gate: Tensor<Float>?, up: Tensor<Float>?, down: Tensor<Float>?) {
        let (e, h, f) = (config.moe.expertCount, config.moe.hiddenSize, config.moe.expertIntermediateSize)
        guard config.moe.expert.hasBiases == (gateUp != nil && down != nil) else {
            throw CheckpointError.missingTensor(name: gateUp ?? weight + "_bias", directory: directory,
                                                hint: "\(config.moe.expert) experts \(config.moe.expert.hasBiases ? "need" : "take no") biases")
        }
        guard let gateUp, let down else { return (nil, nil, nil) }
        let b = try store.floats(gateUp, shape: [e, 2 * f])
        var g = Tensor<Float>(shape: [e, f]), u = Tensor<Float>(shape: [e, f])
        for x in 0..<e {
            for j in 0..<f {
                g.storage[x * f + j] = b.storage[x * 2 * f + (interleaved ? 2 * j : j)]
                u.storage[x * f + j] = b.storage[x * 2 * f + (interleaved ? 2 * j + 1 : f + j)]
            }
        }
        return (g, u, try store.floats(down, shape: [e, h]))
    }
}
