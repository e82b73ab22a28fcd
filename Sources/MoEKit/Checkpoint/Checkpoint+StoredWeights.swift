/// Views of a checkpoint's weights as stored (``StoredMatrices`` over the mapped files): every stored
/// layout becomes a base pointer and strides here, and the packing pass reads the file bytes once.
/// Also where each quantized format's companion tensors are found and checked.
extension Checkpoint {
    /// One `[rows, columns]` linear weight as a one-matrix stack: F32, BF16, F16, or (with
    /// `quant_method fp8`) F8_E4M3 plus its `weight_scale_inv`.
    /// - Throws: ``CheckpointError`` naming the file and tensor.
    func linear(_ name: String, rows: Int, columns: Int) throws -> StoredMatrices {
        try stack([name], rows: rows, columns: columns)
    }

    /// Per-expert `[rows, columns]` weights stacked (no copy: one base pointer per expert). All in one dtype.
    /// - Throws: ``CheckpointError`` naming the file and tensor.
    func stack(_ names: [String], rows: Int, columns: Int) throws -> StoredMatrices {
        var matrices: [StoredMatrices.Matrix] = []
        var owners: [AnyObject] = []
        var format: WeightFormat?
        var scaleType = StoredMatrices.ScaleType.f32
        for name in names {
            let view = try store.view(name)
            guard view.shape == [rows, columns] else {
                throw CheckpointError.wrongShape(name: name, file: view.path, expected: [rows, columns], actual: view.shape)
            }
            let matrix: StoredMatrices.Matrix
            let this: WeightFormat
            switch view.dtypeName {
            case "F32", "BF16", "F16":
                // FP8 checkpoints may keep some layers unquantized (modules_to_not_convert): read as stored.
                this = view.dtypeName == "F32" ? .f32 : view.dtypeName == "BF16" ? .bf16 : .f16
                let size = this == .f32 ? 4 : 2
                matrix = .init(values: view.base, rowStride: columns * size, columnStride: size, scales: nil, scaleRowStride: 0, pages: view.pages)
            case "F8_E4M3":
                guard case .fp8(let br, let bc) = config.quantization else {
                    throw CheckpointError.badQuantization(name: name, file: view.path,
                                                          reason: "is F8_E4M3, but config.json has no quantization_config with quant_method fp8")
                }
                this = .fp8E4M3(blockRows: br, blockColumns: bc)
                do { _ = try PanelMatrices.element(for: this, compute: .f32) } catch {
                    throw CheckpointError.badQuantization(name: name, file: view.path,
                                                          reason: "is F8_E4M3 in \(br)x\(bc) blocks (config.json weight_block_size), which MoEKit cannot pack: \(error)")
                }
                let scale = try fp8Scale(of: name, rows: rows, columns: columns, blockRows: br, blockColumns: bc)
                scaleType = scale.type
                matrix = .init(values: view.base, rowStride: columns, columnStride: 1, scales: scale.view.base,
                               scaleRowStride: scale.rowStride, pages: view.pages)
            default:
                throw CheckpointError.wrongDType(name: name, file: view.path, dtype: view.dtypeName)
            }
            if let format, format != this {
                throw CheckpointError.badQuantization(name: name, file: view.path,
                                                      reason: "is stored as \(this), but \(names[0]) of the same stack as \(format)")
            }
            format = this
            matrices.append(matrix)
            owners.append(view.pages.file)
        }
        return StoredMatrices(format: format ?? .f32, rows: rows, columns: columns, matrices: matrices, scaleType: scaleType, owners: owners)
    }

