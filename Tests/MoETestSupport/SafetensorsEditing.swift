import Foundation
import MoEKit
import Testing

/// A `.safetensors` file taken apart for a test to break: each tensor's dtype, shape and bytes, in file
/// order. ``write(to:)`` puts it back together with whatever the test changed (a shape that disagrees
/// with the bytes, a dtype, a tensor moved last or removed), offsets recomputed from the bytes.
package struct EditableSafetensors {
    package struct Entry {
        package var name: String
        package var dtype: String
        package var shape: [Int]
        package var bytes: [UInt8]
    }

    package var entries: [Entry]
    package var metadata: [String: String]

    /// Reads the file at `path` apart.
    package init(path: String) throws {
        let file = try SafetensorsFile(path: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = data.prefix(8).withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self).littleEndian) }
        let start = 8 + headerLength
        entries = file.entries.sorted { ($0.value.dataRange.lowerBound, $0.key) < ($1.value.dataRange.lowerBound, $1.key) }.map { name, e in
            Entry(name: name, dtype: e.dtypeName, shape: e.shape, bytes: [UInt8](data[(start + e.dataRange.lowerBound)..<(start + e.dataRange.upperBound)]))
        }
        metadata = file.metadata
    }

    /// Changes tensor `name` (which must exist).
    package mutating func edit(_ name: String, _ change: (inout Entry) -> Void) throws {
        let i = try #require(entries.firstIndex { $0.name == name }, "no tensor \(name)")
        change(&entries[i])
    }

    /// Removes tensor `name` (which must exist).
    package mutating func remove(_ name: String) throws {
        let i = try #require(entries.firstIndex { $0.name == name }, "no tensor \(name)")
        entries.remove(at: i)
    }

    /// Moves tensor `name` to the end of the data section.
    package mutating func moveToEnd(_ name: String) throws {
        let i = try #require(entries.firstIndex { $0.name == name }, "no tensor \(name)")
        entries.append(entries.remove(at: i))
    }

    /// Writes the file: 8-byte length, JSON header padded with spaces to 8 bytes, data back to back.
    package func write(to path: String) throws {
        var fields: [String] = []
        if !metadata.isEmpty {
            fields.append("\"__metadata__\":{" + metadata.keys.sorted().map { "\"\($0)\":\"\(metadata[$0] ?? "")\"" }.joined(separator: ",") + "}")
        }
        var offset = 0
        var payload: [UInt8] = []
        for e in entries {
            fields.append("\"\(e.name)\":{\"dtype\":\"\(e.dtype)\",\"shape\":[\(e.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + e.bytes.count)]}")
            offset += e.bytes.count
            payload += e.bytes
        }
        var header = Array(("{" + fields.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { bytes += $0 }
        try writeBytes(bytes + header + payload, to: path)
    }

    /// Reads `path`, lets `change` edit it, writes it back.
    package static func rewrite(_ path: String, _ change: (inout EditableSafetensors) throws -> Void) throws {
        var file = try EditableSafetensors(path: path)
        try change(&file)
        try file.write(to: path)
    }
}

/// Rewrites `dir/config.json` through `change` on its JSON object.
package func editConfigJSON(_ dir: String, _ change: (inout [String: Any]) -> Void) throws {
    let path = dir + "/config.json"
    var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    change(&object)
    try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
}

/// A raw `.safetensors` file: 8-byte little-endian header length (`declaredLength`, default the header's own),
/// header bytes, data bytes — for files no writer would make.
package func rawSafetensors(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    var bytes: [UInt8] = []
    withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { bytes += $0 }
    return bytes + h + data
}
