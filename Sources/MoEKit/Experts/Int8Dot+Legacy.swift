// The 32-input block types against Q8_0 activations (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, MXFP4). Stub: no kernels yet.
extension Int8Dot {
    static func legacySupports(_ type: GGMLBlockType) -> Bool { false }
    static func legacyLayout(_ type: GGMLBlockType, row: UnsafeMutableRawPointer) {}
    static func legacyStoredLayout(_ type: GGMLBlockType, row: UnsafeRawPointer, into stored: UnsafeMutableRawPointer) {}
    static func legacyReference(_ type: GGMLBlockType, rows: Int, blocks: Int, activations: Rows, panel: UnsafeRawPointer,
                                c: UnsafeMutablePointer<Float>, accumulate: Bool) {}
    static func legacyMultiply(_ type: GGMLBlockType, isa: ISA, rows: Int, blocks: Int, activations: Rows, panel: UnsafeRawPointer,
                               c: UnsafeMutablePointer<Float>, accumulate: Bool) {}
}
