/// A configuration that cannot describe a valid MoE block, or a `config.json` that cannot be read.
public enum ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A field whose value MoEKit cannot use, with the reason (`field` is its JSON key).
    case invalidField(field: String, value: String, reason: String)
    /// A required key is absent from the file at `path` (`key` is the dotted key path).
    case missingKey(path: String, key: String)
    /// The file's `model_type` is not one of ``Architecture``.
    case unsupportedArchitecture(path: String, modelType: String)
    /// The file cannot be read or is not JSON, or a key holds a value of the wrong type or out of range.
    case malformedJSON(path: String, reason: String)
    /// No preset is called `name`; `known` lists those that exist.
    case unknownPreset(name: String, known: [String])
    /// A decoder layer index outside `0..<layerCount`.
    case layerOutOfRange(layer: Int, layerCount: Int)

    /// One line naming the file, key or field and the value at fault.
    public var description: String {
        switch self {
        case .invalidField(let field, let value, let reason): "config: \(field) = \(value) \(reason)"
        case .missingKey(let path, let key): "\(path): missing required key '\(key)'"
        case .unsupportedArchitecture(let path, let type):
            "\(path): model_type '\(type)' is not supported (supported: \(Architecture.allCases.filter { $0 != .custom }.map(\.rawValue).joined(separator: ", ")), llama4)"
        case .malformedJSON(let path, let reason): "\(path): not a valid config: \(reason)"
        case .unknownPreset(let name, let known): "unknown preset '\(name)' (known: \(known.joined(separator: ", ")))"
        case .layerOutOfRange(let layer, let count): "layer \(layer) is out of range: the model has \(count) layers (0...\(count - 1))"
        }
    }

    static func require<V>(_ condition: Bool, field: String, value: V, _ reason: String) throws(ConfigError) {
        if !condition { throw ConfigError.invalidField(field: field, value: "\(value)", reason: reason) }
    }
}
