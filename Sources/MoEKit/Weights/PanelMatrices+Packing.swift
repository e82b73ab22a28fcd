/// The one packing pass: stored bytes → panels, in the same format (a permutation; BF16 compute
/// pairs two bf16 values per word). Matrix by matrix, panels in parallel; once a matrix is packed its
/// file pages are given back, so a layer read from a mapped file is resident about once.
extension PanelMatrices {
    /// Packs stacks of one shape and format, interleaved panel by panel (gate 0, up 1).
    /// - Throws: ``WeightError`` when the stacks disagree, the format cannot run in `compute`, or memory is short.
    /// `progress` is told how many matrices are packed after each one.
    init(packing sources: [StoredMatrices], compute: ComputeMode = .f32, threads: Int,
         progress: ((Int) -> Void)? = nil) throws(WeightError) {
        guard let first = sources.first else { throw .shapeMismatch(expected: "at least one weight stack", actual: "none") }
        for s in sources.dropFirst() where s.format != first.format || s.count != first.count || s.rows != first.rows || s.columns != first.columns {
            throw .shapeMismatch(expected: "\(first.format) [\(first.count), \(first.rows), \(first.columns)]",
                                 actual: "\(s.format) [\(s.count), \(s.rows), \(s.columns)]")
        }
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

    /// Bytes the panels of `sources` (one shape and format) will hold, before anything is allocated.
    static func bytesNeeded(packing sources: [StoredMatrices], compute: ComputeMode = .f32) -> Int {
        guard let first = sources.first, let element = try? element(for: first.format, compute: compute) else { return 0 }
        let panels = sources.count * first.count * ((first.rows + width - 1) / width)
        let units = element == .bf16Pairs ? (first.columns + 1) / 2 : first.columns
        let group = first.format == .mxfp4 ? WeightFormat.mxfp4Group : { if case .fp8(let g) = element { g } else { 0 } }()
        let scales = group == 0 ? 0 : (first.columns + group - 1) / group * scaleRowBytes(element)
        return panels * (units * rowBytes(element) + scales)
    }

    /// Writes panel `p` of source `s` of matrix `m` from `stored`; returns whether a weight was NaN or
    /// infinite (an E4M3 NaN code; MXFP4 codes are all finite and its scales are checked on load).
    private func pack(_ stored: StoredMatrices, matrix m: Int, panel p: Int, source s: Int) -> Bool {
        var bad = false
        let w = Self.width
        let out = values.pointer + panelOffset(matrix: m, panel: p, source: s)
        let x = stored.matrices[m]
        let k = inFeatures
        let live = min(w, outFeatures - p * w)
        switch element {
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
                let mask: UInt16 = element == .bf16 ? 0x7F80 : 0x7C00  // exponent all ones: NaN or infinity
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
            let scaleOut = (scales.unsafelyUnwrapped.pointer + scaleOffset(matrix: m, panel: p, source: s)).assumingMemoryBound(to: Float.self)
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
            let scaleOut = (scales.unsafelyUnwrapped.pointer + scaleOffset(matrix: m, panel: p, source: s)).assumingMemoryBound(to: UInt8.self)
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
                for i in 0..<k { dst[i * half + j] = code(low, i) | code(high, i) << 4 }
            }
            for n in 0..<w {
                for g in 0..<groups {
                    scaleOut[g * w + n] = n < live ? stored.mxfp4Scale(matrix: m, row: p * w + n, column: g * group) : 127
                }
            }
        }
        return bad
    }
}
