#if canImport(Glibc)
import Glibc
#endif
import MoEKit

/// The F32 GEMM rate of the system's OpenBLAS, when one is installed (Debian: `libopenblas0`), found at
/// run time with `dlopen` so neither the build nor the tests need it. `moe bench` reports it beside
/// MoEKit's own GEMM and takes the better of the two as the machine's F32 peak.
enum OpenBLASPeak {
    /// `cblas_sgemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)`.
    private typealias SGEMM = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
                                              UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    private typealias SetThreads = @convention(c) (Int32) -> Void

    /// GFLOP/s of a `size`³ row-major SGEMM on `threads` threads, best of `repeats`; `nil` without OpenBLAS.
    static func gemmGFLOPS(size: Int = 2048, threads: Int, repeats: Int = 3) -> Double? {
        #if canImport(Glibc)
        guard let library = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL) ?? dlopen("libopenblas.so", RTLD_NOW | RTLD_LOCAL),
              let sgemmSymbol = dlsym(library, "cblas_sgemm") else { return nil }
        let sgemm = unsafeBitCast(sgemmSymbol, to: SGEMM.self)
        if let setThreads = dlsym(library, "openblas_set_num_threads") {
            // As many threads as MoEKit's pool can run (it never uses more than the cores).
            unsafeBitCast(setThreads, to: SetThreads.self)(Int32(clamping: min(threads, Parallel.defaultThreadCount)))
        }
        var rng = SplitMix64(seed: 98)
        let a = rng.tensor([size, size], std: 1).storage, b = rng.tensor([size, size], std: 0.02).storage
        var c = [Float](repeating: 0, count: size * size)
        let n = Int32(size)
        var best = Double.infinity
        for _ in 0..<(repeats + 1) {
            let start = ContinuousClock.now
            c.withUnsafeMutableBufferPointer { out in
                sgemm(101, 111, 111, n, n, n, 1, a, n, b, n, 0, out.baseAddress, n)  // row-major, no transposes
            }
            best = min(best, MachineRoofs.seconds(ContinuousClock.now - start))
        }
        return 2 * Double(size) * Double(size) * Double(size) / best / 1e9
        #else
        return nil
        #endif
    }
}
