/// What a GGUF model's feed-forward weights are, group by group, from the tensor infos alone (no tensor
/// byte is read): stored ggml type, tensors, bytes on disk and bytes MoEKit will hold once the blocks are
/// loaded (``GGUFModel/feedForward(layer:threads:residency:compute:progress:)``). For `moe inspect`; the groups are the
/// safetensors checkpoint's (``Checkpoint/WeightGroup``).
extension GGUFModel {
    /// The feed-forward groups of every block summed (routed experts, shared expert, dense MLP, router, in
    /// that order, those present), then the tensors the loader does not read (attention, norms, embeddings,
    /// output head, tokenizer-free extras).
    public func weightGroups() -> [Checkpoint.WeightGroup] {
        var sums: [Checkpoint.WeightGroup.Kind: Checkpoint.WeightGroup] = [:]
        for layer in layers {
            for group in weightGroups(layer.layer) {
                if sums[group.kind] == nil { sums[group.kind] = group } else { sums[group.kind]?.add(group) }
            }
        }
        var groups = Checkpoint.WeightGroup.Kind.allCases.compactMap { sums[$0] }
        let unused = unusedTensorNames()
        if !unused.isEmpty {
            var other = Checkpoint.WeightGroup(kind: .notLoaded, formats: [], layers: 0, tensorCount: 0, bytesOnDisk: 0, residentBytes: 0)
            for name in unused {
                guard let view = shards.view(name) else { continue }
                other.tensorCount += 1
                other.bytesOnDisk += view.info.byteCount
                let format = Self.formatName(view.type)
                if !other.formats.contains(format) { other.formats.append(format) }
            }
            groups.append(other)
        }
        return groups
    }

    /// The feed-forward groups of block `layer` (each with `layers` 1): routed experts, shared expert and
    /// router of an MoE block, the dense MLP otherwise; empty when `layer` is out of range.
    public func weightGroups(layer: Int) -> [Checkpoint.WeightGroup] {
        guard layer >= 0, layer < layers.count else { return [] }
        return weightGroups(layer)
    }

    /// Every tensor the files hold that loading every block's feed-forward part does not read.
    public func unusedTensorNames() -> [String] {
        let used = Set(layers.flatMap { $0.tensors.map(\.name) })
        return shards.tensorNames.filter { !used.contains($0) }
    }

    /// The name `moe inspect` prints for a ggml type: the weight store's format (`q4_K`, `ggml-mxfp4`, `bf16`)
    /// when MoEKit computes with it, else ggml's name in lower case with its `_K` kept (`q3_K`, `iq4_xs`).
    public static func formatName(_ type: GGMLType) -> String {
        if let format = weightFormat(type) { return format.description }
        let name = type.description.lowercased()
        return name.hasSuffix("_k") ? name.dropLast() + "K" : name
    }

    private func weightGroups(_ n: Int) -> [Checkpoint.WeightGroup] {
        let (h, e) = (config.moe.hiddenSize, config.moe.expertCount)
        switch layers[n].feedForward {
        case .dense(let mlp):
            return [Self.mlpGroup(.denseMLP, mlp, matrices: 1)]
        case .moe(let m):
            var experts = Self.mlpGroup(.routedExperts, GGUFMLPTensors(gate: m.gate, up: m.up, down: m.down), matrices: e)
            for bias in [m.gateBias, m.upBias, m.downBias].compactMap({ $0 }) {
                Self.count(bias, into: &experts, isWeight: false)
                experts.residentBytes += 4 * bias.info.elementCount
            }
            var groups = [experts]
            if let shared = m.shared {
                var group = Self.mlpGroup(.sharedExpert, shared, matrices: 1)
                if let gate = m.sharedGate {
                    Self.count(gate, into: &group, isWeight: false)
                    group.residentBytes += 4 * h
                }
                groups.append(group)
            }
            // Router: kept as an F32 [E, H] matrix plus its packed F32 panels; biases as F32.
            var router = Checkpoint.WeightGroup(kind: .router, formats: [], layers: 1, tensorCount: 0, bytesOnDisk: 0, residentBytes: 0)
            Self.count(m.router, into: &router)
            router.residentBytes = 4 * e * h + Checkpoint.packedBytes(.f32, matrices: 1, sources: 1, out: e, in: h)
            for bias in [m.routerBias, m.scoreCorrectionBias].compactMap({ $0 }) {
                Self.count(bias, into: &router, isWeight: false)
                router.residentBytes += 4 * e
            }
            groups.append(router)
            return groups
        }
    }

    /// A SwiGLU MLP stack (`matrices` experts, or 1): gate and up interleaved, down apart, each packed in its
    /// stored format (0 resident bytes for a type MoEKit cannot compute with).
    private static func mlpGroup(_ kind: Checkpoint.WeightGroup.Kind, _ mlp: GGUFMLPTensors, matrices: Int) -> Checkpoint.WeightGroup {
        var group = Checkpoint.WeightGroup(kind: kind, formats: [], layers: 1, tensorCount: 0, bytesOnDisk: 0, residentBytes: 0)
        for view in [mlp.gate, mlp.up, mlp.down] { count(view, into: &group) }
        let (f, h) = (mlp.gate.rows, mlp.gate.columns)
        group.residentBytes = Checkpoint.packedBytes(weightFormat(mlp.gate.type), matrices: matrices, sources: 2, out: f, in: h)
            + Checkpoint.packedBytes(weightFormat(mlp.down.type), matrices: matrices, sources: 1, out: h, in: f)
        return group
    }

    /// Adds `view` to `group`'s count and disk bytes; a weight's format to its formats.
    private static func count(_ view: GGUFTensorView, into group: inout Checkpoint.WeightGroup, isWeight: Bool = true) {
        group.tensorCount += 1
        group.bytesOnDisk += view.info.byteCount
        let format = formatName(view.type)
        if isWeight, !group.formats.contains(format) { group.formats.append(format) }
    }
}
