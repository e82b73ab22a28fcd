/// The metadata key–values of a GGUF file, in file order, with typed readers whose errors name
/// the file, the key and what it holds.
public struct GGUFMetadata: Sendable {
    /// The file the values came from, for error messages.
    public let path: String
    /// Keys in file order.
    public let keys: [String]
    let values: [String: GGUFValue]

    init(path: String, keys: [String], values: [String: GGUFValue]) {
        self.path = path
        self.keys = keys
        self.values = values
    }

    /// The value of `key` as stored, `nil` when absent.
    public subscript(key: String) -> GGUFValue? { values[key] }

    /// Whether the file has `key`.
    public func contains(_ key: String) -> Bool { values[key] != nil }

    /// A non-negative integer key of any integer type; `nil` when absent.
    /// - Throws: ``GGUFError/wrongKeyType(path:key:expected:found:)`` for a non-integer,
    ///   ``GGUFError/invalidKey(path:key:value:reason:)`` for a negative value or one past `Int.max`.
    public func count(_ key: String) throws(GGUFError) -> Int? {
        guard let value = values[key] else { return nil }
        guard let integer = value.integer else {
            if case .uint64(let big) = value {
                throw .invalidKey(path: path, key: key, value: "\(big)", reason: "is too large")
            }
            throw .wrongKeyType(path: path, key: key, expected: "an integer", found: "\(value.type) \(value)")
        }
        guard integer >= 0, let int = Int(exactly: integer) else {
            throw .invalidKey(path: path, key: key, value: "\(integer)", reason: "must not be negative")
        }
        return int
    }

    /// A FLOAT32/FLOAT64 key (an integer is accepted and widened); `nil` when absent.
    public func float(_ key: String) throws(GGUFError) -> Double? {
        guard let value = values[key] else { return nil }
        if let f = value.float { return f }
        if let i = value.integer { return Double(i) }
        throw .wrongKeyType(path: path, key: key, expected: "a float", found: "\(value.type) \(value)")
    }

    /// A BOOL key; `nil` when absent.
    public func bool(_ key: String) throws(GGUFError) -> Bool? {
        guard let value = values[key] else { return nil }
        guard let b = value.bool else {
            throw .wrongKeyType(path: path, key: key, expected: "a bool", found: "\(value.type) \(value)")
        }
        return b
    }

    /// A STRING key; `nil` when absent.
    public func string(_ key: String) throws(GGUFError) -> String? {
        guard let value = values[key] else { return nil }
        guard let s = value.string else {
            throw .wrongKeyType(path: path, key: key, expected: "a string", found: "\(value.type) \(value)")
        }
        return s
    }
}
