import CMoEKernels

/// This machine's roofs, measured the same way every time so a benchmark can state its results as
/// fractions of them: the F32 GEMM rate of MoEKit's own micro-kernels and the memory read bandwidth.
public enum MachineRoofs {
    /// GFLOP/s of a square F32 GEMM (`size`³) through the fast kernels, best of `repeats`.
    public static func gemmGFLOPS(size: Int = 2048, threads: Int, repeats: Int = 3) throws -> Double {
        var rng = SplitMix64(seed: 99)
        let weights = try PanelMatrices(packing: [try StoredMatrices(quantizing: rng.tensor([1, size, size], std: 0.02), as: .f32)], threads: threads)
        let a = rng.tensor([size, size], std: 1)
        let plan = RoutingPlan.allTokens(size)
        let rows = PackedRows(rowMajor: a.storage, plan: plan, depth: size, threads: threads)
        var c = [Float](repeating: 0, count: size * size)
        var best = Double.infinity
        for _ in 0..<(repeats + 1) {
            let start = ContinuousClock.now
            c.withUnsafeMutableBufferPointer { out in
                GroupedPanelGEMM.dense(rows, plan: plan, panels: weights, threads: threads, into: out)
            }
            best = min(best, seconds(ContinuousClock.now - start))
        }
        return 2 * Double(size) * Double(size) * Double(size) / best / 1e9
    }

    /// GB/s of reading `bytes` of floats once (a parallel sum), best of `repeats`.
    public static func readBandwidth(bytes: Int = 1 << 30, threads: Int, repeats: Int = 3) -> Double {
        let count = bytes / 4
        let data = [Float](repeating: 1, count: count)
        var best = Double.infinity
        let chunks = max(threads, 1) * 16
        var sink: Float = 0
        for _ in 0..<(repeats + 1) {
            var partial = [Float](repeating: 0, count: chunks)
            let start = ContinuousClock.now
            data.withUnsafeBufferPointer { x in
                partial.withUnsafeMutableBufferPointer { p in
                    Parallel.forEach(chunks, threads: threads) { chunk in
                        let begin = count * chunk / chunks, end = count * (chunk + 1) / chunks
                        p[chunk] = moe_sum_f32(x.baseAddress! + begin, end - begin)
                    }
                }
            }
            best = min(best, seconds(ContinuousClock.now - start))
            sink += partial.reduce(0, +)
        }
        return sink.isNaN ? 0 : Double(count * 4) / best / 1e9
    }

    /// Microseconds of one back-to-back parallel region on the worker pool with one trivial item per
    /// thread: the fixed cost every kernel launch pays (a decode layer is ~10 regions of ~100 µs).
    public static func parallelRegionMicroseconds(threads: Int, regions: Int = 20_000) -> Double {
        let counter = UnsafeMutablePointer<Int>.allocate(capacity: 64 * max(threads, 1))
        defer { counter.deallocate() }
        counter.initialize(repeating: 0, count: 64 * max(threads, 1))
        let start = ContinuousClock.now
        for _ in 0..<regions {
            Parallel.forEach(threads, threads: threads) { i in counter[i * 64] &+= 1 }  // 64 apart: no false sharing
        }
        return seconds(ContinuousClock.now - start) / Double(regions) * 1e6
    }

    /// A `Duration` in seconds.
    public static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
