import Foundation
import Testing
@testable import MoEKit
import MoETestSupport

/// The fast ggml block panel decoders (`moe_kernels_ggml.c`, ``GGMLBlocks/decodePanel(_:_:blocks:into:isa:)``)
/// against the scalar reference, bit for bit, on every instruction set this CPU has: random stored blocks
/// (every byte pattern is a valid block) with the scale fields steered to the edge cases.
@Suite("ggml block decode kernels")
struct GGMLDecodeKernelTests {
    /// Byte offsets of a block's F16 scale fields.
    static func halfOffsets(_ type: GGMLBlockType) -> [Int] {
        switch type {
        case .q8_0, .q4_0, .q5_0: [0]
        case .q4_1, .q5_1, .q4_K, .q5_K: [0, 2]
        case .q6_K: [208]
        case .mxfp4: []
        }
    }

    /// An F16 scale: mostly finite normal, a quarter subnormal, some zeros, a few infinities and NaNs.
    static func randomHalf(_ g: inout SeededGenerator) -> UInt16 {
        let bits = UInt16.random(in: 0...UInt16.max, using: &g)
        switch Int.random(in: 0..<64, using: &g) {
        case 0..<16: return bits & 0x83FF  // subnormal (or ±0)
        case 16..<18: return bits & 0x8000  // ±0
        case 18: return (bits & 0x8000) | 0x7C00  // ±infinity
        case 19: return bits | 0x7C01  // NaN
        default: return bits & 0x7C00 == 0x7C00 ? bits & 0xBFFF : bits  // finite
        }
    }

    /// `blocks` panel rows of 32 random column blocks of `type`, edge cases forced in: Q8_0 codes −128,
    /// MXFP4 exponents 0x00, 0x01, 0xFE and 0xFF.
    static func randomPanel(_ type: GGMLBlockType, blocks: Int, seed: UInt64) -> [UInt8] {
        var g = SeededGenerator(seed: seed)
        let bytes = type.bytesPerBlock
        var panel = (0..<(blocks * PanelMatrices.width * bytes)).map { _ in UInt8.random(in: 0...255, using: &g) }
        for block in 0..<(blocks * PanelMatrices.width) {
            let base = block * bytes
            for offset in halfOffsets(type) {
                let half = randomHalf(&g)
                panel[base + offset] = UInt8(half & 0xFF)
                panel[base + offset + 1] = UInt8(half >> 8)
            }
            switch type {
            case .q8_0: panel[base + 2 + Int.random(in: 0..<32, using: &g)] = 0x80
            case .mxfp4: panel[base] = [0x00, 0x01, 0xFE, 0xFF, panel[base]][block % 5]
            default: break
            }
        }
        return panel
    }

    /// Equal bits everywhere, or both NaN (a NaN's payload is the hardware's choice); the first mismatch recorded.
    static func sameBits(_ a: [Float], _ b: [Float], _ label: String) -> Bool {
        guard a.count == b.count else { return false }
        for i in a.indices where a[i].bitPattern != b[i].bitPattern && !(a[i].isNaN && b[i].isNaN) {
            Issue.record("\(label): element \(i) (k \(i / PanelMatrices.width), column \(i % PanelMatrices.width)): \(a[i]) vs reference \(b[i])")
            return false
        }
        return true
    }

    @Test("every kernel decodes a panel slice bit for bit as the reference, and writes nothing past it", arguments: GGMLBlockType.allCases)
    func matchesReference(_ type: GGMLBlockType) {
        let width = PanelMatrices.width
        let counts = type.blockSize == 256 ? [1, 2, 3] : [1, 2, 7, 8]
        let guardCount = 2 * width
        let poison = Float(bitPattern: 0x7FC0_DEAD)
        for blocks in counts {
            let panel = Self.randomPanel(type, blocks: blocks, seed: UInt64(100 * blocks) + UInt64(type.ggmlTypeID))
            let count = blocks * type.blockSize * width
            var reference = [Float](repeating: poison, count: count)
            panel.withUnsafeBytes { p in
                reference.withUnsafeMutableBufferPointer { GGMLBlocks.decodePanelReference(type, p.baseAddress!, blocks: blocks, into: $0.baseAddress!) }
            }
            #expect(!reference.contains { $0.bitPattern == poison.bitPattern }, "the reference writes every element")
            for isa in TileKernel.ISA.available {
                var out = [Float](repeating: poison, count: count + guardCount)
                panel.withUnsafeBytes { p in
                    out.withUnsafeMutableBufferPointer { GGMLBlocks.decodePanel(type, p.baseAddress!, blocks: blocks, into: $0.baseAddress!, isa: isa) }
                }
                let label = "\(type) \(isa) blocks \(blocks)"
                let same = Self.sameBits(Array(out[..<count]), reference, label)
                #expect(same, "\(label)")
                #expect(out[count...].allSatisfy { $0.bitPattern == poison.bitPattern }, "\(label): wrote past the slice")
            }
        }
    }

    @Test("the kernels read no byte past the panel: it ends where an unreadable page begins", arguments: GGMLBlockType.allCases)
    func readsOnlyThePanel(_ type: GGMLBlockType) throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let panel = Self.randomPanel(type, blocks: 2, seed: 9)
        let length = (panel.count + page - 1) / page * page
        let base = try #require(mmap(nil, length + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        try #require(base != MAP_FAILED)
        defer { munmap(base, length + page) }
        #expect(mprotect(base + length, page, PROT_NONE) == 0)
        let start = base + (length - panel.count)
        panel.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: panel.count) }
        let count = 2 * type.blockSize * PanelMatrices.width
        var reference = [Float](repeating: .nan, count: count)
        reference.withUnsafeMutableBufferPointer { GGMLBlocks.decodePanelReference(type, start, blocks: 2, into: $0.baseAddress!) }
        for isa in TileKernel.ISA.available {
            var out = [Float](repeating: .nan, count: count)
            out.withUnsafeMutableBufferPointer { GGMLBlocks.decodePanel(type, start, blocks: 2, into: $0.baseAddress!, isa: isa) }
            let same = Self.sameBits(out, reference, "\(type) \(isa) at a page end")
            #expect(same)
        }
    }

    @Test("the edge cases occur: subnormal, infinite and NaN scales decode as the reference")
    func edgeCasesOccur() {
        // The generator's scale classes all appear in one 8-row Q8_0 panel (256 blocks).
        let panel = Self.randomPanel(.q8_0, blocks: 8, seed: 1)
        let scales = (0..<256).map { UInt16(panel[$0 * 34]) | UInt16(panel[$0 * 34 + 1]) << 8 }
        #expect(scales.contains { $0 & 0x7C00 == 0 && $0 & 0x3FF != 0 }, "subnormal")
        #expect(scales.contains { $0 & 0x7FFF == 0x7C00 }, "infinite")
        #expect(scales.contains { $0 & 0x7C00 == 0x7C00 && $0 & 0x3FF != 0 }, "NaN")
    }
}
