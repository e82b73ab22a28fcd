import CMoEKernels

/// How the fast kernels store expert weights.
public enum WeightPrecision: String, Sendable, CaseIterable {
    /// 32-bit floats.
    case f32
    /// bfloat16, widened exactly to F32 inside the kernel (F32 accumulation, F32 activations). Exact for
    /// weights that came from a BF16 checkpoint; rounds F32 weights to nearest-even otherwise.
    case bf16
}

/// A stack of `[out, in]` matrices repacked for the fast kernels: each matrix's output columns are cut
/// into panels of ``width`` and each panel is stored `in`-major, so a kernel streams one contiguous
/// panel: `panel[p][i][c] = W[p·width + c, i]` (zero beyond `out`). A K-block of a panel is a
/// contiguous slice of it.
struct PackedPanels: Sendable {
    /// Output columns per panel: two 512-bit registers of floats.
    static let width = Int(MOE_PANEL_WIDTH)

    enum Storage: Sendable {
        case f32([Float])
        case bf16([UInt16])
    }

    let matrixCount: Int
    let outFeatures: Int
    let inFeatures: Int
    let panelCount: Int
    let storage: Storage

    var precision: WeightPrecision {
        switch storage {
        case .f32: .f32
        case .bf16: .bf16
        }
    }

    init(_ w: Tensor<Float>, precision: WeightPrecision) {
        let (m, out, inF) = (w.shape[0], w.shape[1], w.shape[2])
        let panels = (out + Self.width - 1) / Self.width
        var packed = [Float](repeating: 0, count: m * panels * inF * Self.width)
        for matrix in 0..<m {
            for o in 0..<out {
                let (p, c) = (o / Self.width, o % Self.width)
                let base = ((matrix * panels + p) * inF) * Self.width + c
                let source = (matrix * out + o) * inF
                for i in 0..<inF { packed[base + i * Self.width] = w.storage[source + i] }
            }
        }
        matrixCount = m
        outFeatures = out
        inFeatures = inF
        panelCount = panels
        switch precision {
        case .f32: storage = .f32(packed)
        case .bf16: storage = .bf16(packed.map { BFloat16($0).bitPattern })
        }
    }

    /// Element offset of panel `p` of matrix `m`.
    @inline(__always) func panelOffset(matrix m: Int, panel p: Int) -> Int {
        (m * panelCount + p) * inFeatures * Self.width
    }

    /// Whether every value of `w` is a bfloat16 (low 16 bits zero), so BF16 packing loses nothing.
    static func isExactlyBFloat16(_ w: Tensor<Float>) -> Bool {
        w.storage.allSatisfy { $0.bitPattern & 0xFFFF == 0 }
    }
}

/// The fast-kernel layout of ``ExpertWeights``.
struct PackedExpertWeights: Sendable {
    let gate: PackedPanels
    let up: PackedPanels?
    let down: PackedPanels

    init(gate: Tensor<Float>, up: Tensor<Float>?, down: Tensor<Float>, precision: WeightPrecision) {
        self.gate = PackedPanels(gate, precision: precision)
        self.up = up.map { PackedPanels($0, precision: precision) }
        self.down = PackedPanels(down, precision: precision)
    }
}
