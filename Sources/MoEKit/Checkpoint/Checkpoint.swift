/// A model folder as `save_pretrained` writes it: `config.json` plus weights. Loads the feed-forward
/// block of any decoder layer into MoEKit's canonical layout.
public struct Checkpoint: Sendable {
    public let directory: String
    public let config: ModelConfig
    public let store: TensorStore
    private let names: ArchitectureNames
    private let layerPrefix: String

    /// Opens `directory`: reads and validates `config.json`, opens and validates every weight file.
    /// - Throws: ``ConfigError``, ``SafetensorsError`` or ``CheckpointError``, each naming the file.
    public init(directory: String) throws {
        let configPath = directory + "/config.json"
        guard FileManager.default.fileExists(atPath: configPath) else { throw CheckpointError.missingConfig(directory: directory) }
        self.directory = directory
        config = try ModelConfig(contentsOf: configPath)
        store = try TensorStore(directory: directory)
        names = ArchitectureNames(config.architecture)
        let all = store.tensorNames
        layerPrefix = ArchitectureNames.layerPrefixes.first { prefix in all.contains { $0.hasPrefix(prefix) } }
            ?? ArchitectureNames.layerPrefixes[0]
    }

    /// The feed-forward block of decoder layer `layer`: the MoE block if the config makes it sparse,
    /// the dense MLP otherwise.
    /// - Throws: ``ConfigError/layerOutOfRange(layer:layerCount:)``, ``CheckpointError`` naming a missing
    ///   or misshapen tensor.
    public func feedForward(layer: Int) throws -> FeedForward {
        let moe = config.moe
        if try config.isSparse(layer: layer) {
            let n = try tensorNames(layer: layer)
            let (e, h) = (moe.expertCount, moe.hiddenSize)
            let router = try Router(config: moe, weight: try store.floats(n.router, shape: [e, h]),
                                    bias: try n.routerBias.map { try store.floats($0, shape: [e]).storage },
                                    correctionBias: try n.correctionBias.map { try store.floats($0, shape: [e]).storage })
            var shared: SharedExpert?
            if let mlp = n.shared, let spec = moe.sharedExpert {
                shared = try SharedExpert(mlp: try denseMLP(mlp, width: spec.intermediateSize),
                                          gateWeight: try n.sharedGate.map { try store.floats($0, shape: [1, h]).storage })
            }
            return .moe(try MoEBlock(config: moe, router: router, experts: try expertWeights(n.experts), sharedExpert: shared))
        }
        let block = try blockName(layer: layer, probe: "gate_proj.weight")
        let width = config.denseIntermediateSize ?? 0
        return .dense(try denseMLP(.init(gate: block + "gate_proj.weight", up: block + "up_proj.weight", down: block + "down_proj.weight"),
                                   width: width))
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
        return store.tensorNames.filter { !used.contains($0) }
    }

