/// A GGUF block's feed-forward tensors as MoEKit blocks: the weights stay where they lie in the
/// mapped file, in the ggml format the file stores (``StoredMatrices`` views, no copy), and are packed
/// once by ``ExpertWeights`` as a safetensors checkpoint's are (``Checkpoint/feedForward(layer:threads:residency:progress:)``).
extension GGUFModel {
    /// The ggml types MoEKit's kernels compute with: F32, F16, BF16 and the block types of
    /// ``GGMLBlockType`` (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, MXFP4).
    public static func canCompute(_ type: GGMLType) -> Bool { weightFormat(type) != nil }

    /// The feed-forward block of block `layer` (`blk.N`): the MoE block for a sparse block, the dense MLP
    /// otherwise.
    ///
    /// Routed experts, shared expert and dense MLP are viewed in the mapped file in their stored format (F32,
    /// F16, BF16 or a ggml block type; gate and up must share one, down may differ, as `Q4_K_M` files store
    /// some `ffn_down_exps` as Q6_K), packed once (``ExpertWeights``), their file pages given back as they are
    /// packed. The router and the small vectors (router bias, gpt-oss expert biases, deepseek2 `exp_probs_b`,
    /// qwen2moe's shared-expert gate) are read as F32; a quantized router is dequantized (it is `E × H`).
    /// A layer whose packed experts cannot fit in the memory available is refused before anything is
    /// allocated (``MemoryBudget``).
    /// - Parameters:
    ///   - layer: the block, `blk.layer`.
    ///   - threads: packing threads.
    ///   - residency: pack the weights once (the default) or read F32, F16 and BF16 ones in place
    ///     (``WeightResidency``; block-quantized types are packed either way).
    ///   - compute: ``ComputeMode/f32`` (exact, the default) or ``ComputeMode/int8`` (llama.cpp's fast mode for the
    ///     block types that have int8 kernels; the others stay exact).
    ///   - progress: told how far the routed experts' packing has come, after each expert matrix.
    /// - Throws: ``GGUFError`` (layer out of range, a type MoEKit cannot compute with, gate and up in two
    ///   formats), ``CheckpointError`` (a NaN or infinite weight or vector element, naming the tensor, its
    ///   file and the expert or element; not enough memory).
    public func feedForward(layer: Int, threads: Int = Parallel.defaultThreadCount, residency: WeightResidency = .packed,
                            compute: ComputeMode = .f32, progress: ((LoadProgress) -> Void)? = nil) throws -> FeedForward {
        let tensors = try self.layer(layer)
        switch tensors.feedForward {
        case .dense(let mlp):
            return .dense(try denseMLP(mlp, residency: residency, compute: compute))
        case .moe(let m):
            let moe = config.moe
            let (e, h) = (moe.expertCount, moe.hiddenSize)
            let router = try Router(config: moe, weight: try Tensor(shape: [e, h], storage: try Self.floats(m.router)),
                                    bias: try m.routerBias.map(Self.floats),
                                    correctionBias: try m.scoreCorrectionBias.map(Self.floats))
            var shared: SharedExpert?
            if let mlp = m.shared {
                shared = try SharedExpert(mlp: try denseMLP(mlp, residency: residency, compute: compute), gateWeight: try m.sharedGate.map(Self.floats))
            }
            let experts = try expertWeights(m, layer: layer, threads: threads, residency: residency, compute: compute, progress: progress)
            return .moe(try MoEBlock(config: moe, router: router, experts: experts, sharedExpert: shared))
        }
    }

    /// Views the routed experts as stored, checks that their packed copy fits in memory, and packs them once.
    private func expertWeights(_ m: GGUFMoETensors, layer: Int, threads: Int, residency: WeightResidency, compute: ComputeMode,
                               progress: ((LoadProgress) -> Void)?) throws -> ExpertWeights {
        try Self.sameFormat(gate: m.gate, up: m.up)
        let gate = try Self.stored(m.gate), up = try Self.stored(m.up), down = try Self.stored(m.down)
        let (e, f, h) = (config.moe.expertCount, config.moe.expertIntermediateSize, config.moe.hiddenSize)
        let bias = { (view: GGUFTensorView?, columns: Int) throws -> Tensor<Float>? in
            try view.map { try Tensor(shape: [e, columns], storage: try Self.floats($0)) }
        }
        let (gateBias, upBias, downBias) = (try bias(m.gateBias, f), try bias(m.upBias, f), try bias(m.downBias, h))
        let formats = gate.format == down.format ? "\(gate.format)" : "\(gate.format)+\(down.format)"
        try MemoryBudget.check(ExpertWeights.bytesNeeded(gate: gate, up: up, down: down, compute: compute, residency: residency),
                               for: "layer \(layer)'s routed experts (\(formats))")
        var done = LoadProgress(bytes: 0, totalBytes: gate.storedBytes + up.storedBytes + down.storedBytes,
                                matrices: 0, totalMatrices: 3 * gate.count)
        do {
            return try ExpertWeights(kind: config.moe.expert, gate: gate, up: up, down: down,
                                     gateBias: gateBias, upBias: upBias, downBias: downBias, compute: compute,
                                     residency: residency, threads: threads) { bytes, matrices in
                done.bytes += bytes
                done.matrices += matrices
                progress?(done)
            }
        } catch WeightError.nonFinite(let matrix, let source) where (0...2).contains(source) {
            let view = [m.gate, m.up, m.down][source]
            throw CheckpointError.nonFiniteWeight(name: view.name, file: view.path, expert: matrix)
        }
    }

