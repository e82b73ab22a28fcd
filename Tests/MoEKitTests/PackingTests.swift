import Testing
@testable import MoEKit

/// The packing pass (``PanelMatrices/init(packing:compute:threads:progress:)``) against the first packer
/// MoEKit had (kept here, as it was, as the specification of the panel layout): byte for byte, for every
/// element type, edge panels (fewer than 32 live rows, fewer than 8), odd depths, two interleaved sources,
/// transposed stored layouts, and the same non-finite detection.
@Suite("Packing")
struct PackingTests {
    /// The original packer: panel `p` of source `s` of matrix `m`, one output column at a time.
    static func referencePack(_ panels: PanelMatrices, _ stored: StoredMatrices, matrix m: Int, panel p: Int, source s: Int) -> Bool {
        var bad = false
        let w = PanelMatrices.width
        let out = panels.values.pointer + panels.panelOffset(matrix: m, panel: p, source: s)
        let x = stored.matrices[m]
        let k = panels.inFeatures
        let live = min(w, panels.outFeatures - p * w)
        switch panels.element {
        case .f32:
            let dst = out.assumingMemoryBound(to: UInt32.self)
            for n in 0..<w {
                guard n < live else { for i in 0..<k { dst[i * w + n] = 0 }; continue }
                let row = x.values + (p * w + n) * x.rowStride
                for i in 0..<k {
                    let bits = row.loadUnaligned(fromByteOffset: i * x.columnStride, as: UInt32.self)
                    bad = bad || bits & 0x7F80_0000 == 0x7F80_0000
                    dst[i * w + n] = bits
                }
            }
        case .bf16, .f16:
            let dst = out.assumingMemoryBound(to: UInt16.self)
            for n in 0..<w {
                guard n < live else { for i in 0..<k { dst[i * w + n] = 0 }; continue }
                let row = x.values + (p * w + n) * x.rowStride
                let mask: UInt16 = panels.element == .bf16 ? 0x7F80 : 0x7C00  // exponent all ones: NaN or infinity
                var any: UInt16 = 0
                if x.columnStride == 2 {
                    for i in 0..<k {
                        let bits = row.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                        any |= (bits & mask) == mask ? 1 : 0
                        dst[i * w + n] = bits
                    }
                } else {
                    for i in 0..<k {
                        let bits = row.loadUnaligned(fromByteOffset: i * x.columnStride, as: UInt16.self)
                        any |= (bits & mask) == mask ? 1 : 0
                        dst[i * w + n] = bits
                    }
                }
                bad = bad || any != 0
            }
        case .bf16Pairs:
            let dst = out.assumingMemoryBound(to: UInt32.self)
            let pairs = (k + 1) / 2
            for n in 0..<w {
                guard n < live else { for i in 0..<pairs { dst[i * w + n] = 0 }; continue }
                let row = x.values + (p * w + n) * x.rowStride
                for kp in 0..<pairs {
                    let low = UInt32(row.loadUnaligned(fromByteOffset: 2 * kp * x.columnStride, as: UInt16.self))
                    let high = 2 * kp + 1 < k ? UInt32(row.loadUnaligned(fromByteOffset: (2 * kp + 1) * x.columnStride, as: UInt16.self)) : 0
                    bad = bad || low & 0x7F80 == 0x7F80 || high & 0x7F80 == 0x7F80
                    dst[kp * w + n] = low | high << 16
                }
            }
        case .fp8(let group):
            let dst = out.assumingMemoryBound(to: UInt8.self)
            let scaleOut = (panels.scales.unsafelyUnwrapped.pointer + panels.scaleOffset(matrix: m, panel: p, source: s)).assumingMemoryBound(to: Float.self)
            let groups = (k + group - 1) / group
            for n in 0..<w {
                guard n < live else {
                    for i in 0..<k { dst[i * w + n] = 0 }
                    for g in 0..<groups { scaleOut[g * w + n] = 0 }
                    continue
                }
                let o = p * w + n
                let row = (x.values + o * x.rowStride).assumingMemoryBound(to: UInt8.self)
                var any: UInt8 = 0
                for i in 0..<k {
                    any |= (row[i] & 0x7F) == 0x7F ? 1 : 0
                    dst[i * w + n] = row[i]
                }
                bad = bad || any != 0
                for g in 0..<groups { scaleOut[g * w + n] = stored.scale(matrix: m, row: o, column: g * group) }
            }
        case .mxfp4:
            let dst = out.assumingMemoryBound(to: UInt8.self)
            let scaleOut = (panels.scales.unsafelyUnwrapped.pointer + panels.scaleOffset(matrix: m, panel: p, source: s)).assumingMemoryBound(to: UInt8.self)
            let group = WeightFormat.mxfp4Group
            let groups = (k + group - 1) / group
            let half = w / 2
            // Nibble i of a stored row: byte i / 2, low half for even i.
            func code(_ row: UnsafePointer<UInt8>?, _ i: Int) -> UInt8 {
                guard let row else { return 0 }
                let byte = row[i / 2]
                return i % 2 == 0 ? byte & 0xF : byte >> 4
            }
            for j in 0..<half {
                let low = j < live ? (x.values + (p * w + j) * x.rowStride).assumingMemoryBound(to: UInt8.self) : nil
                let high = j + half < live ? (x.values + (p * w + j + half) * x.rowStride).assumingMemoryBound(to: UInt8.self) : nil
                // Whole quads of k: 64 bytes, column j's word holding k, k + 1, k + 2, k + 3; then 16-byte rows.
                for i in 0..<k {
                    let at = i < k - k % 4 ? (i / 4) * 64 + j * 4 + i % 4 : i * 16 + j
                    dst[at] = code(low, i) | code(high, i) << 4
                }
            }
            for n in 0..<w {
                for g in 0..<groups {
                    scaleOut[g * w + n] = n < live ? stored.mxfp4Scale(matrix: m, row: p * w + n, column: g * group) : 127
                }
            }
        case .blocks(let type):
            // panel[b][n] = block b of column n, byte for byte; zero blocks past the live columns.
            let dst = out.assumingMemoryBound(to: UInt8.self)
            let bytes = type.bytesPerBlock
            for b in 0..<(k / type.blockSize) {
                for n in 0..<w {
                    let block = n < live ? (x.values + (p * w + n) * x.rowStride + b * bytes).assumingMemoryBound(to: UInt8.self) : nil
                    for i in 0..<bytes { dst[(b * w + n) * bytes + i] = block?[i] ?? 0 }
                    if n < live && (0..<type.blockSize).contains(where: { !stored.element(matrix: m, row: p * w + n, column: b * type.blockSize + $0).isFinite }) {
                        bad = true
                    }
                }
            }
        case .int8Blocks(let type):
            // The `.blocks` bytes, each panel row then permuted by the int8 layout (tested against its inverse in
            // the Int8Dot suites).
            guard let plain = try? PanelMatrices(element: .blocks(type), format: panels.format, matrices: panels.matrixCount,
                                                 out: panels.outFeatures, in: panels.inFeatures, sources: panels.sourceCount) else { return true }
            bad = referencePack(plain, stored, matrix: m, panel: p, source: s)
            let rowBytes = PanelMatrices.rowBytes(panels.element)
            for b in 0..<(k / type.blockSize) {
                let row = out + b * rowBytes
                row.copyMemory(from: plain.values.pointer + plain.panelOffset(matrix: m, panel: p, source: s) + b * rowBytes, byteCount: rowBytes)
                Int8Dot.layout(type, row: row)
            }
        }
        return bad
    }

