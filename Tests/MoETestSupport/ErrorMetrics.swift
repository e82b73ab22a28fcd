import MoEKit

// The tests' one error metric: the max-norm relative error of a result against its reference,
//
//     max_i |a_i − b_i| / max_i |b_i|,
//
// the largest deviation measured against the reference's largest magnitude (not element by element, so a
// value near zero does not blow it up). The overloads differ only in how the operands are held. Edge cases,
// the same in each: a NaN anywhere (in either operand) gives +∞; operands of different counts give +∞; an
// all-zero reference gives the absolute error max_i |a_i − b_i|. Tolerances written against it read as
// "relative to the output's scale": 1e-5 for F32 accumulation, about half a step for a quantized format.

/// Max-norm relative error of `a` against the reference `b` (see above); `+∞` when their element counts differ.
package func relativeError(_ a: Tensor<Float>, _ b: Tensor<Float>) -> Double {
    relativeError(a.storage, b.storage.map(Double.init))
}

/// Max-norm relative error of `a` against a reference `b` computed in `Double` (see above); `+∞` when the
/// counts differ.
package func relativeError(_ a: [Float], _ b: [Double]) -> Double {
    guard a.count == b.count else { return .infinity }
    var maxDiff = 0.0, maxRef = 0.0
    for (x, y) in zip(a, b) {
        let d = abs(Double(x) - y)
        maxDiff = d.isNaN ? .infinity : max(maxDiff, d)
        maxRef = max(maxRef, abs(y))
    }
    return maxRef == 0 ? maxDiff : maxDiff / maxRef
}

/// Relative error of one value: |a − b| / |b| (the one-element case of the above; |a − b| when `b` is 0).
package func relativeError(_ a: Float, _ b: Double) -> Double {
    relativeError([a], [b])
}
