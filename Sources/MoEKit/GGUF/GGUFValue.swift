/// The type of a GGUF metadata value (`gguf_type`, 0…12).
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 0
    case int8 = 1
    case uint16 = 2
    case int16 = 3
    case uint32 = 4
    case int32 = 5
    case float32 = 6
    case bool = 7
    case string = 8
    case array = 9
    case uint64 = 10
    case int64 = 11
    case float64 = 12

    /// Bytes of one value, `nil` for strings and arrays.
    var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }

    public var description: String {
        switch self {
        case .uint8: "UINT8"
        case .int8: "INT8"
        case .uint16: "UINT16"
        case .int16: "INT16"
        case .uint32: "UINT32"
        case .int32: "INT32"
        case .float32: "FLOAT32"
        case .bool: "BOOL"
        case .string: "STRING"
        case .array: "ARRAY"
        case .uint64: "UINT64"
        case .int64: "INT64"
        case .float64: "FLOAT64"
        }
    }
}

/// One metadata value as the file stores it.
public enum GGUFValue: Sendable, CustomStringConvertible {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case string(String)
    case array(GGUFArray)
    case uint64(UInt64)
    case int64(Int64)
    case float64(Double)

    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .array: .array
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        }
    }

    /// Any integer type, widened; `nil` for other types and for a UINT64 above `Int64.max`.
    public var integer: Int64? {
        switch self {
        case .uint8(let v): Int64(v)
        case .int8(let v): Int64(v)
        case .uint16(let v): Int64(v)
        case .int16(let v): Int64(v)
        case .uint32(let v): Int64(v)
        case .int32(let v): Int64(v)
        case .uint64(let v): Int64(exactly: v)
        case .int64(let v): v
        default: nil
        }
    }

    /// FLOAT32 or FLOAT64, widened.
    public var float: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: nil
        }
    }

    public var bool: Bool? { if case .bool(let v) = self { v } else { nil } }
    public var string: String? { if case .string(let v) = self { v } else { nil } }
    public var array: GGUFArray? { if case .array(let v) = self { v } else { nil } }

    public var description: String {
        switch self {
        case .uint8(let v): "\(v)"
        case .int8(let v): "\(v)"
        case .uint16(let v): "\(v)"
        case .int16(let v): "\(v)"
        case .uint32(let v): "\(v)"
        case .int32(let v): "\(v)"
        case .float32(let v): "\(v)"
        case .bool(let v): "\(v)"
        case .string(let v): "'\(v.count > 60 ? String(v.prefix(57)) + "..." : v)'"
        case .array(let a): "[\(a.elementType) × \(a.count)]"
        case .uint64(let v): "\(v)"
        case .int64(let v): "\(v)"
        case .float64(let v): "\(v)"
        }
    }
}

/// A metadata array, kept where it lies in the mapped file (a tokenizer's 150 000 strings are
/// checked on open but decoded only when asked for).
public struct GGUFArray: @unchecked Sendable {
    public let elementType: GGUFValueType
    public let count: Int
    let file: MappedFile
    /// The elements' bytes in the file (already bounds-checked).
    let range: Range<Int>
    let path: String

    /// All elements, decoded.
    public var values: [GGUFValue] {
        var cursor = GGUFCursor(bytes: file.bytes, path: path, offset: range.lowerBound)
        var out: [GGUFValue] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            guard let v = try? cursor.scalar(elementType, key: "element \(i)") else { break }
            out.append(v)
        }
        return out
    }

    /// Integer elements widened (`nil` if the elements are not integers or one does not fit).
    public var integers: [Int64]? {
        var out: [Int64] = []
        out.reserveCapacity(count)
        for v in values {
            guard let i = v.integer else { return nil }
            out.append(i)
        }
        return out
    }
}