    /// Packs `sources` with the reference packer.
    static func referencePanels(_ sources: [StoredMatrices], compute: ComputeMode) throws -> (PanelMatrices, bad: [Int]) {
        let first = sources[0]
        let element = try PanelMatrices.element(for: first.format, compute: compute)
        let panels = try PanelMatrices(element: element, format: first.format, matrices: first.count, out: first.rows,
                                       in: first.columns, sources: sources.count)
        var bad: [Int] = []
        for m in 0..<first.count {
            for (s, source) in sources.enumerated() {
                for p in 0..<panels.panelCount where referencePack(panels, source, matrix: m, panel: p, source: s) { bad.append(m) }
            }
        }
        return (panels, bad)
    }

    /// The same stack stored transposed: a `[count, columns, rows]` stack viewed with row stride one element.
    static func transposed(format: WeightFormat, count: Int, rows: Int, columns: Int, seed: UInt64) throws -> StoredMatrices {
        let t = try StoredMatrices.random(format: format, count: count, rows: columns, columns: rows, std: 0.5, seed: seed, threads: 2)
        let size = format == .f32 ? 4 : 2
        return StoredMatrices(format: format, rows: rows, columns: columns, matrices: t.matrices.map { x in
            .init(values: x.values, rowStride: size, columnStride: rows * size, scales: nil, scaleRowStride: 0)
        }, owners: t.owners)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var format: WeightFormat
        var compute: ComputeMode = .f32
        var count: Int
        var rows: Int
        var columns: Int
        var sources: Int
        var transposed = false
        var testDescription: String {
            "\(format)\(compute == .f32 ? "" : " \(compute)-compute") [\(count), \(rows), \(columns)] ×\(sources)\(transposed ? " transposed" : "")"
        }

        static let all: [Case] = {
            var cases: [Case] = []
            for (format, compute) in [(WeightFormat.f32, ComputeMode.f32), (.bf16, .f32), (.f16, .f32), (.bf16, .bf16)] {
                for (count, rows, columns, sources) in [(2, 70, 33, 2), (1, 37, 256, 1), (1, 64, 5, 2), (3, 5, 40, 1)] {
                    cases.append(Case(format: format, compute: compute, count: count, rows: rows, columns: columns, sources: sources))
                    cases.append(Case(format: format, compute: compute, count: count, rows: rows, columns: columns, sources: sources, transposed: true))
                }
            }
            for format in [WeightFormat.fp8E4M3(blockRows: 128, blockColumns: 128), .fp8E4M3(blockRows: 16, blockColumns: 64)] {
                for (count, rows, columns, sources) in [(2, 70, 300, 2), (1, 37, 128, 1), (2, 5, 64, 1)] {
                    cases.append(Case(format: format, count: count, rows: rows, columns: columns, sources: sources))
                }
            }
            for (count, rows, columns, sources) in [(2, 70, 64, 2), (1, 37, 96, 1), (1, 7, 32, 1)] {
                cases.append(Case(format: .mxfp4, count: count, rows: rows, columns: columns, sources: sources))
            }
            for type in GGMLBlockType.allCases {
                let b = type.blockSize
                for (count, rows, columns, sources) in [(2, 40, 2 * b, 2), (1, 37, 3 * b, 1), (1, 7, b, 1)] {
                    cases.append(Case(format: .ggml(type), count: count, rows: rows, columns: columns, sources: sources))
                }
                // The int8 layout (a permutation of each panel row) where the type has int8 kernels.
                cases.append(Case(format: .ggml(type), compute: .int8, count: 2, rows: 40, columns: 2 * b, sources: 2))
            }
            return cases
        }()

        func stacks() throws -> [StoredMatrices] {
            try (0..<sources).map { s in
                transposed
                    ? try PackingTests.transposed(format: format, count: count, rows: rows, columns: columns, seed: UInt64(11 + s))
                    : try StoredMatrices.random(format: format, count: count, rows: rows, columns: columns, std: 0.5, seed: UInt64(11 + s), threads: 2)
            }
        }
    }

