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
    /// gate/up of ``intermediateColumns`` (no down rows).
    let intermediate: ExpertWeights
    /// down of ``outputColumns`` (no gate/up rows).
    let output: ExpertWeights

    init(_ w: ExpertWeights, rank j: Int, of ranks: Int, threads: Int = Parallel.defaultThreadCount) throws {
        let (e, f, h) = (w.expertCount, w.intermediateSize, w.hiddenSize)
        let fs = (f * j / ranks)..<(f * (j + 1) / ranks)
        let hs = (h * j / ranks)..<(h * (j + 1) / ranks)
        intermediateColumns = fs
        outputColumns = hs
        // Columns `columns` of a bias `[E, total]`.
        func columns(_ t: Tensor<Float>?, _ columns: Range<Int>, total: Int) throws -> Tensor<Float>? {
            guard let t else { return nil }
            var out: [Float] = []
            out.reserveCapacity(e * columns.count)
            for x in 0..<e { out += t.storage[(x * total + columns.lowerBound)..<(x * total + columns.upperBound)] }
            return try Tensor(shape: [e, columns.count], storage: out)
        }
        let kind = w.kind
        // The weights of the other projection are not used by this slice's kernels: no rows, no bytes.
        intermediate = ExpertWeights(kind: kind, gateUp: try w.gateUp.selectingRows(fs, threads: threads), down: try w.down.emptied(),
                                     hiddenSize: h, intermediateSize: fs.count,
                                     gateBias: try columns(w.gateBias, fs, total: f), upBias: try columns(w.upBias, fs, total: f),
                                     downBias: kind.hasBiases ? Tensor(shape: [e, h]) : nil)
        output = ExpertWeights(kind: kind, gateUp: try w.gateUp.emptied(), down: try w.down.selectingRows(hs, threads: threads),
                               hiddenSize: hs.count, intermediateSize: f,
                               gateBias: kind.hasBiases ? Tensor(shape: [e, f]) : nil,
                               upBias: kind.hasBiases && kind.isGated ? Tensor(shape: [e, f]) : nil,
                               downBias: try columns(w.downBias, hs, total: h))
    }
}

/// A 2-D device mesh, `EP × TP`: `EP` groups of experts (expert parallelism), each spread over `TP`
/// ranks (tensor parallelism). Rank r is (ep = r / TP, tp = r % TP).
public struct MeshShape: Sendable, Equatable, CustomStringConvertible {
    /// EP: expert-parallel groups (the experts are split EP ways).
    public let expertParallel: Int
    /// TP: tensor-parallel ranks in each group (each expert's columns are split TP ways).
    public let tensorParallel: Int

    /// A mesh of `expertParallel` × `tensorParallel` ranks.
    /// - Throws: ``ParallelError/invalidDeviceCount(_:)`` for a side below 1, ``ParallelError/invalidMesh(_:)``
    ///   when EP · TP overflows `Int`.
    public init(expertParallel: Int, tensorParallel: Int) throws(ParallelError) {
        guard expertParallel >= 1 else { throw .invalidDeviceCount(expertParallel) }
        guard tensorParallel >= 1 else { throw .invalidDeviceCount(tensorParallel) }
        guard !expertParallel.multipliedReportingOverflow(by: tensorParallel).overflow else {
            throw .invalidMesh("\(expertParallel)x\(tensorParallel)")
        }
        self.expertParallel = expertParallel
        self.tensorParallel = tensorParallel
    }

    /// Parses `EPxTP`, e.g. `2x2` (exactly two decimal integers around one `x` or `X`).
    /// - Throws: ``ParallelError/invalidMesh(_:)``, or the errors of ``init(expertParallel:tensorParallel:)``.
    public init(parsing text: String) throws(ParallelError) {
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let ep = Int(parts[0]), let tp = Int(parts[1]) else { throw .invalidMesh(text) }
        try self.init(expertParallel: ep, tensorParallel: tp)
    }

    /// EP · TP.
    public var rankCount: Int { expertParallel * tensorParallel }
    /// `EPxTP`, as `--mesh` takes it.
    public var description: String { "\(expertParallel)x\(tensorParallel)" }
}
