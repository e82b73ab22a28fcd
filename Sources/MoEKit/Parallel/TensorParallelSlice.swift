/// One tensor-parallel rank's share of the experts (rank j of TP): the gate/up rows of intermediate
/// columns `F·j/TP ..< F·(j+1)/TP` and the down rows of output columns `H·j/TP ..< H·(j+1)/TP`.
///
/// The layer runs column-parallel twice: each rank computes its intermediate columns, an all-gather
/// assembles the full intermediate rows, each rank computes its output columns over the **whole** F,
/// and an all-gather assembles the output rows. Every element is then computed by exactly one rank
/// with the same arithmetic as on one device (no partial sums to reduce), so the result is
/// bit-identical — the reason MoEKit gathers instead of reduce-scattering partial down projections.
struct TensorParallelSlice: Sendable {
    /// Intermediate columns of this rank.
    let intermediateColumns: Range<Int>
    /// Output columns of this rank.
    let outputColumns: Range<Int>
    /// gate/up of ``intermediateColumns`` (its `down` is an unused zero placeholder).
    let intermediate: ExpertWeights
    /// down of ``outputColumns`` (its `gate`/`up` are unused zero placeholders).
    let output: ExpertWeights

    init(_ w: ExpertWeights, rank j: Int, of ranks: Int) throws {
        let (e, f, h) = (w.expertCount, w.intermediateSize, w.hiddenSize)
        let fs = (f * j / ranks)..<(f * (j + 1) / ranks)
        let hs = (h * j / ranks)..<(h * (j + 1) / ranks)
        intermediateColumns = fs
        outputColumns = hs
        // Rows `rows` of every expert's [rowsTotal, cols] matrix.
        func rows(_ t: Tensor<Float>?, _ rows: Range<Int>, total: Int, cols: Int) throws -> Tensor<Float>? {
            guard let t else { return nil }
            var out: [Float] = []
            out.reserveCapacity(e * rows.count * cols)
            for x in 0..<e { out += t.storage[((x * total + rows.lowerBound) * cols)..<((x * total + rows.upperBound) * cols)] }
            return try Tensor(shape: cols == 1 ? [e, rows.count] : [e, rows.count, cols], storage: out)
        }
        let kind = w.kind
        let gate = try rows(w.gate, fs, total: f, cols: h)
        intermediate = try ExpertWeights(
            kind: kind, gate: gate ?? Tensor(shape: [e, fs.count, h]), up: try rows(w.up, fs, total: f, cols: h),
            down: Tensor(shape: [e, h, fs.count]), gateBias: try rows(w.gateBias, fs, total: f, cols: 1),
            upBias: try rows(w.upBias, fs, total: f, cols: 1),
            downBias: kind.hasBiases ? Tensor(shape: [e, h]) : nil, precision: w.precision)
        output = try ExpertWeights(
            kind: kind, gate: Tensor(shape: [e, f, hs.count]), up: kind.isGated ? Tensor(shape: [e, f, hs.count]) : nil,
            down: try rows(w.down, hs, total: h, cols: f) ?? Tensor(shape: [e, hs.count, f]),
            gateBias: kind.hasBiases ? Tensor(shape: [e, f]) : nil, upBias: kind.hasBiases && kind.isGated ? Tensor(shape: [e, f]) : nil,
            downBias: try rows(w.downBias, hs, total: h, cols: 1), precision: w.precision)
    }
}

/// A 2-D device mesh, `EP × TP`: `EP` groups of experts (expert parallelism), each spread over `TP`
/// ranks (tensor parallelism). Rank r is (ep = r / TP, tp = r % TP).
public struct MeshShape: Sendable, Equatable, CustomStringConvertible {
    public let expertParallel: Int
    public let tensorParallel: Int

    public init(expertParallel: Int, tensorParallel: Int) throws(ParallelError) {
        guard expertParallel >= 1 else { throw .invalidDeviceCount(expertParallel) }
        guard tensorParallel >= 1 else { throw .invalidDeviceCount(tensorParallel) }
        self.expertParallel = expertParallel
        self.tensorParallel = tensorParallel
    }

    /// Parses `EPxTP`, e.g. `2x2`.
    public init(parsing text: String) throws(ParallelError) {
        let parts = text.lowercased().split(separator: "x")
        guard parts.count == 2, let ep = Int(parts[0]), let tp = Int(parts[1]) else { throw .invalidMesh(text) }
        try self.init(expertParallel: ep, tensorParallel: tp)
    }

    /// EP · TP.
    public var rankCount: Int { expertParallel * tensorParallel }
    public var description: String { "\(expertParallel)x\(tensorParallel)" }
}
