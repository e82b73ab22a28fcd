/// The weights of E experts, each kept once, in the format its checkpoint stores (F32, BF16, F16,
/// FP8 E4M3 with block scales, MXFP4, the ggml block formats), packed once into the fast kernels' panels
/// (32 output columns each, input-major, in the stored format):
///
/// - gate `[E, F, H]` (W1 of ``ExpertKind/mlp(_:)``) and up `[E, F, H]` (gated kinds), interleaved
///   panel by panel so one work item streams both;
/// - down `[E, H, F]`;
/// - biases (small, F32): `gateBias`/`upBias` `[E, F]`, `downBias` `[E, H]`, when ``ExpertKind/hasBiases``.
///
/// Nothing else is kept: the reference kernels decode one weight row at a time from the panels
/// (``decodeRow(_:expert:row:into:)``), so a layer is resident at about its stored size.
public struct ExpertWeights: Sendable {
    /// The three projections of an expert.
    public enum Projection: Sendable, CaseIterable {
        /// gate `[E, F, H]` (W1 of an ungated MLP).
        case gate
        /// up `[E, F, H]` (gated kinds only).
        case up
        /// down `[E, H, F]`.
        case down
    }

    /// The feed-forward network every expert computes.
    public let kind: ExpertKind
    /// E.
    public let expertCount: Int
    /// H.
    public let hiddenSize: Int
    /// F.
    public let intermediateSize: Int
    /// gate's bias `[E, F]` (W1's for an ungated MLP), when ``ExpertKind/hasBiases``.
    public let gateBias: Tensor<Float>?
    /// up's bias `[E, F]`, for gated kinds with biases (GPT-OSS).
    public let upBias: Tensor<Float>?
    /// down's bias `[E, H]`, when ``ExpertKind/hasBiases``.
    public let downBias: Tensor<Float>?
    /// gate (source 0) and up (source 1) panels.
    let gateUp: PanelMatrices
    let down: PanelMatrices

    /// Packs stored weights (views of a checkpoint, or bytes MoEKit made) once, in their format.
    /// - Parameters:
    ///   - kind: the experts' feed-forward network; it decides which of `up` and the biases are required.
    ///   - gate: `[E, F, H]` (W1 of an ungated MLP).
    ///   - up: `[E, F, H]` in gate's format, for the gated kinds; `nil` otherwise.
    ///   - down: `[E, H, F]`, in any format.
    ///   - gateBias: `[E, F]`, when `kind` has biases.
    ///   - upBias: `[E, F]`, when `kind` is gated and has biases.
    ///   - downBias: `[E, H]`, when `kind` has biases.
    ///   - compute: ``ComputeMode/bf16`` rounds activations to bfloat16 (BF16 weights only).
    ///   - residency: packed once (the default), or read in place where the format allows
    ///     (``WeightResidency/mapped``: F32, BF16, F16; quantized formats are packed either way).
    ///   - threads: packing (or checking) threads.
    ///   - progress: told the stored bytes and matrices of each expert matrix once it is packed (or checked).
    /// - Throws: ``TensorError/shapeMismatch(expected:actual:)`` naming the part that disagrees, ``WeightError``.
    public init(kind: ExpertKind, gate: StoredMatrices, up: StoredMatrices?, down: StoredMatrices,
                gateBias: Tensor<Float>? = nil, upBias: Tensor<Float>? = nil, downBias: Tensor<Float>? = nil,
                compute: ComputeMode = .f32, residency: WeightResidency = .packed, threads: Int = Parallel.defaultThreadCount,
                progress: ((_ bytes: Int, _ matrices: Int) -> Void)? = nil) throws {
        let (e, f, h) = (gate.count, gate.rows, gate.columns)
        func check(_ shape: [Int]?, _ name: String, _ expected: [Int], required: Bool) throws(TensorError) {
            if let shape {
                guard required else { throw .shapeMismatch(expected: "no \(name) for \(kind)", actual: "\(shape)") }
                guard shape == expected else { throw .shapeMismatch(expected: "\(name) \(expected)", actual: "\(shape)") }
            } else if required {
                throw .shapeMismatch(expected: "\(name) \(expected)", actual: "missing")
            }
        }
        try check(up.map { [$0.count, $0.rows, $0.columns] }, "up", [e, f, h], required: kind.isGated)
        try check([down.count, down.rows, down.columns], "down", [e, h, f], required: true)
        try check(gateBias?.shape, "gate bias", [e, f], required: kind.hasBiases)
        try check(upBias?.shape, "up bias", [e, f], required: kind.hasBiases && kind.isGated)
        try check(downBias?.shape, "down bias", [e, h], required: kind.hasBiases)
        if let up, up.format != gate.format {
            throw TensorError.shapeMismatch(expected: "up in gate's format \(gate.format)", actual: "\(up.format)")
        }
        self.kind = kind
        expertCount = e
        hiddenSize = h
        intermediateSize = f
        self.gateBias = gateBias
        self.upBias = upBias
        self.downBias = downBias
        let sources = [gate] + (up.map { [$0] } ?? [])
        let gateUpBytes = sources.reduce(0) { $0 + $1.storedBytes } / max(e, 1), downBytes = down.storedBytes / max(e, 1)
        gateUp = try Self.panels(sources, compute: compute, residency: residency, threads: threads) { progress?(gateUpBytes, sources.count) }
        self.down = try Self.downPanels(down, compute: compute, residency: residency, threads: threads) { progress?(downBytes, 1) }
    }

