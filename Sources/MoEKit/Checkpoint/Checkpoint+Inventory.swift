/// What a checkpoint's feed-forward weights are, group by group, from the file headers and `config.json`
/// alone (no tensor byte is read, nothing is validated beyond the headers): stored format, tensors, bytes
/// on disk and bytes MoEKit will hold once the layers are loaded. For `moe inspect`.
extension Checkpoint {
    /// One group of tensors, summed over the layers that hold it.
    public struct WeightGroup: Sendable, Equatable {
        /// Which part of the feed-forward layers a group is, named as `moe inspect` prints it.
        public enum Kind: String, Sendable, CaseIterable {
            /// Every routed expert's weights (and their scales and biases).
            case routedExperts = "routed experts"
            /// The shared expert's weights and its gate.
            case sharedExpert = "shared expert"
            /// The dense MLPs of the non-MoE layers.
            case denseMLP = "dense MLP"
            /// The router's weight and biases.
            case router
            /// Everything the feed-forward loader does not read (attention, norms, embeddings, head).
            case notLoaded = "not loaded"
        }

        /// Which part this group is.
        public var kind: Kind
        /// The stored formats of the group's weight matrices (``WeightFormat/description``, or the dtype in
        /// lower case for one MoEKit does not pack), in order of first appearance; scales and biases not listed.
        public var formats: [String]
        /// Layers holding the group (0 for ``Kind/notLoaded``).
        public var layers: Int
        /// Tensors, companions (`weight_scale_inv`, MXFP4 `_scales`) and biases included.
        public var tensorCount: Int
        /// Sum of the tensors' byte sizes in the files (headers excluded).
        public var bytesOnDisk: Int
        /// Bytes held once loaded: the packed panels at the stored width with their scales
        /// (``ExpertWeights/residentBytes``), F32 biases, the router's F32 matrix and its packed copy.
        public var residentBytes: Int

        /// `formats` joined with `+` (`fp8-e4m3`, `bf16+f32`).
        public var format: String { formats.joined(separator: "+") }

        mutating func add(_ other: WeightGroup) {
            for f in other.formats where !formats.contains(f) { formats.append(f) }
            layers += other.layers
            tensorCount += other.tensorCount
            bytesOnDisk += other.bytesOnDisk
            residentBytes += other.residentBytes
        }
    }

    /// The feed-forward groups of every layer summed (routed experts, shared expert, dense MLP, router, in
    /// that order, those present), then the tensors the loader does not read.
    public func weightGroups() -> [WeightGroup] {
        var sums: [WeightGroup.Kind: WeightGroup] = [:]
        for layer in 0..<config.layerCount {
            for group in weightGroups(layer: layer) {
                if sums[group.kind] == nil { sums[group.kind] = group } else { sums[group.kind]?.add(group) }
            }
        }
        var groups = WeightGroup.Kind.allCases.compactMap { sums[$0] }
        let unused = unusedTensorNames()
        if !unused.isEmpty {
            var other = WeightGroup(kind: .notLoaded, formats: [], layers: 0, tensorCount: 0, bytesOnDisk: 0, residentBytes: 0)
            for name in unused {
                other.tensorCount += 1
                other.bytesOnDisk += store.entry(name)?.dataRange.count ?? 0
                if !name.hasSuffix("_scale_inv"), let f = storedFormat(name), !other.formats.contains(f.name) { other.formats.append(f.name) }
            }
            groups.append(other)
        }
        return groups
    }

