/// The collectives expert parallelism needs between the ranks (devices) of a group. Two conformers:
/// ``InProcessCommunicator`` (ranks are threads of one process) and `MPICommunicator` (ranks are
/// processes under `mpirun`, in the `MoEMPI` target behind the `MPI` package trait).
public protocol Communicator: Sendable {
    /// This rank, `0..<size`.
    var rank: Int { get }
    /// The number of ranks.
    var size: Int { get }
    /// All-to-all-v: `send[d]` goes to rank d; returns `received[s]`, what rank s sent to this rank.
    func allToAll(_ send: [[UInt8]]) throws -> [[UInt8]]
    /// Every rank's `bytes`, indexed by rank.
    func allGather(_ bytes: [UInt8]) throws -> [[UInt8]]
}

extension Communicator {
    /// Waits until every rank has arrived.
    public func barrier() throws { _ = try allGather([]) }

    /// Reduce-scatter of F32 sums: every rank contributes `values` (the same length everywhere, cut into
    /// `size` contiguous blocks as evenly as possible); rank r gets block r summed over ranks **in rank
    /// order** (0 + v₀ + v₁ + …), so the result is the same bits on every run and transport.
    public func reduceScatterSum(_ values: [Float]) throws -> [Float] {
        let n = values.count
        let blocks = (0..<size).map { (n * $0 / size)..<(n * ($0 + 1) / size) }
        let received = try allToAll(blocks.map { Array(values[$0]).wireBytes }).map { [Float](wireBytes: $0) }
        let mine = blocks[rank]
        guard received.allSatisfy({ $0.count == mine.count }) else {
            throw CommunicatorError.mismatch("reduce-scatter of \(n) values: ranks sent blocks of different sizes")
        }
        var sum = [Float](repeating: 0, count: mine.count)
        for part in received { for i in 0..<sum.count { sum[i] += part[i] } }
        return sum
    }
}

/// A collective that could not complete.
public enum CommunicatorError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No message from the other ranks within the time limit (a rank died or hangs).
    case timedOut(rank: Int, operation: String, seconds: Double)
    /// Another rank failed and the group was aborted.
    case peerFailed(rank: Int, reason: String)
    /// The ranks disagree about something that must be the same everywhere.
    case mismatch(String)
    /// The transport reported an error.
    case transport(String)
    /// A collective's messages exceed what the transport can address in one call (MPI: 32-bit counts and
    /// displacements, 2 GiB − 1 bytes).
    case messageTooLarge(operation: String, bytes: Int, limit: Int)

    /// One line naming the rank and what failed.
    public var description: String {
        switch self {
        case .timedOut(let rank, let op, let s): "rank \(rank): \(op) got no answer from the other ranks within \(s) s"
        case .peerFailed(let rank, let reason): "rank \(rank): another rank failed: \(reason)"
        case .mismatch(let what): "ranks disagree: \(what)"
        case .transport(let what): "communication failed: \(what)"
        case .messageTooLarge(let op, let bytes, let limit):
            "\(op) needs \(bytes) bytes in one call, over the transport's limit of \(limit) bytes (use more ranks or fewer tokens a batch)"
        }
    }
}

/// The message encoding of every ``Communicator``: plain arrays as their little-endian bytes (all supported
/// platforms are little-endian), so in-process and MPI ranks exchange the same payloads.
extension Array where Element: BitwiseCopyable {
    /// The elements' bytes.
    public var wireBytes: [UInt8] { withUnsafeBytes { [UInt8]($0) } }

    /// Elements from bytes written by ``wireBytes`` (a trailing partial element is ignored).
    public init(wireBytes bytes: [UInt8]) {
        let count = bytes.count / MemoryLayout<Element>.stride
        // No empty `unsafeUninitializedCapacity` array: it writes its count into the standard library's shared
        // empty-array singleton, which ThreadSanitizer reports as a race between threads (benign, but it hides real ones).
        guard count > 0 else {
            self = []
            return
        }
        self.init(unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                if count > 0, let source = raw.baseAddress, let target = buffer.baseAddress {
                    UnsafeMutableRawPointer(target).copyMemory(from: source, byteCount: count * MemoryLayout<Element>.stride)
                }
            }
            initialized = count
        }
    }
}
