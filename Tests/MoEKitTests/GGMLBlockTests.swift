import Foundation
import Testing
@testable import MoEKit
import MoETestSupport
import MoECost

/// The ggml block formats (``GGMLBlockType``): the reference dequantizers bit for bit against gguf-py's
/// (`Fixtures/ggml-blocks.safetensors`, made by scripts/make_ggml_block_vectors.py), packing that only permutes
/// the stored blocks, and the exact fast path (blocks decoded into F32 panel slices) against the reference.
@Suite("ggml block formats")
struct GGMLBlockTests {
    static let vectors = fixturesDirectory + "/ggml-blocks.safetensors"

    /// Equal bits, or both NaN (a NaN's payload after `NaN · x` or `∞ · 0` is the hardware's choice).
    static func same(_ a: Float, _ b: Float) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }

    struct Vectors {
        var blocks: [UInt8]
        var expected: [UInt32]
        var count: Int
    }

    static func load(_ type: GGMLBlockType) throws -> Vectors {
        let file = try SafetensorsFile(path: vectors)
        let view = try #require(file.view("\(type).blocks"), "no blocks for \(type)")
        guard case .u32(let expected) = try file.tensor("\(type).expected") else { throw WeightError.unsupported("expected values") }
        let shape = try #require(file.entries["\(type).blocks"]?.shape)
        #expect(shape.count == 2 && shape[1] == type.bytesPerBlock)
        #expect(expected.shape == [shape[0], type.blockSize])
        return Vectors(blocks: Array(view.bytes), expected: expected.storage, count: shape[0])
    }

    @Test("the reference dequantizers give gguf-py's values bit for bit", arguments: GGMLBlockType.allCases)
    func vectorsMatch(_ type: GGMLBlockType) throws {
        let v = try Self.load(type)
        #expect(v.count >= 40)
        var mismatches = 0
        var out = [Float](repeating: .nan, count: type.blockSize)
        v.blocks.withUnsafeBytes { raw in
            for i in 0..<v.count {
                out.withUnsafeMutableBufferPointer { GGMLBlocks.dequantize(type, block: raw.baseAddress! + i * type.bytesPerBlock, into: $0.baseAddress!) }
                for j in 0..<type.blockSize where !Self.same(out[j], Float(bitPattern: v.expected[i * type.blockSize + j])) {
                    if mismatches < 5 {
                        Issue.record("\(type) block \(i) value \(j): \(out[j]) (0x\(String(out[j].bitPattern, radix: 16))), expected \(Float(bitPattern: v.expected[i * type.blockSize + j]))")
                    }
                    mismatches += 1
                }
            }
        }
        #expect(mismatches == 0)
        // The same values through a whole row, a stored stack's elements and its packed panels' rows.
        var row = [Float](repeating: .nan, count: v.count * type.blockSize)
        v.blocks.withUnsafeBytes { raw in
            row.withUnsafeMutableBufferPointer { GGMLBlocks.dequantizeRow(type, raw.baseAddress!, blocks: v.count, into: $0.baseAddress!) }
        }
        #expect(zip(row, v.expected).allSatisfy { Self.same($0, Float(bitPattern: $1)) })
        let stored = try v.blocks.withUnsafeBytes { try StoredMatrices(ggmlBlocks: $0, type: type, count: 1, rows: v.count, columns: type.blockSize) }
        #expect(stored.storedBytes == v.blocks.count)
        for i in 0..<v.count {
            for j in 0..<type.blockSize where !Self.same(stored.element(matrix: 0, row: i, column: j), Float(bitPattern: v.expected[i * type.blockSize + j])) {
                Issue.record("\(type) element (\(i), \(j))")
            }
        }
    }

    @Test("the vectors cover every code and every scale class")
    func vectorsCover() throws {
        let q8 = try Self.load(.q8_0)
        var codes = Set<UInt8>()
        for i in 0..<q8.count { codes.formUnion(q8.blocks[(i * 34 + 2)..<(i * 34 + 34)]) }
        #expect(codes.count == 256, "every int8 code, -128 included")
        let mx = try Self.load(.mxfp4)
        #expect(Set((0..<mx.count).map { mx.blocks[$0 * 17] }).count == 256, "every E8M0 exponent")
        for type in GGMLBlockType.allCases where type != .mxfp4 {
            let v = try Self.load(type)
            let offsets = type == .q6_K ? [208] : [.q4_1, .q5_1, .q4_K, .q5_K].contains(type) ? [0, 2] : [0]
            for offset in offsets {
                let scales = Set((0..<v.count).map { UInt16(v.blocks[$0 * type.bytesPerBlock + offset]) | UInt16(v.blocks[$0 * type.bytesPerBlock + offset + 1]) << 8 })
                // Zero, negative zero, the smallest and largest subnormals, a negative one, infinity, NaN.
                for special: UInt16 in [0x0000, 0x8000, 0x0001, 0x03FF, 0x8001, 0x7BFF, 0x7C00, 0x7E00] {
                    #expect(scales.contains(special), "\(type) scale at byte \(offset): 0x\(String(special, radix: 16))")
                }
            }
        }
        let q6 = try Self.load(.q6_K)
        let q6Scales = Set((0..<q6.count).flatMap { q6.blocks[($0 * 210 + 192)..<($0 * 210 + 208)] })
        #expect(q6Scales.contains(0x80) && q6Scales.contains(0x7F), "Q6_K scales -128 and 127")
    }

    @Test("ggml's E8M0 half is 2^(e − 128) for every byte")
    func e8m0Half() {
        for e in 0...255 {
            #expect(GGMLBlocks.e8m0Half(UInt8(e)) == Float(sign: .plus, exponent: e - 128, significand: 1))
        }
        #expect(GGMLBlocks.mxfp4Values.enumerated().allSatisfy { GGMLBlocks.mxfp4Value(UInt8($0.offset)) == Int32($0.element) })
    }

    @Test("types: sizes, names, ids, formats")
    func types() throws {
        #expect(GGMLBlockType.allCases.map(\.bytesPerBlock) == [34, 18, 20, 22, 24, 144, 176, 210, 17])
        #expect(GGMLBlockType.allCases.map(\.blockSize) == [32, 32, 32, 32, 32, 256, 256, 256, 32])
        #expect(WeightFormat.ggml(.q4_K).description == "q4_K" && WeightFormat.ggml(.mxfp4).description == "ggml-mxfp4")
        #expect(WeightFormat.ggml(.q4_K).bitsPerWeight == 4.5 && WeightFormat.ggml(.q8_0).bitsPerWeight == 8.5)
        #expect(WeightFormat.ggml(.q6_K).isQuantized)
        for type in GGMLBlockType.allCases { #expect(GGMLBlockType(ggmlTypeID: type.ggmlTypeID) == type) }
        #expect(GGMLBlockType(ggmlTypeID: 0) == nil && GGMLBlockType(ggmlTypeID: 10) == nil)
        #expect(throws: WeightError.self) { try StoredMatrices.random(format: .ggml(.q4_K), count: 1, rows: 2, columns: 128, std: 1, seed: 1) }
        #expect(throws: WeightError.self) { _ = try [UInt8](repeating: 0, count: 33).withUnsafeBytes { try StoredMatrices(ggmlBlocks: $0, type: .q8_0, count: 1, rows: 1, columns: 32) } }
        #expect(throws: WeightError.self) { try PanelMatrices.element(for: .ggml(.q8_0), compute: .bf16) }
    }

    /// Ragged shapes: `out` not a multiple of 32, several k-blocks (and K-blocks of 256 k).
    static func shape(_ type: GGMLBlockType) -> (rows: Int, columns: Int) { type.blockSize == 256 ? (45, 768) : (70, 320) }

    @Test("packed panels decode to the stored values; row slices too; only the blocks' order changes", arguments: GGMLBlockType.allCases)
    func packingRoundTrip(_ type: GGMLBlockType) throws {
        let (rows, columns) = Self.shape(type)
        let gate = try StoredMatrices.random(format: .ggml(type), count: 2, rows: rows, columns: columns, std: 0.1, seed: 3, threads: 2)
        let up = try StoredMatrices.random(format: .ggml(type), count: 2, rows: rows, columns: columns, std: 0.1, seed: 4, threads: 2)
        let panels = try PanelMatrices(packing: [gate, up], threads: 2)
        #expect(panels.element == .blocks(type) && panels.scales == nil)
        #expect(panels.residentBytes == PanelMatrices.bytesNeeded(packing: [gate, up]))
        #expect(panels.residentBytes == ResidentEstimate.packedBytes(count: 2, sources: 2, rows: rows, columns: columns, format: .ggml(type)))
        // Every live block is a stored block, unchanged; the padding columns are zero blocks.
        let width = PanelMatrices.width, bytes = type.bytesPerBlock
        let padded = panels.panelCount * width
        #expect(panels.values.count == 2 * 2 * padded * (columns / type.blockSize) * bytes)
        #expect(gate.storedBytes == 2 * rows * columns / type.blockSize * bytes)
        var row = [Float](repeating: .nan, count: columns)
        for (s, stored) in [gate, up].enumerated() {
            for m in 0..<2 {
                for o in 0..<rows {
                    row.withUnsafeMutableBufferPointer { panels.decodeRow(matrix: m, source: s, row: o, into: $0.baseAddress!) }
                    for c in 0..<columns where row[c].bitPattern != stored.element(matrix: m, row: o, column: c).bitPattern {
                        Issue.record("source \(s) matrix \(m) row \(o) column \(c)")
                        return
                    }
                    for b in 0..<(columns / type.blockSize) {
                        let packed = panels.values.pointer + panels.panelOffset(matrix: m, panel: o / width, source: s) + (b * width + o % width) * bytes
                        #expect(memcmp(packed, stored.ggmlBlock(type, matrix: m, row: o, block: b), bytes) == 0)
                    }
                }
            }
        }
        // Tensor-parallel row slice: rows 5 ..< 40 of every matrix and source.
        let slice = try panels.selectingRows(5..<40, threads: 2)
        for (s, stored) in [gate, up].enumerated() {
            for m in 0..<2 {
                for o in 0..<35 {
                    row.withUnsafeMutableBufferPointer { slice.decodeRow(matrix: m, source: s, row: o, into: $0.baseAddress!) }
                    #expect((0..<columns).allSatisfy { row[$0].bitPattern == stored.element(matrix: m, row: o + 5, column: $0).bitPattern })
                }
            }
        }
    }

    @Test("a block with an infinite or NaN value is refused while packing, naming matrix and stack", arguments: GGMLBlockType.allCases)
    func refusesNonFinite(_ type: GGMLBlockType) throws {
        let (rows, columns) = Self.shape(type)
        for bad: UInt16 in [0x7C00, 0xFE00] {
            let stacks = try (0..<2).map { try StoredMatrices.random(format: .ggml(type), count: 2, rows: rows, columns: columns, std: 0.1, seed: UInt64(7 + $0), threads: 2) }
            let block = UnsafeMutableRawPointer(mutating: stacks[1].ggmlBlock(type, matrix: 1, row: rows - 1, block: 1))
            if type == .mxfp4 {
                // 2^127 · 12 overflows; 2^127 · 0 does not.
                block.storeBytes(of: 0xFF, as: UInt8.self)
                (block + 1).initializeMemory(as: UInt8.self, repeating: 0, count: 16)
                if bad == 0x7C00 { block.storeBytes(of: 0x07, toByteOffset: 5, as: UInt8.self) }
            } else {
                block.storeBytes(of: bad, toByteOffset: type == .q6_K ? 208 : 0, as: UInt16.self)
            }
            let finite = type == .mxfp4 && bad != 0x7C00
            #expect(GGMLBlocks.isFinite(type, block: block) == finite)
            if finite {
                _ = try PanelMatrices(packing: stacks, threads: 2)
            } else {
                #expect(throws: WeightError.nonFinite(matrix: 1, source: 1)) { _ = try PanelMatrices(packing: stacks, threads: 2) }
            }
        }
    }

    @Test("quantizing F32 weights into every block format stays close to them", arguments: GGMLBlockType.allCases)
    func quantizing(_ type: GGMLBlockType) throws {
        var g = SeededGenerator(seed: 5)
        let values = randomTensor([2, 9, 2 * type.blockSize], std: 0.05, generator: &g)
        let stored = try StoredMatrices(quantizing: values, as: .ggml(type))
        var decoded = Tensor<Float>(shape: values.shape)
        for m in 0..<2 {
            for r in 0..<9 {
                for c in 0..<(2 * type.blockSize) { decoded.storage[(m * 9 + r) * 2 * type.blockSize + c] = stored.element(matrix: m, row: r, column: c) }
            }
        }
        // Worst case over the stack relative to its largest value: about half a step of the format.
        let bound: [GGMLBlockType: Double] = [.q8_0: 0.01, .q4_0: 0.1, .q4_1: 0.1, .q5_0: 0.05, .q5_1: 0.05, .q4_K: 0.12, .q5_K: 0.06,
                                             .q6_K: 0.04, .mxfp4: 0.3]
        #expect(relativeError(decoded, values) <= bound[type]!, "\(relativeError(decoded, values))")
        var bad = values
        bad.storage[3] = .nan
        #expect(throws: WeightError.self) { try StoredMatrices(quantizing: bad, as: .ggml(type)) }
    }

    @Test("random blocks have the asked standard deviation, are centred, finite, and do not depend on threads",
          arguments: GGMLBlockType.allCases)
    func randomBlocks(_ type: GGMLBlockType) throws {
        let (count, rows, columns, std): (Int, Int, Int, Float) = (2, 150, 512, 0.02)
        let a = try StoredMatrices.random(format: .ggml(type), count: count, rows: rows, columns: columns, std: std, seed: 9, threads: 1)
        let b = try StoredMatrices.random(format: .ggml(type), count: count, rows: rows, columns: columns, std: std, seed: 9, threads: 2)
        #expect(a.storedBytes == count * rows * columns / type.blockSize * type.bytesPerBlock)
        var sum = 0.0, squares = 0.0, nonFinite = 0
        var row = [Float](repeating: 0, count: columns)
        for m in 0..<count {
            for r in 0..<rows {
                let x = a.ggmlBlock(type, matrix: m, row: r, block: 0), y = b.ggmlBlock(type, matrix: m, row: r, block: 0)
                #expect(memcmp(x, y, columns / type.blockSize * type.bytesPerBlock) == 0, "1 and 2 threads made different blocks")
                row.withUnsafeMutableBufferPointer { GGMLBlocks.dequantizeRow(type, x, blocks: columns / type.blockSize, into: $0.baseAddress!) }
                for v in row {
                    if !v.isFinite { nonFinite += 1 }
                    sum += Double(v)
                    squares += Double(v) * Double(v)
                }
            }
        }
        let n = Double(count * rows * columns)
        #expect(nonFinite == 0)
        let rms = (squares / n).squareRoot()
        #expect(abs(rms / Double(std) - 1) < 0.1, "rms \(rms) for std \(std)")
        #expect(abs(sum / n) < 0.05 * Double(std), "mean \(sum / n)")
    }

    @Test("a whole block in a ggml format: resident bytes as estimated, fast equal to the reference", arguments: GGMLBlockType.allCases)
    func block(_ type: GGMLBlockType) throws {
        // Qwen-like (shared expert with a sigmoid gate); K-quants need H and F multiples of 256.
        let (h, f, s) = type.blockSize == 256 ? (256, 256, 256) : (96, 64, 32)
        let config = MoEConfig(hiddenSize: h, expertCount: 4, expertsPerToken: 2, expertIntermediateSize: f,
                               router: .softmaxTopK(normalizesTopKWeights: false),
                               sharedExpert: SharedExpertConfig(intermediateSize: s, gate: .sigmoid))
        let block = try MoEBlock.randomStored(config: config, seed: 3, format: .ggml(type), threads: 2)
        #expect(block.experts.format == .ggml(type))
        #expect(block.residentBytes == ResidentEstimate(config, format: .ggml(type)).total)
        var rng = SplitMix64(seed: 4)
        let x = rng.tensor([7, h], std: 1)
        let fast = try block.forward(x, variant: .fast, threads: 2), reference = try block.forward(x, variant: .reference, threads: 2)
        #expect(relativeError(fast.hiddenStates, reference.hiddenStates) <= 1e-5)
        #expect(fast.hiddenStates.storage.allSatisfy { $0.isFinite })
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var isa: TileKernel.ISA
        var type: GGMLBlockType
        var testDescription: String { "\(isa) \(type)" }
        static let all = TileKernel.ISA.available.flatMap { isa in GGMLBlockType.allCases.map { Case(isa: isa, type: $0) } }
    }

    /// Experts whose weights are random blocks: E = 5, H and F whole blocks over more than one K-block.
    static func experts(_ type: GGMLBlockType) throws -> ExpertWeights {
        let (e, h, f) = type.blockSize == 256 ? (5, 512, 256) : (5, 320, 96)
        func stack(_ rows: Int, _ columns: Int, _ seed: UInt64) throws -> StoredMatrices {
            try StoredMatrices.random(format: .ggml(type), count: e, rows: rows, columns: columns, std: 0.1, seed: seed, threads: 2)
        }
        return try ExpertWeights(kind: .gated(.silu), gate: stack(f, h, 1), up: stack(f, h, 2), down: stack(h, f, 3), threads: 2)
    }

    static func plan(tokens t: Int, experts e: Int, weights: [Float]) throws -> RoutingPlan {
        var ids: [Int64] = []
        for token in 0..<t { ids += [Int64(token % 3), Int64(3 + token % 2)] }  // experts 0..2 and 3..4; none empty
        let routes = try RouteAssignments(selectedExperts: try Tensor(shape: [t, 2], storage: ids),
                                          routingWeights: try Tensor(shape: [t, 2], storage: Array(weights[0..<(2 * t)])), expertCount: e)
        return RoutingPlan(routes)
    }

    @Test("the fast projections match the reference", arguments: Case.all)
    func projections(_ c: Case) throws {
        var g = SeededGenerator(seed: 11)
        let experts = try Self.experts(c.type)
        #expect(experts.format == .ggml(c.type) && experts.compute == .f32)
        let (t, h, f) = (19, experts.hiddenSize, experts.intermediateSize)
        let plan = try Self.plan(tokens: t, experts: experts.expertCount, weights: randomTensor([t, 2], generator: &g).storage)
        let x = randomTensor([t, h], generator: &g)
        var fast = Tensor<Float>(shape: [plan.rowCount, f], repeating: .nan)
        ProjectionToIntermediate.fast(input: x, plan: plan, experts: experts, scalesInput: false, threads: 2, isa: c.isa, into: &fast)
        let reference = try ProjectionToIntermediate.run(.reference, input: x, plan: plan, experts: experts)
        // Both multiply the same exactly decoded weights: F32 accumulation over ≤ 512 terms against F64.
        #expect(relativeError(fast, reference) <= 1e-5)
        var y = Tensor<Float>(shape: [t, h], repeating: .nan)
        ProjectionToOutput.fast(intermediate: reference, plan: plan, experts: experts, weightsOutputs: true, threads: 2, isa: c.isa, into: &y)
        let yRef = try ProjectionToOutput.run(.reference, intermediate: reference, plan: plan, experts: experts)
        #expect(relativeError(y, yRef) <= 1e-5)
    }

    @Test("the routed experts: fast matches the reference, and one thread gives the bits of two", arguments: GGMLBlockType.allCases)
    func routedExperts(_ type: GGMLBlockType) throws {
        var g = SeededGenerator(seed: 12)
        let experts = try Self.experts(type)
        let weights = randomTensor([23, 2], generator: &g).storage
        let plan = try Self.plan(tokens: 23, experts: experts.expertCount, weights: weights)
        let x = randomTensor([23, experts.hiddenSize], generator: &g)
        let one = try RoutedExperts.run(.fast, input: x, plan: plan, experts: experts, threads: 1)
        let two = try RoutedExperts.run(.fast, input: x, plan: plan, experts: experts, threads: 2)
        #expect(one.storage.map(\.bitPattern) == two.storage.map(\.bitPattern))
        #expect(one.storage.allSatisfy { $0.isFinite })
        let reference = try RoutedExperts.run(.reference, input: x, plan: plan, experts: experts, threads: 1)
        #expect(relativeError(one, reference) <= 1e-5)
        // A token's result does not depend on the others in the batch: token 0 alone gives the same bits.
        let h = experts.hiddenSize
        let single = try RoutedExperts.run(.fast, input: try Tensor(shape: [1, h], storage: Array(x.storage[0..<h])),
                                           plan: try Self.plan(tokens: 1, experts: experts.expertCount, weights: weights), experts: experts, threads: 2)
        #expect(single.storage.map(\.bitPattern) == one.storage[0..<h].map(\.bitPattern))
    }

    @Test("a ragged plain GEMM (45 outputs, 3 K-blocks) on every instruction set; the tile kernel's block path agrees",
          arguments: Case.all)
    func denseRagged(_ c: Case) throws {
        var g = SeededGenerator(seed: 13)
        let (o, k, t) = (45, c.type.blockSize == 256 ? 768 : 608, 11)
        let stored = try StoredMatrices.random(format: .ggml(c.type), count: 1, rows: o, columns: k, std: 0.1, seed: 21, threads: 2)
        let panels = try PanelMatrices(packing: [stored], threads: 2)
        let x = randomTensor([t, k], generator: &g)
        let plan = RoutingPlan.allTokens(t)
        let rows = PackedRows(rowMajor: x.storage, plan: plan, depth: k, threads: 2)
        let items = GroupedPanelGEMM.items(plan, panelCount: panels.panelCount, threads: 1)
        let width = PanelMatrices.width
        var out = [Float](repeating: .nan, count: t * o)
        rows.withTiles { tiles in
            let a = PanelRows(rows: rows, tiles: tiles)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: GroupedPanelGEMM.rowBlock * width) { tile in
                for item in items {
                    for panel in item.panels {
                        GroupedPanelGEMM.multiply(item, panel: panel, isa: c.isa, a: a, panels: panels, weights: panels.pointers, into: tile.baseAddress!)
                        for r in 0..<item.rows {
                            for j in 0..<min(width, o - panel * width) { out[(item.firstRow + r) * o + panel * width + j] = tile[r * width + j] }
                        }
                        // The tile kernel's own block path (one call over the whole depth) gives the same bits.
                        var direct = [Float](repeating: .nan, count: TileKernel.rows * width)
                        direct.withUnsafeMutableBufferPointer { d in
                            TileKernel.multiply(isa: c.isa, element: panels.element, rows: min(TileKernel.rows, item.rows), depth: k,
                                                a: tiles + 4 * rows.paddedRow[item.firstRow] * k,
                                                b: panels.pointers.values + panels.panelOffset(matrix: 0, panel: panel), scales: nil,
                                                c: d.baseAddress!, accumulate: false)
                        }
                        for r in 0..<min(TileKernel.rows, item.rows) {
                            #expect((0..<width).allSatisfy { direct[r * width + $0].bitPattern == tile[r * width + $0].bitPattern })
                        }
                    }
                }
            }
        }
        var got: [Float] = [], want: [Double] = []
        var w = [Float](repeating: 0, count: k)
        for j in 0..<o {
            w.withUnsafeMutableBufferPointer { panels.decodeRow(matrix: 0, row: j, into: $0.baseAddress!) }
            for r in 0..<t {
                var s = 0.0
                for i in 0..<k { s += Double(x.storage[r * k + i]) * Double(w[i]) }
                got.append(out[r * o + j])
                want.append(s)
            }
        }
        #expect(relativeError(got, want) <= 1e-5)
    }
}
