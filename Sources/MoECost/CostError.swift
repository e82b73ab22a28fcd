import MoEKit

/// Why the cost model could not describe a model or a hardware profile.
public enum CostError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The feed-forward part of the config was refused by MoEKit's own reader.
    case config(ConfigError)
    /// A key the count needs is absent.
    case missingKey(path: String, key: String)
    /// A key holds a value the count cannot use.
    case invalidValue(path: String, key: String, value: String, reason: String)
    /// A file could not be read or is not the JSON expected.
    case unreadable(path: String, reason: String)
    /// `--hardware` named neither a built-in profile nor a readable file.
    case unknownHardware(name: String, known: [String])
    /// An option of the estimate is out of range (tokens, devices, experts…).
    case invalidOption(name: String, value: String, reason: String)
    /// The options given do not make one invocation (a missing or conflicting mode).
    case usage(String)

    /// One line naming the file, key or option and the value.
    public var description: String {
        switch self {
        case .config(let error): "\(error)"
        case .missingKey(let path, let key): "\(path): missing required key '\(key)'"
        case .invalidValue(let path, let key, let value, let reason): "\(path): \(key) = \(value) \(reason)"
        case .unreadable(let path, let reason): "\(path): \(reason)"
        case .unknownHardware(let name, let known):
            "unknown hardware '\(name)': not a built-in profile (\(known.joined(separator: ", "))) nor a readable JSON file"
        case .invalidOption(let name, let value, let reason): "--\(name) \(value) \(reason)"
        case .usage(let line): line
        }
    }
}
