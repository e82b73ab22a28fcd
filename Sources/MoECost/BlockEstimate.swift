import Foundation

/// One MoE block as `moe bench` runs it: H, F, E, K, an optional ungated shared expert of width S,
/// SwiGLU experts (3 matrices), F32 router weights, the weights' dtype and the dtype the projections compute in.
public struct BlockShape: Sendable, Equatable {
    /// H.
    public var hidden: Int
    /// F.
    public var intermediate: Int
    /// E.
    public var experts: Int
    /// K.
    public var topK: Int
    /// 0 without a shared expert.
    public var sharedIntermediate: Int
    /// `f32` or `bf16` (expert and shared-expert weights; the router stays F32).
    public var weightDType: WeightDType
    /// `f32` (BF16 weights widened in registers) or `bf16` (BF16-rounded activations, `vdpbf16ps`).
    public var computeDType: WeightDType

    /// A bench block.
    /// - Throws: ``CostError/invalidValue(path:key:value:reason:)`` for a size below 1, K above E, a negative shared
    ///   width, or BF16 compute over non-BF16 weights.
    public init(hidden: Int, intermediate: Int, experts: Int, topK: Int, sharedIntermediate: Int = 0,
                weightDType: WeightDType = .f32, computeDType: WeightDType = .f32) throws(CostError) {
        for (key, value) in [("hidden", hidden), ("intermediate", intermediate), ("experts", experts), ("top_k", topK)] where value < 1 {
            throw .invalidValue(path: "block", key: key, value: "\(value)", reason: "must be at least 1")
        }
        guard topK <= experts else {
            throw .invalidValue(path: "block", key: "top_k", value: "\(topK)", reason: "must not exceed experts (\(experts))")
        }
        guard sharedIntermediate >= 0 else {
            throw .invalidValue(path: "block", key: "shared_intermediate", value: "\(sharedIntermediate)", reason: "must not be negative")
        }
        guard computeDType == .f32 || computeDType == weightDType else {
            throw .invalidValue(path: "block", key: "compute", value: computeDType.rawValue, reason: "needs \(computeDType.rawValue) weights")
        }
        self.hidden = hidden
        self.intermediate = intermediate
        self.experts = experts
        self.topK = topK
        self.sharedIntermediate = sharedIntermediate
        self.weightDType = weightDType
        self.computeDType = computeDType
    }

    /// `moe bench`'s quick presets (BenchCase.quickPresets in Sources/moe/BenchCommand.swift).
    public static let presetNames = ["mixtral", "qwen3", "deepseek"]

    /// A bench preset at a weight and compute dtype.
    public static func preset(_ name: String, weightDType: WeightDType = .f32, computeDType: WeightDType = .f32) throws(CostError) -> BlockShape {
        switch name {
        case "mixtral": try BlockShape(hidden: 1024, intermediate: 3584, experts: 8, topK: 2, weightDType: weightDType, computeDType: computeDType)
        case "qwen3": try BlockShape(hidden: 2048, intermediate: 768, experts: 128, topK: 8, weightDType: weightDType, computeDType: computeDType)
        case "deepseek": try BlockShape(hidden: 1024, intermediate: 512, experts: 64, topK: 6, sharedIntermediate: 512,
                                        weightDType: weightDType, computeDType: computeDType)
        default: throw .invalidOption(name: "preset", value: name, reason: "must be one of \(presetNames.joined(separator: ", "))")
        }
    }

    /// The three precisions `moe bench` runs: F32, BF16 weights with F32 compute, BF16 compute.
    public static let benchPrecisions: [(weights: WeightDType, compute: WeightDType)] = [(.f32, .f32), (.bf16, .f32), (.bf16, .bf16)]

    /// `f32`, `bf16`, `bf16 bf16-compute`, as `moe bench` names its modes.
    public var modeName: String { weightDType.rawValue + (computeDType == .bf16 ? " bf16-compute" : "") }
}

