/// A checkpoint folder whose tensors do not fit its `config.json`, or that lacks a tensor.
public enum CheckpointError: Error, Sendable, Equatable, CustomStringConvertible {
    case missingTensor(name: String, directory: String, hint: String)
    case wrongShape(name: String, file: String, expected: [Int], actual: [Int])
    case wrongDType(name: String, file: String, dtype: String)
    case nonFinite(name: String, file: String, index: Int)
    case missingConfig(directory: String)
    case noWeights(directory: String)

    public var description: String {
        switch self {
        case .missingTensor(let name, let dir, let hint): "\(dir): missing tensor '\(name)'\(hint.isEmpty ? "" : " (\(hint))")"
        case .wrongShape(let name, let file, let expected, let actual):
            "\(file): tensor '\(name)' has shape \(actual), but config.json implies \(expected)"
        case .wrongDType(let name, let file, let dtype): "\(file): tensor '\(name)' has dtype \(dtype); weights must be F32, BF16 or F16"
        case .nonFinite(let name, let file, let index): "\(file): tensor '\(name)' element \(index) is NaN or infinite"
        case .missingConfig(let dir): "\(dir): no config.json"
        case .noWeights(let dir): "\(dir): no model.safetensors or model.safetensors.index.json"
        }
    }
}
