// The K-quants against Q8_K activations (Q4_K, Q5_K, Q6_K). Stub: no kernels yet.
extension Int8Dot {
    static func kQuantSupports(_ type: GGMLBlockType) -> Bool { false }
    static func kQuantLayout(_ type: GGMLBlockType, row: UnsafeMutableRawPointer) {}
    static func kQuantStoredLayout(_ type: GGMLBlockType, row: UnsafeRawPointer, into stored: UnsafeMutableRawPointer) {}
    static func kQuantReference(_ type: GGMLBlockType, rows: Int, blocks: Int, activations: Rows, panel: UnsafeRawPointer,
                                c: UnsafeMutablePointer<Float>, accumulate: Bool) {}
    static func kQuantMultiply(_ type: GGMLBlockType, isa: ISA, rows: Int, blocks: Int, activations: Rows, panel: UnsafeRawPointer,
                               c: UnsafeMutablePointer<Float>, accumulate: Bool) {}
}