    /// The feed-forward groups of decoder layer `layer` (each with `layers` 1): routed experts, shared
    /// expert and router for an MoE layer, the dense MLP otherwise; empty when the layer's tensors cannot be
    /// found or `layer` is out of range.
    public func weightGroups(layer: Int) -> [WeightGroup] {
        guard layer >= 0, layer < config.layerCount else { return [] }
        let moe = config.moe
        let (e, h, f) = (moe.expertCount, moe.hiddenSize, moe.expertIntermediateSize)
        guard config.sparseLayers[layer] else {
            guard let block = try? blockName(layer: layer, probe: "gate_proj.weight") else { return [] }
            let mlp = LayerTensorNames.MLP(gate: block + "gate_proj.weight", up: block + "up_proj.weight", down: block + "down_proj.weight")
            return [mlpGroup(.denseMLP, mlp, width: config.denseIntermediateSize ?? 0)]
        }
        guard let n = try? tensorNames(layer: layer) else { return [] }
        var groups: [WeightGroup] = []

        // Routed experts.
        let sources = moe.expert.isGated ? 2 : 1
        var experts = WeightGroup(kind: .routedExperts, formats: [], layers: 1, tensorCount: 0, bytesOnDisk: 0, residentBytes: 0)
        let gateUpFormat: StoredFormat?, downFormat: StoredFormat?
        var biasNames: [String] = []
        switch n.experts {
        case .perExpert(let gates, let ups, let downs):
            for name in gates + (moe.expert.isGated ? ups : []) + downs { count(name, into: &experts, companion: name + "_scale_inv") }
            (gateUpFormat, downFormat) = (gates.first.flatMap(storedFormat), downs.first.flatMap(storedFormat))
        case .fused(let gateUp, let down, let gateUpBias, let downBias, _):
            for name in [gateUp, down] { count(name, into: &experts) }
            (gateUpFormat, downFormat) = (storedFormat(gateUp), storedFormat(down))
            biasNames = [gateUpBias, downBias].compactMap { $0 }
        case .fusedMXFP4(let gateUp, let down, let gateUpBias, let downBias):
            for base in [gateUp, down] { count(base + "_blocks", into: &experts, companion: base + "_scales") }
            (gateUpFormat, downFormat) = (storedFormat(gateUp + "_blocks"), storedFormat(down + "_blocks"))
            biasNames = [gateUpBias, downBias].compactMap { $0 }
        }
        for name in biasNames { count(name, into: &experts, isWeight: false) }
        experts.residentBytes = Self.packedBytes(gateUpFormat?.format, matrices: e, sources: sources, out: f, in: h)
            + Self.packedBytes(downFormat?.format, matrices: e, sources: 1, out: h, in: f)
            + (moe.expert.hasBiases && biasNames.count == 2 ? 4 * (sources * e * f + e * h) : 0)
        groups.append(experts)

        // Shared expert, with its sigmoid gate.
        if let mlp = n.shared, let spec = moe.sharedExpert, store.contains(mlp.gate) {
            var shared = mlpGroup(.sharedExpert, mlp, width: spec.intermediateSize)
            if let gate = n.sharedGate, store.contains(gate) {
                count(gate, into: &shared, isWeight: false)
                shared.residentBytes += 4 * h
            }
            groups.append(shared)
        }

        // Router: kept as an F32 [E, H] matrix plus its packed F32 panels; biases as F32.
        var router = WeightGroup(kind: .router, formats: [], layers: 1, tensorCount: 0, bytesOnDisk: 0, residentBytes: 0)
        count(n.router, into: &router)
        router.residentBytes = 4 * e * h + Self.packedBytes(.f32, matrices: 1, sources: 1, out: e, in: h)
        for name in [n.routerBias, n.correctionBias].compactMap({ $0 }) where store.contains(name) {
            count(name, into: &router, isWeight: false)
            router.residentBytes += 4 * e
        }
        groups.append(router)
        return groups
    }

    /// Bytes of the panels ``PanelMatrices`` packs `matrices × sources` `[out, in]` matrices of `format`
    /// into (F32 compute): `⌈out / 32⌉` panels each, values at the stored width, FP8 one F32 scale per column
    /// per block width of inputs, MXFP4 one byte per column per 32 inputs. 0 for a format MoEKit cannot pack.
    static func packedBytes(_ format: WeightFormat?, matrices: Int, sources: Int, out: Int, in inputs: Int) -> Int {
        guard let format, let element = try? PanelMatrices.element(for: format, compute: .f32) else { return 0 }
        let width = PanelMatrices.width
        let panels = matrices * sources * ((out + width - 1) / width)
        let bytes = PanelMatrices.panelBytes(element, inFeatures: inputs)
        return panels * (bytes.values + bytes.scales)
    }

    /// A stored format and its printed name.
    struct StoredFormat {
        var format: WeightFormat?
        var name: String
    }

    /// The format tensor `name` is stored in, from its dtype: F8_E4M3 with the config's block (128 × 128 when
    /// the config has none), U8 as MXFP4 blocks; `nil` when the tensor is absent.
    func storedFormat(_ name: String) -> StoredFormat? {
        guard let entry = store.entry(name) else { return nil }
        let format: WeightFormat? = switch entry.dtypeName {
        case "F32": .f32
        case "BF16": .bf16
        case "F16": .f16
        case "F8_E4M3":
            if case .fp8(let r, let c) = config.quantization { .fp8E4M3(blockRows: r, blockColumns: c) } else { .fp8E4M3(blockRows: 128, blockColumns: 128) }
        case "U8" where name.hasSuffix("_blocks"): .mxfp4
        default: nil
        }
        return StoredFormat(format: format, name: format?.description ?? entry.dtypeName.lowercased())
    }

    /// A dense SwiGLU MLP (the dense layers' or the shared expert): one expert, gate and up interleaved.
    private func mlpGroup(_ kind: WeightGroup.Kind, _ mlp: LayerTensorNames.MLP, width: Int) -> WeightGroup {
        var group = WeightGroup(kind: kind, formats: [], layers: 1, tensorCount: 0, bytesOnDisk: 0, residentBytes: 0)
        for name in [mlp.gate, mlp.up, mlp.down] { count(name, into: &group, companion: name + "_scale_inv") }
        let h = config.moe.hiddenSize
        group.residentBytes = Self.packedBytes(storedFormat(mlp.gate)?.format, matrices: 1, sources: 2, out: width, in: h)
            + Self.packedBytes(storedFormat(mlp.down)?.format, matrices: 1, sources: 1, out: h, in: width)
        return group
    }

    /// Adds tensor `name` (and `companion`, when the checkpoint has it) to `group`'s count and disk bytes;
    /// a weight's format to its formats.
    private func count(_ name: String, into group: inout WeightGroup, companion: String? = nil, isWeight: Bool = true) {
        guard let entry = store.entry(name) else { return }
        group.tensorCount += 1
        group.bytesOnDisk += entry.dataRange.count
        if isWeight, let f = storedFormat(name), !group.formats.contains(f.name) { group.formats.append(f.name) }
        if let companion, let scale = store.entry(companion) {
            group.tensorCount += 1
            group.bytesOnDisk += scale.dataRange.count
        }
    }
}
