/// The type of a GGUF metadata value (`gguf_type`, 0…12).
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// UINT8 (0): an unsigned byte.
    case uint8 = 0
    /// INT8 (1): a signed byte.
    case int8 = 1
    /// UINT16 (2).
    case uint16 = 2
    /// INT16 (3).
    case int16 = 3
    /// UINT32 (4).
    case uint32 = 4
    /// INT32 (5).
    case int32 = 5
    /// FLOAT32 (6): IEEE single precision.
    case float32 = 6
    /// BOOL (7): one byte, 0 or 1.
    case bool = 7
    /// STRING (8): a UINT64 byte length, then UTF-8 bytes.
    case string = 8
    /// ARRAY (9): a UINT32 element type, a UINT64 count, then the elements.
    case array = 9
    /// UINT64 (10).
    case uint64 = 10
    /// INT64 (11).
    case int64 = 11
    /// FLOAT64 (12): IEEE double precision.
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

    /// The name GGUF's specification uses: `UINT32`, `STRING`, ….
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
    /// A UINT8 value.
    case uint8(UInt8)
    /// An INT8 value.
    case int8(Int8)
    /// A UINT16 value.
    case uint16(UInt16)
    /// An INT16 value.
    case int16(Int16)
    /// A UINT32 value.
    case uint32(UInt32)
    /// An INT32 value.
    case int32(Int32)
    /// A FLOAT32 value.
    case float32(Float)
    /// A BOOL value.
    case bool(Bool)
    /// A STRING value.
    case string(String)
    /// An ARRAY, its elements left in the mapped file until asked for.
    case array(GGUFArray)
    /// A UINT64 value.
    case uint64(UInt64)
    /// An INT64 value.
    case int64(Int64)
    /// A FLOAT64 value.
    case float64(Double)

    /// The value's type tag.
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

    /// A BOOL's value; `nil` for other types.
    public var bool: Bool? { if case .bool(let v) = self { v } else { nil } }
    /// A STRING's value; `nil` for other types.
    public var string: String? { if case .string(let v) = self { v } else { nil } }
    /// An ARRAY; `nil` for other types.
    public var array: GGUFArray? { if case .array(let v) = self { v } else { nil } }

    /// The value for messages and `moe inspect`: numbers as is, strings quoted (cut at 60 characters),
    /// arrays as `[TYPE × count]`.
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
    /// The type of every element.
    public let elementType: GGUFValueType
    /// The number of elements.
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
