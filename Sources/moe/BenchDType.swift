import ArgumentParser
import MoECost

/// `moe estimate --dtype` and `--compute`: the two dtypes a `moe bench` preset block is measured in
/// (``BlockShape/benchPrecisions``). `torch_dtype` spellings are taken too (`float32`, `bfloat16`, …),
/// as ``WeightDType/init(torchName:)`` reads them; any other dtype is refused as the command line is read.
enum BenchDType: String, CaseIterable, ExpressibleByArgument {
    case f32
    case bf16

    init?(argument: String) {
        switch WeightDType(torchName: argument) {
        case .f32: self = .f32
        case .bf16: self = .bf16
        default: return nil
        }
    }

    /// The same dtype in the cost model's terms.
    var weightDType: WeightDType {
        switch self {
        case .f32: .f32
        case .bf16: .bf16
        }
    }
}
