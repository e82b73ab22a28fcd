import Foundation
import MoEKit

// Helpers shared by the unit-test files (router, dispatch, plan, kernels, determinism, config,
// safetensors). Everything here is deterministic: seeded generators only.

/// A tensor from explicit values; traps only on a bug in the test itself.
func floatTensor(_ shape: [Int], _ values: [Float]) -> Tensor<Float> {
    guard let t = try? Tensor(shape: shape, storage: values) else { fatalError("test bug: \(values.count) values for \(shape)") }
    return t
}

/// `[T, K]` index tensor from rows.
func idTensor(_ rows: [[Int]]) -> Tensor<Int64> {
    let k = rows.first?.count ?? 0
    guard let t = try? Tensor(shape: [rows.count, k], storage: rows.flatMap { $0.map(Int64.init) }) else {
        fatalError("test bug: ragged rows")
    }
    return t
}

/// `[T, K]` float tensor from rows.
func weightTensor(_ rows: [[Float]]) -> Tensor<Float> {
    floatTensor([rows.count, rows.first?.count ?? 0], rows.flatMap { $0 })
}

/// Validated routes from explicit rows.
func routes(_ ids: [[Int]], _ weights: [[Float]], experts: Int) throws -> RouteAssignments {
    try RouteAssignments(selectedExperts: idTensor(ids), routingWeights: weightTensor(weights), expertCount: experts)
}

/// Random `[T, K]` routes: each row picks K distinct experts from `pool` (default all E), with
/// positive random weights. The pool lets a test leave experts empty or crowd tokens onto a few.
func randomRoutes(tokens t: Int, topK k: Int, experts e: Int, pool: [Int]? = nil,
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

/// A router whose weight is the E×E identity, so that routing a row `x` gives logits exactly `x`
/// (the F64 dot product of x with a unit vector is exact).
func identityRouter(_ kind: RouterKind, experts e: Int, topK k: Int, bias: [Float]? = nil,
                    correctionBias: [Float]? = nil) throws -> Router {
    let config = MoEConfig(hiddenSize: e, expertCount: e, expertsPerToken: k, expertIntermediateSize: 1,
                           router: kind, routerHasBias: bias != nil)
    var w = Tensor<Float>(shape: [e, e])
    for i in 0..<e { w.storage[i * e + i] = 1 }
    return try Router(config: config, weight: w, bias: bias, correctionBias: correctionBias)
}

/// Random expert weights of `kind` (biases where the kind has them).
func randomExperts(_ kind: ExpertKind, experts e: Int, hidden h: Int, intermediate f: Int, weightStd: Float? = nil,
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
func randomBlock(_ config: MoEConfig, seed: UInt64) throws -> MoEBlock {
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

/// One expert applied to one token, in `Double`, written independently of the library's kernels:
/// gated: down·(act(gate·x)⊙(up·x)); mlp: down·act(gate·x + b1) + b2; clamped: GPT-OSS formula.
func manualExpert(_ w: ExpertWeights, expert e: Int, input x: [Double]) -> [Double] {
    let (h, f) = (w.hiddenSize, w.intermediateSize)
    func act(_ a: Activation, _ v: Double) -> Double {
        switch a {
        case .silu: return v / (1 + Foundation.exp(-v))
        case .relu: return max(v, 0)
        case .gelu: return 0.5 * v * (1 + Foundation.erf(v / 2.0.squareRoot()))
        case .geluTanh: return 0.5 * v * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
        }
    }
    var a = [Double](repeating: 0, count: f)
    let gate = w.dequantized(.gate)!, up = w.dequantized(.up), down = w.dequantized(.down)!
    for j in 0..<f {
        var g = Double(w.gateBias?.storage[e * f + j] ?? 0)
        var u = Double(w.upBias?.storage[e * f + j] ?? 0)
        for i in 0..<h {
            g += Double(gate.storage[(e * f + j) * h + i]) * x[i]
            if let up { u += Double(up.storage[(e * f + j) * h + i]) * x[i] }
        }
        switch w.kind {
        case .gated(let act0): a[j] = act(act0, g) * u
        case .mlp(let act0): a[j] = act(act0, g)
        case .clampedGated(let alpha, let limit):
            let gc = min(g, Double(limit))
            let uc = min(max(u, -Double(limit)), Double(limit))
            a[j] = (uc + 1) * gc / (1 + Foundation.exp(-Double(alpha) * gc))
        }
    }
    var y = [Double](repeating: 0, count: h)
    for o in 0..<h {
        var acc = Double(w.downBias?.storage[e * h + o] ?? 0)
        for j in 0..<f { acc += Double(down.storage[(e * h + o) * f + j]) * a[j] }
        y[o] = acc
    }
    return y
}

/// max |a − b| over max |b|, for Double references.
func relativeError(_ a: [Float], _ b: [Double]) -> Double {
    guard a.count == b.count else { return .infinity }
    var maxDiff = 0.0, maxRef = 0.0
    for (x, y) in zip(a, b) {
        let d = abs(Double(x) - y)
        maxDiff = d.isNaN ? .infinity : max(maxDiff, d)
        maxRef = max(maxRef, abs(y))
    }
    return maxRef == 0 ? maxDiff : maxDiff / maxRef
}

/// A fresh, empty temporary directory unique to this call.
func makeTemporaryDirectory(_ label: String) throws -> String {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("moekit-tests-\(label)-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

/// Copies a fixture checkpoint folder into a fresh temporary directory and returns the copy's path.
func copyFixtureCheckpoint(_ fixture: String) throws -> String {
    let dir = try makeTemporaryDirectory(fixture)
    let source = fixturesDirectory + "/" + fixture + "/checkpoint"
    for name in try FileManager.default.contentsOfDirectory(atPath: source) {
        try FileManager.default.copyItem(atPath: source + "/" + name, toPath: dir + "/" + name)
    }
    return dir
}

/// A raw `.safetensors` file: 8-byte little-endian header length, header bytes, data bytes.
func rawSafetensors(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    var bytes: [UInt8] = []
    withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { bytes += $0 }
    return bytes + h + data
}

/// Writes bytes to `path`.
func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}
