/// Seeded random blocks for presets, benchmarks and tests.
extension MoEBlock {
    /// A block of `config` with seeded random weights: matrices uniform with standard deviation
    /// 1/√fan_in (so activations keep their scale), a router 4× larger so routing is decisive,
    /// and random biases where the config has them. Expert weights are stored as `format` (BF16: rounded
    /// as a BF16 checkpoint would hold them; FP8 and MXFP4: quantized), and `compute: .bf16` also rounds
    /// the activations inside the projections. The shared expert gets the same format.
    public static func random(config: MoEConfig, seed: UInt64, format: WeightFormat = .f32, compute: ComputeMode = .f32) throws -> MoEBlock {
        var rng = SplitMix64(seed: seed)
        rng.roundsToBFloat16 = format == .bf16
        let (e, h, f) = (config.expertCount, config.hiddenSize, config.expertIntermediateSize)
        let router = try randomRouter(config: config, rng: &rng)
        let biases = config.expert.hasBiases
        let experts = try ExpertWeights(
            kind: config.expert, gate: rng.tensor([e, f, h], std: 1 / Float(h).squareRoot()),
            up: config.expert.isGated ? rng.tensor([e, f, h], std: 1 / Float(h).squareRoot()) : nil,
            down: rng.tensor([e, h, f], std: 1 / Float(f).squareRoot()),
            gateBias: biases ? rng.tensor([e, f], std: 0.1) : nil,
            upBias: biases && config.expert.isGated ? rng.tensor([e, f], std: 0.1) : nil,
            downBias: biases ? rng.tensor([e, h], std: 0.1) : nil, format: format, compute: compute)
        var shared: SharedExpert?
        if let spec = config.sharedExpert {
            let s = spec.intermediateSize
            let mlp = try DenseMLP(gate: rng.tensor([s, h], std: 1 / Float(h).squareRoot()),
                                   up: rng.tensor([s, h], std: 1 / Float(h).squareRoot()),
                                   down: rng.tensor([h, s], std: 1 / Float(s).squareRoot()), format: format, compute: compute)
            shared = try SharedExpert(mlp: mlp, gateWeight: spec.gate == .sigmoid ? rng.tensor([h], std: 1 / Float(h).squareRoot()).storage : nil)
        }
        return try MoEBlock(config: config, router: router, experts: experts, sharedExpert: shared)
    }

    /// A block of `config` with seeded random weights made directly in their stored `format`
    /// (``StoredMatrices/random(format:count:rows:columns:std:seed:threads:)``): the same standard deviations
    /// as ``random(config:seed:format:compute:)`` (1/√fan_in; router 4/√H, F32; biases as there), but no F32
    /// tensor of the experts is ever made, and the stored bytes are given back as they are packed and freed
    /// once packed, so a real-size layer (DeepSeek-V3's 11 GB of FP8 experts) is resident about once.
    /// The routed experts and the shared expert get `format`. The weights differ from ``random(config:seed:format:compute:)``'s.
    /// - Throws: ``WeightError`` (e.g. BF16 compute over non-BF16 weights), ``TensorError`` or ``ConfigError``.
    public static func randomStored(config: MoEConfig, seed: UInt64, format: WeightFormat, compute: ComputeMode = .f32,
                                    threads: Int = Parallel.defaultThreadCount) throws -> MoEBlock {
        try config.validate()
        var rng = SplitMix64(seed: seed)
        let (e, h, f) = (config.expertCount, config.hiddenSize, config.expertIntermediateSize)
        let router = try randomRouter(config: config, rng: &rng)
        let biases = config.expert.hasBiases
        let (inStd, outStd) = (1 / Float(h).squareRoot(), 1 / Float(f).squareRoot())
        func stack(_ count: Int, _ rows: Int, _ columns: Int, std: Float) throws -> StoredMatrices {
            try StoredMatrices.random(format: format, count: count, rows: rows, columns: columns, std: std, seed: rng.next(), threads: threads,
                                      consumedByPacking: true)
        }
        // The stacks are arguments of the call that packs them: packing gives their pages back matrix by matrix,
        // and nothing holds them once it returns.
        let experts = try ExpertWeights(
            kind: config.expert, gate: try stack(e, f, h, std: inStd),
            up: config.expert.isGated ? try stack(e, f, h, std: inStd) : nil,
            down: try stack(e, h, f, std: outStd),
            gateBias: biases ? rng.tensor([e, f], std: 0.1) : nil,
            upBias: biases && config.expert.isGated ? rng.tensor([e, f], std: 0.1) : nil,
            downBias: biases ? rng.tensor([e, h], std: 0.1) : nil, compute: compute, threads: threads)
        var shared: SharedExpert?
        if let spec = config.sharedExpert {
            let s = spec.intermediateSize
            let mlp = try DenseMLP(gate: try stack(1, s, h, std: inStd), up: try stack(1, s, h, std: inStd),
                                   down: try stack(1, h, s, std: 1 / Float(s).squareRoot()), compute: compute)
            shared = try SharedExpert(mlp: mlp,
                                      gateWeight: spec.gate == .sigmoid ? rng.tensor([h], std: 1 / Float(h).squareRoot()).storage : nil)
        }
        return try MoEBlock(config: config, router: router, experts: experts, sharedExpert: shared)
    }
}

extension MoEBlock {
    /// The F32 router both random blocks share: weight with standard deviation 4/√H (decisive routing), a bias
    /// where the config has one, and DeepSeek-V3's correction bias; drawn from `rng` in that order.
    static func randomRouter(config: MoEConfig, rng: inout SplitMix64) throws -> Router {
        let (e, h) = (config.expertCount, config.hiddenSize)
        let weight = rng.tensor([e, h], std: 4 / Float(h).squareRoot())
        let bias = config.routerHasBias ? rng.tensor([e], std: 0.5).storage : nil
        var correction: [Float]?
        if case .sigmoidGroupedTopK = config.router { correction = rng.tensor([e], std: 0.1).storage }
        return try Router(config: config, weight: weight, bias: bias, correctionBias: correction)
    }
}

/// SplitMix64: a tiny, fast, seedable generator (same sequence on every platform).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    /// Whether ``tensor(_:std:)`` rounds its values to bfloat16.
    public var roundsToBFloat16 = false

    /// A generator whose sequence is fixed by `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A tensor of uniform values with standard deviation `std` (uniform on ±√3·std).
    public mutating func tensor(_ shape: [Int], std: Float) -> Tensor<Float> {
        let bound = std * Float(3).squareRoot()
        var t = Tensor<Float>(shape: shape)
        for i in 0..<t.count { t.storage[i] = Float.random(in: -bound...bound, using: &self) }
        if roundsToBFloat16 { for i in 0..<t.count { t.storage[i] = BFloat16(t.storage[i]).float } }
        return t
    }
}