/// FLOPs, bytes and parallel regions of one forward of a ``BlockShape`` on T tokens, as MoEKit's fast path runs it.
///
/// - FLOPs: `moe bench`'s own formula (MoEKit's `MoEConfig.forwardFLOPs(tokenCount:routedRows:)`): router `2·T·H·E`,
///   routed experts `6·H·F` per (token, expert) row (T·K rows, dropless), shared expert `6·T·H·S`.
/// - Executed FLOPs (what the time uses): the grouped GEMM computes each expert's rows in tiles of 8 rows
///   (`MOE_TILE_ROWS`) and 32 output columns (`MOE_PANEL_WIDTH`); a last partial tile runs the 1-, 2-, 4- or
///   8-row variant (Sources/CMoEKernels, AVX-512), so an expert with n rows costs 8·⌊n/8⌋ + {0,1,2,4,4,8,8,8,8}[n mod 8]
///   rows: the expected executed rows follow from a binomial count per expert (uniform routing, K/E per token).
/// - Bytes: the weights of the expected distinct experts touched (`E·(1 − (1 − K/E)^T)`) at the weights' dtype,
///   the F32 router (E·H·4), the shared expert, plus activations: router input and logits; per (token, expert)
///   row the gathered input tile (H), the intermediate tile the first projection writes for the second (F), the
///   row's output (H) and its read by the combine (H), then the combined output (T·H). Tiles are F32, or bf16
///   pairs (half the bytes) in BF16 compute.
/// - Regions (worker-pool dispatches, counted in `Router.swift`, `RoutedExperts.swift`,
///   `ProjectionToIntermediate+Fast.swift`, `ProjectionToOutput.swift`, `PackedRows.swift`): router pack + GEMM
///   (2); gather, gate/up GEMM (writing the next projection's tiles), down GEMM, combine (4) for the routed
///   experts and again for the shared expert.
public struct BlockEstimate: Sendable, Equatable {
    /// The block estimated.
    public var block: BlockShape
    /// T.
    public var tokens: Int
    /// Distinct experts the T tokens touch: measured, or expected under the routing model.
    public var expertsTouched: Double
    /// T·K (token, expert) rows.
    public var routedRows: Double
    /// Expected rows the tile kernel computes for the routed experts, padding included.
    public var paddedRoutedRows: Double
    /// Router logits: `2·T·H·E`.
    public var routerFLOPs: Double
    /// Routed experts: `6·H·F` per (token, expert) row.
    public var routedFLOPs: Double
    /// Shared expert: `6·T·H·S`.
    public var sharedFLOPs: Double
    /// FLOPs the kernels execute in the router (F32), padding included.
    public var executedRouterFLOPs: Double
    /// FLOPs the kernels execute in the routed and shared projections (at the block's compute dtype).
    public var executedExpertFLOPs: Double
    /// Weights read: the experts touched at the weights' dtype, the F32 router, the shared expert.
    public var weightBytes: Double
    /// Activations read and written: router input and logits, gathered tiles, intermediates, outputs.
    public var activationBytes: Double
    /// Worker-pool regions one forward dispatches.
    public var regions: Int

    /// The bench's FLOP count.
    public var flops: Double { routerFLOPs + routedFLOPs + sharedFLOPs }
    /// Weight and activation bytes.
    public var bytes: Double { weightBytes + activationBytes }

    /// Estimates one forward of `block` on `tokens` tokens.
    /// - Parameters:
    ///   - block: the bench block.
    ///   - tokens: T.
    ///   - routing: how tokens spread over experts, for the experts touched and the padded rows.
    ///   - measuredExpertsTouched: the distinct experts a measured run touched (a bench case knows it);
    ///     replaces the routing model's expectation in the weight bytes, since real routers are skewed.
    public init(_ block: BlockShape, tokens: Int, routing: RoutingModel = .uniform, measuredExpertsTouched: Double? = nil) {
        let t = Double(max(tokens, 0)), h = Double(block.hidden), f = Double(block.intermediate)
        let e = Double(block.experts), k = Double(block.topK), s = Double(block.sharedIntermediate)
        let tile = 8.0, panel = 32.0
        let wb = block.weightDType.bytesPerWeight
        self.block = block
        self.tokens = tokens
        expertsTouched = measuredExpertsTouched ?? routing.expectedExpertsTouched(experts: block.experts, k: block.topK, tokens: tokens)
        routedRows = t * k
        paddedRoutedRows = routing.inclusionProbabilities(experts: block.experts, k: block.topK)
            .reduce(0) { $0 + Self.expectedPaddedRows(tokens: tokens, probability: $1, tile: Int(tile)) }
        routerFLOPs = 2 * t * h * e
        routedFLOPs = 6 * h * f * t * k
        sharedFLOPs = 6 * t * h * s
        let paddedTokens = Double(Self.executedRows(tokens, tile: Int(tile)))
        executedRouterFLOPs = 2 * paddedTokens * h * (e / panel).rounded(.up) * panel
        executedExpertFLOPs = 6 * h * f * paddedRoutedRows + (s > 0 ? 6 * paddedTokens * h * s : 0)
        weightBytes = expertsTouched * 3 * h * f * wb + e * h * 4 + 3 * h * s * wb
        let tileBytes = block.computeDType == .bf16 ? 2.0 : 4.0
        let routerActivations = 4 * (t * h + t * e)
        let routedActivations = t * k * (tileBytes * (h + f) + 4 * 2 * h) + 4 * t * h
        let sharedActivations = s > 0 ? t * (tileBytes * (h + s) + 4 * 2 * h) + 4 * t * h : 0
        activationBytes = routerActivations + routedActivations + sharedActivations
        regions = tokens > 0 ? 2 + 4 * (s > 0 ? 2 : 1) : 0
    }