    /// A dense SwiGLU MLP (a dense block's or the shared expert), packed once; a NaN or infinite weight is
    /// refused naming its tensor and element.
    private func denseMLP(_ mlp: GGUFMLPTensors, residency: WeightResidency, compute: ComputeMode) throws -> DenseMLP {
        try Self.sameFormat(gate: mlp.gate, up: mlp.up)
        let gate = try Self.stored(mlp.gate), up = try Self.stored(mlp.up), down = try Self.stored(mlp.down)
        do {
            return try DenseMLP(gate: gate, up: up, down: down, compute: compute, residency: residency)
        } catch WeightError.nonFinite(_, let source) where (0...2).contains(source) {
            let (view, stored) = [(mlp.gate, gate), (mlp.up, up), (mlp.down, down)][source]
            throw CheckpointError.nonFinite(name: view.name, file: view.path, index: Self.firstNonFinite(stored) ?? 0)
        }
    }

    /// Gate and up are packed together (interleaved panels), so they must share a format.
    private static func sameFormat(gate: GGUFTensorView, up: GGUFTensorView) throws(GGUFError) {
        guard gate.type != up.type else { return }
        throw .wrongTensorType(path: up.path, tensor: up.name, type: up.type,
                               reason: "'\(gate.name)' is \(gate.type); MoEKit packs gate and up together and needs them in one format")
    }

    /// A tensor as a stack of `matrixCount` `[rows, columns]` matrices where it lies (no copy).
    /// - Throws: ``GGUFError/wrongTensorType(path:tensor:type:reason:)`` for a type MoEKit's kernels cannot
    ///   compute with.
    static func stored(_ view: GGUFTensorView) throws -> StoredMatrices {
        guard let format = weightFormat(view.type) else {
            throw GGUFError.wrongTensorType(path: view.path, tensor: view.name, type: view.type, reason: unsupportedReason)
        }
        if case .ggml(let blocks) = format {
            return try StoredMatrices(ggml: blocks, rows: view.rows, columns: view.columns, bases: view.matrixBases,
                                      rowStride: view.rowStride, pages: view.matrixPages, owners: view.owners)
        }
        let size = view.type.bytesPerBlock
        let pages = view.matrixPages
        return StoredMatrices(format: format, rows: view.rows, columns: view.columns, matrices: view.matrixBases.enumerated().map { m, base in
            .init(values: base, rowStride: view.rowStride, columnStride: size, scales: nil, scaleRowStride: 0, pages: pages[m])
        }, owners: view.owners)
    }

    /// The weight store's format of a ggml type (F32, F16, BF16, the ``GGMLBlockType``s); `nil` for the others.
    public static func weightFormat(_ type: GGMLType) -> WeightFormat? {
        switch type {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        default: GGMLBlockType(ggmlTypeID: type.rawValue).map { .ggml($0) }
        }
    }

    static let unsupportedReason = "MoEKit computes with F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K and MXFP4 weights; "
        + "use a model quantized to one of them"

    /// The values of a small tensor (router, biases, gates) in memory order, as F32: F32, F16 and BF16 widened
    /// exactly, a ggml block type dequantized as ggml does.
    /// - Throws: ``GGUFError/wrongTensorType(path:tensor:type:reason:)`` for another type,
    ///   ``CheckpointError/nonFinite(name:file:index:)`` for a NaN or infinite value.
    static func floats(_ view: GGUFTensorView) throws -> [Float] {
        let values: [Float]
        if let plain = view.floats() {
            values = plain
        } else if let blocks = GGMLBlockType(ggmlTypeID: view.type.rawValue), let base = view.bytes.baseAddress {
            let rows = view.info.elementCount / max(view.columns, 1)
            let perRow = view.columns / blocks.blockSize
            values = rows * view.columns == 0 ? [] : [Float](unsafeUninitializedCapacity: rows * view.columns) { out, count in
                for r in 0..<rows {
                    GGMLBlocks.dequantizeRow(blocks, base + r * view.rowStride, blocks: perRow, into: out.baseAddress.unsafelyUnwrapped + r * view.columns)
                }
                count = rows * view.columns
            }
        } else {
            throw GGUFError.wrongTensorType(path: view.path, tensor: view.name, type: view.type, reason: unsupportedReason)
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw CheckpointError.nonFinite(name: view.name, file: view.path, index: bad)
        }
        return values
    }

    /// The flat index (row · columns + column) of the first NaN or infinite element of a one-matrix stack,
    /// decoding ggml blocks a row at a time.
    private static func firstNonFinite(_ stored: StoredMatrices) -> Int? {
        var row = [Float](repeating: 0, count: stored.columns)
        for r in 0..<stored.rows {
            if case .ggml(let type) = stored.format {
                row.withUnsafeMutableBufferPointer { out in
                    GGMLBlocks.dequantizeRow(type, stored.ggmlBlock(type, matrix: 0, row: r, block: 0), blocks: stored.columns / type.blockSize,
                                             into: out.baseAddress.unsafelyUnwrapped)
                }
            } else {
                for c in 0..<stored.columns { row[c] = stored.element(matrix: 0, row: r, column: c) }
            }
            if let c = row.firstIndex(where: { !$0.isFinite }) { return r * stored.columns + c }
        }
        return nil
    }
}
