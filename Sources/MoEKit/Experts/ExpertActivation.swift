/// The element-wise part of an expert between its two projections: `a = f(gate, up)`.
enum ExpertActivation {
    /// Applies `kind`'s activation to pre-activations (biases already added). `up` is ignored for
    /// ``ExpertKind/mlp(_:)``.
    @inline(__always)
    static func apply(_ kind: ExpertKind, gate g: Float, up u: Float) -> Float {
        switch kind {
        case .gated(let act): activate(act, g) * u
        case .mlp(let act): activate(act, g)
        case .clampedGated(let alpha, let limit):
            clampedGLU(gate: g, up: u, alpha: alpha, limit: limit)
        }
    }

    /// The same in `Double`, for the reference kernel.
    static func apply(_ kind: ExpertKind, gate g: Double, up u: Double) -> Double {
        switch kind {
        case .gated(let act): activate(act, g) * u
        case .mlp(let act): activate(act, g)
        case .clampedGated(let alpha, let limit):
            clampedGLU(gate: g, up: u, alpha: Double(alpha), limit: Double(limit))
        }
    }

    /// GPT-OSS: gate ← min(gate, limit), up ← clamp(up, ±limit), (up + 1) · gate · σ(alpha · gate).
    @inline(__always)
    static func clampedGLU<T: BinaryFloatingPoint & ElementaryMath>(gate: T, up: T, alpha: T, limit: T) -> T {
        let g = min(gate, limit)
        let u = min(max(up, -limit), limit)
        return (u + 1) * (g / (1 + T.exp(-alpha * g)))
    }

    @inline(__always)
    static func activate<T: BinaryFloatingPoint & ElementaryMath>(_ act: Activation, _ x: T) -> T {
        switch act {
        case .silu: x / (1 + T.exp(-x))
        case .relu: max(x, 0)
        case .gelu: x * (1 + T.erf(x * T(0.70710678118654752440))) / 2
        case .geluTanh: x * (1 + T.tanh(T(0.79788456080286535588) * (x + T(0.044715) * x * x * x))) / 2
        }
    }
}

/// The elementary functions the activations need, from the C math library.
protocol ElementaryMath {
    static func exp(_ x: Self) -> Self
    static func erf(_ x: Self) -> Self
    static func tanh(_ x: Self) -> Self
}
extension Float: ElementaryMath {
    @inline(__always) static func exp(_ x: Float) -> Float { expf(x) }
    @inline(__always) static func erf(_ x: Float) -> Float { erff(x) }
    @inline(__always) static func tanh(_ x: Float) -> Float { tanhf(x) }
}
extension Double: ElementaryMath {
    @inline(__always) static func exp(_ x: Double) -> Double { cExp(x) }
    @inline(__always) static func erf(_ x: Double) -> Double { cErf(x) }
    @inline(__always) static func tanh(_ x: Double) -> Double { cTanh(x) }
}
// File-scope names resolve to the C library's functions, not the static requirements above.
private func cExp(_ x: Double) -> Double { exp(x) }
private func cErf(_ x: Double) -> Double { erf(x) }
private func cTanh(_ x: Double) -> Double { tanh(x) }
