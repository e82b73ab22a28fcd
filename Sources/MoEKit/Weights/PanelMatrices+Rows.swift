/// Reading panels back one weight row at a time: what the reference kernels multiply by (decoded
/// exactly, as ``WeightDecoding`` specifies, so the reference needs no second copy of the weights),
/// and row slices for tensor parallelism (copied in the same format).
extension PanelMatrices {
    /// Row `o` (output feature) of matrix `m`, source `s`, decoded to F32: `inFeatures` values.
    func decodeRow(matrix m: Int, source s: Int = 0, row o: Int, into out: UnsafeMutablePointer<Float>) {
        let w = Self.width
        let (p, n) = (o / w, o % w)
        let k = inFeatures
        if let mapped {
            // Read in place: the stored stack itself, decoded as the panels would hold it.
            for i in 0..<k { out[i] = mapped[s].element(matrix: m, row: o, column: i) }
            return
        }
        let panel = values.pointer + panelOffset(matrix: m, panel: p, source: s)
        switch element {
        case .f32:
            let v = panel.assumingMemoryBound(to: Float.self)
            for i in 0..<k { out[i] = v[i * w + n] }
        case .bf16:
            let v = panel.assumingMemoryBound(to: UInt16.self)
            for i in 0..<k { out[i] = WeightDecoding.bf16(v[i * w + n]) }
        case .f16:
            let v = panel.assumingMemoryBound(to: UInt16.self)
            for i in 0..<k { out[i] = WeightDecoding.f16(v[i * w + n]) }
        case .bf16Pairs:
            let v = panel.assumingMemoryBound(to: UInt32.self)
            for i in 0..<k {
                let word = v[(i / 2) * w + n]
                out[i] = WeightDecoding.bf16(UInt16(truncatingIfNeeded: i % 2 == 0 ? word : word >> 16))
            }
        case .fp8(let group):
            let v = panel.assumingMemoryBound(to: UInt8.self)
            let scale = (scales.unsafelyUnwrapped.pointer + scaleOffset(matrix: m, panel: p, source: s)).assumingMemoryBound(to: Float.self)
            for i in 0..<k { out[i] = WeightDecoding.e4m3(v[i * w + n]) * scale[(i / group) * w + n] }
        case .mxfp4:
            let v = panel.assumingMemoryBound(to: UInt8.self)
            let scale = (scales.unsafelyUnwrapped.pointer + scaleOffset(matrix: m, panel: p, source: s)).assumingMemoryBound(to: UInt8.self)
            for i in 0..<k {
                let byte = v[Self.mxfp4Byte(k: i, column: n, depth: k)]
                out[i] = WeightDecoding.mxfp4(code: n < w / 2 ? byte & 0xF : byte >> 4, scale: scale[(i / WeightFormat.mxfp4Group) * w + n])
            }
        case .blocks(let type):
            let rowBytes = Self.rowBytes(element)
            for b in 0..<depthUnits {
                GGMLBlocks.dequantize(type, block: panel + b * rowBytes + n * type.bytesPerBlock, into: out + b * type.blockSize)
            }
        case .int8Blocks(let type):
            // Each panel row back to its stored blocks, then column n's block decoded.
            let rowBytes = Self.rowBytes(element)
            withUnsafeTemporaryAllocation(byteCount: rowBytes, alignment: 64) { buffer in
                let stored = buffer.baseAddress.unsafelyUnwrapped
                for b in 0..<depthUnits {
                    Int8Dot.storedLayout(type, row: panel + b * rowBytes, into: stored)
                    GGMLBlocks.dequantize(type, block: UnsafeRawPointer(stored) + n * type.bytesPerBlock, into: out + b * type.blockSize)
                }
            }
        }
    }

    /// Output rows `range` of every matrix and source, as panels in the same format (tensor parallelism).
    func selectingRows(_ range: Range<Int>, threads: Int) throws(WeightError) -> PanelMatrices {
        if let views = try selectingMappedRows(range) { return views }
        let result = try PanelMatrices(element: element, format: format, matrices: matrixCount, out: range.count, in: inFeatures, sources: sourceCount)
        let source = self
        Parallel.forEach(matrixCount * sourceCount * result.panelCount, threads: threads) { index in
            let (m, rest) = (index / (sourceCount * result.panelCount), index % (sourceCount * result.panelCount))
            let (s, p) = (rest / result.panelCount, rest % result.panelCount)
            for n in 0..<Self.width {
                let o = p * Self.width + n
                source.copyColumn(matrix: m, source: s, row: o < range.count ? range.lowerBound + o : nil, to: result, panel: p, targetSource: s, column: n)
            }
        }
        return result
    }

