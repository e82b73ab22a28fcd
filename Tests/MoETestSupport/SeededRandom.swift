import MoEKit

// Seeded random test data: tests never use unseeded randomness, so a failure replays bit for bit.

/// The tests' generator: MoEKit's own SplitMix64 (the same sequence on every platform), under the name the
/// tests have always used.
package typealias SeededGenerator = SplitMix64

/// Normal-ish random values (sum of four uniforms, standard deviation `std`), never all zeros.
package func randomTensor(_ shape: [Int], std: Float = 1, generator: inout SeededGenerator) -> Tensor<Float> {
    let count = shape.reduce(1, *)
    var values = [Float](repeating: 0, count: count)
    for i in 0..<count {
        var s: Float = 0
        for _ in 0..<4 { s += Float.random(in: -1...1, using: &generator) }
        values[i] = s * std * 0.866
    }
    return (try? Tensor(shape: shape, storage: values)) ?? Tensor(shape: shape)
}

/// Random `[T, K]` routes: each row picks K distinct experts from `pool` (default all E), with
/// positive random weights. The pool lets a test leave experts empty or crowd tokens onto a few.
package func randomRoutes(tokens t: Int, topK k: Int, experts e: Int, pool: [Int]? = nil,
                          generator: inout SeededGenerator) throws -> RouteAssignments {
    let candidates = pool ?? Array(0..<e)
    precondition(candidates.count >= k, "test bug: pool smaller than K")
    var ids: [[Int]] = []
    var weights: [[Float]] = []
    for _ in 0..<t {
        ids.append(Array(candidates.shuffled(using: &generator).prefix(k)))
        weights.append((0..<k).map { _ in Float.random(in: 0.05...1, using: &generator) })
    }
    if t == 0 {
        return try RouteAssignments(selectedExperts: Tensor(shape: [0, k]), routingWeights: Tensor(shape: [0, k]), expertCount: e)
    }
    return try routes(ids, weights, experts: e)
}

/// Random expert weights of `kind` (biases where the kind has them).
package func randomExperts(_ kind: ExpertKind, experts e: Int, hidden h: Int, intermediate f: Int, weightStd: Float? = nil,
                           generator: inout SeededGenerator) throws -> ExpertWeights {
    let gStd = weightStd ?? 1 / Float(h).squareRoot()
    let dStd = weightStd ?? 1 / Float(f).squareRoot()
    return try ExpertWeights(
        kind: kind,
        gate: randomTensor([e, f, h], std: gStd, generator: &generator),
        up: kind.isGated ? randomTensor([e, f, h], std: gStd, generator: &generator) : nil,
        down: randomTensor([e, h, f], std: dStd, generator: &generator),
        gateBias: kind.hasBiases ? randomTensor([e, f], std: 0.2, generator: &generator) : nil,
        upBias: kind.hasBiases && kind.isGated ? randomTensor([e, f], std: 0.2, generator: &generator) : nil,
        downBias: kind.hasBiases ? randomTensor([e, h], std: 0.2, generator: &generator) : nil)
}

/// A random block of `config`: router 3/√H so routing is decisive, router bias and correction bias
/// where the config uses them, and the shared expert (with its gate) when configured.
package func randomBlock(_ config: MoEConfig, seed: UInt64) throws -> MoEBlock {
    var g = SeededGenerator(seed: seed)
    let (e, h, f) = (config.expertCount, config.hiddenSize, config.expertIntermediateSize)
    var correction: [Float]?
    if case .sigmoidGroupedTopK = config.router { correction = randomTensor([e], std: 0.1, generator: &g).storage }
    let router = try Router(config: config, weight: randomTensor([e, h], std: 3 / Float(h).squareRoot(), generator: &g),
                            bias: config.routerHasBias ? randomTensor([e], std: 0.5, generator: &g).storage : nil,
                            correctionBias: correction)
    let experts = try randomExperts(config.expert, experts: e, hidden: h, intermediate: f, generator: &g)
    var shared: SharedExpert?
    if let spec = config.sharedExpert {
        let s = spec.intermediateSize
        let mlp = try DenseMLP(gate: randomTensor([s, h], std: 1 / Float(h).squareRoot(), generator: &g),
                               up: randomTensor([s, h], std: 1 / Float(h).squareRoot(), generator: &g),
                               down: randomTensor([h, s], std: 1 / Float(s).squareRoot(), generator: &g))
        shared = try SharedExpert(mlp: mlp, gateWeight: spec.gate == .sigmoid
                                  ? randomTensor([h], std: 1 / Float(h).squareRoot(), generator: &g).storage : nil)
    }
    return try MoEBlock(config: config, router: router, experts: experts, sharedExpert: shared)
}
