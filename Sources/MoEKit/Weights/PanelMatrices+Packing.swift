/// The one packing pass: stored bytes → panels, in the same format (a permutation; BF16 compute
/// pairs two bf16 values per word). Matrix by matrix, panels in parallel; once a matrix is packed its
/// file pages are given back, so a layer read from a mapped file is resident about once.
extension PanelMatrices {
    /// Packs stacks of one shape and format, interleaved panel by panel (gate 0, up 1).
    /// - Throws: ``WeightError`` when the stacks disagree, the format cannot run in `compute`, or memory is short.
    /// `progress` is told how many matrices are packed after each one.
    init(packing sources: [StoredMatrices], compute: ComputeMode = .f32, threads: Int,
         progress: ((Int) -> Void)? = nil) throws(WeightError) {
        let first = try Self.commonShape(sources)
        let element = try Self.element(for: first.format, compute: compute)
        try self.init(element: element, format: first.format, matrices: first.count, out: first.rows, in: first.columns, sources: sources.count)
        let panels = self
        let work = sourceCount * panelCount
        var bad = [Bool](repeating: false, count: work)
        for m in 0..<matrixCount {
            bad.withUnsafeMutableBufferPointer { flags in
                Parallel.forEach(work, threads: threads) { index in
                    let (s, p) = (index / panels.panelCount, index % panels.panelCount)
                    flags[index] = panels.pack(sources[s], matrix: m, panel: p, source: s)
                }
            }
            for s in sources { s.releasePages(matrix: m) }
            if let index = bad.firstIndex(of: true) { throw .nonFinite(matrix: m, source: index / panelCount) }
            progress?(m + 1)
        }
    }

    /// The first of `sources` once every stack has its format and shape (packed or read in place alike).
    /// - Throws: ``WeightError/shapeMismatch(expected:actual:)`` for no stacks or stacks that disagree.
    static func commonShape(_ sources: [StoredMatrices]) throws(WeightError) -> StoredMatrices {
        guard let first = sources.first else { throw .shapeMismatch(expected: "at least one weight stack", actual: "none") }
        for s in sources.dropFirst() where s.format != first.format || s.count != first.count || s.rows != first.rows || s.columns != first.columns {
            throw .shapeMismatch(expected: "\(first.format) [\(first.count), \(first.rows), \(first.columns)]",
                                 actual: "\(s.format) [\(s.count), \(s.rows), \(s.columns)]")
        }
        return first
    }

    /// Bytes the panels of `sources` (one shape and format) will hold, before anything is allocated.
    static func bytesNeeded(packing sources: [StoredMatrices], compute: ComputeMode = .f32) -> Int {
        guard let first = sources.first, let element = try? element(for: first.format, compute: compute) else { return 0 }
        let panels = sources.count * first.count * ((first.rows + width - 1) / width)
        let bytes = panelBytes(element, inFeatures: first.columns)
        return panels * (bytes.values + bytes.scales)
    }

