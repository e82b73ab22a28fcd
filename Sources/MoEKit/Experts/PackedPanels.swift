/// A stack of `[out, in]` matrices repacked for the fast kernels: each matrix's output columns are cut
/// into panels of ``width`` and each panel is stored `in`-major, so the inner loop of a kernel streams one
/// contiguous panel: `panel[p][i][c] = W[p·width + c, i]` (zero beyond `out`).
struct PackedPanels: Sendable {
    /// Output columns per panel: one `SIMD8<Float>` (two SSE or one AVX register).
    static let width = 8
    let matrixCount: Int
    let outFeatures: Int
    let inFeatures: Int
    let panelCount: Int
    /// `[matrixCount][panelCount][inFeatures][width]`.
    let storage: [Float]

    init(_ w: Tensor<Float>) {
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
        storage = packed
    }

    /// Offset of panel `p` of matrix `m` in ``storage``.
    @inline(__always) func panelOffset(matrix m: Int, panel p: Int) -> Int {
        (m * panelCount + p) * inFeatures * Self.width
    }
}

/// The fast-kernel layout of ``ExpertWeights``.
struct PackedExpertWeights: Sendable {
    let gate: PackedPanels
    let up: PackedPanels?
    let down: PackedPanels

    init(gate: Tensor<Float>, up: Tensor<Float>?, down: Tensor<Float>) {
        self.gate = PackedPanels(gate)
        self.up = up.map(PackedPanels.init)
        self.down = PackedPanels(down)
    }
}
