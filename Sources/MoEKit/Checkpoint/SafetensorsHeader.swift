/// One tensor's entry in a `.safetensors` header.
public struct SafetensorsEntry: Sendable, Equatable {
    /// The dtype string as written in the file (may be one MoEKit does not read, e.g. `U8`).
    public var dtypeName: String
    /// The parsed dtype, or `nil` when MoEKit does not read it as a tensor.
    public var dtype: DType? { DType(rawValue: dtypeName) }
    /// Bytes per element of every dtype the safetensors format defines (validation covers all of them,
    /// so a U8 or F8_E4M3 tensor cannot claim bytes past its shape either), `nil` for an unknown one.
    public var elementBytes: Int? { Self.elementBytes[dtypeName] }

    static let elementBytes: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
        "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
    ]
    /// The shape as written in the header.
    public var shape: [Int]
    /// Byte range relative to the start of the data section.
    public var dataRange: Range<Int>
}

/// The parsed and validated JSON header of a `.safetensors` file.
///
/// Validation, done before any tensor is touched: every entry has a known shape, offsets are
/// ordered, non-negative, inside the data section, agree with `shape × dtype size` for readable
/// dtypes, and no two tensors overlap.
struct SafetensorsHeader: Sendable {
    var entries: [String: SafetensorsEntry]
    var metadata: [String: String]

    static func parse(_ bytes: UnsafeRawBufferPointer, dataSize: Int, path: String) throws(SafetensorsError) -> SafetensorsHeader {
        let raw: RawHeader
        do {
            raw = try JSONDecoder().decode(RawHeader.self, from: Data(bytes))
        } catch {
            throw .invalidHeader(path: path, reason: "not a JSON object of tensor entries (\(Self.describe(error)))")
        }
        var entries: [String: SafetensorsEntry] = [:]
        for (name, entry) in raw.tensors {
            guard entry.data_offsets.count == 2 else {
                throw .badOffsets(path: path, tensor: name, reason: "data_offsets must have 2 values, has \(entry.data_offsets.count)")
            }
            let (begin, end) = (entry.data_offsets[0], entry.data_offsets[1])
            guard begin >= 0, end >= begin, end <= dataSize else {
                throw .badOffsets(path: path, tensor: name,
                                  reason: "data_offsets [\(begin), \(end)] outside the data section of \(dataSize) bytes")
            }
            guard entry.shape.allSatisfy({ $0 >= 0 }) else {
                throw .badOffsets(path: path, tensor: name, reason: "negative dimension in shape \(entry.shape)")
            }
            let parsed = SafetensorsEntry(dtypeName: entry.dtype, shape: entry.shape, dataRange: begin..<end)
            if let elementBytes = parsed.elementBytes {
                let (count, overflow) = entry.shape.reduce((1, false)) { acc, d in
                    let m = acc.0.multipliedReportingOverflow(by: d)
                    return (m.partialValue, acc.1 || m.overflow)
                }
                let size = count.multipliedReportingOverflow(by: elementBytes)
                guard !overflow, !size.overflow, size.partialValue == end - begin else {
                    throw .badOffsets(path: path, tensor: name,
                                      reason: "shape \(entry.shape) of \(entry.dtype) needs \(overflow || size.overflow ? "too many" : String(size.partialValue)) bytes but data_offsets span \(end - begin)")
                }
            }
            entries[name] = parsed
        }
        // No two tensors may share bytes: sort by start and compare neighbours.
        let ordered = entries.sorted { ($0.value.dataRange.lowerBound, $0.key) < ($1.value.dataRange.lowerBound, $1.key) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where a.value.dataRange.upperBound > b.value.dataRange.lowerBound {
            throw .badOffsets(path: path, tensor: b.key, reason: "bytes overlap those of tensor '\(a.key)'")
        }
        return SafetensorsHeader(entries: entries, metadata: raw.metadata)
    }

    private static func describe(_ error: any Error) -> String {
        if let decoding = error as? DecodingError {
            switch decoding {
            case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c):
                let path = c.codingPath.map(\.stringValue).joined(separator: ".")
                return path.isEmpty ? c.debugDescription : "at '\(path)': \(c.debugDescription)"
            @unknown default: return "\(error)"
            }
        }
        return "\(error)"
    }
}

/// The header as JSON: tensor entries plus the optional `__metadata__` string map.
private struct RawHeader: Decodable {
    struct Entry: Decodable {
        var dtype: String
        var shape: [Int]
        var data_offsets: [Int]
    }
    var tensors: [String: Entry] = [:]
    var metadata: [String: String] = [:]

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        for key in container.allKeys {
            if key.stringValue == "__metadata__" {
                metadata = try container.decode([String: String].self, forKey: key)
            } else {
                tensors[key.stringValue] = try container.decode(Entry.self, forKey: key)
            }
        }
    }
}

/// A coding key for JSON objects whose keys are data (tensor names).
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
