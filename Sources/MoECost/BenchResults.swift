import Foundation

/// A `moe bench --json` file, as the cost model reads it: the machine's measured roofs and each case's
/// block shape and median time.
public struct BenchResults: Sendable, Equatable, Decodable {
    /// The machine part: F32 GEMM peak (GFLOP/s), memory read bandwidth (GB/s), the worker pool's cost of one
    /// parallel region (µs), threads.
    public struct Machine: Sendable, Equatable, Decodable {
        /// `gemm_gflops`: the F32 GEMM peak, GFLOP/s.
        public var gemmGFLOPS: Double
        /// `mem_gbs`: the memory read bandwidth, GB/s.
        public var memoryGBs: Double
        /// `pool_region_us`: one worker-pool parallel region, µs (absent in older files).
        public var regionMicroseconds: Double?
        /// Threads the bench ran with.
        public var threads: Int?
        /// The kernels' instruction set (`avx512-bf16`, `avx512`, `avx2`, `swift`).
        public var isa: String?

        /// The machine part of a bench file.
        public init(gemmGFLOPS: Double, memoryGBs: Double, regionMicroseconds: Double? = nil, threads: Int? = nil, isa: String? = nil) {
            self.gemmGFLOPS = gemmGFLOPS
            self.memoryGBs = memoryGBs
            self.regionMicroseconds = regionMicroseconds
            self.threads = threads
            self.isa = isa
        }

        enum CodingKeys: String, CodingKey {
            case gemmGFLOPS = "gemm_gflops", memoryGBs = "mem_gbs", regionMicroseconds = "pool_region_us", threads, isa
        }
    }

    /// One measured case: a block shape, a token count, weight and compute dtypes, the median time.
    public struct Case: Sendable, Equatable, Decodable {
        /// The case's name, e.g. `mixtral bf16 T=512`.
        public var name: String
        /// The bench preset (`mixtral`, `qwen3`, `deepseek`, …).
        public var preset: String
        /// T.
        public var tokens: Int
        /// The weights' dtype (`f32`, `bf16`; quantized cases are left out on reading).
        public var dtype: String
        /// The compute dtype (`f32` or `bf16`).
        public var compute: String
        /// H.
        public var hidden: Int
        /// F.
        public var intermediate: Int
        /// E.
        public var experts: Int
        /// K.
        public var topK: Int
        /// The shared expert's width (0 without one).
        public var sharedIntermediate: Int
        /// The median time of one forward, ms.
        public var ms: Double
        /// Distinct experts the routing actually touched per forward (bench files from before it was recorded lack it).
        public var expertsTouched: Double?
        /// The bench's own FLOP rate for the case (GFLOP/s), when present.
        public var gflops: Double?

        enum CodingKeys: String, CodingKey {
            case name, preset, tokens, dtype, compute, hidden, intermediate, experts, ms, gflops
            case topK = "top_k", sharedIntermediate = "shared_intermediate", expertsTouched = "experts_touched"
        }

        /// The block this case ran.
        public func block() throws(CostError) -> BlockShape {
            guard let weights = WeightDType(torchName: dtype), weights == .f32 || weights == .bf16 else {
                throw .invalidValue(path: name, key: "dtype", value: dtype, reason: "must be f32 or bf16")
            }
            guard let arithmetic = WeightDType(torchName: compute), arithmetic == .f32 || arithmetic == .bf16 else {
                throw .invalidValue(path: name, key: "compute", value: compute, reason: "must be f32 or bf16")
            }
            return try BlockShape(hidden: hidden, intermediate: intermediate, experts: experts, topK: topK,
                                  sharedIntermediate: sharedIntermediate, weightDType: weights, computeDType: arithmetic)
        }
    }

    /// The machine's measured roofs.
    public var machine: Machine
    /// The measured cases (F32 and BF16 blocks only).
    public var cases: [Case]

    /// Results made in code (tests); not validated.
    public init(machine: Machine, cases: [Case]) {
        self.machine = machine
        self.cases = cases
    }

    /// Reads and checks a `moe bench --json` file.
    /// - Throws: ``CostError/unreadable(path:reason:)`` when the file is missing or not bench JSON,
    ///   ``CostError/invalidValue(path:key:value:reason:)`` for a roof or case that cannot be used.
    public init(contentsOf path: String) throws(CostError) {
        let data = try readFile(path)
        var decoded: BenchResults
        do { decoded = try JSONDecoder().decode(BenchResults.self, from: data) } catch {
            throw .unreadable(path: path, reason: "not a moe bench --json file (\(Self.describe(error)))")
        }
        // The model predicts F32 and BF16 blocks; the bench's quantized cases (fp8, mxfp4) are left out.
        decoded.cases.removeAll { ["fp8", "mxfp4"].contains($0.dtype) }
        try decoded.validate(path: path)
        self = decoded
    }

    /// Checks that the roofs are positive and every case is a block the model can predict.
    public func validate(path: String) throws(CostError) {
        guard machine.gemmGFLOPS.isFinite, machine.gemmGFLOPS > 0 else {
            throw .invalidValue(path: path, key: "machine.gemm_gflops", value: "\(machine.gemmGFLOPS)", reason: "must be positive")
        }
        guard machine.memoryGBs.isFinite, machine.memoryGBs > 0 else {
            throw .invalidValue(path: path, key: "machine.mem_gbs", value: "\(machine.memoryGBs)", reason: "must be positive")
        }
        if let r = machine.regionMicroseconds, !(r.isFinite && r >= 0) {
            throw .invalidValue(path: path, key: "machine.pool_region_us", value: "\(r)", reason: "must not be negative")
        }
        for c in cases {
            _ = try c.block()
            guard c.tokens >= 1 else {
                throw .invalidValue(path: path, key: "\(c.name).tokens", value: "\(c.tokens)", reason: "must be at least 1")
            }
            guard c.ms.isFinite, c.ms > 0 else {
                throw .invalidValue(path: path, key: "\(c.name).ms", value: "\(c.ms)", reason: "must be positive")
            }
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, let context)?:
            let path = (context.codingPath + [key]).map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return "missing key '\(path)'"
        case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?:
            let path = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return "wrong type at '\(path)'"
        case .dataCorrupted?:
            return "invalid JSON"
        default:
            return "\(error)"
        }
    }
}
