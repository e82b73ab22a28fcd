import CMoEKernels

extension GGMLBlocks {
    /// ``decodePanelReference(_:_:blocks:into:)`` on `isa`: the AVX-512 or AVX2 decoders of
    /// `moe_kernels_ggml.c` (16 or 8 columns per vector, bit for bit the reference), or the reference itself
    /// (`.portable`).
    static func decodePanel(_ type: GGMLBlockType, _ panel: UnsafeRawPointer, blocks: Int, into out: UnsafeMutablePointer<Float>,
                            isa: TileKernel.ISA) {
        let (id, count) = (Int32(type.ggmlTypeID), Int32(blocks))
        let bytes = panel.assumingMemoryBound(to: UInt8.self)
        switch isa {
        case .avx512: moe_ggml_decode_panel_avx512(id, bytes, count, out)
        case .avx2: moe_ggml_decode_panel_avx2(id, bytes, count, out)
        case .portable: decodePanelReference(type, panel, blocks: blocks, into: out)
        }
    }
}
