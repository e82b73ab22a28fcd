import MoEKit

/// Where the golden fixtures live (`Tests/Fixtures`, made by scripts/make_fixtures.py).
let fixturesDirectory: String = {
    var path = #filePath
    while let slash = path.lastIndex(of: "/"), !path.hasSuffix("/Tests") { path = String(path[..<slash]) }
    return path + "/Fixtures"
}()

/// A small deterministic generator (SplitMix64): tests never use unseeded randomness.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Normal-ish random values (sum of uniforms), never all zeros.
func randomTensor(_ shape: [Int], std: Float = 1, generator: inout SeededGenerator) -> Tensor<Float> {
    let count = shape.reduce(1, *)
    var values = [Float](repeating: 0, count: count)
    for i in 0..<count {
        var s: Float = 0
        for _ in 0..<4 { s += Float.random(in: -1...1, using: &generator) }
        values[i] = s * std * 0.866
    }
    return (try? Tensor(shape: shape, storage: values)) ?? Tensor(shape: shape)
}

/// max|a − b| / max|b|.
func relativeError(_ a: Tensor<Float>, _ b: Tensor<Float>) -> Double {
    var maxDiff = 0.0, maxRef = 0.0
    for (x, y) in zip(a.storage, b.storage) {
        let d = abs(Double(x) - Double(y))
        maxDiff = d.isNaN ? .infinity : max(maxDiff, d)
        maxRef = max(maxRef, abs(Double(y)))
    }
    if a.storage.count != b.storage.count { return .infinity }
    return maxRef == 0 ? maxDiff : maxDiff / maxRef
}
