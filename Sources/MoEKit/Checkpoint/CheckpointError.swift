/// A checkpoint folder whose tensors do not fit its `config.json`, or that lacks a tensor.
public enum CheckpointError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The folder has no tensor `name`; `hint` says which layer and architecture expected it.
    case missingTensor(name: String, directory: String, hint: String)
    /// Tensor `name` in `file` has shape `actual` where `config.json` implies `expected`.
    case wrongShape(name: String, file: String, expected: [Int], actual: [Int])
    /// Tensor `name` in `file` has a dtype MoEKit does not take for it.
    case wrongDType(name: String, file: String, dtype: String)
    /// Element `index` of tensor `name` (a bias, router or gate vector, or a dense matrix) is NaN or infinite.
    case nonFinite(name: String, file: String, index: Int)
    /// Expert `expert`'s matrix in tensor `name` holds a NaN or infinite weight (an E4M3 NaN code included).
    case nonFiniteWeight(name: String, file: String, expert: Int)
    /// The folder has no `config.json`.
    case missingConfig(directory: String)
    /// A quantized weight that breaks its format's rules (scales of the wrong shape or dtype, a NaN scale,
    /// a dtype its `quant_method` does not allow).
    case badQuantization(name: String, file: String, reason: String)
    /// The layer would need more memory than the machine has available.
    case insufficientMemory(what: String, needed: Int, available: Int)
    /// The folder has neither `model.safetensors` nor `model.safetensors.index.json`.
    case noWeights(directory: String)

    /// One line naming the file, tensor and value at fault.
    public var description: String {
        switch self {
        case .missingTensor(let name, let dir, let hint): "\(dir): missing tensor '\(name)'\(hint.isEmpty ? "" : " (\(hint))")"
        case .wrongShape(let name, let file, let expected, let actual):
            "\(file): tensor '\(name)' has shape \(actual), but config.json implies \(expected)"
        case .wrongDType(let name, let file, let dtype):
            "\(file): tensor '\(name)' has dtype \(dtype); weights must be F32, BF16, F16, F8_E4M3 (quant_method fp8) or MXFP4 blocks (quant_method mxfp4)"
        case .nonFinite(let name, let file, let index): "\(file): tensor '\(name)' element \(index) is NaN or infinite"
        case .nonFiniteWeight(let name, let file, let expert): "\(file): tensor '\(name)' (expert \(expert)) holds a NaN or infinite weight"
        case .missingConfig(let dir): "\(dir): no config.json"
        case .badQuantization(let name, let file, let reason): "\(file): tensor '\(name)': \(reason)"
        case .insufficientMemory(let what, let needed, let available):
            "\(what) needs \(Self.gigabytes(needed)) of memory, but only \(Self.gigabytes(available)) is available (cgroup limit or MemAvailable)"
        case .noWeights(let dir): "\(dir): no model.safetensors or model.safetensors.index.json"
        }
    }

    /// `12.34 GB`, `5.2 MB` or `4096 bytes`.
    static func gigabytes(_ bytes: Int) -> String {
        func fixed(_ value: Double, _ digits: Int) -> String {
            let scale = digits == 2 ? 100 : 10
            let n = Int((value * Double(scale)).rounded())
            let fraction = String(n % scale)
            return "\(n / scale)." + String(repeating: "0", count: (digits == 2 ? 2 : 1) - fraction.count) + fraction
        }
        if bytes >= 1_000_000_000 { return fixed(Double(bytes) / 1e9, 2) + " GB" }
        if bytes >= 1_000_000 { return fixed(Double(bytes) / 1e6, 1) + " MB" }
        return "\(bytes) bytes"
    }
}