    /// The `weight_scale_inv` of an FP8 weight: `[⌈rows/br⌉, ⌈columns/bc⌉]`, F32, BF16 or F16, finite.
    private func fp8Scale(of name: String, rows: Int, columns: Int, blockRows br: Int, blockColumns bc: Int) throws
        -> (view: TensorView, type: StoredMatrices.ScaleType, rowStride: Int) {
        let scaleName = name + "_scale_inv"
        guard store.contains(scaleName) else {
            throw CheckpointError.badQuantization(name: name, file: store.path(of: name),
                                                  reason: "is F8_E4M3 but its scale tensor '\(scaleName)' is missing")
        }
        let view = try store.view(scaleName)
        let shape = [(rows + br - 1) / br, (columns + bc - 1) / bc]
        guard view.shape == shape else {
            throw CheckpointError.badQuantization(name: scaleName, file: view.path,
                                                  reason: "has shape \(view.shape), but a [\(rows), \(columns)] weight in \(br)x\(bc) blocks needs \(shape)")
        }
        let type: StoredMatrices.ScaleType
        switch view.dtypeName {
        case "F32": type = .f32
        case "BF16": type = .bf16
        case "F16": type = .f16
        default:
            throw CheckpointError.badQuantization(name: scaleName, file: view.path, reason: "has dtype \(view.dtypeName); FP8 scales must be F32, BF16 or F16")
        }
        let size = type == .f32 ? 4 : 2
        for i in 0..<(shape[0] * shape[1]) {
            let value: Float = switch type {
            case .f32: view.base.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
            case .bf16: WeightDecoding.bf16(view.base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            default: WeightDecoding.f16(view.base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            }
            guard value.isFinite else { throw CheckpointError.nonFinite(name: scaleName, file: view.path, index: i) }
        }
        return (view, type, shape[1] * size)
    }

    /// A fused `[E, 2F, H]` or `[E, H, 2F]` gate/up tensor as two views (gate, up), and the fused down.
    func fusedExperts(gateUp gateUpName: String, down downName: String, layout: LayerTensorNames.FusedLayout) throws
        -> (gate: StoredMatrices, up: StoredMatrices, down: StoredMatrices) {
        let (e, h, f) = (config.moe.expertCount, config.moe.hiddenSize, config.moe.expertIntermediateSize)
        let transposed = layout != .linearChunked
        let gateUp = try store.view(gateUpName), down = try store.view(downName)
        let gateUpShape = transposed ? [e, h, 2 * f] : [e, 2 * f, h], downShape = transposed ? [e, f, h] : [e, h, f]
        guard gateUp.shape == gateUpShape else {
            throw CheckpointError.wrongShape(name: gateUpName, file: gateUp.path, expected: gateUpShape, actual: gateUp.shape)
        }
        guard down.shape == downShape else { throw CheckpointError.wrongShape(name: downName, file: down.path, expected: downShape, actual: down.shape) }
        let format = try plainFormat(gateUp), downFormat = try plainFormat(down)
        let size = format == .f32 ? 4 : 2, downSize = downFormat == .f32 ? 4 : 2
        let slab = 2 * f * h * size, downSlab = f * h * downSize
        // Element (o, i) of expert m's gate and up, as (first byte, row stride, column stride).
        func projection(up: Bool) -> StoredMatrices {
            let (offset, rowStride, columnStride): (Int, Int, Int) = switch layout {
            case .linearChunked: (up ? f * h * size : 0, h * size, size)
            case .transposedChunked: (up ? f * size : 0, size, 2 * f * size)
            case .transposedInterleaved: (up ? size : 0, 2 * size, 2 * f * size)
            }
            return StoredMatrices(format: format, rows: f, columns: h, matrices: (0..<e).map { m in
                .init(values: gateUp.base + m * slab + offset, rowStride: rowStride, columnStride: columnStride, scales: nil, scaleRowStride: 0,
                      pages: gateUp.pages((m * slab)..<((m + 1) * slab)))
            }, owners: [gateUp.pages.file])
        }
        let downMatrices = StoredMatrices(format: downFormat, rows: h, columns: f, matrices: (0..<e).map { m in
            .init(values: down.base + m * downSlab, rowStride: transposed ? downSize : f * downSize, columnStride: transposed ? h * downSize : downSize,
                  scales: nil, scaleRowStride: 0, pages: down.pages((m * downSlab)..<((m + 1) * downSlab)))
        }, owners: [down.pages.file])
        return (projection(up: false), projection(up: true), downMatrices)
    }

    /// GPT-OSS's MXFP4 experts: `*_blocks` U8 `[E, rows, cols/32, 16]` and `*_scales` U8 E8M0
    /// `[E, rows, cols/32]`; gate/up rows interleaved (gate 2j, up 2j + 1).
    func mxfp4Experts(gateUp: String, down: String) throws -> (gate: StoredMatrices, up: StoredMatrices, down: StoredMatrices) {
        let (e, h, f) = (config.moe.expertCount, config.moe.hiddenSize, config.moe.expertIntermediateSize)
        let group = WeightFormat.mxfp4Group
        guard config.quantization == .mxfp4 else {
            throw CheckpointError.badQuantization(name: gateUp + "_blocks", file: store.path(of: gateUp + "_blocks"),
                                                  reason: "holds MXFP4 blocks, but config.json \(config.quantization.map { "has quant_method \($0)" } ?? "has no quantization_config"); MXFP4 needs quant_method mxfp4")
        }
        for (what, size) in [("hidden_size", h), ("intermediate_size", f)] where size % group != 0 {
            throw CheckpointError.badQuantization(name: gateUp + "_blocks", file: store.path(of: gateUp + "_blocks"),
                                                  reason: "MXFP4 needs \(what) = \(size) to be a multiple of 32")
        }
        func pair(_ base: String, rows: Int, columns: Int) throws -> (blocks: TensorView, scales: TensorView) {
            let blocks = try store.view(base + "_blocks"), scales = try store.view(base + "_scales")
            let groups = columns / group
            for (view, shape) in [(blocks, [e, rows, groups, 16]), (scales, [e, rows, groups])] {
                guard view.dtypeName == "U8" else {
                    throw CheckpointError.badQuantization(name: view.name, file: view.path, reason: "has dtype \(view.dtypeName); MXFP4 blocks and scales are U8")
                }
                guard view.shape == shape else {
                    throw CheckpointError.badQuantization(name: view.name, file: view.path,
                                                          reason: "has shape \(view.shape), but MXFP4 [\(e), \(rows), \(columns)] needs \(shape)")
                }
            }
            if let bad = UnsafeRawBufferPointer(rebasing: scales.bytes[...]).firstIndex(of: 0xFF) {
                throw CheckpointError.badQuantization(name: scales.name, file: scales.path, reason: "element \(bad) is 0xFF, the E8M0 NaN scale")
            }
            return (blocks, scales)
        }
        let gu = try pair(gateUp, rows: 2 * f, columns: h), dn = try pair(down, rows: h, columns: f)
        let (rowBytes, groups) = (h / 2, h / group)
        func projection(up: Bool) -> StoredMatrices {
            StoredMatrices(format: .mxfp4, rows: f, columns: h, matrices: (0..<e).map { m in
                .init(values: gu.blocks.base + (m * 2 * f + (up ? 1 : 0)) * rowBytes, rowStride: 2 * rowBytes, columnStride: 0,
                      scales: gu.scales.base + (m * 2 * f + (up ? 1 : 0)) * groups, scaleRowStride: 2 * groups,
                      pages: gu.blocks.pages((m * 2 * f * rowBytes)..<((m + 1) * 2 * f * rowBytes)))
            }, scaleType: .e8m0, owners: [gu.blocks.pages.file, gu.scales.pages.file])
        }
        let (downRowBytes, downGroups) = (f / 2, f / group)
        let downMatrices = StoredMatrices(format: .mxfp4, rows: h, columns: f, matrices: (0..<e).map { m in
            .init(values: dn.blocks.base + m * h * downRowBytes, rowStride: downRowBytes, columnStride: 0,
                  scales: dn.scales.base + m * h * downGroups, scaleRowStride: downGroups,
                  pages: dn.blocks.pages((m * h * downRowBytes)..<((m + 1) * h * downRowBytes)))
        }, scaleType: .e8m0, owners: [dn.blocks.pages.file, dn.scales.pages.file])
        return (projection(up: false), projection(up: true), downMatrices)
    }

    /// F32, BF16 or F16, else a typed refusal naming the tensor.
    private func plainFormat(_ view: TensorView) throws -> WeightFormat {
        switch view.dtypeName {
        case "F32": .f32
        case "BF16": .bf16
        case "F16": .f16
        default: throw CheckpointError.wrongDType(name: view.name, file: view.path, dtype: view.dtypeName)
        }
    }
}
