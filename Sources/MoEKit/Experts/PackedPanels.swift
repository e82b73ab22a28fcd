import CMoEKernels

/// How the fast kernels store expert weights.
public enum WeightPrecision: String, Sendable, CaseIterable {
    /// 32-bit floats.
    case f32
    /// bfloat16, widened exactly to F32 inside the kernel (F32 accumulation, F32 activations). Exact for
    /// weights that came from a BF16 checkpoint; rounds F32 weights to nearest-even otherwise.
    case bf16
    /// BF16 compute, what PyTorch's BF16 path does: bfloat16 weights **and** activations rounded to
    /// bfloat16 before each projection, products accumulated in F32 (AVX-512 BF16 `vdpbf16ps` where the
    /// CPU has it). Not exact against an F32 reference: about 2⁻⁸ relative per rounding.
    case bf16Compute = "bf16-compute"
}

/// A stack of `[out, in]` matrices repacked for the fast kernels: each matrix's output columns are cut
/// into panels of ``width`` and each panel is stored `in`-major, so a kernel streams one contiguous
/// panel: `panel[p][i][c] = W[p·width + c, i]` (zero beyond `out`). A K-block of a panel is a
/// contiguous slice of it.
///
/// Several stacks of the same shape can be interleaved panel by panel (gate and up: panel `p` of
/// source `s` is stored as panel `p·sources + s`), so one work item streams gate panel p and then up
/// panel p from consecutive memory, and the kernels' prefetch runs from the one into the other.
struct PackedPanels: Sendable {
    /// Output columns per panel: two 512-bit registers of floats.
    static let width = Int(MOE_PANEL_WIDTH)

    enum Storage: Sendable {
        case f32([Float])
        case bf16([UInt16])
        /// k-pairs: word `[kp][n]` = bf16(W[n, 2kp]) | bf16(W[n, 2kp+1]) << 16.
        case bf16Pairs([UInt32])
    }

    let matrixCount: Int
    /// Output columns of one source matrix.
    let outFeatures: Int
    let inFeatures: Int
    /// Interleaved source stacks (1, or 2 for gate and up).
    let sourceCount: Int
    /// Panels of one source matrix: `⌈outFeatures / width⌉`.
    let panelCount: Int
    let storage: Storage

    var precision: WeightPrecision {
        switch storage {
        case .f32: .f32
        case .bf16: .bf16
        case .bf16Pairs: .bf16Compute
        }
    }

    /// k-pairs per panel column (BF16-compute layout).
    var pairCount: Int { (inFeatures + 1) / 2 }

    /// Packs one stack `[matrices, out, in]`.
    init(_ w: Tensor<Float>, precision: WeightPrecision) {
        self.init(interleaving: [w], precision: precision)
    }

    /// Packs stacks of one shape `[matrices, out, in]`, interleaved panel by panel.
    init(interleaving sources: [Tensor<Float>], precision: WeightPrecision) {
        let shape = sources.first?.shape ?? [0, 0, 0]
        let (m, out, inF, count) = (shape[0], shape[1], shape[2], sources.count)
        let panels = (out + Self.width - 1) / Self.width
        let stored = panels * count
        var packed = [Float](repeating: 0, count: m * stored * inF * Self.width)
        for (s, w) in sources.enumerated() {
            for matrix in 0..<m {
                for o in 0..<out {
                    let (p, c) = (o / Self.width, o % Self.width)
                    let base = ((matrix * stored + p * count + s) * inF) * Self.width + c
                    let source = (matrix * out + o) * inF
                    for i in 0..<inF { packed[base + i * Self.width] = w.storage[source + i] }
                }
            }
        }
        matrixCount = m
        outFeatures = out
        inFeatures = inF
        sourceCount = count
        panelCount = panels
        switch precision {
        case .f32: storage = .f32(packed)
        case .bf16: storage = .bf16(packed.map { BFloat16($0).bitPattern })
        case .bf16Compute:
            let pairs = (inF + 1) / 2
            var words = [UInt32](repeating: 0, count: m * stored * pairs * Self.width)
            for panel in 0..<(m * stored) {
                for i in 0..<inF {
                    for c in 0..<Self.width {
                        let bits = UInt32(BFloat16(packed[(panel * inF + i) * Self.width + c]).bitPattern)
                        words[(panel * pairs + i / 2) * Self.width + c] |= i % 2 == 0 ? bits : bits << 16
                    }
                }
            }
            storage = .bf16Pairs(words)
        }
    }

    /// Element (or word, for k-pairs) offset of panel `p` of source `s` of matrix `m`.
    @inline(__always) func panelOffset(matrix m: Int, panel p: Int, source s: Int = 0) -> Int {
        let index = (m * panelCount + p) * sourceCount + s
        switch storage {
        case .bf16Pairs: return index * pairCount * Self.width
        case .f32, .bf16: return index * inFeatures * Self.width
        }
    }

    /// Whether every value of `w` is a bfloat16 (low 16 bits zero), so BF16 packing loses nothing.
    static func isExactlyBFloat16(_ w: Tensor<Float>) -> Bool {
        w.storage.allSatisfy { $0.bitPattern & 0xFFFF == 0 }
    }
}

/// The fast-kernel layout of ``ExpertWeights``: gate and up interleaved panel by panel (source 0 gate,
/// source 1 up; gate alone for ungated experts), and down.
struct PackedExpertWeights: Sendable {
    let gateUp: PackedPanels
    let down: PackedPanels

    init(gate: Tensor<Float>, up: Tensor<Float>?, down: Tensor<Float>, precision: WeightPrecision) {
        gateUp = PackedPanels(interleaving: [gate] + (up.map { [$0] } ?? []), precision: precision)
        self.down = PackedPanels(down, precision: precision)
    }

    /// Whether experts have an up projection (gated activations).
    var isGated: Bool { gateUp.sourceCount == 2 }
}
