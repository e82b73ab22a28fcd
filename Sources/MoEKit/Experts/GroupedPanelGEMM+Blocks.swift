extension GroupedPanelGEMM {
    /// ``multiply(_:panel:isa:a:panels:weights:source:into:)`` for ggml block panels, exact: each K-block
    /// (``TileKernel/depthBlock`` k, whole blocks) of the item's panel is decoded once, on `isa`, bit for bit as the
    /// reference decoders (``GGMLBlocks``), into an F32 panel slice `[kc][32]` (32 KiB, in L1) that the F32 micro-kernel
    /// then multiplies by every row tile of the item. Same decoded weights as the reference, F32 accumulation
    /// in ascending k: the result does not depend on the thread count or the batch.
    static func multiplyBlocks(_ item: Item, panel: Int, type: GGMLBlockType, isa: TileKernel.ISA, a: PanelRows,
                               panels: PanelMatrices, weights: PanelPointers, source: Int, into c: UnsafeMutablePointer<Float>) {
        let k = panels.inFeatures
        let width = PanelMatrices.width
        let rowBytes = PanelMatrices.rowBytes(panels.element)
        let b = weights.values + panels.panelOffset(matrix: item.expert, panel: panel, source: source)
        let firstTile = a.firstTile(item, units: k)
        withUnsafeTemporaryAllocation(byteCount: TileKernel.depthBlock * width * 4, alignment: 64) { raw in
            let slice = raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: Float.self)
            var k0 = 0
            repeat {
                let kc = min(TileKernel.depthBlock, k - k0)
                GGMLBlocks.decodePanel(type, b + (k0 / type.blockSize) * rowBytes, blocks: kc / type.blockSize, into: slice, isa: isa)
                var r = 0
                while r < item.rows {
                    TileKernel.multiply(isa: isa, element: .f32, rows: min(TileKernel.rows, item.rows - r), depth: kc,
                                        a: firstTile + 4 * (r * k + k0 * TileKernel.rows), b: UnsafeRawPointer(slice), scales: nil,
                                        c: c + r * width, accumulate: k0 > 0)
                    r += TileKernel.rows
                }
                k0 += kc
            } while k0 < k
        }
    }
}
