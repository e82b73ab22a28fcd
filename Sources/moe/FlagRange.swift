import ArgumentParser

/// The values a numeric flag accepts.
///
/// ``parse(_:)`` is the option's `transform`, so argument-parser checks the text as it reads the command
/// line: a malformed or out-of-range value is refused before any command runs and before anything is sized
/// by it, with one line that names the flag, the value and the range (``FlagValueError``).
/// The ranges themselves live in ``Flags``, one per flag meaning.
///
/// A number's range is checked here, as its text is read, rather than in a command's `validate()`: there the
/// text is gone (`1e400` is `inf`, `0` is `0.0`), and a malformed value (`abc`, 2⁶³) is refused by
/// argument-parser before `validate()` runs, with no word of what is expected. Checks that need the values
/// of several flags, or a value that is not a number (``ParallelOptions/validate()``: a mesh's rank count),
/// are in `validate()`.
struct FlagRange<Value: Comparable & LosslessStringConvertible & Sendable>: Sendable, CustomStringConvertible {
    let bounds: ClosedRange<Value>

    init(_ bounds: ClosedRange<Value>) { self.bounds = bounds }

    /// `1...1024`.
    var description: String { "\(bounds.lowerBound)...\(bounds.upperBound)" }

    /// The value `text` spells, if it lies in ``bounds``.
    /// - Throws: ``FlagValueError/notInRange(range:isInteger:)`` for anything else: not a number, a fraction
    ///   for an integer, out of range (NaN and the infinities are never in a finite range).
    func parse(_ text: String) throws(FlagValueError) -> Value {
        guard let value = Value(text), bounds.contains(value) else {
            throw .notInRange(range: description, isInteger: Value.self is any BinaryInteger.Type)
        }
        return value
    }

    /// The option's help: `abstract`, then the range and the default (a transform hides argument-parser's own
    /// "(default: …)", so it is written here).
    func help(_ abstract: String, default defaultValue: Value? = nil) -> ArgumentHelp {
        ArgumentHelp("\(abstract) (\(self)\(defaultValue.map { "; default: \($0)" } ?? ""))")
    }
}

/// Why a flag's text was refused. argument-parser writes it after "The value 'x' is invalid for
/// '--flag <flag>': ", which already names the flag and the value.
enum FlagValueError: Error, CustomStringConvertible {
    /// Not a number of the flag's kind inside `range`.
    case notInRange(range: String, isInteger: Bool)

    var description: String {
        switch self {
        case .notInRange(let range, let isInteger): "expected \(isInteger ? "an integer" : "a number") in \(range)"
        }
    }
}

/// The range of every numeric flag of `moe`, by meaning. A flag that means the same in several commands
/// takes the same range in all of them.
enum Flags {
    /// `--threads`: worker threads. More than the machine's cores only time-slices, so the ceiling is a bound
    /// on nonsense rather than a tuning knob.
    static let threads = FlagRange(1...1024)
    /// `--devices` of the in-process expert-parallel commands and of `moe route`: each device owns at least
    /// one expert, and no model has more than a few hundred.
    static let devices = FlagRange(1...1024)
    /// `moe estimate --devices`: a cluster's size in the cost model (nothing is allocated per device).
    static let estimateDevices = FlagRange(1...65_536)
    /// `moe run --tokens` and `--check-tokens`: the random batch, allocated as `[T, H]` F32 and forwarded.
    /// 64 Ki tokens is a long prefill; `moe run` also checks the forward's buffers against the memory available.
    static let runTokens = FlagRange(1...65_536)
    /// `moe estimate --tokens`: arithmetic only, up to 2³⁰ tokens without overflowing any count.
    static let estimateTokens = FlagRange(1...(1 << 30))
    /// `moe estimate --preset … --tokens`: the block estimate sums a binomial over 0...T per expert, so T is
    /// held to `moe run`'s range.
    static let blockEstimateTokens = runTokens
    /// `--layer`: a decoder layer index; the model's own layer count is checked once it is opened.
    static let layer = FlagRange(0...65_535)
    /// `moe run --repeats`: timed forwards of the same tokens.
    static let runRepeats = FlagRange(1...1000)
    /// `moe bench --repeats`: every repeat has its own input tensor, made before the timing starts.
    static let benchRepeats = FlagRange(1...100)
    /// `--seed`: any 64-bit seed.
    static let seed = FlagRange(UInt64.min...UInt64.max)
    /// `moe route --num-experts` and `moe estimate --experts`: `mapping` is `[T, E]`.
    static let experts = FlagRange(1...65_536)
    /// `moe estimate --top-k`: at most `--experts`, checked with it.
    static let topK = experts
    /// `--timeout` (seconds, with `--mpi`): a day at most.
    static let timeout = FlagRange(0.001...86_400.0)
    /// `moe estimate --skew`: a Zipf exponent; beyond a few, every token already goes to the first experts.
    static let skew = FlagRange(0.0...100.0)
    /// `--mesh`: at most as many EP · TP in-process ranks as `--devices` (checked by ``ParallelOptions/validate()``).
    static let meshRanks = devices.bounds.upperBound
}
