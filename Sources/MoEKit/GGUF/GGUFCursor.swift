/// Reads a GGUF header front to back. Every read is checked against the bytes that remain first,
/// so a length, count or size the file claims can never move the cursor past the end.
struct GGUFCursor {
    let bytes: UnsafeRawBufferPointer
    let path: String
    private(set) var offset: Int

    init(bytes: UnsafeRawBufferPointer, path: String, offset: Int = 0) {
        self.bytes = bytes
        self.path = path
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    /// Claims `count` bytes and returns where they start.
    mutating func take(_ count: UInt64, _ what: @autoclosure () -> String) throws(GGUFError) -> Int {
        guard count <= UInt64(remaining) else {
            throw .truncated(path: path, what: what(), offset: offset, needed: count, available: remaining)
        }
        let start = offset
        offset += Int(count)
        return start
    }

    mutating func u8(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt8 {
        bytes.load(fromByteOffset: try take(1, what()), as: UInt8.self)
    }

    mutating func u16(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt16 {
        UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(2, what()), as: UInt16.self))
    }

    mutating func u32(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(4, what()), as: UInt32.self))
    }

    mutating func u64(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(8, what()), as: UInt64.self))
    }

    /// A `gguf_string`: a UINT64 byte length, then that many bytes of UTF-8 (invalid sequences
    /// are replaced, as a name must still be printable in an error).
    mutating func string(_ what: @autoclosure () -> String) throws(GGUFError) -> String {
        let length = try u64("the length of \(what())")
        let start = try take(length, what() + " (a string of \(length) bytes)")
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<(start + Int(length))]), as: UTF8.self)
    }

    /// Skips a `gguf_string`, checking its length.
    mutating func skipString(_ what: @autoclosure () -> String) throws(GGUFError) {
        let length = try u64("the length of \(what())")
        _ = try take(length, what() + " (a string of \(length) bytes)")
    }

    /// One value of a non-array type.
    mutating func scalar(_ type: GGUFValueType, key: String) throws(GGUFError) -> GGUFValue {
        let what = "the value of key '\(key)'"
        switch type {
        case .uint8: return .uint8(try u8(what))
        case .int8: return .int8(Int8(bitPattern: try u8(what)))
        case .uint16: return .uint16(try u16(what))
        case .int16: return .int16(Int16(bitPattern: try u16(what)))
        case .uint32: return .uint32(try u32(what))
        case .int32: return .int32(Int32(bitPattern: try u32(what)))
        case .float32: return .float32(Float(bitPattern: try u32(what)))
        case .bool:
            let b = try u8(what)
            guard b <= 1 else { throw .invalidBool(path: path, key: key, value: b) }
            return .bool(b == 1)
        case .string: return .string(try string(what))
        case .uint64: return .uint64(try u64(what))
        case .int64: return .int64(Int64(bitPattern: try u64(what)))
        case .float64: return .float64(Double(bitPattern: try u64(what)))
        case .array: throw .nestedArray(path: path, key: key)
        }
    }

    /// One metadata value of `type` (an array's elements are checked, not decoded).
    mutating func value(_ type: GGUFValueType, key: String, file: MappedFile) throws(GGUFError) -> GGUFValue {
        guard type == .array else { return try scalar(type, key: key) }
        let rawType = try u32("the element type of array key '\(key)'")
        guard let element = GGUFValueType(rawValue: rawType) else {
            throw .invalidArrayType(path: path, key: key, type: rawType)
        }
        guard element != .array else { throw .nestedArray(path: path, key: key) }
        let count = try u64("the element count of array key '\(key)'")
        let smallest = element.fixedSize ?? 8  // a string is at least its 8-byte length
        let limit = remaining / smallest
        guard count <= UInt64(limit) else {
            throw .countTooLarge(path: path, what: "the element count of array key '\(key)',", value: count, limit: limit)
        }
        let start = offset
        if let size = element.fixedSize {
            let first = try take(count * UInt64(size), "the elements of array key '\(key)'")
            if element == .bool {
                for i in 0..<Int(count) where bytes[first + i] > 1 {
                    throw .invalidBool(path: path, key: "\(key)[\(i)]", value: bytes[first + i])
                }
            }
        } else {
            for i in 0..<Int(count) { try skipString("string \(i) of array key '\(key)'") }
        }
        return .array(GGUFArray(elementType: element, count: Int(count), file: file, range: start..<offset, path: path))
    }
}