    /// Down's panels; a non-finite weight is reported as stack 2 (gate 0, up 1, down 2).
    private static func downPanels(_ down: StoredMatrices, compute: ComputeMode, residency: WeightResidency, threads: Int,
                                   progress: @escaping () -> Void) throws -> PanelMatrices {
        do {
            return try panels([down], compute: compute, residency: residency, threads: threads, progress: progress)
        } catch .nonFinite(let matrix, _) {
            throw WeightError.nonFinite(matrix: matrix, source: 2)
        }
    }

    /// The kernels' view of stacks: read in place when `residency` asks and the format allows, else packed.
    private static func panels(_ sources: [StoredMatrices], compute: ComputeMode, residency: WeightResidency, threads: Int,
                               progress: @escaping () -> Void) throws(WeightError) -> PanelMatrices {
        if residency == .mapped, let first = sources.first, PanelMatrices.readsInPlace(first.format, compute: compute) {
            return try PanelMatrices(mapping: sources, compute: compute, threads: threads) { _ in progress() }
        }
        return try PanelMatrices(packing: sources, compute: compute, threads: threads) { _ in progress() }
    }

    /// Bytes the weights of these stored stacks will allocate (known before anything is allocated): the packed
    /// panels, or nothing for stacks read in place.
    public static func bytesNeeded(gate: StoredMatrices, up: StoredMatrices?, down: StoredMatrices, compute: ComputeMode = .f32,
                                   residency: WeightResidency = .packed) -> Int {
        func needed(_ stack: StoredMatrices) -> Bool { residency == .packed || !PanelMatrices.readsInPlace(stack.format, compute: compute) }
        return (needed(gate) ? PanelMatrices.bytesNeeded(packing: [gate] + (up.map { [$0] } ?? []), compute: compute) : 0)
            + (needed(down) ? PanelMatrices.bytesNeeded(packing: [down], compute: compute) : 0)
    }

