/// The integer dot products of ``ComputeMode/int8`` (llama.cpp's fast mode): ggml block weights as stored
/// (their bytes permuted once into the kernel's panel layout) against activations quantized per block
/// (``QuantizedActivations``). The one place that maps (block type × instruction set) to an int8 kernel.
///
/// The contract every kernel keeps, for `rows ≤ 8` rows and the 32 columns of one panel over `blocks`
/// consecutive k-blocks: `c[r·32 + n]` is the F32 sum, over the blocks in ascending order, of each block's
/// contribution, computed from exact integer sums and combined in F32 in the fixed order that the
/// reference (``reference(_:rows:blocks:activations:panel:c:accumulate:)``) spells out per type. With
/// `accumulate` the sum continues from `c`, so a call over blocks 0..<8 equals a call over 0..<4 then one
/// over 4..<8, bit for bit. A row's result depends on nothing but that row and the weights: not on
/// `rows`, the thread count, or the other rows of the batch.
enum Int8Dot {
    /// The instruction sets an int8 kernel can run on.
    enum ISA: Int, Sendable, Comparable, CaseIterable {
        /// The reference loops (Swift), reading the stored block layout.
        case portable = 0
        /// AVX2 (`vpmaddubsw` / `vpmaddwd`).
        case avx2 = 1
        /// AVX-512 VNNI (`vpdpbusd` on zmm) with AVX-512 BW.
        case avx512vnni = 2

        static func < (a: ISA, b: ISA) -> Bool { a.rawValue < b.rawValue }

        /// The best this CPU has, capped by `MOEKIT_ISA` like the F32 kernels (`avx2` caps it at AVX2, `swift`
        /// at portable).
        static let detected: ISA = {
            let level = TileKernel.ISA.detected
            if level >= .avx512 && CPUFeatures.detected.isSuperset(of: [.avx512bw, .avx512vnni]) { return .avx512vnni }
            return level >= .avx2 ? .avx2 : .portable
        }()

        /// Every level this CPU can run (tests compare each with the reference).
        static var available: [ISA] { allCases.filter { $0 <= detected } }

        /// `moe bench`'s name of the int8 kernels in use.
        var name: String {
            switch self {
            case .portable: "swift"
            case .avx2: "avx2"
            case .avx512vnni: "avx512-vnni"
            }
        }
    }

    /// One row block's quantized activations at a call's first k: row `r`'s codes at `quants + r·stride`,
    /// its block scales at `scales + r·stride / blockSize`, its 16-code sums at `sums + r·stride / 16`.
    struct Rows {
        var quants: UnsafePointer<Int8>
        var scales: UnsafePointer<Float>
        var sums: UnsafePointer<Int16>
        /// Inputs per row (the whole depth, not the call's).
        var stride: Int
    }

    /// Whether `type` has int8 kernels; a type without them is computed exactly (F32) in int8 mode.
    static func supports(_ type: GGMLBlockType) -> Bool {
        legacySupports(type) || kQuantSupports(type)
    }

    /// Permutes one panel row (the 32 columns' stored blocks of one k-block, column 0 first:
    /// `32 · bytesPerBlock` bytes) in place into the layout the int8 kernels read. Bytes are only moved.
    static func layout(_ type: GGMLBlockType, row: UnsafeMutableRawPointer) {
        if legacySupports(type) { legacyLayout(type, row: row) } else { kQuantLayout(type, row: row) }
    }

    /// The inverse of ``layout(_:row:)``: one permuted panel row back to the stored blocks, into `stored`.
    static func storedLayout(_ type: GGMLBlockType, row: UnsafeRawPointer, into stored: UnsafeMutableRawPointer) {
        if legacySupports(type) { legacyStoredLayout(type, row: row, into: stored) } else { kQuantStoredLayout(type, row: row, into: stored) }
    }

    /// The specification: plain loops over the STORED blocks (`panel` = `blocks` unpermuted panel rows).
    static func reference(_ type: GGMLBlockType, rows: Int, blocks: Int, activations: Rows, panel: UnsafeRawPointer,
                          c: UnsafeMutablePointer<Float>, accumulate: Bool) {
        if legacySupports(type) {
            legacyReference(type, rows: rows, blocks: blocks, activations: activations, panel: panel, c: c, accumulate: accumulate)
        } else {
            kQuantReference(type, rows: rows, blocks: blocks, activations: activations, panel: panel, c: c, accumulate: accumulate)
        }
    }

    /// The fast kernel on `isa` over PERMUTED panel rows (``layout(_:row:)``); `.portable` restores each row's
    /// stored layout into a buffer and runs the reference. Bit for bit the reference on every ISA.
    static func multiply(_ type: GGMLBlockType, isa: ISA, rows: Int, blocks: Int, activations: Rows, panel: UnsafeRawPointer,
                         c: UnsafeMutablePointer<Float>, accumulate: Bool) {
        if isa == .portable {
            let rowBytes = PanelMatrices.width * type.bytesPerBlock
            withUnsafeTemporaryAllocation(byteCount: rowBytes, alignment: 64) { buffer in
                let stored = buffer.baseAddress.unsafelyUnwrapped
                var a = activations
                for b in 0..<blocks {
                    storedLayout(type, row: panel + b * rowBytes, into: stored)
                    reference(type, rows: rows, blocks: 1, activations: a, panel: UnsafeRawPointer(stored), c: c, accumulate: accumulate || b > 0)
                    // One activation scale per weight block: every type's activation blocks are its own size.
                    a.quants += type.blockSize
                    a.scales += 1
                    a.sums += type.blockSize / QuantizedActivations.sumGroup
                }
            }
            return
        }
        if legacySupports(type) {
            legacyMultiply(type, isa: isa, rows: rows, blocks: blocks, activations: activations, panel: panel, c: c, accumulate: accumulate)
        } else {
            kQuantMultiply(type, isa: isa, rows: rows, blocks: blocks, activations: activations, panel: panel, c: c, accumulate: accumulate)
        }
    }
}