    /// `prefix + L + "." + block + "."` for the first candidate block that holds `probe`.
    private func blockName(layer: Int, probe: String) throws -> String {
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
        if store.contains(base + "experts.gate_up_proj") {
            let bias = store.contains(base + "experts.gate_up_proj_bias")
            var layout = names.fusedLayout
            // Mixtral/Qwen-style fused experts come as [E, 2F, H] (transformers v5) or [E, H, 2F] (x @ W);
            // the shape decides, [E, 2F, H] first.
            if layout == .linearChunked, let shape = store.entry(base + "experts.gate_up_proj")?.shape,
               shape != [config.moe.expertCount, 2 * config.moe.expertIntermediateSize, config.moe.hiddenSize] {
                layout = .transposedChunked
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

    private func denseMLP(_ n: LayerTensorNames.MLP, width: Int) throws -> DenseMLP {
        let h = config.moe.hiddenSize
        return try DenseMLP(gate: try store.floats(n.gate, shape: [width, h]), up: try store.floats(n.up, shape: [width, h]),
                            down: try store.floats(n.down, shape: [h, width]))
    }

    /// Reads the routed experts and converts them to the canonical `[E, F, H]` / `[E, H, F]` layout.
    private func expertWeights(_ layout: LayerTensorNames.Experts) throws -> ExpertWeights {
        let (e, h, f) = (config.moe.expertCount, config.moe.hiddenSize, config.moe.expertIntermediateSize)
        switch layout {
        case .perExpert(let gates, let ups, let downs):
            func stack(_ names: [String], _ shape: [Int]) throws -> Tensor<Float> {
                var storage: [Float] = []
                storage.reserveCapacity(e * shape[0] * shape[1])
                for name in names { storage += try store.floats(name, shape: shape).storage }
                return try Tensor(shape: [e] + shape, storage: storage)
            }
            return try ExpertWeights(kind: config.moe.expert, gate: try stack(gates, [f, h]), up: try stack(ups, [f, h]),
                                     down: try stack(downs, [h, f]))
        case .fused(let gateUpName, let downName, let gateUpBiasName, let downBiasName, let fusedLayout):
            let transposed = fusedLayout != .linearChunked
            let gateUp = try store.floats(gateUpName, shape: transposed ? [e, h, 2 * f] : [e, 2 * f, h])
            let downRaw = try store.floats(downName, shape: transposed ? [e, f, h] : [e, h, f])
            var gate = Tensor<Float>(shape: [e, f, h]), up = Tensor<Float>(shape: [e, f, h])
            // Column (or row) index of output j's gate and up inside the fused 2F.
            let gateIndex: (Int) -> Int = fusedLayout == .transposedInterleaved ? { 2 * $0 } : { $0 }
            let upIndex: (Int) -> Int = fusedLayout == .transposedInterleaved ? { 2 * $0 + 1 } : { f + $0 }
            for x in 0..<e {
                for j in 0..<f {
                    for i in 0..<h {
                        let (g, u) = transposed
                            ? ((x * h + i) * 2 * f + gateIndex(j), (x * h + i) * 2 * f + upIndex(j))
                            : ((x * 2 * f + gateIndex(j)) * h + i, (x * 2 * f + upIndex(j)) * h + i)
                        gate.storage[(x * f + j) * h + i] = gateUp.storage[g]
                        up.storage[(x * f + j) * h + i] = gateUp.storage[u]
                    }
                }
            }
            var down = downRaw
            if transposed {
                down = Tensor<Float>(shape: [e, h, f])
                for x in 0..<e { for j in 0..<f { for i in 0..<h { down.storage[(x * h + i) * f + j] = downRaw.storage[(x * f + j) * h + i] } } }
            }
            var gateBias: Tensor<Float>?, upBias: Tensor<Float>?, downBias: Tensor<Float>?
            if let gateUpBiasName, let downBiasName {
                let b = try store.floats(gateUpBiasName, shape: [e, 2 * f])
                var g = Tensor<Float>(shape: [e, f]), u = Tensor<Float>(shape: [e, f])
                for x in 0..<e {
                    for j in 0..<f {
                        g.storage[x * f + j] = b.storage[x * 2 * f + gateIndex(j)]
                        u.storage[x * f + j] = b.storage[x * 2 * f + upIndex(j)]
                    }
                }
                (gateBias, upBias) = (g, u)
                downBias = try store.floats(downBiasName, shape: [e, h])
            }
            guard config.moe.expert.hasBiases == (gateBias != nil) else {
                throw CheckpointError.missingTensor(name: gateUpBiasName ?? gateUpName + "_bias", directory: directory,
                                                    hint: "\(config.moe.expert) experts \(config.moe.expert.hasBiases ? "need" : "take no") biases")
            }
            return try ExpertWeights(kind: config.moe.expert, gate: gate, up: up, down: down,
                                     gateBias: gateBias, upBias: upBias, downBias: downBias)
        }
    }
}
