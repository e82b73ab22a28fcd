extension GroupedPanelGEMM {
    /// Inputs per K-block of the int8 path: a 1024-input slice of a panel (Q8_0: 34 KiB, Q4_K: 18 KiB) stays in
    /// L1/L2 while the item's row tiles pass over it.
    static let int8DepthBlock = 1024

    /// ``multiply(_:panel:isa:a:panels:weights:source:into:)`` for ``PanelMatrices/Element/int8Blocks(_:)``
    /// panels (``ComputeMode/int8``): the item's quantized rows (``PanelRows/quantized``) times the panel, by
    /// ``Int8Dot``, one 8-row tile at a time, K-block by K-block in ascending order (each call continues the
    /// sums of the last: the result is that of one call over the whole depth).
    static func multiplyInt8(_ item: Item, panel: Int, type: GGMLBlockType, isa: TileKernel.ISA, a: PanelRows,
                             panels: PanelMatrices, weights: PanelPointers, source: Int, into c: UnsafeMutablePointer<Float>) {
        guard let quantized = a.quantized else { return }  // PackedRows.withPanelRows always quantizes for these panels
        let k = panels.inFeatures
        let kind = QuantizedActivations.Kind(type)
        let (tile, width) = (TileKernel.rows, PanelMatrices.width)
        let rowBytes = PanelMatrices.rowBytes(panels.element)
        let panelBase = weights.values + panels.panelOffset(matrix: item.expert, panel: panel, source: source)
        let firstPaddedRow = a.rows.paddedRow[item.firstRow]
        let blocks = k / type.blockSize, chunk = max(1, int8DepthBlock / type.blockSize)
        let int8ISA = Int8Dot.ISA(isa)
        var b0 = 0
        repeat {
            let count = min(chunk, blocks - b0)
            let k0 = b0 * type.blockSize
            var r = 0
            while r < item.rows {
                let row = firstPaddedRow + r
                let rows = Int8Dot.Rows(quants: quantized.quants + row * k + k0,
                                        scales: quantized.scales + row * (k / kind.blockSize) + k0 / kind.blockSize,
                                        sums: quantized.sums + row * (k / QuantizedActivations.sumGroup) + k0 / QuantizedActivations.sumGroup,
                                        stride: k)
                Int8Dot.multiply(type, isa: int8ISA, rows: min(tile, item.rows - r), blocks: count, activations: rows,
                                 panel: panelBase + b0 * rowBytes, c: c + r * width, accumulate: b0 > 0)
                r += tile
            }
            b0 += count
        } while b0 < blocks
    }
}

extension PackedRows {
    /// Calls `body` with the A side of a ``GroupedPanelGEMM`` region over `panels`: these tiles, and for int8
    /// panels (``ComputeMode/int8``) the rows quantized first, as the panels' block type pairs them
    /// (``QuantizedActivations``).
    func withPanelRows<R>(for panels: PanelMatrices, threads: Int, _ body: (PanelRows) -> R) -> R {
        withTiles { tiles in
            guard case .int8Blocks(let type) = panels.element else { return body(PanelRows(rows: self, tiles: tiles)) }
            let quantized = QuantizedActivations(self, kind: .init(type), threads: threads)
            return quantized.withPointers { q, d, s in
                body(PanelRows(rows: self, tiles: tiles, quantized: Int8Dot.Rows(quants: q, scales: d, sums: s, stride: depth)))
            }
        }
    }
}

extension Int8Dot.ISA {
    /// The int8 kernels for F32 micro-kernels capped at `isa` (tests and `MOEKIT_ISA` force lower levels alike).
    init(_ isa: TileKernel.ISA) {
        let cap: Int8Dot.ISA = switch isa {
        case .portable: .portable
        case .avx2: .avx2
        case .avx512: .avx512vnni
        }
        self = Swift.min(cap, Int8Dot.ISA.detected)
    }
}
