import MoEKit

// Tensors, routes and routers written out by hand in a test: explicit values, no randomness.

/// A tensor from explicit values; traps only on a bug in the test itself.
package func floatTensor(_ shape: [Int], _ values: [Float]) -> Tensor<Float> {
    guard let t = try? Tensor(shape: shape, storage: values) else { fatalError("test bug: \(values.count) values for \(shape)") }
    return t
}

/// `[T, K]` index tensor from rows.
package func idTensor(_ rows: [[Int]]) -> Tensor<Int64> {
    let k = rows.first?.count ?? 0
    guard let t = try? Tensor(shape: [rows.count, k], storage: rows.flatMap { $0.map(Int64.init) }) else {
        fatalError("test bug: ragged rows")
    }
    return t
}

/// `[T, K]` float tensor from rows.
package func weightTensor(_ rows: [[Float]]) -> Tensor<Float> {
    floatTensor([rows.count, rows.first?.count ?? 0], rows.flatMap { $0 })
}

/// Validated routes from explicit rows.
package func routes(_ ids: [[Int]], _ weights: [[Float]], experts: Int) throws -> RouteAssignments {
    try RouteAssignments(selectedExperts: idTensor(ids), routingWeights: weightTensor(weights), expertCount: experts)
}

/// A router whose weight is the E×E identity, so that routing a row `x` gives logits exactly `x`
/// (the F64 dot product of x with a unit vector is exact).
package func identityRouter(_ kind: RouterKind, experts e: Int, topK k: Int, bias: [Float]? = nil,
                            correctionBias: [Float]? = nil) throws -> Router {
    let config = MoEConfig(hiddenSize: e, expertCount: e, expertsPerToken: k, expertIntermediateSize: 1,
                           router: kind, routerHasBias: bias != nil)
    var w = Tensor<Float>(shape: [e, e])
    for i in 0..<e { w.storage[i * e + i] = 1 }
    return try Router(config: config, weight: w, bias: bias, correctionBias: correctionBias)
}