    /// Stores F32 values as `format` (rounding or quantizing them, see
    /// ``StoredMatrices/init(quantizing:as:)``), then packs. `format` `nil` chooses BF16 when every weight
    /// is exactly a bfloat16 (half the bytes, identical results), else F32. The F32 tensors are not kept.
    public init(kind: ExpertKind, gate: Tensor<Float>, up: Tensor<Float>?, down: Tensor<Float>,
                gateBias: Tensor<Float>? = nil, upBias: Tensor<Float>? = nil, downBias: Tensor<Float>? = nil,
                format: WeightFormat? = nil, compute: ComputeMode = .f32, threads: Int = Parallel.defaultThreadCount) throws {
        guard gate.rank == 3, down.rank == 3, up.map({ $0.rank == 3 }) ?? true else {
            throw TensorError.shapeMismatch(expected: "gate [E, F, H], up [E, F, H], down [E, H, F]",
                                            actual: "\(gate.shape), \(up?.shape ?? []), \(down.shape)")
        }
        func exact(_ t: Tensor<Float>) -> Bool { t.storage.allSatisfy { $0.bitPattern & 0xFFFF == 0 } }
        let chosen = format ?? ((exact(gate) && exact(down) && (up.map(exact) ?? true)) ? .bf16 : .f32)
        try self.init(kind: kind, gate: try StoredMatrices(quantizing: gate, as: chosen),
                      up: try up.map { try StoredMatrices(quantizing: $0, as: chosen) },
                      down: try StoredMatrices(quantizing: down, as: chosen),
                      gateBias: gateBias, upBias: upBias, downBias: downBias, compute: compute, threads: threads)
    }

    /// Assembles already-packed panels (tensor-parallel slices).
    init(kind: ExpertKind, gateUp: PanelMatrices, down: PanelMatrices, hiddenSize: Int, intermediateSize: Int,
         gateBias: Tensor<Float>?, upBias: Tensor<Float>?, downBias: Tensor<Float>?) {
        self.kind = kind
        expertCount = gateUp.matrixCount
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.gateUp = gateUp
        self.down = down
        self.gateBias = gateBias
        self.upBias = upBias
        self.downBias = downBias
    }

    /// The stored format of the expert weights.
    public var format: WeightFormat { gateUp.format }

    /// How the fast kernels round activations.
    public var compute: ComputeMode { gateUp.compute }

    /// Where the fast kernels read the expert weights from (quantized formats are packed whatever was asked).
    public var residency: WeightResidency { gateUp.mapped == nil ? .packed : .mapped }

    /// Bytes held for the weights (packed values, scales and biases; the stored bytes of stacks read in place).
    public var residentBytes: Int {
        gateUp.residentBytes + down.residentBytes + 4 * [gateBias, upBias, downBias].reduce(0) { $0 + ($1?.count ?? 0) }
    }

    /// Row `row` (an output feature) of `projection` of expert `expert`, decoded exactly to F32
    /// (`H` values for gate and up, `F` for down).
    public func decodeRow(_ projection: Projection, expert: Int, row: Int, into out: UnsafeMutablePointer<Float>) {
        switch projection {
        case .gate: gateUp.decodeRow(matrix: expert, source: 0, row: row, into: out)
        case .up: gateUp.decodeRow(matrix: expert, source: 1, row: row, into: out)
        case .down: down.decodeRow(matrix: expert, row: row, into: out)
        }
    }

    /// The whole of `projection`, decoded to F32 (`[E, F, H]` or `[E, H, F]`): for tests and tools, never
    /// on the compute path; `nil` for `up` of ungated kinds.
    public func dequantized(_ projection: Projection) -> Tensor<Float>? {
        if projection == .up && !kind.isGated { return nil }
        let (rows, columns) = projection == .down ? (hiddenSize, intermediateSize) : (intermediateSize, hiddenSize)
        var t = Tensor<Float>(shape: [expertCount, rows, columns])
        t.storage.withUnsafeMutableBufferPointer { out in
            guard let base = out.baseAddress else { return }
            for e in 0..<expertCount {
                for r in 0..<rows { decodeRow(projection, expert: e, row: r, into: base + (e * rows + r) * columns) }
            }
        }
        return t
    }

    /// The instruction set the fast kernels use on this CPU.
    public static var kernelISA: String { TileKernel.isaName }

    /// The int8-compute kernels in use (`moe bench`'s `machine.int8_isa`): `avx512-vnni`, `avx2` or `swift`.
    public static var int8KernelISA: String { Int8Dot.ISA.detected.name }

    /// Why the fast kernels do not run on AMX (`moe bench`'s `machine.amx`): the CPU, the OS's permission,
    /// `MOEKIT_ISA`, or no AMX kernel in this build; `nil` when they do.
    public static var kernelAMXFallback: String? { KernelSelection.amxFallbackReason }
}