    /// Writes panel `p` of source `s` of matrix `m` from `stored`; returns whether a weight was NaN or
    /// infinite (an E4M3 NaN code; MXFP4 codes are all finite and its scales are checked on load; a ggml block
    /// whose values are not all finite, ``GGMLBlocks/isFinite(_:block:)``).
    ///
    /// A blocked transpose: for a block of inputs, eight source rows are read forward together and each
    /// input's eight values are written as one vector into the panel row (the block of panel rows stays in
    /// L1); non-finite values are found through the largest magnitude bits seen.
    private func pack(_ stored: StoredMatrices, matrix m: Int, panel p: Int, source s: Int) -> Bool {
        let w = Self.width
        let out = values.pointer + panelOffset(matrix: m, panel: p, source: s)
        let x = stored.matrices[m]
        let k = inFeatures
        let live = min(w, outFeatures - p * w)
        let first = UnsafeRawPointer(x.values + p * w * x.rowStride)
        let rs = x.rowStride
        switch element {
        case .f32, .bf16, .f16, .bf16Pairs:
            return transposeBlock(stored, matrix: m, panel: p, units: 0, count: depthUnits, into: out)
        case .fp8(let group):
            // FP8 rows are contiguous (column stride 1).
            let top = Self.transpose(UInt8.self, first, rowStride: rs, columnStride: 1, depth: k, live: live,
                                     into: out.assumingMemoryBound(to: UInt8.self), magnitude: 0x7F)
            let scaleOut = (scales.unsafelyUnwrapped.pointer + scaleOffset(matrix: m, panel: p, source: s)).assumingMemoryBound(to: Float.self)
            for g in 0..<((k + group - 1) / group) {
                for n in 0..<w { scaleOut[g * w + n] = n < live ? stored.scale(matrix: m, row: p * w + n, column: g * group) : 0 }
            }
            return top == 0x7F  // S.1111.111
        case .mxfp4:
            let dst = out.assumingMemoryBound(to: UInt8.self)
            let scaleOut = (scales.unsafelyUnwrapped.pointer + scaleOffset(matrix: m, panel: p, source: s)).assumingMemoryBound(to: UInt8.self)
            let group = WeightFormat.mxfp4Group
            let half = w / 2
            // The byte of (row i, column j) = code(W[j, i]) | code(W[j + 16, i]) << 4, placed by mxfp4Byte;
            // stored byte b of a row holds codes 2b (low nibble) and 2b + 1: one stored byte of each of
            // columns j and j + 16 gives two panel bytes.
            for b in 0..<((k + 1) / 2) {
                let src = first + b
                let hasOdd = 2 * b + 1 < k
                for j in 0..<half {
                    let low: UInt8 = j < live ? src.load(fromByteOffset: j * rs, as: UInt8.self) : 0
                    let high: UInt8 = j + half < live ? src.load(fromByteOffset: (j + half) * rs, as: UInt8.self) : 0
                    dst[Self.mxfp4Byte(k: 2 * b, column: j, depth: k)] = (low & 0xF) | (high & 0xF) << 4
                    if hasOdd { dst[Self.mxfp4Byte(k: 2 * b + 1, column: j, depth: k)] = low >> 4 | (high & 0xF0) }
                }
            }
            for g in 0..<((k + group - 1) / group) {
                for n in 0..<w {
                    scaleOut[g * w + n] = n < live ? stored.mxfp4Scale(matrix: m, row: p * w + n, column: g * group) : 127
                }
            }
            return false
        case .blocks(let type):
            return Self.packBlocks(type, first, rowStride: rs, blocks: k / type.blockSize, live: live, into: out)
        case .int8Blocks(let type):
            // The stored blocks, then each panel row's bytes permuted into the int8 kernel's layout.
            let bad = Self.packBlocks(type, first, rowStride: rs, blocks: k / type.blockSize, live: live, into: out)
            for b in 0..<(k / type.blockSize) { Int8Dot.layout(type, row: out + b * Self.rowBytes(element)) }
            return bad
        }
    }