    /// A stack with no rows (a tensor-parallel slice's unused projection): no bytes.
    func emptied() throws(WeightError) -> PanelMatrices {
        try PanelMatrices(element: element, format: format, matrices: matrixCount, out: 0, in: 0, sources: sourceCount)
    }

    /// Copies one output column (row `o` of the weights, or zeros when `nil`) into column `n` of panel `p`
    /// (matrix `m`, source `ts`) of `target`, which has this element type.
    private func copyColumn(matrix m: Int, source s: Int, row o: Int?, to target: PanelMatrices, panel p: Int, targetSource ts: Int, column n: Int) {
        let w = Self.width
        let dst = target.values.pointer + target.panelOffset(matrix: m, panel: p, source: ts)
        let src = o.map { values.pointer + panelOffset(matrix: m, panel: $0 / w, source: s) }
        let sn = (o ?? 0) % w
        let units = depthUnits
        switch element {
        case .f32, .bf16Pairs:
            let d = dst.assumingMemoryBound(to: UInt32.self)
            let v = src?.assumingMemoryBound(to: UInt32.self)
            for i in 0..<units { d[i * w + n] = v?[i * w + sn] ?? 0 }
        case .bf16, .f16:
            let d = dst.assumingMemoryBound(to: UInt16.self)
            let v = src?.assumingMemoryBound(to: UInt16.self)
            for i in 0..<units { d[i * w + n] = v?[i * w + sn] ?? 0 }
        case .fp8(let group):
            let d = dst.assumingMemoryBound(to: UInt8.self)
            let v = src?.assumingMemoryBound(to: UInt8.self)
            for i in 0..<units { d[i * w + n] = v?[i * w + sn] ?? 0 }
            let ds = (target.scales.unsafelyUnwrapped.pointer + target.scaleOffset(matrix: m, panel: p, source: ts)).assumingMemoryBound(to: Float.self)
            let vs = o.map { (scales.unsafelyUnwrapped.pointer + scaleOffset(matrix: m, panel: $0 / w, source: s)).assumingMemoryBound(to: Float.self) }
            for g in 0..<((inFeatures + group - 1) / group) { ds[g * w + n] = vs?[g * w + sn] ?? 0 }
        case .mxfp4:
            let half = w / 2
            let d = dst.assumingMemoryBound(to: UInt8.self)
            let v = src?.assumingMemoryBound(to: UInt8.self)
            for i in 0..<units {
                let byte = v?[Self.mxfp4Byte(k: i, column: sn, depth: units)] ?? 0
                let code = sn < half ? byte & 0xF : byte >> 4
                let at = Self.mxfp4Byte(k: i, column: n, depth: units)
                let keep = n < half ? d[at] & 0xF0 : d[at] & 0x0F
                d[at] = keep | (n < half ? code : code << 4)
            }
            let ds = (target.scales.unsafelyUnwrapped.pointer + target.scaleOffset(matrix: m, panel: p, source: ts)).assumingMemoryBound(to: UInt8.self)
            let vs = o.map { (scales.unsafelyUnwrapped.pointer + scaleOffset(matrix: m, panel: $0 / w, source: s)).assumingMemoryBound(to: UInt8.self) }
            for g in 0..<((inFeatures + WeightFormat.mxfp4Group - 1) / WeightFormat.mxfp4Group) { ds[g * w + n] = vs?[g * w + sn] ?? 127 }
        case .blocks(let type):
            let (bytes, rowBytes) = (type.bytesPerBlock, Self.rowBytes(element))
            for b in 0..<units {
                let d = dst + b * rowBytes + n * bytes
                if let src { d.copyMemory(from: src + b * rowBytes + sn * bytes, byteCount: bytes) } else {
                    d.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
                }
            }
        case .int8Blocks(let type):
            // Both rows back to their stored blocks, the column's block copied, the target row permuted again.
            let (bytes, rowBytes) = (type.bytesPerBlock, Self.rowBytes(element))
            withUnsafeTemporaryAllocation(byteCount: 2 * rowBytes, alignment: 64) { buffer in
                let (from, to) = (buffer.baseAddress.unsafelyUnwrapped, buffer.baseAddress.unsafelyUnwrapped + rowBytes)
                for b in 0..<units {
                    let d = dst + b * rowBytes
                    Int8Dot.storedLayout(type, row: UnsafeRawPointer(d), into: to)
                    if let src {
                        Int8Dot.storedLayout(type, row: src + b * rowBytes, into: from)
                        (to + n * bytes).copyMemory(from: UnsafeRawPointer(from) + sn * bytes, byteCount: bytes)
                    } else {
                        (to + n * bytes).initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
                    }
                    d.copyMemory(from: UnsafeRawPointer(to), byteCount: rowBytes)
                    Int8Dot.layout(type, row: d)
                }
            }
        }
    }
}
