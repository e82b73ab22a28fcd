import Foundation
import MoEKit

/// One expert applied to one token, in `Double`, written independently of the library's kernels:
/// gated: down·(act(gate·x)⊙(up·x)); mlp: down·act(gate·x + b1) + b2; clamped: GPT-OSS formula.
package func manualExpert(_ w: ExpertWeights, expert e: Int, input x: [Double]) -> [Double] {
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