    /// Panel rows `k0 ..< k0 + kc` (depth units: k, or k-pairs for BF16 compute) of panel `p` of matrix `m` of
    /// an unscaled element (F32, BF16, F16, BF16 pairs), transposed from `stored` into `out` (`kc` panel rows,
    /// zeros past the live columns); returns whether a weight there is NaN or infinite. The packing pass runs
    /// it over a whole panel, the kernels over one K-block of a stack read in place (``mapped``): the same
    /// bytes either way, so both give the same bits.
    @inline(__always)
    func transposeBlock(_ stored: StoredMatrices, matrix m: Int, panel p: Int, units k0: Int, count kc: Int,
                        into out: UnsafeMutableRawPointer) -> Bool {
        let w = Self.width
        let x = stored.matrices[m]
        let live = min(w, outFeatures - p * w)
        let (rs, cs) = (x.rowStride, x.columnStride)
        let first = UnsafeRawPointer(x.values + p * w * rs)
        switch element {
        case .f32:
            let top = Self.transpose(UInt32.self, first + k0 * cs, rowStride: rs, columnStride: cs, depth: kc, live: live,
                                     into: out.assumingMemoryBound(to: UInt32.self), magnitude: 0x7FFF_FFFF)
            return top >= 0x7F80_0000
        case .bf16, .f16:
            let top = Self.transpose(UInt16.self, first + k0 * cs, rowStride: rs, columnStride: cs, depth: kc, live: live,
                                     into: out.assumingMemoryBound(to: UInt16.self), magnitude: 0x7FFF)
            return top >= (element == .bf16 ? 0x7F80 : 0x7C00)  // exponent all ones: NaN or infinity
        case .bf16Pairs:
            return Self.transposePairs(first + 2 * k0 * cs, rowStride: rs, columnStride: cs, depth: min(2 * kc, inFeatures - 2 * k0),
                                       live: live, into: out.assumingMemoryBound(to: UInt32.self)) >= 0x7F80
        case .fp8, .mxfp4, .blocks, .int8Blocks:
            return true  // never read in place (their panels carry scales or blocks): refuse rather than guess
        }
    }

    /// Block panel `[k / blockSize][32][bytesPerBlock]` from the 32 rows at `first` (row r's blocks one after
    /// another from `r·rowStride`), rows from `live` on written as zero blocks; returns whether a live block
    /// holds a non-finite value.
    private static func packBlocks(_ type: GGMLBlockType, _ first: UnsafeRawPointer, rowStride rs: Int, blocks: Int, live: Int,
                                   into dst: UnsafeMutableRawPointer) -> Bool {
        let w = width, bytes = type.bytesPerBlock
        var bad = false
        for b in 0..<blocks {
            let row = dst + b * w * bytes
            for n in 0..<live {
                let block = first + n * rs + b * bytes
                (row + n * bytes).copyMemory(from: block, byteCount: bytes)
                if !GGMLBlocks.isFinite(type, block: block) { bad = true }
            }
            if live < w { (row + live * bytes).initializeMemory(as: UInt8.self, repeating: 0, count: (w - live) * bytes) }
        }
        return bad
    }

    /// Inputs per block of the packing transpose: 512 panel rows of ≤ 128 bytes stay in L1/L2.
    private static let packBlock = 512

    /// Panel `[k][32]` of `T` from the 32 rows at `first` (row r, input i at `r·rowStride + i·columnStride`),
    /// rows from `live` on written as zeros; returns the largest `value & magnitude` of the live values.
    @inline(__always)
    private static func transpose<T: FixedWidthInteger & SIMDScalar>(_: T.Type, _ first: UnsafeRawPointer, rowStride rs: Int,
                                                                       columnStride cs: Int, depth k: Int, live: Int,
                                                                       into dst: UnsafeMutablePointer<T>, magnitude: T) -> T {
        let w = width
        let full = live / 8 * 8
        var top = SIMD8<T>(repeating: 0), topTail: T = 0
        var i0 = 0
        while i0 < k {
            let i1 = min(i0 + packBlock, k)
            for n0 in stride(from: 0, to: full, by: 8) {
                let r = first + n0 * rs
                for i in i0..<i1 {
                    let a = r + i * cs
                    let v = SIMD8<T>(a.loadUnaligned(as: T.self), a.loadUnaligned(fromByteOffset: rs, as: T.self),
                                     a.loadUnaligned(fromByteOffset: 2 * rs, as: T.self), a.loadUnaligned(fromByteOffset: 3 * rs, as: T.self),
                                     a.loadUnaligned(fromByteOffset: 4 * rs, as: T.self), a.loadUnaligned(fromByteOffset: 5 * rs, as: T.self),
                                     a.loadUnaligned(fromByteOffset: 6 * rs, as: T.self), a.loadUnaligned(fromByteOffset: 7 * rs, as: T.self))
                    top = pointwiseMax(top, v & magnitude)
                    UnsafeMutableRawPointer(dst + i * w + n0).storeBytes(of: v, as: SIMD8<T>.self)
                }
            }
            for n in full..<w {
                let r = first + n * rs
                for i in i0..<i1 {
                    if n < live {
                        let bits = r.loadUnaligned(fromByteOffset: i * cs, as: T.self)
                        topTail = max(topTail, bits & magnitude)
                        dst[i * w + n] = bits
                    } else {
                        dst[i * w + n] = 0
                    }
                }
            }
            i0 = i1
        }
        return max(top.max(), topTail)
    }