    /// Rows the tile kernel computes for `n` rows: whole tiles, then the smallest 1-, 2-, 4- or 8-row variant
    /// that holds the rest.
    public static func executedRows(_ n: Int, tile: Int) -> Int {
        let rest = n % tile
        let last = rest == 0 ? 0 : [1, 2, 4].first { rest <= $0 && $0 < tile } ?? tile
        return n / tile * tile + last
    }

    /// `E[executedRows(n)]` for `n ~ Binomial(tokens, probability)`: the rows one expert's GEMM computes.
    public static func expectedPaddedRows(tokens: Int, probability p: Double, tile: Int) -> Double {
        guard tokens > 0, p > 0 else { return 0 }
        if p >= 1 { return Double(executedRows(tokens, tile: tile)) }
        // pmf by recurrence in log space: log P(n) = log C(T, n) + n log p + (T − n) log(1 − p).
        let lp = log(p), lq = log1p(-p)
        var logC = 0.0, expected = 0.0
        for n in 0...tokens {
            if n > 0 { logC += log(Double(tokens - n + 1)) - log(Double(n)) }
            let pmf = exp(logC + Double(n) * lp + Double(tokens - n) * lq)
            expected += pmf * Double(executedRows(n, tile: tile))
        }
        return expected
    }
}

/// The roofline time of a ``BlockEstimate`` on a profile: `max(compute, memory) + regions × region overhead`.
public struct BlockTime: Sendable, Equatable {
    /// Executed FLOPs over the (fitted) peaks.
    public var computeSeconds: Double
    /// Bytes over the memory bandwidth.
    public var memorySeconds: Double
    /// Regions × the per-region overhead.
    public var overheadSeconds: Double
    /// The profile's ``HardwareProfile/computeMemoryOverlap``.
    public var overlap: Double = 1

    /// `max(compute, memory) + (1 − overlap)·min(compute, memory) + overhead`, in milliseconds.
    public var predictedMilliseconds: Double {
        (max(computeSeconds, memorySeconds) + (1 - overlap) * min(computeSeconds, memorySeconds) + overheadSeconds) * 1e3
    }
    /// Whether compute time is at least memory time.
    public var isComputeBound: Bool { computeSeconds >= memorySeconds }

    /// Compute: executed router FLOPs at the F32 peak plus executed expert FLOPs at the compute dtype's peak,
    /// each divided by the profile's (fitted) efficiency for that dtype. Memory: bytes / bandwidth. Overhead:
    /// the profile's per-region cost (its launch overhead when it has none) per worker-pool region.
    public init(_ estimate: BlockEstimate, on hardware: HardwareProfile) {
        func rate(_ dtype: WeightDType) -> Double { hardware.peak(for: dtype) * hardware.efficiency(for: dtype) }
        let router = rate(.f32), experts = rate(estimate.block.computeDType)
        computeSeconds = (router > 0 ? estimate.executedRouterFLOPs / router : 0)
            + (experts > 0 ? estimate.executedExpertFLOPs / experts : 0)
        memorySeconds = hardware.memoryBandwidth > 0 ? estimate.bytes / hardware.memoryBandwidth : 0
        overheadSeconds = Double(estimate.regions) * (hardware.regionOverhead ?? hardware.launchOverhead)
        overlap = hardware.computeMemoryOverlap
    }
}
