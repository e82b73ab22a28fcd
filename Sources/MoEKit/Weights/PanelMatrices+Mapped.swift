/// Stacks the kernels read in place (``WeightResidency/mapped``): the layout of panels without their bytes.
extension PanelMatrices {
    /// Whether stacks of `format` computed in `compute` can be read in place: unscaled elements, whose
    /// K-block is a plain transpose of the stored bytes.
    static func readsInPlace(_ format: WeightFormat, compute: ComputeMode) -> Bool {
        switch try? element(for: format, compute: compute) {
        case .f32, .bf16, .f16, .bf16Pairs: true
        case .fp8, .mxfp4, .blocks, .int8Blocks, nil: false
        }
    }

    /// Stacks of one shape and format (interleaved as ``init(packing:compute:threads:progress:)`` would:
    /// gate 0, up 1) read in place. Reads every weight once, through the same transpose the kernels run,
    /// to refuse a NaN or infinite one; allocates nothing but a K-block per thread.
    /// - Throws: ``WeightError`` when the stacks disagree, cannot be read in place in `compute`, or hold a
    ///   non-finite weight. `progress` is told how many matrices are checked after each one.
    init(mapping sources: [StoredMatrices], compute: ComputeMode = .f32, threads: Int,
         progress: ((Int) -> Void)? = nil) throws(WeightError) {
        let first = try Self.commonShape(sources)
        guard Self.readsInPlace(first.format, compute: compute) else {
            throw .unsupported("\(first.format) weights computed in \(compute) cannot be read in place; pack them")
        }
        let element = try Self.element(for: first.format, compute: compute)
        try self.init(element: element, format: first.format, matrices: first.count, out: first.rows, in: first.columns,
                      sources: sources.count, mapped: sources)
        let panels = self
        let work = sourceCount * panelCount
        let blockBytes = TileKernel.depthBlock * Self.rowBytes(element)
        var bad = [Bool](repeating: false, count: work)
        // One K-block buffer per worker (panels dealt round-robin), not one per panel.
        let workers = max(1, min(threads, work))
        for m in 0..<matrixCount {
            bad.withUnsafeMutableBufferPointer { flags in
                Parallel.forEach(workers, threads: workers) { worker in
                    withUnsafeTemporaryAllocation(byteCount: blockBytes, alignment: 64) { scratch in
                        for index in stride(from: worker, to: work, by: workers) {
                            let (s, p) = (index / panels.panelCount, index % panels.panelCount)
                            var k0 = 0, found = false
                            while k0 < panels.depthUnits {
                                let kc = min(TileKernel.depthBlock, panels.depthUnits - k0)
                                found = panels.transposeBlock(sources[s], matrix: m, panel: p, units: k0, count: kc,
                                                              into: scratch.baseAddress.unsafelyUnwrapped) || found
                                k0 += kc
                            }
                            flags[index] = found
                        }
                    }
                }
            }
            if let index = bad.firstIndex(of: true) { throw .nonFinite(matrix: m, source: index / panelCount) }
            progress?(m + 1)
        }
    }

    /// Row slice of stacks read in place: views, no copy (tensor parallelism).
    func selectingMappedRows(_ range: Range<Int>) throws(WeightError) -> PanelMatrices? {
        guard let mapped else { return nil }
        return try PanelMatrices(element: element, format: format, matrices: matrixCount, out: range.count, in: inFeatures,
                                 sources: sourceCount, mapped: mapped.map { $0.rows(range) })
    }
}