    /// BF16-compute panel `[⌈k/2⌉][32]` of pairs bf16(W[n, 2kp]) | bf16(W[n, 2kp + 1]) << 16 (0 past `k`), rows
    /// from `live` on zeros; returns the largest magnitude bits (`& 0x7FFF`) of the live values.
    @inline(__always)
    private static func transposePairs(_ first: UnsafeRawPointer, rowStride rs: Int, columnStride cs: Int, depth k: Int, live: Int,
                                       into dst: UnsafeMutablePointer<UInt32>) -> UInt16 {
        let w = width
        let full = live / 8 * 8
        let pairs = (k + 1) / 2, whole = k / 2
        var top = SIMD8<UInt16>(repeating: 0), topTail: UInt16 = 0
        @inline(__always) func row8(_ a: UnsafeRawPointer) -> SIMD8<UInt16> {
            SIMD8(a.loadUnaligned(as: UInt16.self), a.loadUnaligned(fromByteOffset: rs, as: UInt16.self),
                  a.loadUnaligned(fromByteOffset: 2 * rs, as: UInt16.self), a.loadUnaligned(fromByteOffset: 3 * rs, as: UInt16.self),
                  a.loadUnaligned(fromByteOffset: 4 * rs, as: UInt16.self), a.loadUnaligned(fromByteOffset: 5 * rs, as: UInt16.self),
                  a.loadUnaligned(fromByteOffset: 6 * rs, as: UInt16.self), a.loadUnaligned(fromByteOffset: 7 * rs, as: UInt16.self))
        }
        var p0 = 0
        while p0 < pairs {
            let p1 = min(p0 + packBlock / 2, pairs)
            for n0 in stride(from: 0, to: full, by: 8) {
                let r = first + n0 * rs
                for kp in p0..<p1 {
                    let low = row8(r + 2 * kp * cs)
                    let high = kp < whole ? row8(r + (2 * kp + 1) * cs) : SIMD8<UInt16>(repeating: 0)
                    top = pointwiseMax(top, pointwiseMax(low & 0x7FFF, high & 0x7FFF))
                    let v = SIMD8<UInt32>(truncatingIfNeeded: low) | SIMD8<UInt32>(truncatingIfNeeded: high) &<< 16
                    UnsafeMutableRawPointer(dst + kp * w + n0).storeBytes(of: v, as: SIMD8<UInt32>.self)
                }
            }
            for n in full..<w {
                let r = first + n * rs
                for kp in p0..<p1 {
                    guard n < live else { dst[kp * w + n] = 0; continue }
                    let low = r.loadUnaligned(fromByteOffset: 2 * kp * cs, as: UInt16.self)
                    let high = kp < whole ? r.loadUnaligned(fromByteOffset: (2 * kp + 1) * cs, as: UInt16.self) : 0
                    topTail = max(topTail, low & 0x7FFF, high & 0x7FFF)
                    dst[kp * w + n] = UInt32(low) | UInt32(high) << 16
                }
            }
            p0 = p1
        }
        return max(top.max(), topTail)
    }
}