    static func sameBytes(_ a: AlignedBytes?, _ b: AlignedBytes?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        return a.count == b.count && memcmp(a.pointer, b.pointer, a.count) == 0
    }

    @Test("packed bytes equal the reference packer's", arguments: Case.all)
    func matchesReference(_ c: Case) throws {
        let stacks = try c.stacks()
        let (reference, bad) = try Self.referencePanels(stacks, compute: c.compute)
        let expected = stacks.map { stack in
            (0..<c.count).map { m in (0..<c.rows).map { o in (0..<c.columns).map { stack.element(matrix: m, row: o, column: $0).bitPattern } } }
        }
        let packed = try PanelMatrices(packing: stacks, compute: c.compute, threads: 2)
        #expect(bad.isEmpty)
        #expect(packed.values.count == reference.values.count)
        #expect(Self.sameBytes(packed.values, reference.values), "values differ")
        #expect(Self.sameBytes(packed.scales, reference.scales), "scales differ")
        // And every decoded row is the stored row.
        var row = [Float](repeating: 0, count: c.columns)
        for m in 0..<c.count {
            for s in stacks.indices {
                for o in 0..<c.rows {
                    row.withUnsafeMutableBufferPointer { packed.decodeRow(matrix: m, source: s, row: o, into: $0.baseAddress!) }
                    #expect(row.map(\.bitPattern) == expected[s][m][o], "matrix \(m) source \(s) row \(o)")
                }
            }
        }
    }

    @Test("a NaN or infinity anywhere is found, naming the matrix and stack, as the reference finds it",
          arguments: Case.all.filter { if case .ggml = $0.format { false } else { $0.format != .mxfp4 } })
    func findsNonFinite(_ c: Case) throws {
        // Positions: the first value, one in the last (partial) panel's last row, the last value of a matrix.
        for (row, column) in [(0, 0), (c.rows - 1, c.columns / 2), (c.rows - 1, c.columns - 1)] {
            let stacks = try c.stacks()
            let s = stacks.count - 1, m = c.count - 1
            let x = stacks[s].matrices[m]
            let target = UnsafeMutableRawPointer(mutating: x.values)
            switch c.format {
            case .f32: target.storeBytes(of: Float.infinity.bitPattern, toByteOffset: row * x.rowStride + column * x.columnStride, as: UInt32.self)
            case .bf16: target.storeBytes(of: 0xFFC1, toByteOffset: row * x.rowStride + column * x.columnStride, as: UInt16.self)
            case .f16: target.storeBytes(of: 0x7C00, toByteOffset: row * x.rowStride + column * x.columnStride, as: UInt16.self)
            case .fp8E4M3: target.storeBytes(of: 0xFF, toByteOffset: row * x.rowStride + column, as: UInt8.self)
            case .mxfp4, .ggml: break
            }
            let (_, bad) = try Self.referencePanels(stacks, compute: c.compute)
            #expect(bad == [m])
            #expect(throws: WeightError.nonFinite(matrix: m, source: s)) {
                _ = try PanelMatrices(packing: stacks, compute: c.compute, threads: 2)
            }
        }
    }
}
